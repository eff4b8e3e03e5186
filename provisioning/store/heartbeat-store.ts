// SQL of the heartbeat hot path (provisioning/service/heartbeats.ts): reading what a heartbeat
// reply needs about a device, and writing a batch of buffered heartbeats in one transaction.
// Plain functions over the portable Db (store.db). A heartbeat is a state report dated by its
// SIGNED time: a row is written only when that time is newer than devices.last_seen_at, so a
// replayed or late report never moves a device forward in time (nor overwrites newer health).
import { Worker } from 'node:worker_threads';
import type { Db, Row, SqlValue } from './db.js';
import { SqliteDb } from './sqlite.js';

/** What a heartbeat reply needs about a device (cached per device by the pipeline). */
export interface DeviceHeartbeatState {
  status: string;
  configVersion: number;
  certNotAfter: string | null;
  /** devices.pending_actions: queued + sent-unfinished remote actions (H-fleet keeps it). */
  pendingActions: number;
}

/** One buffered heartbeat, as written. */
export interface HeartbeatWrite {
  deviceId: string;
  /** ISO time the device signed; becomes devices.last_seen_at when newer. */
  signedAt: string;
  /** JSON text of the health object. */
  health: string;
  softwareVersion: string;
  reportedConfigVersion: number;
  meetingState: string | null;
}

/** A health_samples row (charts); written only with a heartbeat that was itself written. */
export interface HealthSampleWrite {
  deviceId: string;
  at: string;
  loadPercent: number | null;
  temperatureC: number | null;
  memoryUsed: number | null;
  memoryTotal: number | null;
  diskUsed: number | null;
  diskTotal: number | null;
}

export interface HeartbeatWriteResult {
  /** State of every device of the batch that still exists (active or not). */
  states: Map<string, DeviceHeartbeatState>;
  /** Devices whose heartbeat was written (active, and the signed time was newer). */
  written: Set<string>;
}

const STATE_COLUMNS = 'status, config_version, cert_not_after, pending_actions';

/** A state row (STATE_COLUMNS) as a DeviceHeartbeatState (also used by the writer worker). */
export function stateOfRow(r: Row): DeviceHeartbeatState {
  return {
    status: String(r.status),
    configVersion: Number(r.config_version),
    certNotAfter:
      r.cert_not_after === null || r.cert_not_after === undefined ? null : String(r.cert_not_after),
    pendingActions: Number(r.pending_actions ?? 0),
  };
}

/** The device's key and heartbeat state in one read (the first request of an uncached device). */
export async function readDeviceKeyAndState(
  db: Db,
  deviceId: string,
): Promise<{ publicKey: string; state: DeviceHeartbeatState } | undefined> {
  const r = await db.get(`SELECT public_key, ${STATE_COLUMNS} FROM devices WHERE id = ?`, [deviceId]);
  return r ? { publicKey: String(r.public_key), state: stateOfRow(r) } : undefined;
}

/** Whether a renew-certificate action was sent to the device and has not finished yet. */
export async function hasSentRenewal(db: Db, deviceId: string): Promise<boolean> {
  const r = await db.get(
    "SELECT 1 AS x FROM device_actions WHERE device_id = ? AND kind = 'renew-certificate' AND status = 'sent' LIMIT 1",
    [deviceId],
  );
  return r !== undefined;
}

/** PostgreSQL: rows per statement (each statement carries its rows as one JSON parameter). */
const PG_CHUNK = 2000;
/** SQLite: rows written between two turns of the event loop (a few milliseconds of work at most). */
const SQLITE_SLICE = 25;

/**
 * Writes a batch (at most one heartbeat per device) atomically and returns the devices' current
 * state. SQLite: prepared statements in one transaction (in-process, microseconds each).
 * PostgreSQL: one statement per chunk — a multi-row UPDATE … FROM the rows, the health samples
 * INSERT and the state read, as data-modifying CTEs (one round trip).
 */
