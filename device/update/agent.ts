// The update agent inside the daemon: asks the release repository (TUF, src/update/tuf-client.ts)
// for a newer signed version every 6 h ± 30 min, when IT changes this device's `update` config
// (channel, maintenance window, pause) and on demand; downloads it (resumable) with its progress in
// the daemon state (the room screen shows it); waits for the maintenance window and for the room to
// be out of a meeting; installs it into the inactive slot (device/update/updater.ts) and restarts the
// service on it. After that start it runs the health gate: commit, or roll back by itself and restart
// on the old version. Every state change goes to provisioning (POST /v1/devices/:id/update-state,
// signed with the device key like action results), retried until the service takes it.
//
// What the update server (and the network) cannot do to the room:
// - Nothing it says reaches the screen: the screen shows fixed sentences and a version taken from
//   the signed targets metadata (the TUF client verified it, and it is checked again to be semver).
//   Error texts (which may quote a reply) go to the log and to IT's report only, bounded.
// - A hanging server cannot hold the agent: check and download have timeouts (and the client an idle
//   timeout); the agent runs apart from the meeting client, so a meeting starts and runs whatever the
//   agent is doing. A download pauses (and later resumes) when a meeting starts; install and restart
//   only happen outside meetings and inside the window; the restart after a failed gate, too.
// - A bad version cannot leave the room dark: the boot check (ExecStartPre) and the gate here roll
//   back by themselves, and a version that never ran is never committed (the running code must be
//   the version on trial).
import type { KeyObject } from 'node:crypto';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ProvisioningHttpError, requestJson } from '../../provisioning/client/http.js';
import { signDeviceRequest } from '../../provisioning/device-auth.js';
import { compareSemver, isSemver } from '../../src/update/bundle.js';
import type { ReleaseTarget } from '../../src/update/tuf-client.js';
import { type Logger, silentLogger } from '../../src/util/log.js';
import type { DeviceState, StateStore, UpdatePhase, UpdateView } from '../daemon/state.js';
import type { HealthCheck } from './health-gate.js';
import type { Updater } from './updater.js';

export const DEFAULT_CHANNEL = 'stable';
export const CHECK_INTERVAL_MS = 6 * 3600_000;
export const CHECK_JITTER_MS = 30 * 60_000;
/** At most one progress report to provisioning per this many ms (the screen at most 4 a second). */
export const PROGRESS_REPORT_MS = 5000;
export const MAX_ERROR_CHARS = 500;

/** The device config key `update` (site profile + per-device override, in heartbeat replies). */
export interface UpdateSettings {
  channel: string;
  /** Device local time, 'HH:MM'; absent = any time. end < start spans midnight. */
  window?: { start: string; end: string };
  paused: boolean;
}

/** The body of POST /v1/devices/:id/update-state. */
export interface UpdateStateReport {
  at: string;
  state: UpdatePhase;
  current: string;
  target?: string;
  channel: string;
  progress?: number;
  error?: string;
}

/** What the agent needs of src/update/tuf-client.ts's UpdateClient. */
export interface UpdateClientLike {
  check(o: {
    channel: string;
    arch: 'x64' | 'arm64';
    currentVersion: string;
  }): Promise<ReleaseTarget | undefined>;
  download(
    target: ReleaseTarget,
    destFile: string,
    o?: { onProgress?: (p: { received: number; total: number }) => void; signal?: AbortSignal },
  ): Promise<void>;
}

// A channel names a directory of the repository's target paths (the service's ChannelName too).
const CHANNEL = /^[a-z0-9][a-z0-9-]{0,31}$/;
const HHMM = /^([01]\d|2[0-3]):([0-5]\d)$/;

