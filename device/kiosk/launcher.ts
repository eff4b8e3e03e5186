// Keeps the room screen up: runs the kiosk command (cage + Chromium), restarts it with backoff when it
// exits, and stops it cleanly (the whole process group: cage, Chromium and Chromium's helpers).
import { type ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../src/util/log.js';
import { type BackoffPolicy, type BackoffState, DEFAULT_BACKOFF, nextRestart } from './backoff.js';

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

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#abort.abort();
    clearTimeout(this.#timer);
    const child = this.#child;
    if (!child || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
      await this.#exited;
      return;
    }
    const group = -child.pid;
    const kill = (signal: NodeJS.Signals) => {
      try {
        process.kill(group, signal);
      } catch {
        // Already gone.
      }
    };
    kill('SIGTERM');
    const killed = sleep(this.#o.killAfterMs ?? 5000, undefined, { ref: false }).then(() => kill('SIGKILL'));
    await Promise.race([this.#exited, killed.then(() => this.#exited)]);
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
