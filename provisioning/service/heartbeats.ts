// The heartbeat hot path's write-behind pipeline. A verified heartbeat is buffered (the latest per
// device) and answered from an in-memory per-device cache; every flushIntervalMs the buffer is
// written in one transaction (provisioning/store/heartbeat-store.ts), whose result refreshes the
// cache. So a steady heartbeat costs no database work in the request, and a thousand heartbeats
// cost one round trip. Correctness rules:
// - an uncached device is read from its row (its first heartbeat; after invalidate) and a device
//   that is not active is refused from the row, never from a guess;
// - revocation on this instance calls invalidate (the next heartbeat re-reads the row); revocation
//   on another instance is seen by the next flush (it returns the device's status);
// - a cache write that raced an invalidate is dropped (generation check);
// - close() flushes: nothing buffered is lost on shutdown.
import {
  type DeviceHeartbeatState,
  type HealthSampleWrite,
  createHeartbeatWriter,
  type HeartbeatWrite,
  purgeHealthSamples,
  readDeviceKeyAndState,
  type writeHeartbeats,
} from '../store/heartbeat-store.js';
import type { ProvisioningStore } from '../store/store.js';
import { httpError } from './app.js';

export type { DeviceHeartbeatState };

/** One heartbeat as written by a flush (alert rules evaluate these). */
export interface FlushedHeartbeat {
  deviceId: string;
  /** The heartbeat's signed time (ISO), which became devices.last_seen_at. */
  signedAt: string;
  health: Record<string, unknown>;
  softwareVersion: string;
  /** The config version the device reported it runs. */
  reportedConfigVersion: number;
}

/** A verified heartbeat body (schemas.ts HeartbeatRequest). */
export interface HeartbeatBody {
  softwareVersion: string;
  configVersion: number;
  health: Record<string, unknown>;
}

export interface HeartbeatPipeline {
  /** Forget what this instance caches about a device (after config, actions or revocation changed). */
  invalidate(deviceId: string): void;
  /** Called after each batch is committed (alert evaluation); errors are logged, never thrown. */
  onFlush(listener: (batch: FlushedHeartbeat[]) => Promise<void> | void): void;
  /** Writes everything buffered now. */
  flush(): Promise<void>;
  /** Stops the timer, then flushes (a failed last flush is logged, not thrown). */
  close(): Promise<void>;
  /**
   * Reads a device's key and state from its row, caching the state (deviceAuth's first request of a
   * device); undefined for an unknown device.
   */
  load(deviceId: string): Promise<{ publicKey: string; state: DeviceHeartbeatState } | undefined>;
  /**
   * Takes a verified heartbeat signed at `signedAtMs`: returns the device's state (from the cache, or
   * its row), and buffers the report when the device is active. Undefined: no such device.
   * Throws a 503 when the buffer is full (the database is not keeping up).
   */
  accept(
    deviceId: string,
    signedAtMs: number,
    body: HeartbeatBody,
  ): Promise<DeviceHeartbeatState | undefined>;
  /**
   * Deletes the health samples older than sampleRetentionMs (the service's purge timer calls it);
   * returns how many. A purge still running makes the next call a no-op (returns 0).
   */
  purgeSamples(): Promise<number>;
  /** Heartbeats waiting for the next flush (tests, metrics). */
  readonly buffered: number;
}

export interface HeartbeatPipelineOptions {
  /** How often buffered heartbeats are written (default 1000 ms). */
  flushIntervalMs?: number;
  /** A health sample (charts) is kept at most this often per device (default 5 min: 288 a day). */
  sampleIntervalMs?: number;
  /** Health samples older than this are purged (default 7 days, the longest chart). */
  sampleRetentionMs?: number;
  /** Devices with a heartbeat waiting; above this, heartbeats get 503 until a flush catches up. */
  maxBuffered?: number;
  /** Devices whose state is cached (least recently written are dropped first). */
  maxCached?: number;
  now: () => Date;
  log?: { warn(obj: unknown, msg: string): void };
}

interface Pending extends HeartbeatBody {
  deviceId: string;
  signedAtMs: number;
}

interface Cached extends DeviceHeartbeatState {
  /** Newest signed time this instance wrote (older reports are not buffered again). */
  lastSignedMs: number;
}

/** Statuses that are safe to cache: active (refreshed by each flush) and the two terminal ones. */
const CACHEABLE = new Set(['active', 'revoked', 'decommissioned']);

