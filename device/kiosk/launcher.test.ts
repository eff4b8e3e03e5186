// The kiosk supervisor with stand-in children (node scripts) and, at the end, real headless Chromium
// showing the room screen from a running control server.
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/util/log.js';
import { RoomDouble } from '../../test/kiosk-room-double.js';
import { initialState, StateStore } from '../daemon/state.js';
import { WallBroker, type WallPort } from '../daemon/wall-broker.js';
import { nextRestart } from './backoff.js';
import { kioskCommand, mergeFeatureFlags } from './chromium-command.js';
import { type ControlServer, createControlServer } from './control-server.js';
import { type ExitInfo, KioskSupervisor, KioskTokenFollower, waitForHttp } from './launcher.js';
import { createKioskToken, kioskStartPage, writeKioskToken } from './wall-token.js';

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

  it('restarts on request at once, without counting it as a crash', async () => {
    const s = supervise(['-e', 'setInterval(() => {}, 1000)'], {
      backoff: { initialMs: 5000, maxMs: 5000, stableMs: 60_000 },
    });
    const exits: ExitInfo[] = [];
    s.on('exit', (e) => exits.push(e));
    s.start();
    await until(() => s.pid !== undefined, 'spawn');
    const first = s.pid!;
    s.restart();
    await until(() => s.starts === 2 && s.pid !== undefined, 'the restart');
    expect(exits.map((e) => e.restartInMs)).toEqual([0]);
    expect(s.pid).not.toBe(first);
    await until(() => !alive(first), 'the first process to end', 5000);
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

  it('lets the wall connect over loopback: one merged --disable-features, loopback ICE, autoplay', () => {
    for (const headless of [false, true]) {
      const { args } = kioskCommand({
        url: 'file:///var/lib/sealroom-kiosk/start.html',
        profileDir: '/p',
        headless,
        extraArgs: ['--disable-features=Vulkan,Translate'],
      });
      // Chromium honours only the last --disable-features: there must be exactly one.
      const disabled = args.filter((a) => a.startsWith('--disable-features='));
      expect(disabled).toHaveLength(1);
      expect(disabled[0]!.split('=')[1]!.split(',')).toEqual([
        'Translate',
        'MediaRouter',
        'OptimizationHints',
        'WebRtcHideLocalIpsWithMdns',
        'Vulkan',
      ]);
      expect(args).toEqual(
        expect.arrayContaining([
          '--allow-loopback-in-peer-connection',
          '--autoplay-policy=no-user-gesture-required',
        ]),
      );
      expect(args.at(-1)).toBe('file:///var/lib/sealroom-kiosk/start.html');
    }
    expect(mergeFeatureFlags(['--a', '--enable-features=X', '--enable-features=Y,X', '--b'])).toEqual([
      '--a',
      '--enable-features=X,Y',
      '--b',
    ]);
  });

  it('hands the token over in a start page, never on the command line', async () => {
    const dir = tempDir();
    const token = createKioskToken();
    await writeKioskToken(join(dir, 'kiosk-token'), token);
    const follower = new KioskTokenFollower({
      tokenFile: join(dir, 'kiosk-token'),
      url: 'http://127.0.0.1:7480/',
      startPage: join(dir, 'start.html'),
      log: silentLogger,
    });
    const { args } = kioskCommand({ url: follower.startUrl, profileDir: join(dir, 'p') });
    expect(args.join(' ')).not.toContain(token);
    expect(args.at(-1)).toBe(`file://${dir}/start.html`);
    await follower.prepare();
    const html = readFileSync(join(dir, 'start.html'), 'utf8');
    expect(html).toContain(
      `<meta http-equiv="refresh" content="0; url=http://127.0.0.1:7480/#wall=${token}">`,
    );
    expect(html).toContain('<meta name="referrer" content="no-referrer">');
    expect(statSync(join(dir, 'start.html')).mode & 0o777).toBe(0o600);
    // Without a token the screen still comes up (no video); markup in a URL is escaped.
    expect(kioskStartPage('http://127.0.0.1:7480/"><script>', undefined)).not.toContain('<script>');
    expect(kioskStartPage('http://127.0.0.1:7480/', undefined)).toContain('url=http://127.0.0.1:7480/">');
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

/** Stands in for the media worker: counts the sessions the page opened. */
function countingPort(): WallPort & { opened: string[] } {
  const opened: string[] = [];
  return {
    opened,
    openWall: async (id) => {
      opened.push(id);
      return { sdp: 'v=0\r\n' };
    },
    answerWall: () => {},
    closeWall: () => {},
    onWallSlots: () => () => {},
    onWorkerGone: () => () => {},
  };
}

describe('kiosk token in real (headless) Chromium', () => {
  it('the page gets the token through the start page, and a new daemon start restarts the screen', async () => {
    const dir = tempDir();
    // A page standing in for the kiosk UI: opens a wall session with the token from its fragment.
    const ui = join(dir, 'ui');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(ui);
    writeFileSync(
      join(ui, 'index.html'),
      `<!doctype html><title>wall</title><script>
        const token = new URLSearchParams(location.hash.slice(1)).get('wall');
        history.replaceState(null, '', location.pathname);
        fetch('/api/wall/sessions', {
          method: 'POST',
          headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' },
          body: '{}',
        });
      </script>`,
    );
    const tokenFile = join(dir, 'run', 'kiosk-token');
    const startDaemonLike = async (port: number) => {
      const store = new StateStore(initialState('t'));
      const wallPort = countingPort();
      const kioskToken = createKioskToken();
      await writeKioskToken(tokenFile, kioskToken);
      const server = await createControlServer({
        state: store,
        actions: new RoomDouble(store),
        log: silentLogger,
        uiDir: ui,
        port,
        kioskToken,
        wall: new WallBroker({ port: wallPort, state: store, log: silentLogger }),
      });
      return { server, wallPort };
    };
    let daemon: { server: ControlServer; wallPort: ReturnType<typeof countingPort> } =
      await startDaemonLike(0);
    const url = daemon.server.url;
    const follower = new KioskTokenFollower({
      tokenFile,
      url: `${url}/`,
      startPage: join(dir, 'start.html'),
      log: silentLogger,
      pollMs: 100,
    });
    try {
      const { command, args } = kioskCommand({
        url: follower.startUrl,
        profileDir: join(dir, 'profile'),
        headless: true,
      });
      const s = new KioskSupervisor({
        command,
        args,
        log: silentLogger,
        backoff: { initialMs: 50, maxMs: 200, stableMs: 60_000 },
        beforeStart: async (signal) => {
          await waitForHttp(`${url}/healthz`, signal, 50);
          await follower.prepare();
        },
      });
      supervisors.push(s);
      s.start();
      follower.watch(() => s.restart());
      await until(() => daemon.wallPort.opened.length === 1, 'the page to open a wall session', 40_000);
      expect(s.starts).toBe(1);
      // The daemon restarts (same port, new token): the old page's token is worthless there, so the
      // follower restarts the screen with the new one.
      await daemon.server.close();
      daemon = await startDaemonLike(Number(new URL(url).port));
      await until(() => daemon.wallPort.opened.length === 1, 'the new page to open a session', 40_000);
      expect(s.starts).toBe(2);
      await s.stop();
    } finally {
      follower.stop();
      await daemon.server.close();
    }
  }, 90_000);
});
