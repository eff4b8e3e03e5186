// Keeps the room screen up: runs the kiosk command (cage + Chromium), restarts it with backoff when it
// exits, and stops it cleanly (the whole process group: cage, Chromium and Chromium's helpers).
// KioskTokenFollower hands the daemon's kiosk token to the page (through a start page) and restarts
// the screen when the daemon restarted with a new one.
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { writeFileAtomic } from '../../src/util/atomic-file.js';
import type { Logger } from '../../src/util/log.js';
import { type BackoffPolicy, type BackoffState, DEFAULT_BACKOFF, nextRestart } from './backoff.js';
import { kioskStartPage, readKioskToken } from './wall-token.js';

export interface SupervisorOptions {
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  log: Logger;
  backoff?: BackoffPolicy;
  /** Awaited before every start, e.g. until the control server answers (a blank error page helps nobody). */
  beforeStart?: (signal: AbortSignal) => Promise<void>;
  /** Grace period between SIGTERM and SIGKILL when stopping. */
  killAfterMs?: number;
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  ranForMs: number;
  restartInMs: number;
}

export class KioskSupervisor extends EventEmitter<{ spawn: [number]; exit: [ExitInfo]; error: [Error] }> {
  readonly #o: SupervisorOptions;
  #child: ChildProcess | undefined;
  #exited: Promise<void> | undefined;
  #backoff: BackoffState = { failures: 0 };
  #timer: NodeJS.Timeout | undefined;
  #stopping = false;
  #restartRequested = false;
  readonly #abort = new AbortController();
  starts = 0;

  constructor(options: SupervisorOptions) {
    super();
    this.#o = options;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  start(): void {
    void this.#launch();
  }

