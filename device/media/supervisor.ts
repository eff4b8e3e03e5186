// MediaSupervisor: runs in the daemon, owns the media worker process. It forks the worker with a
// big enough libuv pool, restarts it with backoff when it exits or stops answering pings, re-sends
// settings, keys, roster and controls after every restart, mirrors the worker's state into the
// daemon's StateStore (media slice) and raises/clears alerts. See index.ts for the API summary.
// The wall (kiosk page connection, docs/media.md): openWall(sessionId) → the worker's offer,
// answerWall/closeWall; 'wall-slots' is emitted (the daemon's WallBroker puts it in
// state.media.wall); a worker that exits takes every wall session with it (pending opens reject,
// pages reconnect).
import { type ChildProcess, fork } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StateStore } from '../daemon/state.js';
import type { SignalPayload } from '../../src/core/protocol/relay.js';
import { type Logger, silentLogger } from '../../src/util/log.js';
import {
  type FromWorker,
  parseFromWorker,
  type RosterLabel,
  type SettingsPatch,
  type ToWorker,
} from './ipc.js';
import { type MediaKeys, mediaKeysToWire } from './key-state.js';

export type { MediaKeys };

export interface MediaSupervisorOptions {
  state?: StateStore;
  log?: Logger;
  settings?: SettingsPatch;
  /** Worker entry; defaults to worker.js (or worker.ts under tsx) next to this module. */
  workerPath?: string;
  /** libuv threads for the worker: each appsink pull and polled bus holds one (default 48). */
  threadPoolSize?: number;
  pingIntervalMs?: number;
  pingTimeoutMs?: number;
  /** How long a new worker may take to say ready before it counts as hung (default 30 s). */
  startTimeoutMs?: number;
  backoffMs?: number[];
  /** ICE on 127.0.0.1 only (tests, benchmarks). */
  loopbackOnly?: boolean;
  env?: NodeJS.ProcessEnv;
}

export type StatsMessage = Extract<FromWorker, { type: 'stats' }>;
export type ProbeMessage = Extract<FromWorker, { type: 'probe' }>;
export type StatusMessage = Extract<FromWorker, { type: 'status' }>;
export type WorkerError = Extract<FromWorker, { type: 'error' }>;
export type WallSlotsMessage = Extract<FromWorker, { type: 'wall-slots' }>;

/** How long the worker may take to offer a wall connection. */
const WALL_OPEN_TIMEOUT_MS = 10_000;

export interface SupervisorEvents {
  /** SDP/ICE for the relay (or, peer-to-peer, the other worker). */
  signal: [SignalPayload];
  stats: [StatsMessage];
  status: [StatusMessage];
  error: [WorkerError];
  /** A worker (re)started and got its settings; its PeerConnection is new: negotiate again. */
  ready: [{ pid: number; restarts: number }];
  exit: [{ code: number | null; signal: NodeJS.Signals | null }];
  /** What each wall m-line carries and who speaks (WallBroker writes it to state.media.wall). */
  'wall-slots': [{ slots: WallSlotsMessage['slots']; activeSpeaker?: number }];
  /** The worker refused a wall command (e.g. a second answer, an unknown session). */
  'wall-error': [{ sessionId: string; message: string }];
}

const DEFAULT_BACKOFF = [250, 1000, 2000, 5000, 10000];

function defaultWorker(): { path: string; execArgv: string[] } {
  const here = dirname(fileURLToPath(import.meta.url));
  const js = join(here, 'worker.js');
  if (existsSync(js)) return { path: js, execArgv: [] };
  return { path: join(here, 'worker.ts'), execArgv: ['--import', 'tsx'] };
}

export class MediaSupervisor extends EventEmitter<SupervisorEvents> {
  readonly #opts: MediaSupervisorOptions;
  readonly #log: Logger;
  #child: ChildProcess | undefined;
  #running = false;
  #restarts = 0;
  #failures = 0;
  #pingTimer: NodeJS.Timeout | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #pingId = 0;
  #lastPong = 0;
  #startedAt = 0;
  #settings: SettingsPatch;
  #keys: ToWorker | undefined;
  #roster: ToWorker | undefined;
  #controls = { micMuted: false, cameraOff: false, volume: 60 };
  #probes = new Map<number, (p: ProbeMessage) => void>();
  #probeId = 0;
  #wallOpens = new Map<string, { resolve(v: { sdp: string }): void; reject(e: Error): void }>();
  #lastStatus: StatusMessage | undefined;

