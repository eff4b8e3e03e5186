// `sealroom kiosk`: puts the room screen on the display (cage + Chromium in kiosk mode) and keeps it
// there; run by sealroom-kiosk.service. Heavy modules load only when the command runs.
import type { Command } from 'commander';

export const DEFAULT_KIOSK_URL = 'http://127.0.0.1:7480/';
/**
 * Where sealroom-daemon.service writes its kiosk token: its RuntimeDirectory (/run/sealroom, 0750,
 * group sealroom, of which sealroom-kiosk.service is a member), mode 0640.
 */
export const DEFAULT_KIOSK_TOKEN_FILE = '/run/sealroom/kiosk-token';

interface KioskCommandOptions {
  url: string;
  chromium: string;
  cage: string;
  profileDir?: string;
  tokenFile: string;
  withoutCage?: boolean;
}

export function registerKioskCommand(program: Command): void {
  program
    .command('kiosk')
    .description('show the room screen: Chromium in kiosk mode under cage, restarted if it dies')
    .option('--url <url>', 'the daemon’s kiosk UI (local control server)', DEFAULT_KIOSK_URL)
    .option('--chromium <path>', 'Chromium binary', '/usr/bin/chromium')
    .option('--cage <path>', 'cage (Wayland kiosk compositor) binary', '/usr/bin/cage')
    .option('--profile-dir <dir>', 'Chromium profile directory (default: $STATE_DIRECTORY/chromium)')
    .option(
      '--token-file <file>',
      'the daemon’s kiosk token (lets the screen show the far rooms’ video; the daemon’s --kiosk-token-file)',
      DEFAULT_KIOSK_TOKEN_FILE,
    )
    .option('--without-cage', 'run Chromium directly in an existing graphical session (development)')
    .action(async (opts: KioskCommandOptions) => {
      const { join } = await import('node:path');
      const { createLogger } = await import('../../src/util/log.js');
      const { kioskCommand } = await import('./chromium-command.js');
      const { KioskSupervisor, KioskTokenFollower, waitForHttp } = await import('./launcher.js');
      const log = createLogger('kiosk');
      const stateDir = process.env.STATE_DIRECTORY?.split(':')[0] ?? '/var/lib/sealroom-kiosk';
      const tokens = new KioskTokenFollower({
        tokenFile: opts.tokenFile,
        url: opts.url,
        startPage: join(stateDir, 'start.html'),
        log,
      });
      const { command, args } = kioskCommand({
        url: tokens.startUrl,
        chromium: opts.chromium,
        cage: opts.cage,
        profileDir: opts.profileDir ?? join(stateDir, 'chromium'),
        withoutCage: opts.withoutCage ?? false,
      });
      const health = new URL('healthz', opts.url).toString();
      const supervisor = new KioskSupervisor({
        command,
        args,
        log,
        beforeStart: async (signal) => {
          await waitForHttp(health, signal);
          await tokens.prepare();
        },
      });
      supervisor.start();
      tokens.watch(() => supervisor.restart());
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          log.info({ signal }, 'kiosk stopping');
          tokens.stop();
          void supervisor.stop().then(resolve);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
