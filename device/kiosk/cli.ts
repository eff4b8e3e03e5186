// `sealroom kiosk`: puts the room screen on the display (cage + Chromium in kiosk mode) and keeps it
// there; run by sealroom-kiosk.service. Heavy modules load only when the command runs.
import type { Command } from 'commander';

export const DEFAULT_KIOSK_URL = 'http://127.0.0.1:7480/';

interface KioskCommandOptions {
  url: string;
  chromium: string;
  cage: string;
  profileDir?: string;
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
    .option('--without-cage', 'run Chromium directly in an existing graphical session (development)')
    .action(async (opts: KioskCommandOptions) => {
      const { join } = await import('node:path');
      const { createLogger } = await import('../../src/util/log.js');
      const { kioskCommand } = await import('./chromium-command.js');
      const { KioskSupervisor, waitForHttp } = await import('./launcher.js');
      const log = createLogger('kiosk');
      const stateDir = process.env.STATE_DIRECTORY?.split(':')[0] ?? '/var/lib/sealroom-kiosk';
      const { command, args } = kioskCommand({
        url: opts.url,
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
        beforeStart: (signal) => waitForHttp(health, signal),
      });
      supervisor.start();
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          log.info({ signal }, 'kiosk stopping');
          void supervisor.stop().then(resolve);
        };
        process.once('SIGINT', () => stop('SIGINT'));
        process.once('SIGTERM', () => stop('SIGTERM'));
      });
    });
}
