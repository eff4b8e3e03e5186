// STUB (issue 13, owner H-perf): the heartbeat hot path's write-behind pipeline. See SPEC.
import type { ProvisioningStore } from '../store/store.js';

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

export interface HeartbeatPipeline {
  /** Forget what this instance caches about a device (after config, actions or revocation changed). */
  invalidate(deviceId: string): void;
  /** Called after each batch is committed (alert evaluation); errors are logged, never thrown. */
  onFlush(listener: (batch: FlushedHeartbeat[]) => Promise<void> | void): void;
  /** Writes everything buffered now. */
  flush(): Promise<void>;
  /** Flushes, then stops the timer. */
  close(): Promise<void>;
}

export interface HeartbeatPipelineOptions {
  /** How often buffered heartbeats are written (default 1000 ms). */
  flushIntervalMs?: number;
  /** A health sample (charts) is kept at most this often per device (default 60 s). */
  sampleIntervalMs?: number;
  now: () => Date;
  log?: { warn(obj: unknown, msg: string): void };
}

export function createHeartbeatPipeline(
  _store: ProvisioningStore,
  _options: HeartbeatPipelineOptions,
): HeartbeatPipeline {
  const listeners: ((batch: FlushedHeartbeat[]) => Promise<void> | void)[] = [];
  return {
    invalidate: () => {},
    onFlush: (l) => {
      listeners.push(l);
    },
    flush: async () => {},
    close: async () => {},
  };
}