  constructor(opts: MediaSupervisorOptions = {}) {
    super();
    this.#opts = opts;
    this.#log = opts.log ?? silentLogger;
    this.#settings = { ...opts.settings };
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get restarts(): number {
    return this.#restarts;
  }

  /** The running worker's latest pipeline status (none before it reported, after it exited or stopped). */
  get lastStatus(): StatusMessage | undefined {
    return this.#lastStatus;
  }

  /** Forks the worker and starts the pipelines; resolves once the worker said ready. */
  async start(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    this.#updateState((m) => {
      m.worker = 'starting';
    });
    const ready = new Promise<void>((resolve) => this.once('ready', () => resolve()));
    this.#spawn();
    await ready;
  }

  async updateSettings(patch: SettingsPatch): Promise<void> {
    this.#settings = { ...this.#settings, ...patch };
    this.#post({ type: 'start', settings: this.#settings });
  }

  setKeys(keys: MediaKeys): void {
    this.#keys = { type: 'keys', ...mediaKeysToWire(keys) };
    this.#post({ ...this.#keys, counterBase: this.#counterBase() });
  }

  /** The meeting ended: the worker forgets every key, and a restarted worker gets none back. */
  clearKeys(): void {
    this.#keys = undefined;
    this.#post({ type: 'clear-keys' });
  }

  /**
   * Each worker generation gets its own 2^40 SFrame counters (decades of frames): a worker killed
   * mid-stream can never have its successor reuse a (key, CTR) pair, i.e. an AES-GCM nonce.
   */
  #counterBase(): string {
    return (BigInt(this.#restarts) << 40n).toString(10);
  }

  setRoster(participants: RosterLabel[]): void {
    this.#roster = { type: 'roster', participants };
    this.#post(this.#roster);
  }

  connect(role: 'offer' | 'answer'): void {
    this.#post({ type: 'connect', role });
  }

  disconnect(): void {
    this.#post({ type: 'disconnect' });
  }

  /** A signal from the relay (or the other peer). */
  signal(payload: SignalPayload): void {
    this.#post({ type: 'signal', payload });
  }

  setMicMuted(muted: boolean): void {
    this.#controls.micMuted = muted;
    this.#post({ type: 'controls', micMuted: muted });
    this.#updateState((m) => {
      m.micMuted = muted;
    });
  }

  setCameraOff(off: boolean): void {
    this.#controls.cameraOff = off;
    this.#post({ type: 'controls', cameraOff: off });
    this.#updateState((m) => {
      m.cameraOff = off;
    });
  }

  /** Speaker volume 0..100. */
  setVolume(volume: number): void {
    const v = Math.max(0, Math.min(100, Math.round(volume)));
    this.#controls.volume = v;
    this.#post({ type: 'controls', volume: v });
    this.#updateState((m) => {
      m.volume = v;
    });
  }

  requestKeyframe(): void {
    this.#post({ type: 'keyframe' });
  }

  /** What the display and speaker got (test profile). */
  probe(timeoutMs = 5000): Promise<ProbeMessage> {
    const id = ++this.#probeId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#probes.delete(id);
        reject(new Error('media worker did not answer the probe'));
      }, timeoutMs);
      this.#probes.set(id, (p) => {
        clearTimeout(timer);
        resolve(p);
      });
      this.#post({ type: 'probe', id });
    });
  }

  /**
   * A kiosk page asks for the wall: the worker's offer. Rejects with the worker's wall-error, when
   * no worker is running, or after 10 s.
   */
  openWall(sessionId: string): Promise<{ sdp: string }> {
    const child = this.#child;
    if (!this.#running || !child?.connected || this.#opts.state?.get().media.worker === 'restarting')
      return Promise.reject(new Error('media worker not running'));
    if (this.#wallOpens.has(sessionId)) return Promise.reject(new Error('wall session already opening'));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#wallOpens.delete(sessionId);
        reject(new Error('media worker did not offer the wall in time'));
      }, WALL_OPEN_TIMEOUT_MS);
      this.#wallOpens.set(sessionId, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      child.send({ type: 'wall-open', sessionId } satisfies ToWorker);
    });
  }

  /** The page's answer (only the first answer of a session counts; the worker refuses others). */
  answerWall(sessionId: string, sdp: string): void {
    this.#post({ type: 'wall-answer', sessionId, sdp });
  }

  closeWall(sessionId: string): void {
    this.#post({ type: 'wall-close', sessionId });
  }

  /** Pending wall opens fail with the worker: its sessions are gone. */
  #dropWall(reason: string): void {
    const pending = [...this.#wallOpens.values()];
    this.#wallOpens.clear();
    for (const p of pending) p.reject(new Error(reason));
  }

  injectCameraFault(): void {
    this.#post({ type: 'inject-fault', target: 'camera' });
  }

  /** Stops pipelines, then the worker; kills it if it does not exit within `graceMs`. */
  async stop(graceMs = 3000): Promise<void> {
    this.#running = false;
    clearTimeout(this.#restartTimer);
    clearInterval(this.#pingTimer);
    const child = this.#child;
    this.#child = undefined;
    this.#lastStatus = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      if (child.connected) child.send({ type: 'shutdown' } satisfies ToWorker);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }
    this.#dropWall('media worker stopped');
    this.#updateState((m) => {
      m.worker = 'stopped';
    });
    this.#opts.state?.clearAlert('media.worker');
  }

  // ---------------------------------------------------------------- process management

  #spawn(): void {
    const { path, execArgv } = this.#opts.workerPath
      ? {
          path: this.#opts.workerPath,
          execArgv: this.#opts.workerPath.endsWith('.ts') ? ['--import', 'tsx'] : [],
        }
      : defaultWorker();
    const child = fork(path, [], {
      execArgv,
      serialization: 'json',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: {
        ...process.env,
        ...this.#opts.env,
        // Must be set before the worker starts: libuv sizes its pool once.
        UV_THREADPOOL_SIZE: String(this.#opts.threadPoolSize ?? 48),
        SEALROOM_MEDIA_LOOPBACK: this.#opts.loopbackOnly ? '1' : '0',
      },
    });
    this.#child = child;
    this.#startedAt = Date.now();
    this.#lastPong = Date.now();
    child.on('message', (raw) => this.#onMessage(child, raw));
    child.on('exit', (code, signal) => this.#onExit(child, code, signal));
    child.on('error', (err) => this.#log.error({ err: err.message }, 'media worker process error'));
    clearInterval(this.#pingTimer);
    const interval = this.#opts.pingIntervalMs ?? 2000;
    const timeout = this.#opts.pingTimeoutMs ?? 6000;
    let readySeen = false;
    child.once('message', () => {
      readySeen = true;
      this.#lastPong = Date.now();
    });
    this.#pingTimer = setInterval(() => {
      if (this.#child !== child) return;
      // Start-up (loading GStreamer, compiling under load) gets its own, longer allowance.
      const allowed = readySeen ? timeout : (this.#opts.startTimeoutMs ?? 30_000);
      if (Date.now() - this.#lastPong > allowed) {
        this.#log.warn({ pid: child.pid }, 'media worker stopped answering; killing it');
        child.kill('SIGKILL');
        return;
      }
      if (child.connected) child.send({ type: 'ping', id: ++this.#pingId } satisfies ToWorker);
    }, interval);
  }

  #onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    this.emit('exit', { code, signal });
    if (this.#child !== child) return;
    this.#child = undefined;
    this.#lastStatus = undefined;
    clearInterval(this.#pingTimer);
    // Every wall session died with the worker: pages notice their connection fail and open anew.
    this.#dropWall('media worker exited');
    if (!this.#running) return;
    this.#log.warn({ code, signal }, 'media worker exited; restarting');
    // A worker that ran a while is a fresh failure, not a crash loop.
    if (Date.now() - this.#startedAt > 30_000) this.#failures = 0;
    const backoff = this.#opts.backoffMs ?? DEFAULT_BACKOFF;
    const delay = backoff[Math.min(this.#failures, backoff.length - 1)] as number;
    this.#failures++;
    this.#updateState((m) => {
      m.worker = 'restarting';
    });
    this.#opts.state?.raiseAlert('media.worker', 'warning', 'Audio and video are restarting');
    this.#restartTimer = setTimeout(() => {
      if (!this.#running) return;
      this.#restarts++;
      this.#spawn();
    }, delay);
  }

  #post(msg: ToWorker): void {
    const child = this.#child;
    if (child?.connected) child.send(msg);
  }

  #onMessage(child: ChildProcess, raw: unknown): void {
    const parsed = parseFromWorker(raw);
    if (!parsed.ok) {
      this.#log.warn({ error: parsed.error }, 'invalid message from media worker');
      return;
    }
    const msg = parsed.message;
    switch (msg.type) {
      case 'ready':
        // Everything the worker knew died with its predecessor: send it again.
        child.send({ type: 'start', settings: this.#settings } satisfies ToWorker);
        if (this.#keys) child.send({ ...this.#keys, counterBase: this.#counterBase() });
        if (this.#roster) child.send(this.#roster);
        child.send({ type: 'controls', ...this.#controls } satisfies ToWorker);
        this.#updateState((m) => {
          m.worker = 'running';
        });
        this.#opts.state?.clearAlert('media.worker');
        this.emit('ready', { pid: msg.pid, restarts: this.#restarts });
        return;
      case 'pong':
        this.#lastPong = Date.now();
        return;
      case 'signal':
        this.emit('signal', msg.payload);
        return;
      case 'stats':
        this.#lastPong = Date.now();
        this.emit('stats', msg);
        return;
      case 'status':
        this.#onStatus(msg);
        return;
      case 'probe':
        this.#probes.get(msg.id)?.(msg);
        this.#probes.delete(msg.id);
        return;
      case 'wall-offer': {
        const pending = this.#wallOpens.get(msg.sessionId);
        this.#wallOpens.delete(msg.sessionId);
        if (pending) pending.resolve({ sdp: msg.sdp });
        // Nobody waits (timed out): the worker must not keep a session no page will answer.
        else this.#post({ type: 'wall-close', sessionId: msg.sessionId });
        return;
      }
      case 'wall-error': {
        const pending = this.#wallOpens.get(msg.sessionId);
        this.#wallOpens.delete(msg.sessionId);
        pending?.reject(new Error(msg.message));
        this.#log.warn({ sessionId: msg.sessionId }, `wall: ${msg.message}`);
        this.emit('wall-error', { sessionId: msg.sessionId, message: msg.message });
        return;
      }
      case 'wall-slots': {
        const wall = {
          slots: msg.slots,
          ...(msg.activeSpeaker !== undefined ? { activeSpeaker: msg.activeSpeaker } : {}),
        };
        this.emit('wall-slots', wall);
        return;
      }
      case 'error':
        this.#log.warn({ code: msg.code, pipeline: msg.pipeline, element: msg.element }, msg.message);
        if (msg.code === 'missing-element' || msg.code === 'template') {
          this.#opts.state?.raiseAlert('media.setup', 'error', msg.message);
        }
        this.emit('error', msg);
        return;
    }
  }

  #onStatus(msg: StatusMessage): void {
    this.#lastStatus = msg;
    this.#updateState((m) => {
      m.camera = msg.camera;
      m.microphone = msg.microphone;
    });
    const state = this.#opts.state;
    if (state) {
      if (msg.camera === 'ok') state.clearAlert('media.camera');
      else state.raiseAlert('media.camera', 'warning', 'Camera unavailable');
      if (msg.microphone === 'ok') state.clearAlert('media.microphone');
      else state.raiseAlert('media.microphone', 'warning', 'Microphone unavailable');
    }
    this.emit('status', msg);
  }

  #updateState(change: (media: NonNullable<ReturnType<StateStore['get']>>['media']) => void): void {
    this.#opts.state?.update((s) => change(s.media));
  }
}