/** Validates the untrusted `update` config; anything malformed falls back to the default and is named. */
export function parseUpdateSettings(raw: unknown): { settings: UpdateSettings; problems: string[] } {
  const problems: string[] = [];
  const settings: UpdateSettings = { channel: DEFAULT_CHANNEL, paused: false };
  if (raw === undefined || raw === null) return { settings, problems };
  if (typeof raw !== 'object' || Array.isArray(raw))
    return { settings, problems: ['update is not an object'] };
  const r = raw as { channel?: unknown; window?: unknown; paused?: unknown };
  if (r.channel !== undefined) {
    if (typeof r.channel === 'string' && CHANNEL.test(r.channel)) settings.channel = r.channel;
    else problems.push('update.channel is not a channel name');
  }
  if (r.window !== undefined && r.window !== null) {
    const w = r.window as { start?: unknown; end?: unknown };
    if (
      typeof w === 'object' &&
      typeof w.start === 'string' &&
      typeof w.end === 'string' &&
      HHMM.test(w.start) &&
      HHMM.test(w.end)
    )
      settings.window = { start: w.start, end: w.end };
    else problems.push('update.window is not {start, end} in HH:MM');
  }
  if (r.paused !== undefined) {
    if (typeof r.paused === 'boolean') settings.paused = r.paused;
    else problems.push('update.paused is not a boolean');
  }
  return { settings, problems };
}

const minutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** Is `at` (device local time) inside the window? No window, or start = end, means any time. */
export function inWindow(window: UpdateSettings['window'], at: Date): boolean {
  if (!window) return true;
  const t = at.getHours() * 60 + at.getMinutes();
  const s = minutes(window.start);
  const e = minutes(window.end);
  if (s === e) return true;
  return s < e ? t >= s && t < e : t >= s || t < e;
}

/** The room is in (or joining) a meeting: no download, install or restart now. */
export function inMeeting(s: DeviceState): boolean {
  if (s.phase === 'in-meeting') return true;
  const status = s.meeting?.status;
  return status === 'connecting' || status === 'waiting' || status === 'active';
}

/** One line, no control characters, at most MAX_ERROR_CHARS. */
export function boundedError(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
  return clean.length > MAX_ERROR_CHARS ? `${clean.slice(0, MAX_ERROR_CHARS - 1)}…` : clean;
}

