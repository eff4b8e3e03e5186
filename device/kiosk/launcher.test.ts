// The kiosk supervisor with stand-in children (node scripts) and, at the end, real headless Chromium
// showing the room screen from a running control server.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/util/log.js';
import { RoomDouble } from '../../test/kiosk-room-double.js';
import { initialState, StateStore } from '../daemon/state.js';
import { nextRestart } from './backoff.js';
import { kioskCommand } from './chromium-command.js';
import { createControlServer } from './control-server.js';
import { type ExitInfo, KioskSupervisor, waitForHttp } from './launcher.js';

const node = process.execPath;
const supervisors: KioskSupervisor[] = [];
const dirs: string[] = [];

function supervise(args: string[], extra: Partial<ConstructorParameters<typeof KioskSupervisor>[0]> = {}) {
  const s = new KioskSupervisor({
    command: node,
    args,
    log: silentLogger,
    backoff: { initialMs: 10, maxMs: 40, stableMs: 10_000 },
    killAfterMs: 500,
    ...extra,
  });
  supervisors.push(s);
  return s;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sealroom-launcher-'));
  dirs.push(dir);
  return dir;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

async function untilAsync(check: () => Promise<boolean>, what: string, timeoutMs = 40_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

afterEach(async () => {
  await Promise.all(supervisors.splice(0).map((s) => s.stop()));
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

describe('restart backoff', () => {
  it('doubles while the screen keeps dying and resets after a stable run', () => {
    const policy = { initialMs: 500, maxMs: 4000, stableMs: 60_000 };
    let state = { failures: 0 };
    const delays: number[] = [];
    for (const ran of [100, 100, 100, 100, 100, 120_000, 100]) {
      const next = nextRestart(policy, state, ran);
      delays.push(next.delayMs);
      state = next.state;
    }
    expect(delays).toEqual([500, 1000, 2000, 4000, 4000, 500, 500]);
  });
});

describe('kiosk supervisor', () => {
  it('restarts a command that keeps crashing, with growing delays', async () => {
    const s = supervise(['-e', 'process.exit(3)']);
    const exits: ExitInfo[] = [];
    s.on('exit', (e) => exits.push(e));
    s.start();
    await until(() => exits.length >= 4, 'four exits');
    expect(exits.slice(0, 4).map((e) => [e.code, e.restartInMs])).toEqual([
      [3, 10],
      [3, 20],
      [3, 40],
      [3, 40],
    ]);
    await s.stop();
    const starts = s.starts;
    await sleep(100);
    expect(s.starts).toBe(starts);
  });

  it('stops the whole process group, helpers included', async () => {
    const dir = tempDir();
    const pidFile = join(dir, 'helper.pid');
    // The "browser" starts a helper of its own and waits, like Chromium's zygote.
    const script = `
      const { spawn } = require('node:child_process');
      const helper = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
      require('node:fs').writeFileSync(${JSON.stringify(pidFile)}, String(helper.pid));
      setInterval(() => {}, 1000);`;
    const s = supervise(['-e', script]);
    s.start();
    await until(() => {
      try {
        return readFileSync(pidFile, 'utf8').length > 0;
      } catch {
        return false;
      }
    }, 'the helper');
    const helper = Number(readFileSync(pidFile, 'utf8'));
    const main = s.pid!;
    expect(alive(main) && alive(helper)).toBe(true);
    await s.stop();
    await until(() => !alive(main) && !alive(helper), 'the group to end', 5000);
  });

  it('kills a child that ignores SIGTERM', async () => {
    const s = supervise(['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"], {
      killAfterMs: 200,
    });
    let spawned = 0;
    s.on('spawn', (pid) => {
      spawned = pid;
    });
    s.start();
    await until(() => spawned > 0, 'spawn');
    await sleep(100); // let it install its SIGTERM handler
    await s.stop();
    expect(alive(spawned)).toBe(false);
  });

  it('reports a missing command and keeps retrying', async () => {
    const s = new KioskSupervisor({
      command: '/nonexistent/cage',
      args: [],
      log: silentLogger,
      backoff: { initialMs: 10, maxMs: 20, stableMs: 10_000 },
    });
    supervisors.push(s);
    const errors: string[] = [];
    s.on('error', (e) => errors.push((e as NodeJS.ErrnoException).code ?? e.message));
    s.start();
    await until(() => errors.length >= 2, 'two failed starts');
    expect(errors.slice(0, 2)).toEqual(['ENOENT', 'ENOENT']);
  });

  it('waits for the control server before starting the screen', async () => {
    let up = false;
    const server = createServer((_req, res) => {
      res.statusCode = up ? 200 : 503;
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`;
    const s = supervise(['-e', 'setInterval(() => {}, 1000)'], {
      beforeStart: (signal) => waitForHttp(url, signal, 20),
    });
    s.start();
    await sleep(150);
    expect(s.starts).toBe(0);
    up = true;
    await until(() => s.starts === 1, 'start after the server came up');
    await s.stop();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
});

describe('kiosk command', () => {
  it('runs Chromium in kiosk mode under cage on the device', () => {
    const { command, args } = kioskCommand({
      url: 'http://127.0.0.1:8780/',
      profileDir: '/var/lib/sealroom-kiosk',
    });
    expect(command).toBe('/usr/bin/cage');
    expect(args.slice(0, 4)).toEqual(['-d', '-s', '--', '/usr/bin/chromium']);
    expect(args).toEqual(expect.arrayContaining(['--kiosk', '--ozone-platform=wayland', '--disable-pinch']));
    expect(args.at(-1)).toBe('http://127.0.0.1:8780/');
  });

  it('keeps real (headless) Chromium on the room screen and brings it back after a crash', async () => {
    const store = new StateStore(initialState('t'));
    store.update((s) => {
      s.phase = 'idle';
    });
    const server = await createControlServer({
      state: store,
      actions: new RoomDouble(store),
      log: silentLogger,
    });
    try {
      const { command, args } = kioskCommand({ url: server.url, profileDir: tempDir(), headless: true });
      const s = new KioskSupervisor({
        command,
        args,
        log: silentLogger,
        backoff: { initialMs: 50, maxMs: 200, stableMs: 60_000 },
        beforeStart: (signal) => waitForHttp(`${server.url}/healthz`, signal, 50),
      });
      supervisors.push(s);
      const streams = async () =>
        ((await (await fetch(`${server.url}/healthz`)).json()) as { streams: number }).streams;
      s.start();
      // The page is up when it holds the live state stream.
      await untilAsync(async () => (await streams()) === 1, 'the kiosk page to connect');
      const first = s.pid!;
      process.kill(first, 'SIGKILL');
      await until(() => s.starts === 2, 'a restart', 20_000);
      await untilAsync(async () => (await streams()) === 1, 'the restarted page to connect');
      expect(s.pid).not.toBe(first);
      await s.stop();
      await until(() => !alive(first), 'the old browser to be gone', 5000);
    } finally {
      await server.close();
    }
  }, 60_000);
});