export function createHeartbeatPipeline(
  store: ProvisioningStore,
  options: HeartbeatPipelineOptions,
): HeartbeatPipeline {
  const flushIntervalMs = options.flushIntervalMs ?? 1000;
  const sampleIntervalMs = options.sampleIntervalMs ?? 300_000;
  const sampleRetentionMs = options.sampleRetentionMs ?? 7 * 86_400_000;
  const maxBuffered = options.maxBuffered ?? 250_000;
  const maxCached = options.maxCached ?? 250_000;
  const listeners: ((batch: FlushedHeartbeat[]) => Promise<void> | void)[] = [];
  const cache = new Map<string, Cached>();
  /** Signed time (ms) of the last health sample written per device. */
  const lastSample = new Map<string, number>();
  let buffer = new Map<string, Pending>();
  const writer = createHeartbeatWriter(store.db);
  let closed = false;
  let purging = false;

  // Invalidation generations: an operation that started before a device was invalidated must not
  // put what it read back into the cache. `barrier` covers the ids forgotten when the map is pruned.
  let generation = 0;
  let barrier = 0;
  const invalidatedAt = new Map<string, number>();
  const mayCache = (deviceId: string, startGeneration: number) =>
    startGeneration >= barrier && (invalidatedAt.get(deviceId) ?? 0) <= startGeneration;

  const remember = (deviceId: string, state: DeviceHeartbeatState, lastSignedMs: number) => {
    if (!CACHEABLE.has(state.status)) {
      cache.delete(deviceId); // pending: re-read until claimed (the claim does not invalidate)
      return;
    }
    const cached = cache.get(deviceId);
    if (
      cached &&
      cached.status === state.status &&
      cached.configVersion === state.configVersion &&
      cached.certNotAfter === state.certNotAfter &&
      cached.pendingActions === state.pendingActions
    ) {
      // The usual flush result (nothing changed): updated in place, no new object per heartbeat
      // (the garbage collector's work) and no Map re-insertion. The map's order is then the order
      // devices were first cached or last changed: what eviction drops first beyond maxCached (a
      // dropped device's next heartbeat reads its row).
      cached.lastSignedMs = lastSignedMs;
      return;
    }
    cache.delete(deviceId); // re-insert: the map stays in least-recently-changed order
    if (cache.size >= maxCached) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
    cache.set(deviceId, { ...state, lastSignedMs });
  };

  const load = async (deviceId: string) => {
    const start = generation;
    const row = await readDeviceKeyAndState(store.db, deviceId);
    if (!row) {
      cache.delete(deviceId);
      return undefined;
    }
    if (mayCache(deviceId, start)) remember(deviceId, row.state, cache.get(deviceId)?.lastSignedMs ?? 0);
    return row;
  };

  const sampleOf = (p: Pending, at: string): HealthSampleWrite | undefined => {
    const h = p.health as {
      loadPercent?: number;
      temperatureC?: number | null;
      memory?: { usedBytes: number; totalBytes: number };
      disk?: { usedBytes: number; totalBytes: number };
    };
    if (h.loadPercent === undefined && h.temperatureC == null && !h.memory && !h.disk) return undefined;
    const last = lastSample.get(p.deviceId);
    if (last !== undefined && p.signedAtMs - last < sampleIntervalMs) return undefined;
    return {
      deviceId: p.deviceId,
      at,
      loadPercent: h.loadPercent ?? null,
      temperatureC: h.temperatureC ?? null,
      memoryUsed: h.memory?.usedBytes ?? null,
      memoryTotal: h.memory?.totalBytes ?? null,
      diskUsed: h.disk?.usedBytes ?? null,
      diskTotal: h.disk?.totalBytes ?? null,
    };
  };

  const flushOnce = async (): Promise<void> => {
    if (buffer.size === 0) return;
    const batch = buffer;
    buffer = new Map();
    const start = generation;
    const writes: HeartbeatWrite[] = [];
    const samples: HealthSampleWrite[] = [];
    for (const p of batch.values()) {
      const signedAt = new Date(p.signedAtMs).toISOString();
      const meeting = p.health.meetingState;
      writes.push({
        deviceId: p.deviceId,
        signedAt,
        health: JSON.stringify(p.health),
        softwareVersion: p.softwareVersion,
        reportedConfigVersion: p.configVersion,
        meetingState: typeof meeting === 'string' ? meeting : null,
      });
      const s = sampleOf(p, signedAt);
      if (s) samples.push(s);
    }
    let result: Awaited<ReturnType<typeof writeHeartbeats>>;
    try {
      result = await writer.write(writes, samples);
    } catch (err) {
      // Keep the reports for the next attempt, unless a newer one arrived meanwhile.
      for (const p of batch.values()) {
        const newer = buffer.get(p.deviceId);
        if (!newer || newer.signedAtMs < p.signedAtMs) buffer.set(p.deviceId, p);
      }
      options.log?.warn(
        { err, heartbeats: batch.size },
        'heartbeat flush failed; retrying with the next flush',
      );
      throw err;
    }
    const flushed: FlushedHeartbeat[] = [];
    let i = 0;
    for (const p of batch.values()) {
      const signedAt = writes[i++]!.signedAt;
      const state = result.states.get(p.deviceId);
      if (!state) {
        cache.delete(p.deviceId); // the row is gone: the next heartbeat reads it and is refused
        continue;
      }
      const written = result.written.has(p.deviceId);
      if (mayCache(p.deviceId, start)) {
        const before = cache.get(p.deviceId)?.lastSignedMs ?? 0;
        remember(p.deviceId, state, written ? Math.max(before, p.signedAtMs) : before);
      }
      if (!written) continue;
      flushed.push({
        deviceId: p.deviceId,
        signedAt,
        health: p.health,
        softwareVersion: p.softwareVersion,
        reportedConfigVersion: p.configVersion,
      });
    }
    for (const s of samples) {
      if (!result.written.has(s.deviceId)) continue;
      if (lastSample.size >= maxCached && !lastSample.has(s.deviceId)) lastSample.clear();
      lastSample.set(s.deviceId, Date.parse(s.at));
    }
    if (flushed.length > 0) {
      for (const l of listeners) {
        try {
          await l(flushed);
        } catch (err) {
          options.log?.warn({ err }, 'a heartbeat flush listener failed');
        }
      }
    }
  };

  // Flushes never overlap: each waits for the one before (a slow flush lets the buffer coalesce).
  let chain: Promise<void> = Promise.resolve();
  let flushing = false;
  const flush = (): Promise<void> => {
    const run = chain.then(async () => {
      flushing = true;
      try {
        await flushOnce();
      } finally {
        flushing = false;
      }
    });
    chain = run.catch(() => {});
    return run;
  };
  const timer = setInterval(() => {
    if (!flushing && buffer.size > 0) flush().catch(() => {}); // logged in flushOnce
  }, flushIntervalMs);
  timer.unref();

  return {
    invalidate(deviceId) {
      cache.delete(deviceId);
      generation++;
      invalidatedAt.set(deviceId, generation);
      if (invalidatedAt.size > 10_000) {
        invalidatedAt.clear();
        barrier = generation;
      }
    },
    onFlush(l) {
      listeners.push(l);
    },
    flush,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      // Never throws: the rest of the shutdown (alert timers, the store) must still happen.
      await flush().catch(() => {}); // logged in flushOnce, with how many heartbeats were lost
      await writer.close().catch((err) => options.log?.warn({ err }, 'the heartbeat writer did not close'));
    },
    load,
    async accept(deviceId, signedAtMs, body) {
      let state: Cached | DeviceHeartbeatState | undefined = cache.get(deviceId);
      if (!state) {
        state = (await load(deviceId))?.state;
        if (!state) return undefined;
      }
      if (state.status !== 'active') return state;
      if (closed) throw Object.assign(httpError(503, 'the service is shutting down: retry'), retryAfter(1));
      // A replayed or late report is answered but not written (the store would refuse it anyway).
      const lastSigned = 'lastSignedMs' in state ? state.lastSignedMs : 0;
      const waiting = buffer.get(deviceId);
      if (signedAtMs <= lastSigned || (waiting && signedAtMs <= waiting.signedAtMs)) return state;
      if (!waiting && buffer.size >= maxBuffered) {
        throw Object.assign(
          httpError(503, 'heartbeats are arriving faster than they are stored: retry later'),
          retryAfter(Math.max(1, Math.ceil(flushIntervalMs / 1000))),
        );
      }
      // Explicit fields, not a spread: one object shape per buffered report (the schema allows no others).
      buffer.set(deviceId, {
        softwareVersion: body.softwareVersion,
        configVersion: body.configVersion,
        health: body.health,
        deviceId,
        signedAtMs,
      });
      return state;
    },
    async purgeSamples() {
      if (purging) return 0;
      purging = true;
      try {
        const before = new Date(options.now().getTime() - sampleRetentionMs).toISOString();
        return await purgeHealthSamples(store.db, before);
      } finally {
        purging = false;
      }
    },
    get buffered() {
      return buffer.size;
    },
  };
}

const retryAfter = (seconds: number) => ({ headers: { 'retry-after': String(seconds) } });