class StoppedError extends Error {}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${what} did not finish within ${Math.round(ms / 1000)} s`)),
        ms,
      );
    }),
  ]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// Reports to provisioning.

/** A report the service refuses for good (bad body, unknown device, no such route): not sent again. */
const FINAL_STATUSES = new Set([400, 401, 403, 404, 405, 409, 410, 413, 422]);

/**
 * Sends update-state reports signed with the device key (provisioning/device-auth.ts), the same way
 * action results are. The identity and the pinned fetch are looked up per report: they exist once
 * the device is enrolled and the service's TLS CA is pinned.
 */
export function provisioningUpdateReporter(o: {
  baseUrl: string;
  identity: () => { deviceId: string; privateKey: KeyObject } | undefined;
  fetch?: () => typeof fetch | undefined;
  now?: () => number;
  timeoutMs?: number;
}): (r: UpdateStateReport) => Promise<void> {
  return async (r) => {
    const id = o.identity();
    if (!id) throw new Error('not enrolled yet');
    const f = o.fetch ? o.fetch() : fetch;
    if (!f) throw new Error('the provisioning TLS CA is not pinned yet');
    const path = `/v1/devices/${encodeURIComponent(id.deviceId)}/update-state`;
    const body = JSON.stringify(r);
    const headers = signDeviceRequest({
      privateKey: id.privateKey,
      deviceId: id.deviceId,
      method: 'POST',
      path,
      body,
      now: (o.now ?? Date.now)(),
    });
    await requestJson(`${o.baseUrl.replace(/\/$/, '')}${path}`, {
      method: 'POST',
      headers,
      body,
      timeoutMs: o.timeoutMs ?? 15_000,
      fetch: f,
    });
  };
}

/** Only the newest report matters (the service keeps the newest `at`): one waits, it is retried. */
class ReportQueue {
  #next: UpdateStateReport | undefined;
  #busy: Promise<void> | undefined;
  #lastAt = 0;
  #stopped = false;
  #wake: (() => void) | undefined;
  #idle: (() => void)[] = [];

  constructor(
    private readonly send: ((r: UpdateStateReport) => Promise<void>) | undefined,
    private readonly log: Logger,
    private readonly retry: { minMs: number; maxMs: number },
    private readonly now: () => number,
  ) {}

  /** A strictly increasing `at` (the service ignores a report older than the one it holds). */
  stamp(): string {
    this.#lastAt = Math.max(this.now(), this.#lastAt + 1);
    return new Date(this.#lastAt).toISOString();
  }

  push(r: UpdateStateReport): void {
    if (!this.send || this.#stopped) return;
    this.#next = r;
    this.#busy ??= this.#drain().finally(() => {
      this.#busy = undefined;
      for (const f of this.#idle.splice(0)) f();
    });
  }

  async #drain(): Promise<void> {
    let delay = this.retry.minMs;
    while (this.#next && !this.#stopped) {
      const r = this.#next;
      try {
        await this.send!(r);
        if (this.#next === r) this.#next = undefined;
        delay = this.retry.minMs;
        continue;
      } catch (err) {
        if (err instanceof ProvisioningHttpError && FINAL_STATUSES.has(err.status)) {
          this.log.warn({ status: err.status, state: r.state }, 'the service refused an update-state report');
          if (this.#next === r) this.#next = undefined;
          continue;
        }
        this.log.debug?.(
          { err: boundedError(err), state: r.state },
          'update-state report not sent; will retry',
        );
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, delay);
        this.#wake = done;
        function done() {
          clearTimeout(t);
          resolve();
        }
      });
      this.#wake = undefined;
      delay = Math.min(delay * 2, this.retry.maxMs);
    }
  }

  /** Resolves once nothing waits to be sent, or after timeoutMs. */
  flush(timeoutMs: number): Promise<void> {
    if (!this.#busy) return Promise.resolve();
    this.#wake?.();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.#idle.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  stop(): void {
    this.#stopped = true;
    this.#wake?.();
  }
}

// ---------------------------------------------------------------------------------------------
// The agent.

export interface UpdateAgentOptions {
  state: StateStore;
  updater: Updater;
  client: UpdateClientLike;
  /** Where bundles are downloaded (a partial download resumes from here). */
  downloadDir: string;
  /** The version of the code running in this process. */
  version: string;
  arch?: 'x64' | 'arm64';
  log?: Logger;
  /** Restarts the service on the `current` slot (the daemon exits for systemd to start it again). */
  restart(): void | Promise<void>;
  /** Sends a report to provisioning (provisioningUpdateReporter); without it nothing is reported. */
  report?: (r: UpdateStateReport) => Promise<void>;
  /** The health gate a new version must pass after its start. */
  healthChecks(): HealthCheck[];
  /** The device config's `update` value (untrusted). */
  settings?: unknown;
  checkIntervalMs?: number;
  checkJitterMs?: number;
  /** First check after start (default 1 min + up to 5 min of jitter). */
  firstCheckMs?: number;
  gateTimeoutMs?: number;
  gateRetryMs?: number;
  checkTimeoutMs?: number;
  downloadTimeoutMs?: number;
  /** How often a waiting update looks at the clock (the window) besides state changes. */
  pollMs?: number;
  /** After a failed check or download: next try (default 30 min). */
  retryMs?: number;
  reportRetry?: { minMs: number; maxMs: number };
  now?: () => Date;
  random?: () => number;
}

const hostArch = (): 'x64' | 'arm64' => (process.arch === 'arm64' ? 'arm64' : 'x64');

export class UpdateAgent {
  readonly #o: UpdateAgentOptions;
  readonly #log: Logger;
  readonly #reports: ReportQueue;
  #settings: UpdateSettings;
  #timer: NodeJS.Timeout | undefined;
  #cycle: Promise<UpdateView> | undefined;
  #started: Promise<void> | undefined;
  #stopped = false;
  #stop = new AbortController();
  #wake: (() => void) | undefined;
  #onState = () => {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  };
  #lastProgressReport = 0;
  #lastProgressView = 0;

  constructor(o: UpdateAgentOptions) {
    this.#o = o;
    this.#log = o.log ?? silentLogger;
    const now = () => (o.now ?? (() => new Date()))().getTime();
    this.#reports = new ReportQueue(
      o.report,
      this.#log,
      o.reportRetry ?? { minMs: 2000, maxMs: 5 * 60_000 },
      now,
    );
    const { settings, problems } = parseUpdateSettings(o.settings);
    if (problems.length) this.#log.warn({ problems }, 'update settings refused in part');
    this.#settings = settings;
  }

  get settings(): UpdateSettings {
    return this.#settings;
  }

  get view(): UpdateView | undefined {
    return this.#o.state.get().update;
  }

  #now(): Date {
    return (this.#o.now ?? (() => new Date()))();
  }

  /** Publishes the slice (only when it changed) and reports it; progress reports are throttled. */
  #set(
    next: Omit<UpdateView, 'channel' | 'current'> & { current?: string },
    o: { report?: boolean; at?: string } = {},
  ): void {
    const view: UpdateView = {
      ...next,
      current: next.current ?? this.#o.version,
      channel: this.#settings.channel,
    };
    for (const k of Object.keys(view) as (keyof UpdateView)[]) if (view[k] === undefined) delete view[k];
    const before = this.#o.state.get().update;
    if (JSON.stringify(before) === JSON.stringify(view)) return;
    this.#o.state.update((s) => {
      s.update = view;
    });
    if (o.report === false) return;
    const phaseChanged = before?.state !== view.state || before?.target !== view.target;
    const t = this.#now().getTime();
    if (!phaseChanged) {
      if (view.state === 'downloading' && before?.progress !== view.progress) {
        if (t - this.#lastProgressReport < PROGRESS_REPORT_MS) return;
      } else if (
        before?.error === view.error &&
        before?.current === view.current &&
        before?.channel === view.channel
      ) {
        return; // what waits, or when it was checked: not the service's business
      }
    }
    if (view.state === 'downloading') this.#lastProgressReport = t;
    this.#reports.push({
      at: o.at ?? this.#reports.stamp(),
      state: view.state,
      current: view.current,
      ...(view.target ? { target: view.target } : {}),
      channel: view.channel,
      ...(view.progress !== undefined ? { progress: view.progress } : {}),
      ...(view.error ? { error: view.error } : {}),
    });
  }

  /**
   * Starts: the health gate of a version on trial (commit or roll back), a report of a rollback the
   * boot check did, then the periodic checks.
   */
  start(): Promise<void> {
    this.#o.state.on('change', this.#onState);
    this.#started ??= this.#afterStart()
      .catch((err) => this.#log.error({ err: boundedError(err) }, 'update agent start failed'))
      .then(() => {
        if (this.#stopped) return;
        const first =
          this.#o.firstCheckMs ?? 60_000 + Math.floor((this.#o.random ?? Math.random)() * 5 * 60_000);
        this.#schedule(first);
      });
    return this.#started;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#stop.abort(new StoppedError('the update agent stopped'));
    clearTimeout(this.#timer);
    this.#o.state.off('change', this.#onState);
    this.#onState();
    // A health gate under way cannot be cut short; the daemon does not wait for it.
    const grace = () => new Promise((r) => setTimeout(r, 1000).unref());
    await Promise.race([this.#started, grace()]);
    // An install under way is not waited for long either: the updater survives a cut at any point.
    await Promise.race([this.#cycle?.catch(() => undefined), grace()]);
    this.#reports.stop();
  }

  /** IT changed this device's `update` config (heartbeat reply). */
  setSettings(raw: unknown): void {
    const { settings, problems } = parseUpdateSettings(raw);
    if (problems.length) this.#log.warn({ problems }, 'update settings refused in part');
    const before = this.#settings;
    this.#settings = settings;
    if (JSON.stringify(before) === JSON.stringify(settings)) return;
    this.#log.info({ settings }, 'update settings changed');
    const v = this.view;
    if (v) this.#set({ ...v }); // the channel shown/reported follows
    this.#onState(); // a waiting update looks at the window/pause again
    if (before.channel !== settings.channel || (before.paused && !settings.paused)) void this.checkNow();
  }

  /** Checks now (or joins the check under way) and carries an update through as far as it can go. */
  checkNow(): Promise<UpdateView> {
    if (this.#stopped) return Promise.resolve(this.view as UpdateView);
    if (this.#cycle) return this.#cycle;
    clearTimeout(this.#timer);
    this.#cycle = this.#run()
      .catch((err) => {
        if (!(err instanceof StoppedError)) this.#fail(err);
      })
      .then(() => this.view as UpdateView)
      .finally(() => {
        this.#cycle = undefined;
        if (!this.#stopped) this.#schedule(this.#nextDelay());
      });
    return this.#cycle;
  }

  #nextDelay(): number {
    const failed = this.view?.state === 'failed';
    const base = failed ? (this.#o.retryMs ?? 30 * 60_000) : (this.#o.checkIntervalMs ?? CHECK_INTERVAL_MS);
    const jitter = failed ? 0 : (this.#o.checkJitterMs ?? CHECK_JITTER_MS);
    return Math.max(0, base + Math.round(((this.#o.random ?? Math.random)() * 2 - 1) * jitter));
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.checkNow(), ms);
    this.#timer.unref?.();
  }

  #fail(err: unknown, target?: string): void {
    const error = boundedError(err);
    this.#log.warn({ err: error, target }, 'update failed');
    this.#set({ state: 'failed', ...(target ? { target } : {}), error });
  }

  /** Waits until `ready()` holds; meanwhile the slice says what it waits for. Throws once stopped. */
  async #waitUntil(
    ready: () => UpdateView['waitingFor'] | true,
    view: Omit<UpdateView, 'channel' | 'current' | 'state'> & { current?: string },
    state: UpdatePhase = 'waiting',
  ): Promise<void> {
    for (;;) {
      if (this.#stopped) throw new StoppedError('stopped');
      const r = ready();
      if (r === true) return;
      this.#set({ ...view, state, waitingFor: r });
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, this.#o.pollMs ?? 30_000);
        const self = this;
        this.#wake = done;
        function done() {
          clearTimeout(t);
          if (self.#wake === done) self.#wake = undefined;
          resolve();
        }
      });
    }
  }

  #meetingOrPause = (): UpdateView['waitingFor'] | true => {
    if (this.#settings.paused) return 'paused';
    if (inMeeting(this.#o.state.get())) return 'meeting';
    return true;
  };

  #readyToInstall = (): UpdateView['waitingFor'] | true => {
    const r = this.#meetingOrPause();
    if (r !== true) return r;
    return inWindow(this.#settings.window, this.#now()) ? true : 'window';
  };

  async #afterStart(): Promise<void> {
    const status = await this.#o.updater.status();
    const s = status.state;
    if (!s) {
      this.#set({ state: 'failed', error: 'this box does not run from A/B slots' }, { report: false });
      return;
    }
    const p = s.pending;
    if (!p) {
      const last = s.last;
      if (last && (last.kind === 'rolled-back' || last.kind === 'crash-loop-rollback')) {
        // Said once per rollback: the service keeps the newest `at` and ignores this one afterwards.
        this.#set(
          {
            state: 'rolled-back',
            target: last.version,
            current: s.committedVersion,
            ...(last.detail ? { error: boundedError(last.detail) } : {}),
          },
          { at: last.at },
        );
      } else {
        this.#set({ state: 'idle', current: s.committedVersion });
      }
      // A committed version that reaches healthy clears its crash-loop start count.
      const g = await this.#o.updater.gate(this.#o.healthChecks(), this.#gateTiming());
      if (g.outcome === 'unhealthy') this.#log.warn({ checks: g.result.checks }, 'health checks failing');
      return;
    }
    if (p.version !== this.#o.version) {
      // The code in memory is not the version on trial (e.g. an in-process restart): never commit it
      // unseen. The next real start of the service tries it (or the boot check rolls it back).
      this.#log.warn(
        { running: this.#o.version, onTrial: p.version },
        'a version is on trial but this process runs another: no health gate now',
      );
      this.#set({ state: 'restarting', current: s.committedVersion, target: p.version });
      return;
    }
    this.#set({ state: 'verifying', current: s.committedVersion, target: p.version });
    const g = await this.#o.updater.gate(this.#o.healthChecks(), this.#gateTiming());
    if (g.outcome === 'committed') {
      this.#log.info({ version: p.version }, 'update committed: the health gate passed');
      this.#set({ state: 'committed', current: p.version });
      return;
    }
    const failed = g.result.checks
      .filter((c) => !c.ok)
      .map((c) => `${c.name}: ${c.detail}`)
      .join('; ');
    this.#log.error({ version: p.version, failed }, 'update rolled back: the health gate failed');
    this.#set({
      state: 'rolled-back',
      current: s.committedVersion,
      target: p.version,
      error: boundedError(`health gate failed: ${failed}`),
    });
    // Back on the old version after a restart, but never in the middle of a meeting.
    await this.#waitUntil(
      () => (inMeeting(this.#o.state.get()) ? 'meeting' : true),
      {
        current: s.committedVersion,
        target: p.version,
      },
      'rolled-back',
    );
    await this.#restart();
  }

  /** A stop does not wait for a step that cannot be aborted (a hanging check). */
  #unlessStopped<T>(p: Promise<T>): Promise<T> {
    const signal = this.#stop.signal;
    if (signal.aborted) return Promise.reject(new StoppedError('stopped'));
    return new Promise<T>((resolve, reject) => {
      const onStop = () => reject(new StoppedError('stopped'));
      signal.addEventListener('abort', onStop, { once: true });
      p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onStop));
    });
  }

  #gateTiming() {
    return {
      timeoutMs: this.#o.gateTimeoutMs ?? 120_000,
      ...(this.#o.gateRetryMs ? { retryMs: this.#o.gateRetryMs } : {}),
    };
  }

  async #restart(): Promise<void> {
    if (this.#stopped) return;
    // The last word before the service goes away (best effort: the next start reports again).
    await this.#reports.flush(5000);
    await this.#o.restart();
  }

  async #run(): Promise<void> {
    await this.#started;
    if (this.#settings.paused) {
      this.#set({ state: 'idle', waitingFor: 'paused' });
      return;
    }
    const status = await this.#o.updater.status();
    const s = status.state;
    if (!s) throw new Error('this box does not run from A/B slots');
    if (s.pending) return; // a version on trial: its gate decides first
    const current = s.committedVersion;
    const arch = this.#o.arch ?? hostArch();
    const checkedAt = this.#now().toISOString();
    const target = await this.#unlessStopped(
      withTimeout(
        this.#o.client.check({ channel: this.#settings.channel, arch, currentVersion: current }),
        this.#o.checkTimeoutMs ?? 120_000,
        'the update check',
      ),
    );
    if (!target) {
      this.#set({ state: 'idle', current, checkedAt });
      return;
    }
    // The client only offers a newer signed version; checked again before it is shown anywhere.
    if (!isSemver(target.version) || compareSemver(target.version, current) <= 0)
      throw new Error('the release repository offered a version that is not newer; refused');
    const version = target.version;
    if (s.rejected?.includes(version)) {
      this.#log.info({ version }, 'skipping a version rolled back on this box before');
      this.#set({ state: 'idle', current, checkedAt });
      return;
    }
    this.#log.info({ version, channel: this.#settings.channel }, 'update available');
    this.#set({ state: 'available', current, target: version, checkedAt });

    await mkdir(this.#o.downloadDir, { recursive: true, mode: 0o700 });
    const name = `sealroom-${version}.tar.gz`;
    const file = join(this.#o.downloadDir, name);
    // Leftovers of other versions go; this version's partial download is resumed.
    for (const f of await readdir(this.#o.downloadDir).catch(() => [] as string[]))
      if (f !== name && f !== `${name}.part`)
        await rm(join(this.#o.downloadDir, f), { recursive: true, force: true }).catch(() => undefined);
    const base = { current, target: version, checkedAt };
    try {
      await this.#download(target, file, base);
      await this.#waitUntil(this.#readyToInstall, base);
      this.#set({ ...base, state: 'installing' });
      this.#log.info({ version }, 'installing the update into the inactive slot');
      await this.#o.updater.apply(file, { expectedVersion: version });
    } catch (err) {
      if (err instanceof StoppedError) throw err;
      // A refused download was deleted by the client; a cut one stays to be resumed next time.
      await rm(file, { force: true }).catch(() => undefined);
      this.#fail(err, version);
      return;
    }
    await rm(file, { force: true }).catch(() => undefined);
    // Switched: the next start runs it. A meeting that began meanwhile goes first.
    await this.#waitUntil(() => (inMeeting(this.#o.state.get()) ? 'meeting' : true), base);
    this.#set({ ...base, state: 'restarting' });
    this.#log.info({ version }, 'restarting the service on the new version');
    await this.#restart();
  }

  /** Downloads outside meetings: a meeting (or a pause) stops it, and it resumes afterwards. */
  async #download(
    target: ReleaseTarget,
    file: string,
    base: Omit<UpdateView, 'state' | 'channel' | 'current'> & { current: string },
  ): Promise<void> {
    const deadline = Date.now() + (this.#o.downloadTimeoutMs ?? 2 * 3600_000);
    for (;;) {
      await this.#waitUntil(this.#meetingOrPause, { ...base, progress: this.view?.progress ?? 0 });
      this.#set({ ...base, state: 'downloading', progress: this.view?.progress ?? 0 });
      const ac = new AbortController();
      let interrupted = false;
      const watch = () => {
        if (this.#meetingOrPause() !== true) {
          interrupted = true;
          ac.abort(new Error('a meeting started or updates were paused'));
        }
      };
      this.#o.state.on('change', watch);
      const left = deadline - Date.now();
      let timedOut = false;
      const timer = setTimeout(
        () => {
          timedOut = true;
          ac.abort(new Error('the download took too long'));
        },
        Math.max(0, left),
      );
      try {
        await this.#o.client.download(target, file, {
          signal: AbortSignal.any([ac.signal, this.#stop.signal]),
          onProgress: ({ received, total }) => {
            const t = Date.now();
            const progress = total > 0 ? Math.min(1, received / total) : 0;
            if (progress < 1 && t - this.#lastProgressView < 250) return;
            this.#lastProgressView = t;
            this.#set({ ...base, state: 'downloading', progress: Math.floor(progress * 100) / 100 });
          },
        });
        this.#set({ ...base, state: 'downloading', progress: 1 }, { report: false });
        return;
      } catch (err) {
        if (this.#stopped) throw new StoppedError('stopped');
        if (timedOut)
          throw new Error(
            `the download took too long (over ${Math.round((this.#o.downloadTimeoutMs ?? 2 * 3600_000) / 1000)} s)`,
          );
        if (!interrupted) throw err;
        this.#log.info({ version: target.version }, 'download paused for a meeting; it resumes afterwards');
      } finally {
        clearTimeout(timer);
        this.#o.state.off('change', watch);
      }
    }
  }
}
