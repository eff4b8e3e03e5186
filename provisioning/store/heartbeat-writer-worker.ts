// The SQLite heartbeat flush, in a worker thread with its own better-sqlite3 connection to the same
// file (WAL: the service's connection keeps reading while this one writes). The service's thread
// hands over a batch (structured clone) and gets back each device's state and which heartbeats were
// written; the SQL is heartbeat-store.ts's. One batch at a time, in one transaction: a failure rolls
// the whole batch back and the service keeps it for its next flush. Started by
// createHeartbeatWriter (heartbeat-store.ts); never imported by the service's thread.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import {
  type HealthSampleWrite,
  type HeartbeatWrite,
  SQLITE_HEARTBEAT_SQL as SQL,
  sampleValues,
  stateOfRow,
} from './heartbeat-store.js';

export interface WorkerRequest {
  id: number;
  heartbeats: HeartbeatWrite[];
  samples: HealthSampleWrite[];
}
export type WorkerReply =
  | { id: number; states: [string, ReturnType<typeof stateOfRow>][]; written: string[] }
  | { id: number; error: string };

if (parentPort) {
  const port = parentPort;
  const db = new Database((workerData as { path: string }).path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  // Prepared on first use, inside the try below: a schema problem fails that batch, not the worker.
  let write:
    | ((
        heartbeats: HeartbeatWrite[],
        samples: HealthSampleWrite[],
      ) => { states: [string, ReturnType<typeof stateOfRow>][]; written: string[] })
    | undefined;
  const prepare = () => {
    const update = db.prepare(SQL.update);
    const read = db.prepare(SQL.state);
    const insert = db.prepare(SQL.sample);
    return db.transaction((heartbeats: HeartbeatWrite[], samples: HealthSampleWrite[]) => {
      const states: [string, ReturnType<typeof stateOfRow>][] = [];
      const written = new Set<string>();
      for (const h of heartbeats) {
        const r = update.get(
          h.signedAt,
          h.health,
          h.softwareVersion,
          h.reportedConfigVersion,
          h.meetingState,
          h.deviceId,
          h.signedAt,
        ) as Record<string, unknown> | undefined;
        if (r) {
          written.add(h.deviceId);
          states.push([h.deviceId, stateOfRow(r)]);
          continue;
        }
        const s = read.get(h.deviceId) as Record<string, unknown> | undefined;
        if (s) states.push([h.deviceId, stateOfRow(s)]);
      }
      for (const s of samples) if (written.has(s.deviceId)) insert.run(...sampleValues(s));
      return { states, written: [...written] };
    }).immediate;
  };
  port.on('message', (m: WorkerRequest | 'close') => {
    if (m === 'close') {
      db.close();
      port.close();
      return;
    }
    let reply: WorkerReply;
    try {
      write ??= prepare();
      // In device id order, as writeHeartbeats does (neighbouring rows, and one lock order).
      m.heartbeats.sort((a, b) => (a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0));
      reply = { id: m.id, ...write(m.heartbeats, m.samples) };
    } catch (err) {
      write = undefined; // re-prepared next time (the schema may have changed)
      reply = { id: m.id, error: err instanceof Error ? err.message : String(err) };
    }
    port.postMessage(reply);
  });
}
