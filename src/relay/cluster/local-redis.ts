// A private redis-server for tests, the cluster benchmark and the demo (`npm start -- --relays 3`):
// Debian's /usr/bin/redis-server on 127.0.0.1, a free port, its own temp dir, no persistence (so a
// restart comes back empty — the worst case the relay nodes must resynchronise from).
//
// redis-server runs under a small sh watchdog whose stdin is a pipe from this process: when this
// process goes away by any means (even SIGKILL, e.g. a vitest worker killed on timeout) the pipe
// closes and the watchdog SIGKILLs redis-server, so no server is ever left behind.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REDIS_SERVER = '/usr/bin/redis-server';
/** How long start() waits for the server to answer PING. */
export const LOCAL_REDIS_START_TIMEOUT_MS = 10_000;

// $1 = redis-server, the rest are its arguments. Prints "pid <n>", then waits for it; the watcher
// subshell reads fd 3 (our pipe: background jobs get /dev/null as stdin otherwise) until EOF, then
// kills the server and removes its temp dir (our exit hook cannot run after a SIGKILL).
const WATCHDOG = `
exec 3<&0
"$0" "$@" </dev/null 3<&- &
pid=$!
echo "pid $pid"
( while read -r _ <&3; do :; done; kill -9 "$pid" 2>/dev/null; rm -rf "$SEALROOM_REDIS_DIR" ) &
w=$!
wait "$pid"
st=$?
kill "$w" 2>/dev/null
exit $st
`;

/** Running servers, killed synchronously if this process exits normally with some still up. */
const running = new Set<number>();
const dirs = new Set<string>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    for (const pid of running) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** One PING over a raw socket (no client library, no reconnect noise): true on +PONG. */
async function ping(port: number, timeoutMs = 500): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = new Socket();
    let buf = '';
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('error', () => done(false));
    s.on('data', (d) => {
      buf += d.toString('latin1');
      if (buf.includes('\r\n')) done(buf.startsWith('+PONG'));
    });
    s.connect(port, '127.0.0.1', () => s.write('PING\r\n'));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class LocalRedis {
  #port: number;
  readonly #dir: string;
  #child: ChildProcess | undefined;
  #pid: number | undefined;
  #exited: Promise<void> = Promise.resolve();

  private constructor(port: number, dir: string) {
    this.#port = port;
    this.#dir = dir;
  }

  /** Starts a server on a free loopback port and resolves once it answers PING. */
  static async start(): Promise<LocalRedis> {
    installExitHook();
    const dir = mkdtempSync(join(tmpdir(), 'sealroom-redis-'));
    dirs.add(dir);
    // The port is probed then handed to redis-server: another process may take it in between, so
    // a failed start is retried on a fresh port.
    let lastErr: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      const r = new LocalRedis(await freePort(), dir);
      try {
        await r.#launch();
        return r;
      } catch (err) {
        lastErr = err;
        await r.stop('SIGKILL', false);
      }
    }
    rmSync(dir, { recursive: true, force: true });
    dirs.delete(dir);
    throw new Error(`LocalRedis: could not start redis-server: ${String(lastErr)}`);
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.#port}`;
  }

  /** True while the server process runs. */
  get running(): boolean {
    return this.#pid !== undefined;
  }

  async #launch(): Promise<void> {
    const args = [
      '--port',
      String(this.#port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      this.#dir,
      '--logfile',
      join(this.#dir, 'redis.log'),
      '--daemonize',
      'no',
      '--protected-mode',
      'yes',
    ];
    const child = spawn('/bin/sh', ['-c', WATCHDOG, REDIS_SERVER, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, SEALROOM_REDIS_DIR: this.#dir },
    });
    this.#child = child;
    let stderr = '';
    child.stderr?.on('data', (d) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    this.#exited = new Promise((resolve) => {
      child.once('exit', () => {
        if (this.#pid !== undefined) running.delete(this.#pid);
        this.#pid = undefined;
        if (this.#child === child) this.#child = undefined;
        resolve();
      });
    });
    const pid = await new Promise<number>((resolve, reject) => {
      let out = '';
      child.stdout?.on('data', (d) => {
        out += d.toString();
        const m = /pid (\d+)/.exec(out);
        if (m) resolve(Number(m[1]));
      });
      child.once('exit', (code) => reject(new Error(`watchdog exited (${code}) ${stderr}`)));
      child.once('error', reject);
    });
    this.#pid = pid;
    running.add(pid);
    const deadline = Date.now() + LOCAL_REDIS_START_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (this.#pid === undefined) throw new Error(`redis-server exited on port ${this.#port}: ${stderr}`);
      if (await ping(this.#port)) {
        this.#hold(false);
        return;
      }
      await sleep(25);
    }
    throw new Error(
      `redis-server did not answer PING on port ${this.#port} within ${LOCAL_REDIS_START_TIMEOUT_MS} ms`,
    );
  }

  /** Stops the server (SIGTERM by default) and waits until it is gone; removes the temp dir. */
  async stop(signal: NodeJS.Signals = 'SIGTERM', removeDir = true): Promise<void> {
    await this.#signal(signal);
    if (removeDir) {
      rmSync(this.#dir, { recursive: true, force: true });
      dirs.delete(this.#dir);
    }
  }

  /** SIGKILL: a crash, as the tests of an outage want it. The temp dir stays for restart(). */
  async kill9(): Promise<void> {
    await this.#signal('SIGKILL');
  }

  /** Stops (if running) and starts again on the same port, with an empty database. */
  async restart(): Promise<void> {
    await this.#signal('SIGTERM');
    // The port was ours a moment ago; a few tries cover a slow release of the socket.
    let lastErr: unknown;
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        await this.#launch();
        return;
      } catch (err) {
        lastErr = err;
        await this.#signal('SIGKILL');
        await sleep(100);
      }
    }
    throw new Error(`LocalRedis: restart on port ${this.#port} failed: ${String(lastErr)}`);
  }

  /** A running server must not keep the process alive (its owner may just exit: the watchdog cleans
   * up), but waiting for it to start or stop must. */
  #hold(on: boolean): void {
    const child = this.#child;
    if (!child) return;
    for (const s of [child.stdin, child.stdout, child.stderr]) {
      const h = s as unknown as { ref?: () => void; unref?: () => void } | null;
      if (on) h?.ref?.();
      else h?.unref?.();
    }
    if (on) child.ref();
    else child.unref();
  }

  async #signal(signal: NodeJS.Signals): Promise<void> {
    this.#hold(true);
    const pid = this.#pid;
    if (pid !== undefined) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone; the watchdog exits with it
      }
    } else {
      // Not started (or it failed early): close the pipe so the watchdog exits.
      this.#child?.stdin?.destroy();
    }
    await this.#exited;
    this.#child?.stdin?.destroy();
  }
}