export async function writeHeartbeats(
  db: Db,
  heartbeats: HeartbeatWrite[],
  samples: HealthSampleWrite[],
): Promise<HeartbeatWriteResult> {
  const result: HeartbeatWriteResult = { states: new Map(), written: new Set() };
  if (heartbeats.length === 0) return result;
  // Same lock order on every instance (two instances flushing the same devices cannot deadlock).
  const sorted = [...heartbeats].sort((a, b) =>
    a.deviceId < b.deviceId ? -1 : a.deviceId > b.deviceId ? 1 : 0,
  );
  if (db.kind === 'postgres') {
    await db.transaction(async (tx) => {
      // This transaction only: its commit does not wait for the WAL flush. A database crash may
      // lose the last ≈ 0.6 s (3 × wal_writer_delay) of heartbeats; devices resend every 30 s, and
      // last_seen_at still only moves forward. Everything else keeps synchronous commits.
      await tx.run('SET LOCAL synchronous_commit = off');
      for (let i = 0; i < sorted.length; i += PG_CHUNK) {
        const chunk = sorted.slice(i, i + PG_CHUNK);
        const ids = new Set(chunk.map((h) => h.deviceId));
        await writePostgresChunk(
          tx,
          chunk,
          samples.filter((s) => ids.has(s.deviceId)),
          result,
        );
      }
    });
    return result;
  }
  await db.transaction(async (tx) => {
    let n = 0;
    for (const h of sorted) {
      // better-sqlite3 is synchronous: let the event loop answer requests between slices, so a
      // large batch does not stall every heartbeat in flight (the transaction stays open).
      if (++n % SQLITE_SLICE === 0) await new Promise((resolve) => setImmediate(resolve));
      const r = await tx.get(SQLITE_HEARTBEAT_SQL.update, [
        h.signedAt,
        h.health,
        h.softwareVersion,
        h.reportedConfigVersion,
        h.meetingState,
        h.deviceId,
        h.signedAt,
      ]);
      if (r) {
        result.written.add(h.deviceId);
        result.states.set(h.deviceId, stateOfRow(r));
        continue;
      }
      // Not written: not active (refuse it from now on), gone, or an older report (keep the state).
      const s = await tx.get(SQLITE_HEARTBEAT_SQL.state, [h.deviceId]);
      if (s) result.states.set(h.deviceId, stateOfRow(s));
    }
    for (const s of samples) {
      if (!result.written.has(s.deviceId)) continue;
      await tx.run(SQLITE_HEARTBEAT_SQL.sample, sampleValues(s));
    }
  });
  return result;
}

/** Writes batches of heartbeats (writeHeartbeats), possibly off the service's thread. */
export interface HeartbeatWriter {
  write(heartbeats: HeartbeatWrite[], samples: HealthSampleWrite[]): Promise<HeartbeatWriteResult>;
  /** Ends the worker, if any, once the writes in progress are done. */
  close(): Promise<void>;
}

/**
 * The writer for a store. SQLite on a file: a worker thread with its own connection
 * (heartbeat-writer-worker.ts) runs the flush, so the page and WAL work of a batch (≈ 50 µs per
 * heartbeat at 100 000 devices) leaves the event loop; meanwhile the service's connection holds its
 * queue (SqliteDb.exclusive), as during an in-process flush, so it never waits on the worker's write
 * lock. PostgreSQL, in-memory SQLite, or SEALROOM_HEARTBEAT_WORKER=0: writeHeartbeats in process.
 */