  async #launch(): Promise<void> {
    if (this.#stopping) return;
    try {
      await this.#o.beforeStart?.(this.#abort.signal);
    } catch (err) {
      if (this.#stopping) return;
      this.#o.log.warn({ err: (err as Error).message }, 'kiosk pre-start check failed; retrying');
      this.#schedule(0);
      return;
    }
    if (this.#stopping) return;
    const started = Date.now();
    // Own process group, so stop() reaches Chromium's helper processes too.
    const child = spawn(this.#o.command, this.#o.args, {
      env: this.#o.env ?? process.env,
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
    });
    this.#child = child;
    this.starts++;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      for (const line of chunk.split('\n'))
        if (line.trim()) this.#o.log.debug({ kiosk: line.slice(0, 500) }, 'kiosk output');
    });
    this.#exited = new Promise((resolve) => {
      child.once('error', (err) => {
        // Spawn failures (ENOENT: cage or chromium not installed) also end in 'close'.
        this.#o.log.error({ err: err.message, command: this.#o.command }, 'kiosk command could not start');
        this.emit('error', err);
      });
      child.once('close', (code, signal) => {
        this.#child = undefined;
        // Sweep what the dead group leaves behind (Chromium's zygote and renderers) before restarting.
        if (child.pid !== undefined) {
          try {
            process.kill(-child.pid, 'SIGKILL');
          } catch {
            // Nothing left.
          }
        }
        const ranForMs = Date.now() - started;
        if (this.#stopping) {
          resolve();
          return;
        }
        if (this.#restartRequested) {
          // Asked for (a new kiosk token): no failure, no backoff.
          this.#restartRequested = false;
          this.#o.log.info({ ranForMs }, 'kiosk restarted on request');
          this.emit('exit', { code, signal, ranForMs, restartInMs: 0 });
          this.#schedule(0);
          resolve();
          return;
        }
        const { delayMs, state } = nextRestart(this.#o.backoff ?? DEFAULT_BACKOFF, this.#backoff, ranForMs);
        this.#backoff = state;
        this.#o.log.warn({ code, signal, ranForMs, restartInMs: delayMs }, 'kiosk exited; restarting');
        this.emit('exit', { code, signal, ranForMs, restartInMs: delayMs });
        this.#schedule(delayMs);
        resolve();
      });
    });
    if (child.pid !== undefined) {
      this.#o.log.info({ pid: child.pid, command: this.#o.command }, 'kiosk started');
      this.emit('spawn', child.pid);
    }
  }

  #schedule(delayMs: number): void {
    if (this.#stopping) return;
    this.#timer = setTimeout(() => void this.#launch(), delayMs);
  }

  /** Ends the running screen and starts it again at once (no backoff), e.g. for a new kiosk token. */
  restart(): void {
    const child = this.#child;
    if (this.#stopping || !child || child.pid === undefined || child.exitCode !== null) return;
    this.#restartRequested = true;
    const kill = (signal: NodeJS.Signals) => killGroup(child.pid as number, signal);
    kill('SIGTERM');
    const timer = setTimeout(() => {
      if (this.#child === child) kill('SIGKILL');
    }, this.#o.killAfterMs ?? 5000);
    timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#abort.abort();
    clearTimeout(this.#timer);
    const child = this.#child;
    if (!child || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
      await this.#exited;
      return;
    }
    const kill = (signal: NodeJS.Signals) => killGroup(child.pid as number, signal);
    kill('SIGTERM');
    const killed = sleep(this.#o.killAfterMs ?? 5000, undefined, { ref: false }).then(() => kill('SIGKILL'));
    await Promise.race([this.#exited, killed.then(() => this.#exited)]);
  }
}

/** Signals the kiosk's whole process group (cage and Chromium); a group already gone is fine. */
function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone.
  }
}

/** Resolves once `url` answers with a 2xx, polling; rejects if aborted. */
export async function waitForHttp(url: string, signal: AbortSignal, intervalMs = 500): Promise<void> {
  for (;;) {
    signal.throwIfAborted();
    try {
      const res = await fetch(url, { signal: AbortSignal.any([signal, AbortSignal.timeout(2000)]) });
      await res.body?.cancel();
      if (res.ok) return;
    } catch {
      // Not up yet.
    }
    await sleep(intervalMs, undefined, { signal });
  }
}

export interface TokenFollowerOptions {
  /** The daemon's kiosk token file (it writes a new token at every start). */
  tokenFile: string;
  /** The room screen, e.g. http://127.0.0.1:7480/. */
  url: string;
  /** Where to write the start page Chromium opens (the kiosk's own state directory). */
  startPage: string;
  log: Logger;
  pollMs?: number;
}

/**
 * Chromium opens a local start page that forwards it to `<url>#wall=<token>`: the token stays out of
 * the command line (/proc/<pid>/cmdline is readable by every local user) and out of every request
 * (a fragment is never sent). The follower rewrites that page before every start and asks for a
 * restart when the daemon's token changes (the page's old token would be refused with 401).
 */
export class KioskTokenFollower {
  readonly #o: TokenFollowerOptions;
  /** The token the running page got (undefined: none was readable). */
  #inUse: string | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: TokenFollowerOptions) {
    this.#o = options;
  }

  /** What Chromium is told to open. */
  get startUrl(): string {
    return pathToFileURL(this.#o.startPage).toString();
  }

  /** Before every start: the current token into the start page (none readable: the screen without video). */
  async prepare(): Promise<void> {
    let token: string | undefined;
    try {
      token = await readKioskToken(this.#o.tokenFile);
    } catch (err) {
      this.#o.log.warn({ file: this.#o.tokenFile, err: (err as Error).message }, 'kiosk token unreadable');
    }
    if (!token)
      this.#o.log.warn({ file: this.#o.tokenFile }, 'no kiosk token yet: the screen shows no video');
    await writeFileAtomic(this.#o.startPage, kioskStartPage(this.#o.url, token), 0o600);
    this.#inUse = token;
  }

  /** Polls the token file; calls `onChange` once a token different from the page's one is there. */
  watch(onChange: () => void): void {
    clearInterval(this.#timer);
    this.#timer = setInterval(() => {
      void readKioskToken(this.#o.tokenFile)
        .catch(() => undefined)
        .then((token) => {
          // A missing file is the daemon restarting: keep the screen until the new token is there.
          if (token && token !== this.#inUse) {
            this.#o.log.info('the daemon has a new kiosk token; restarting the screen');
            this.#inUse = token;
            onChange();
          }
        });
    }, this.#o.pollMs ?? 2000);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
