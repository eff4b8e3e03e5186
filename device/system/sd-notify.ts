// systemd notification for the daemon (Type=notify, WatchdogSec=): READY=1 once it serves, WATCHDOG=1
// while it is healthy, STOPPING=1 on the way out. Node has no AF_UNIX datagram sockets, so this runs
// systemd-notify, which (systemd ≥ 246) also waits on a BARRIER so the message is attributed to our
// unit before it exits; the unit sets NotifyAccess=all because the sender is that child process.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export type NotifyFields = Record<string, string | number | undefined>;

/** "KEY=value" assignments; newlines would end the field early, so they are flattened. Pure. */
export function notifyAssignments(fields: NotifyFields): string[] {
  return Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${String(v).replace(/\n/g, ' ')}`);
}

/**
 * How often to ping the watchdog: half of WATCHDOG_USEC, as sd_watchdog_enabled() advises, and only
 * when WATCHDOG_PID (if set) is this process. Pure.
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  if (env.WATCHDOG_PID !== undefined && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return Math.max(1, Math.floor(usec / 2000));
}

export interface NotifierOptions {
  env?: NodeJS.ProcessEnv;
  /** The systemd-notify binary. */
  bin?: string;
}

/** Sends the fields; resolves false (and does nothing) when not started by systemd. */
export async function sdNotify(fields: NotifyFields, options: NotifierOptions = {}): Promise<boolean> {
  const env = options.env ?? process.env;
  if (!env.NOTIFY_SOCKET) return false;
  await run(options.bin ?? 'systemd-notify', notifyAssignments(fields), { env, timeout: 10_000 });
  return true;
}

export const notifyReady = (status: string, options?: NotifierOptions) =>
  sdNotify({ READY: 1, STATUS: status, MAINPID: process.pid }, options);

export const notifyStopping = (status: string, options?: NotifierOptions) =>
  sdNotify({ STOPPING: 1, STATUS: status }, options);

export const notifyStatus = (status: string, options?: NotifierOptions) =>
  sdNotify({ STATUS: status }, options);

/**
 * Pings the watchdog while `isHealthy` says so. A wedged event loop stops the pings by itself, and
 * systemd restarts the daemon; an unhealthy check skips the ping on purpose for the same effect.
 */
export function startWatchdog(
  isHealthy: () => boolean | Promise<boolean>,
  options: NotifierOptions & { onError?: (err: Error) => void } = {},
): { intervalMs: number | undefined; stop(): void } {
  const intervalMs = watchdogIntervalMs(options.env ?? process.env, process.pid);
  if (intervalMs === undefined) return { intervalMs, stop() {} };
  const timer = setInterval(async () => {
    try {
      if (await isHealthy()) await sdNotify({ WATCHDOG: 1 }, options);
    } catch (err) {
      options.onError?.(err as Error);
    }
  }, intervalMs);
  timer.unref();
  return { intervalMs, stop: () => clearInterval(timer) };
}