export function createHeartbeatWriter(db: Db): HeartbeatWriter {
  if (!(db instanceof SqliteDb) || db.path === ':memory:' || process.env.SEALROOM_HEARTBEAT_WORKER === '0')
    return { write: (h, s) => writeHeartbeats(db, h, s), close: async () => {} };
  const sqlite = db;
  type Waiter = { resolve: (r: HeartbeatWriteResult) => void; reject: (e: Error) => void };
  let worker: { w: Worker; waiting: Map<number, Waiter> } | undefined;
  let nextId = 0;
  const start = () => {
    const url = new URL(
      import.meta.url.endsWith('.ts') ? './heartbeat-writer-worker.ts' : './heartbeat-writer-worker.js',
      import.meta.url,
    );
    // From the sources (tsx, vitest) the worker registers the TypeScript loader first.
    const w = url.pathname.endsWith('.ts')
      ? new Worker(
          `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(url.href)}); });`,
          { eval: true, workerData: { path: sqlite.path } },
        )
      : new Worker(url, { workerData: { path: sqlite.path } });
    const self = { w, waiting: new Map<number, Waiter>() };
    const failAll = (err: Error) => {
      if (worker === self) worker = undefined;
      for (const p of self.waiting.values()) p.reject(err);
      self.waiting.clear();
    };
    w.on(
      'message',
      (m: { id: number; error?: string; states?: [string, DeviceHeartbeatState][]; written?: string[] }) => {
        const p = self.waiting.get(m.id);
        if (!p) return;
        self.waiting.delete(m.id);
        if (self.waiting.size === 0) w.unref();
        if (m.error !== undefined) p.reject(new Error(`heartbeat writer: ${m.error}`));
        else p.resolve({ states: new Map(m.states), written: new Set(m.written) });
      },
    );
    w.on('error', failAll);
    w.on('exit', () => failAll(new Error('the heartbeat writer worker exited')));
    w.unref();
    return self;
  };
  return {
    write(heartbeats, samples) {
      if (heartbeats.length === 0) return Promise.resolve({ states: new Map(), written: new Set() });
      return sqlite.exclusive(
        () =>
          new Promise<HeartbeatWriteResult>((resolve, reject) => {
            worker ??= start();
            const id = ++nextId;
            worker.waiting.set(id, { resolve, reject });
            worker.w.ref();
            // The worker sorts the batch by device id (off this thread, like the writes).
            worker.w.postMessage({ id, heartbeats, samples });
          }),
      );
    },
    async close() {
      await sqlite.exclusive(async () => {}); // writes in progress hold the queue: wait for them
      const current = worker;
      worker = undefined;
      if (!current) return;
      const exited = new Promise((resolve) => current.w.once('exit', resolve));
      current.w.ref(); // an unref'd worker would let the process exit before it closed
      current.w.postMessage('close');
      await exited;
    },
  };
}

