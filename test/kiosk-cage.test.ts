// The production screen command for real: cage (Debian's wlroots kiosk compositor, on its headless
// backend here) running Debian's Chromium in kiosk mode on Wayland, under the kiosk supervisor, showing
// the room screen from a running control server; the supervisor brings it back after Chromium dies
// and stops the whole process tree. cage refuses to run as root, so as root the test runs it as
// `nobody`, the way sealroom-kiosk.service runs it as its own user. As on the device, Chromium opens
// the start page carrying the kiosk token, and no process's command line shows the token.
import { execFileSync } from 'node:child_process';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { initialState, StateStore } from '../device/daemon/state.js';
import { kioskCommand } from '../device/kiosk/chromium-command.js';
import { type ControlServer, createControlServer } from '../device/kiosk/control-server.js';
import { KioskSupervisor, KioskTokenFollower, waitForHttp } from '../device/kiosk/launcher.js';
import { createKioskToken, writeKioskToken } from '../device/kiosk/wall-token.js';
import { silentLogger } from '../src/util/log.js';
import { buildKioskUi } from './kiosk-browser.js';
import { RoomDouble } from './kiosk-room-double.js';

const dir = mkdtempSync(join(tmpdir(), 'sealroom-cage-'));
const ui = buildKioskUi();
let server: ControlServer | undefined;
let supervisor: KioskSupervisor | undefined;

afterAll(async () => {
  await supervisor?.stop();
  await server?.close();
  ui.remove();
  rmSync(dir, { recursive: true, force: true });
});

/** Pids of processes whose command line mentions our temporary profile. */
function ours(pattern: string): number[] {
  try {
    return execFileSync('pgrep', ['-f', pattern], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

async function until(
  check: () => Promise<boolean> | boolean,
  what: string,
  timeoutMs = 40_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

describe('cage + Chromium kiosk', () => {
  it('shows the room screen under cage, restarts it after a crash, and stops every process', async () => {
    const store = new StateStore(initialState('t'));
    store.update((s) => {
      s.phase = 'idle';
      s.device.roomName = 'Boardroom';
    });
    const token = createKioskToken();
    server = await createControlServer({
      state: store,
      actions: new RoomDouble(store),
      log: silentLogger,
      uiDir: ui.dir,
      kioskToken: token,
    });
    const tokenFile = join(dir, 'kiosk-token');
    await writeKioskToken(tokenFile, token);
    const startPage = join(dir, 'start.html');
    const follower = new KioskTokenFollower({
      tokenFile,
      url: `${server.url}/`,
      startPage,
      log: silentLogger,
    });

    const runtime = join(dir, 'xdg');
    const profile = join(dir, 'chromium-profile');
    execFileSync('mkdir', ['-p', runtime, profile]);
    chmodSync(runtime, 0o700);
    const asRoot = process.getuid?.() === 0;
    const nobody = asRoot ? Number(execFileSync('id', ['-u', 'nobody'], { encoding: 'utf8' }).trim()) : -1;
    if (asRoot) {
      chownSync(runtime, nobody, -1);
      chownSync(profile, nobody, -1);
      chmodSync(dir, 0o755);
    }
    const { command, args } = kioskCommand({
      url: follower.startUrl,
      cage: 'cage',
      profileDir: profile,
      // No setuid sandbox helper or user namespaces in this container; the device has them.
      extraArgs: ['--no-sandbox', '--disable-gpu'],
    });
    expect(command).toBe('cage');
    const env = [
      `XDG_RUNTIME_DIR=${runtime}`,
      'WLR_BACKENDS=headless',
      'WLR_LIBINPUT_NO_DEVICES=1',
      'WLR_RENDERER=pixman',
      `HOME=${profile}`,
    ];
    const wrapped = asRoot
      ? { command: 'runuser', args: ['-u', 'nobody', '--', 'env', ...env, command, ...args] }
      : { command: 'env', args: [...env, command, ...args] };
    supervisor = new KioskSupervisor({
      ...wrapped,
      log: silentLogger,
      backoff: { initialMs: 100, maxMs: 400, stableMs: 60_000 },
      beforeStart: async (signal) => {
        await waitForHttp(`${server!.url}/healthz`, signal, 100);
        await follower.prepare();
        // The start page is the kiosk user's own file (0600); here that user is nobody.
        if (asRoot) chownSync(startPage, nobody, -1);
      },
      killAfterMs: 3000,
    });
    const streams = async () =>
      ((await (await fetch(`${server!.url}/healthz`)).json()) as { streams: number }).streams;
    supervisor.start();
    // The kiosk page is up when it holds the live state stream.
    await until(async () => (await streams()) === 1, 'the kiosk page under cage');
    expect(ours(`cage -d -s -- /usr/bin/chromium`).length).toBeGreaterThan(0);
    // Every process of the screen (cage, Chromium, its helpers): the token is in no command line.
    const screen = ours(profile);
    expect(screen.length).toBeGreaterThan(1);
    for (const pid of screen) {
      let cmdline = '';
      try {
        cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        continue; // gone meanwhile
      }
      expect(cmdline).not.toContain(token);
    }
    expect(readFileSync(startPage, 'utf8')).toContain(`#wall=${token}`);

    // Chromium's browser process dies: cage exits with it, and the supervisor starts both again.
    const browserPids = ours(`^/usr/lib/chromium/chromium .*--user-data-dir=${profile}`);
    expect(browserPids.length).toBeGreaterThan(0);
    process.kill(browserPids[0]!, 'SIGKILL');
    await until(() => supervisor!.starts === 2, 'a restart');
    await until(async () => (await streams()) === 1, 'the restarted kiosk page');

    await supervisor.stop();
    await until(() => ours(profile).length === 0, 'every cage and Chromium process to be gone', 10_000);
  }, 90_000);
});
