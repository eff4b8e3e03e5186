// One ordered list of SQL migrations that runs unchanged on SQLite and PostgreSQL. Each is applied
// once, inside a transaction, and recorded in schema_migrations. Never edit an applied migration:
// append a new one.
import type { Db } from './db.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
  /** PostgreSQL's SQL where the dialects must differ (absent: `sql` on both). */
  postgresSql?: string;
}

/**
 * devices.seen_bucket (migration 5) from an ISO last_seen_at: the time cut down to its 5-minute
 * bucket, e.g. '2026-12-04T22:35' for 22:37:12. Text that sorts like the times it names. SQL
 * (both dialects) over the column expression `t`; seenBucketOf is the same in TypeScript.
 */
const seenBucketSql = (t: string) =>
  `substr(${t}, 1, 14) || CASE WHEN CAST(substr(${t}, 15, 2) AS INTEGER) < 10 THEN '0' ELSE '' END || CAST(CAST(substr(${t}, 15, 2) AS INTEGER) / 5 * 5 AS TEXT)`;

/** How long one seen_bucket lasts. */
export const SEEN_BUCKET_MS = 5 * 60_000;

/** The seen_bucket of an ISO time (the SQL of migration 5, in TypeScript). */
export function seenBucketOf(iso: string): string {
  const minute = Math.floor(Number(iso.slice(14, 16)) / 5) * 5;
  return `${iso.slice(0, 14)}${String(minute).padStart(2, '0')}`;
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'devices, enrollments, certificates, tokens, audit, nonces',
    sql: `
CREATE TABLE devices (
  id TEXT PRIMARY KEY,
  status TEXT NOT NULL,
  public_key TEXT NOT NULL,
  csr_pem TEXT NOT NULL,
  inventory TEXT NOT NULL,
  software_version TEXT NOT NULL,
  room_name TEXT,
  site TEXT,
  policy TEXT,
  config TEXT NOT NULL,
  config_version INTEGER NOT NULL,
  cert_serial TEXT,
  cert_not_after TEXT,
  created_at TEXT NOT NULL,
  claimed_at TEXT,
  claimed_by TEXT,
  revoked_at TEXT,
  last_seen_at TEXT,
  health TEXT
);
CREATE INDEX devices_status ON devices (status);
CREATE INDEX devices_site ON devices (site);
CREATE TABLE enrollments (
  id TEXT PRIMARY KEY,
  device_id TEXT NOT NULL REFERENCES devices (id),
  code_hash TEXT NOT NULL UNIQUE,
  expires_at TEXT NOT NULL,
  used_at TEXT,
  created_at TEXT NOT NULL
);
CREATE INDEX enrollments_device ON enrollments (device_id);
CREATE TABLE certificates (
  serial TEXT PRIMARY KEY,
  device_id TEXT NOT NULL REFERENCES devices (id),
  cert_pem TEXT NOT NULL,
  not_before TEXT NOT NULL,
  not_after TEXT NOT NULL,
  issued_at TEXT NOT NULL,
  revoked_at TEXT
);
CREATE INDEX certificates_device ON certificates (device_id);
CREATE INDEX certificates_revoked ON certificates (revoked_at);
CREATE TABLE admin_tokens (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  token_hash TEXT NOT NULL UNIQUE,
  scope TEXT NOT NULL,
  created_at TEXT NOT NULL,
  revoked_at TEXT
);
CREATE TABLE audit_log (
  id TEXT PRIMARY KEY,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  action TEXT NOT NULL,
  device_id TEXT,
  details TEXT NOT NULL
);
CREATE INDEX audit_at ON audit_log (at);
CREATE TABLE device_nonces (
  device_id TEXT NOT NULL,
  nonce TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  PRIMARY KEY (device_id, nonce)
);
CREATE INDEX device_nonces_expiry ON device_nonces (expires_at);
`,
  },
  {
    version: 2,
    name: 'token expiry, unique token names, token id in audit rows, cached signed CRL',
    // Duplicate token names (allowed before) are renamed "<name>-<id>" so the unique index applies.
    // Tokens from before this migration have no expires_at: the store treats them as expiring
    // created_at + MAX_TOKEN_DAYS (see ProvisioningStore.findToken).
    sql: `
ALTER TABLE admin_tokens ADD COLUMN expires_at TEXT;
ALTER TABLE admin_tokens ADD COLUMN created_by TEXT;
UPDATE admin_tokens SET name = name || '-' || id
  WHERE id NOT IN (SELECT MIN(id) FROM admin_tokens GROUP BY name);
CREATE UNIQUE INDEX admin_tokens_name ON admin_tokens (name);
ALTER TABLE audit_log ADD COLUMN token_id TEXT;
CREATE INDEX audit_token ON audit_log (token_id);
CREATE INDEX enrollments_expiry ON enrollments (expires_at);
CREATE TABLE crl_documents (
  crl_number BIGINT PRIMARY KEY,
  this_update TEXT NOT NULL,
  next_update TEXT NOT NULL,
  der TEXT NOT NULL,
  set_hash TEXT NOT NULL
);
`,
  },
  {
    version: 3,
    name: 'used OIDC ID tokens (person certificates: each token is accepted once)',
    sql: `
CREATE TABLE used_id_tokens (
  token_hash TEXT PRIMARY KEY,
  expires_at TEXT NOT NULL,
  used_at TEXT NOT NULL
);
CREATE INDEX used_id_tokens_expiry ON used_id_tokens (expires_at);
`,
  },
  {
    version: 4,
    name: 'IT console: sessions, fleet status columns, health history, site profiles, remote actions, alerts',
    // devices.last_seen_at now holds the heartbeat's SIGNED time (never moved backwards), so a
    // replayed heartbeat cannot make a device look more recent than when it really signed.
    // devices.config stays the effective configuration the device receives; config_override is the
    // per-device part IT set, merged over the site's profile (site_profiles).
    sql: `
CREATE TABLE console_sessions (
  id_hash TEXT PRIMARY KEY,
  subject TEXT NOT NULL,
  email TEXT NOT NULL,
  name TEXT NOT NULL,
  role TEXT NOT NULL,
  csrf TEXT NOT NULL,
  created_at TEXT NOT NULL,
  expires_at TEXT NOT NULL,
  revoked_at TEXT
);
CREATE INDEX console_sessions_expiry ON console_sessions (expires_at);
CREATE TABLE console_logins (
  state_hash TEXT PRIMARY KEY,
  code_verifier TEXT NOT NULL,
  nonce TEXT NOT NULL,
  return_to TEXT NOT NULL,
  expires_at TEXT NOT NULL
);
CREATE INDEX console_logins_expiry ON console_logins (expires_at);
ALTER TABLE devices ADD COLUMN reported_config_version INTEGER;
ALTER TABLE devices ADD COLUMN meeting_state TEXT;
ALTER TABLE devices ADD COLUMN config_override TEXT;
ALTER TABLE devices ADD COLUMN peripherals_baseline TEXT;
ALTER TABLE devices ADD COLUMN pending_actions INTEGER NOT NULL DEFAULT 0;
CREATE INDEX devices_last_seen ON devices (last_seen_at);
CREATE INDEX devices_room ON devices (room_name, id);
CREATE INDEX devices_site_room ON devices (site, room_name, id);
CREATE INDEX devices_cert_not_after ON devices (cert_not_after);
CREATE TABLE health_samples (
  device_id TEXT NOT NULL,
  at TEXT NOT NULL,
  load_percent REAL,
  temperature_c REAL,
  memory_used BIGINT,
  memory_total BIGINT,
  disk_used BIGINT,
  disk_total BIGINT,
  PRIMARY KEY (device_id, at)
);
CREATE INDEX health_samples_at ON health_samples (at);
CREATE TABLE site_profiles (
  site TEXT PRIMARY KEY,
  config TEXT NOT NULL,
  version INTEGER NOT NULL,
  updated_at TEXT NOT NULL,
  updated_by TEXT NOT NULL
);
CREATE TABLE device_actions (
  id TEXT PRIMARY KEY,
  device_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  status TEXT NOT NULL,
  created_at TEXT NOT NULL,
  created_by TEXT NOT NULL,
  sent_at TEXT,
  finished_at TEXT,
  result TEXT
);
CREATE INDEX device_actions_device ON device_actions (device_id, status);
CREATE TABLE log_bundles (
  action_id TEXT PRIMARY KEY,
  device_id TEXT NOT NULL,
  created_at TEXT NOT NULL,
  size_bytes INTEGER NOT NULL,
  sha256 TEXT NOT NULL,
  content TEXT NOT NULL
);
CREATE TABLE alert_rules (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  params TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE incidents (
  id TEXT PRIMARY KEY,
  rule_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  status TEXT NOT NULL,
  summary TEXT NOT NULL,
  details TEXT NOT NULL,
  opened_at TEXT NOT NULL,
  acknowledged_at TEXT,
  acknowledged_by TEXT,
  resolved_at TEXT,
  updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX incidents_one_open ON incidents (rule_id, device_id) WHERE status <> 'resolved';
CREATE INDEX incidents_status ON incidents (status, opened_at);
CREATE INDEX incidents_updated ON incidents (updated_at, id);
CREATE INDEX incidents_device ON incidents (device_id, status);
CREATE TABLE alert_targets (
  id TEXT PRIMARY KEY,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  url TEXT,
  email TEXT,
  secret TEXT,
  enabled INTEGER NOT NULL,
  created_at TEXT NOT NULL
);
CREATE TABLE alert_deliveries (
  id TEXT PRIMARY KEY,
  target_id TEXT NOT NULL,
  incident_id TEXT NOT NULL,
  event TEXT NOT NULL,
  payload TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL,
  next_attempt_at TEXT NOT NULL,
  last_error TEXT,
  created_at TEXT NOT NULL,
  delivered_at TEXT
);
CREATE INDEX alert_deliveries_due ON alert_deliveries (status, next_attempt_at);
CREATE TABLE service_secrets (
  name TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  created_at TEXT NOT NULL
);
`,
  },
  {
    version: 5,
    name: 'heartbeat writes touch no index: devices.seen_bucket (5-minute) replaces the last_seen_at index',
    // Every heartbeat flush rewrites last_seen_at. Indexed, that moved an index entry per heartbeat
    // (SQLite) and, on PostgreSQL, made every heartbeat UPDATE a non-HOT one: a new entry in each of
    // the devices indexes. The offline rule (the index's only user) now walks devices_seen_bucket, a
    // column that changes once per 5 minutes per device: 1 heartbeat in 10 touches an index.
    // SQLite: a plain column kept by triggers, which set it only when the bucket changes (an UPDATE
    // that assigns an indexed column always rewrites its index entry). PostgreSQL: a stored
    // generated column (HOT compares the stored values, so an unchanged bucket keeps the UPDATE
    // HOT), and free space left in the table's pages for HOT updates (fillfactor).
    sql: `
ALTER TABLE devices ADD COLUMN seen_bucket TEXT;
UPDATE devices SET seen_bucket = ${seenBucketSql('last_seen_at')} WHERE last_seen_at IS NOT NULL;
DROP INDEX devices_last_seen;
CREATE INDEX devices_seen_bucket ON devices (seen_bucket);
CREATE TRIGGER devices_seen_bucket_update AFTER UPDATE OF last_seen_at ON devices
  WHEN NEW.seen_bucket IS NOT (${seenBucketSql('NEW.last_seen_at')})
BEGIN
  UPDATE devices SET seen_bucket = ${seenBucketSql('NEW.last_seen_at')} WHERE id = NEW.id;
END;
CREATE TRIGGER devices_seen_bucket_insert AFTER INSERT ON devices
  WHEN NEW.last_seen_at IS NOT NULL
BEGIN
  UPDATE devices SET seen_bucket = ${seenBucketSql('NEW.last_seen_at')} WHERE id = NEW.id;
END;
`,
    postgresSql: `
ALTER TABLE devices ADD COLUMN seen_bucket TEXT GENERATED ALWAYS AS (${seenBucketSql('last_seen_at')}) STORED;
DROP INDEX devices_last_seen;
CREATE INDEX devices_seen_bucket ON devices (seen_bucket);
ALTER TABLE devices SET (fillfactor = 70);
`,
  },
  {
    version: 6,
    name: 'software updates: the update state each device reports (newest signed report wins)',
    // One row per device (provisioning/store/update-store.ts). `at` is the device's own time of the
    // report (ISO UTC): a report with an older or equal `at` never replaces the row. The channel a
    // device is assigned is not here: it is device configuration (key `update`), see fleet-store.ts.
    sql: `
CREATE TABLE device_update_state (
  device_id TEXT PRIMARY KEY,
  at TEXT NOT NULL,
  state TEXT NOT NULL,
  current_version TEXT NOT NULL,
  target_version TEXT,
  channel TEXT NOT NULL,
  progress DOUBLE PRECISION,
  error TEXT,
  received_at TEXT NOT NULL,
  changed_at TEXT NOT NULL
);
CREATE INDEX device_update_state_state ON device_update_state (state, at);
`,
  },
];

/** Applies pending migrations; returns the versions applied now. Safe against concurrent starts. */
export async function migrate(db: Db, list: Migration[] = migrations): Promise<number[]> {
  await db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)',
  );
  const applied: number[] = [];
  for (const m of [...list].sort((a, b) => a.version - b.version)) {
    await db.transaction(async (tx) => {
      // Two service instances starting together on PostgreSQL: the second waits here, then skips.
      if (tx.kind === 'postgres') await tx.exec('SELECT pg_advisory_xact_lock(727001)');
      const done = await tx.get('SELECT version FROM schema_migrations WHERE version = ?', [m.version]);
      if (done) return;
      await tx.exec(tx.kind === 'postgres' ? (m.postgresSql ?? m.sql) : m.sql);
      await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [
        m.version,
        m.name,
        new Date().toISOString(),
      ]);
      applied.push(m.version);
    });
  }
  return applied;
}