/** The SQLite flush's statements (writeHeartbeats, and the writer worker). */
export const SQLITE_HEARTBEAT_SQL = {
  update: `UPDATE devices SET last_seen_at = ?, health = ?, software_version = ?, reported_config_version = ?,
      meeting_state = ?
    WHERE id = ? AND status = 'active' AND (last_seen_at IS NULL OR last_seen_at < ?)
    RETURNING ${STATE_COLUMNS}`,
  state: `SELECT ${STATE_COLUMNS} FROM devices WHERE id = ?`,
  sample: `INSERT INTO health_samples (device_id, at, load_percent, temperature_c, memory_used, memory_total, disk_used, disk_total)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
};

export function sampleValues(s: HealthSampleWrite): SqlValue[] {
  return [
    s.deviceId,
    s.at,
    s.loadPercent,
    s.temperatureC,
    s.memoryUsed,
    s.memoryTotal,
    s.diskUsed,
    s.diskTotal,
  ];
}

// The rows travel as one JSON parameter (json_to_recordset): the SQL text is constant (one plan,
// no parameter limit). The final SELECT sees the rows as they were before this statement's UPDATE;
// the columns it returns are not ones the UPDATE changes. COLLATE "C": ISO times compare bytewise.
const PG_WRITE = `
WITH v AS (
  SELECT * FROM json_to_recordset(?::json)
    AS x(id text, at text, health text, sv text, rcv integer, ms text)
), u AS (
  UPDATE devices d SET last_seen_at = v.at, health = v.health, software_version = v.sv,
    reported_config_version = v.rcv, meeting_state = v.ms
  FROM v
  WHERE d.id = v.id AND d.status = 'active' AND (d.last_seen_at IS NULL OR d.last_seen_at COLLATE "C" < v.at)
  RETURNING d.id
), s AS (
  INSERT INTO health_samples (device_id, at, load_percent, temperature_c, memory_used, memory_total, disk_used, disk_total)
  SELECT x.id, x.at, x.lp, x.tc, x.mu, x.mt, x.du, x.dt
  FROM json_to_recordset(?::json)
    AS x(id text, at text, lp double precision, tc double precision, mu bigint, mt bigint, du bigint, dt bigint)
  WHERE x.id IN (SELECT id FROM u)
  ON CONFLICT DO NOTHING
)
SELECT d.id, d.status, d.config_version, d.cert_not_after, d.pending_actions,
  (d.id IN (SELECT id FROM u)) AS written
FROM devices d JOIN v ON d.id = v.id`;

async function writePostgresChunk(
  db: Db,
  chunk: HeartbeatWrite[],
  samples: HealthSampleWrite[],
  result: HeartbeatWriteResult,
): Promise<void> {
  const rows = JSON.stringify(
    chunk.map((h) => ({
      id: h.deviceId,
      at: h.signedAt,
      health: h.health,
      sv: h.softwareVersion,
      rcv: h.reportedConfigVersion,
      ms: h.meetingState,
    })),
  );
  const sampleRows = JSON.stringify(
    samples.map((s) => ({
      id: s.deviceId,
      at: s.at,
      lp: s.loadPercent,
      tc: s.temperatureC,
      mu: s.memoryUsed,
      mt: s.memoryTotal,
      du: s.diskUsed,
      dt: s.diskTotal,
    })),
  );
  for (const r of await db.all(PG_WRITE, [rows, sampleRows])) {
    const id = String(r.id);
    result.states.set(id, stateOfRow(r));
    if (r.written === true) result.written.add(id);
  }
}

/** Rows deleted per statement when health samples are purged (a few ms of work each). */
const PURGE_BATCH = 5000;

/**
 * Deletes the health samples older than `beforeIso` (retention), in bounded batches: each DELETE
 * walks the health_samples_at index for at most PURGE_BATCH rows, and the event loop runs between
 * two batches, so a large backlog (the first purge after an upgrade) never blocks it for long.
 * Returns how many rows were deleted.
 */
export async function purgeHealthSamples(
  db: Db,
  beforeIso: string,
  batch: number = PURGE_BATCH,
): Promise<number> {
  let total = 0;
  for (;;) {
    const n = await db.run(
      `DELETE FROM health_samples WHERE (device_id, at) IN (
         SELECT device_id, at FROM health_samples WHERE at < ? ORDER BY at LIMIT ?)`,
      [beforeIso, batch],
    );
    total += n;
    if (n < batch) return total;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * A service secret (service_secrets row), created on first use: INSERT … ON CONFLICT DO NOTHING, then
 * read back, so instances starting together on one database agree on the winner's value.
 */
export async function ensureServiceSecret(
  db: Db,
  name: string,
  fresh: Buffer,
  nowIso: string,
): Promise<Buffer> {
  await db.run(
    'INSERT INTO service_secrets (name, value, created_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING',
    [name, fresh.toString('base64'), nowIso],
  );
  const r = await db.get<{ value: string }>('SELECT value FROM service_secrets WHERE name = ?', [name]);
  if (!r) throw new Error(`service secret ${name} could not be read back`);
  const value = Buffer.from(String(r.value), 'base64');
  if (value.length < 32) throw new Error(`service secret ${name} is shorter than 32 bytes`);
  return value;
}
