// Alert rules, incidents, targets and the delivery outbox (schema: migration 4). Plain functions
// over the portable Db, same SQL on SQLite and PostgreSQL. Every incident change writes its outbox
// rows (one per enabled target) in the same transaction, so an event is never lost nor sent for a
// change that rolled back. Several service instances may run: "at most one unresolved incident per
// (rule, device)" is the partial unique index incidents_one_open, and conditional UPDATEs decide
// which instance made a change (and so writes its events).
import { randomBytes } from 'node:crypto';
import { DEFAULT_PARAMS, type RuleKind, RULE_KINDS } from '../alerts/rules.js';
import type { IncidentEvent, IncidentStatus } from '../alerts/incidents.js';
import type { Db, Row, SqlValue } from './db.js';
import { orderedId } from './store.js';
import { seenBucketOf } from './migrations.js';

export interface AlertRule {
  id: RuleKind;
  kind: RuleKind;
  params: Record<string, unknown>;
  enabled: boolean;
  updatedAt: string;
}

export interface Incident {
  id: string;
  rule: RuleKind;
  deviceId: string;
  roomName: string | null;
  site: string | null;
  status: IncidentStatus;
  summary: string;
  details: Record<string, unknown>;
  openedAt: string;
  acknowledgedAt: string | null;
  acknowledgedBy: string | null;
  resolvedAt: string | null;
  updatedAt: string;
}

export type TargetKind = 'webhook' | 'email';

export interface AlertTarget {
  id: string;
  kind: TargetKind;
  name: string;
  url: string | null;
  email: string | null;
  enabled: boolean;
  createdAt: string;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'dead';

export interface Delivery {
  id: string;
  targetId: string;
  incidentId: string;
  event: IncidentEvent;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: string;
  lastError: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

/** Who made a change (audit): the token name or console:<email>, and the token id if any. */
export interface Actor {
  actor: string;
  tokenId: string | null;
}

const str = (v: unknown) => (v === null || v === undefined ? null : String(v));
const obj = (v: unknown): Record<string, unknown> => {
  try {
    const p = JSON.parse(String(v));
    return typeof p === 'object' && p !== null && !Array.isArray(p) ? p : {};
  } catch {
    return {};
  }
};

async function audit(
  tx: Db,
  now: string,
  who: Actor,
  action: string,
  deviceId: string | null,
  details: Record<string, unknown>,
): Promise<void> {
  await tx.run(
    'INSERT INTO audit_log (id, at, actor, action, device_id, details, token_id) VALUES (?, ?, ?, ?, ?, ?, ?)',
    [orderedId(new Date(now)), now, who.actor, action, deviceId, JSON.stringify(details), who.tokenId],
  );
}

// ── rules ─────────────────────────────────────────────────────────────────────────────────────

const seeded = new WeakMap<Db, Promise<void>>();
const rulesVersions = new WeakMap<Db, number>();

/** Inserts the default rules that are not there yet (first start; concurrent instances are fine). */
export function ensureDefaultRules(db: Db, nowIso: string): Promise<void> {
  let p = seeded.get(db);
  if (!p) {
    p = (async () => {
      for (const kind of RULE_KINDS) {
        await db.run(
          'INSERT INTO alert_rules (id, kind, params, enabled, updated_at) VALUES (?, ?, ?, 1, ?) ON CONFLICT DO NOTHING',
          [kind, kind, JSON.stringify(DEFAULT_PARAMS[kind]), nowIso],
        );
      }
    })();
    // A failed seed (store closing) is retried by the next caller.
    p.catch(() => seeded.delete(db));
    seeded.set(db, p);
  }
  return p;
}

/** Bumped by every rule change made through this process (the engine re-reads its rules then). */
export function rulesVersion(db: Db): number {
  return rulesVersions.get(db) ?? 0;
}

function toRule(r: Row): AlertRule {
  return {
    id: String(r.id) as RuleKind,
    kind: String(r.kind) as RuleKind,
    params: obj(r.params),
    enabled: Number(r.enabled) === 1,
    updatedAt: String(r.updated_at),
  };
}

export async function listRules(db: Db): Promise<AlertRule[]> {
  return (await db.all('SELECT * FROM alert_rules ORDER BY id')).map(toRule);
}

/**
 * Changes a rule (audit `alert.rule`). Disabling it resolves its unresolved incidents (their events
 * go out as usual): nobody is watching that condition any more.
 */
export async function updateRule(
  db: Db,
  id: RuleKind,
  change: { enabled?: boolean; params?: Record<string, unknown> },
  nowIso: string,
  who: Actor,
): Promise<AlertRule | undefined> {
  const out = await db.transaction(async (tx) => {
    const before = await tx.get('SELECT * FROM alert_rules WHERE id = ?', [id]);
    if (!before) return undefined;
    const old = toRule(before);
    const enabled = change.enabled ?? old.enabled;
    const params = change.params ?? old.params;
    await tx.run('UPDATE alert_rules SET enabled = ?, params = ?, updated_at = ? WHERE id = ?', [
      enabled ? 1 : 0,
      JSON.stringify(params),
      nowIso,
      id,
    ]);
    await audit(tx, nowIso, who, 'alert.rule', null, {
      rule: id,
      enabled,
      params,
      before: { enabled: old.enabled, params: old.params },
    });
    if (!enabled && old.enabled) {
      const open = await tx.all("SELECT id FROM incidents WHERE rule_id = ? AND status <> 'resolved'", [id]);
      for (const r of open) await resolveIn(tx, String(r.id), nowIso);
    }
    return { ...old, enabled, params, updatedAt: nowIso };
  });
  rulesVersions.set(db, rulesVersion(db) + 1);
  return out;
}

// ── incidents ─────────────────────────────────────────────────────────────────────────────────

const INCIDENT_SELECT = `SELECT i.*, d.room_name AS room_name, d.site AS site FROM incidents i
  LEFT JOIN devices d ON d.id = i.device_id`;

function toIncident(r: Row): Incident {
  return {
    id: String(r.id),
    rule: String(r.rule_id) as RuleKind,
    deviceId: String(r.device_id),
    roomName: str(r.room_name),
    site: str(r.site),
    status: String(r.status) as IncidentStatus,
    summary: String(r.summary),
    details: obj(r.details),
    openedAt: String(r.opened_at),
    acknowledgedAt: str(r.acknowledged_at),
    acknowledgedBy: str(r.acknowledged_by),
    resolvedAt: str(r.resolved_at),
    updatedAt: String(r.updated_at),
  };
}

export async function getIncident(db: Db, id: string): Promise<Incident | undefined> {
  const r = await db.get(`${INCIDENT_SELECT} WHERE i.id = ?`, [id]);
  return r ? toIncident(r) : undefined;
}

/**
 * Opens an incident for (rule, device) unless one is unresolved. Returns it, or null when one was
 * already open (possibly just opened by another instance: the unique index said so).
 */
export async function openIncident(
  db: Db,
  args: {
    rule: RuleKind;
    deviceId: string;
    summary: string;
    details: Record<string, unknown>;
    nowIso: string;
  },
): Promise<Incident | null> {
  return db.transaction(async (tx) => {
    const id = `inc_${orderedId(new Date(args.nowIso))}`;
    const n = await tx.run(
      `INSERT INTO incidents (id, rule_id, device_id, status, summary, details, opened_at, updated_at)
       VALUES (?, ?, ?, 'open', ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
      [
        id,
        args.rule,
        args.deviceId,
        args.summary.slice(0, 500),
        JSON.stringify(args.details),
        args.nowIso,
        args.nowIso,
      ],
    );
    if (n === 0) return null;
    const incident = toIncident((await tx.get(`${INCIDENT_SELECT} WHERE i.id = ?`, [id]))!);
    await enqueue(tx, incident, 'incident.opened', args.nowIso);
    return incident;
  });
}

async function resolveIn(tx: Db, id: string, nowIso: string): Promise<Incident | null> {
  const n = await tx.run(
    "UPDATE incidents SET status = 'resolved', resolved_at = ?, updated_at = ? WHERE id = ? AND status <> 'resolved'",
    [nowIso, nowIso, id],
  );
  if (n === 0) return null;
  const incident = toIncident((await tx.get(`${INCIDENT_SELECT} WHERE i.id = ?`, [id]))!);
  await enqueue(tx, incident, 'incident.resolved', nowIso);
  return incident;
}

/** Resolves an unresolved incident; null when it was already resolved (by another instance too). */
export async function resolveIncident(db: Db, id: string, nowIso: string): Promise<Incident | null> {
  return db.transaction((tx) => resolveIn(tx, id, nowIso));
}

export async function findUnresolved(
  db: Db,
  rule: RuleKind,
  deviceId: string,
): Promise<Incident | undefined> {
  const r = await db.get(
    `${INCIDENT_SELECT} WHERE i.rule_id = ? AND i.device_id = ? AND i.status <> 'resolved'`,
    [rule, deviceId],
  );
  return r ? toIncident(r) : undefined;
}

/** (rule, device) → incident id of every unresolved incident of these rules (the engine's cache). */
export async function unresolvedKeys(db: Db, rules: readonly RuleKind[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (rules.length === 0) return out;
  const rows = await db.all(
    `SELECT id, rule_id, device_id FROM incidents WHERE status <> 'resolved' AND rule_id IN (${rules.map(() => '?').join(', ')})`,
    [...rules],
  );
  for (const r of rows) out.set(incidentKey(String(r.rule_id), String(r.device_id)), String(r.id));
  return out;
}

export const incidentKey = (rule: string, deviceId: string) => `${rule}\u0000${deviceId}`;

export async function acknowledgeIncident(
  db: Db,
  id: string,
  nowIso: string,
  who: Actor,
): Promise<{ result: 'acknowledged' | 'already' | 'resolved' | 'missing'; incident?: Incident }> {
  return db.transaction(async (tx) => {
    const n = await tx.run(
      "UPDATE incidents SET status = 'acknowledged', acknowledged_at = ?, acknowledged_by = ?, updated_at = ? WHERE id = ? AND status = 'open'",
      [nowIso, who.actor, nowIso, id],
    );
    const r = await tx.get(`${INCIDENT_SELECT} WHERE i.id = ?`, [id]);
    if (!r) return { result: 'missing' as const };
    const incident = toIncident(r);
    if (n === 0) return { result: incident.status === 'resolved' ? 'resolved' : 'already', incident };
    await enqueue(tx, incident, 'incident.acknowledged', nowIso);
    await audit(tx, nowIso, who, 'incident.acknowledge', incident.deviceId, {
      incident: id,
      rule: incident.rule,
    });
    return { result: 'acknowledged' as const, incident };
  });
}

/** Opaque cursor of (updatedAt, id), base64url. */
export function encodeCursor(updatedAt: string, id: string): string {
  return Buffer.from(JSON.stringify([updatedAt, id])).toString('base64url');
}

export function decodeCursor(c: string): [string, string] | null {
  try {
    const v = JSON.parse(Buffer.from(c, 'base64url').toString('utf8'));
    if (Array.isArray(v) && v.length === 2 && typeof v[0] === 'string' && typeof v[1] === 'string') {
      if (v[0].length <= 40 && v[1].length <= 80) return [v[0], v[1]];
    }
  } catch {
    // not a cursor we made
  }
  return null;
}

/**
 * Incidents changed after the cursor, oldest change first. The cursor handed back stays
 * `settleMs` behind now (unless the page is full), because a change committed a moment ago by
 * another instance may carry an earlier updatedAt than one already seen: a poller may see an
 * incident twice (dedupe by id + updatedAt), never miss one.
 */
export async function listIncidents(
  db: Db,
  f: { status?: IncidentStatus; deviceId?: string; limit: number; since?: [string, string] },
  nowIso: string,
  settleMs = 5000,
): Promise<{ items: Incident[]; cursor: string }> {
  const where: string[] = [];
  const params: SqlValue[] = [];
  if (f.status) {
    where.push('i.status = ?');
    params.push(f.status);
  }
  if (f.deviceId) {
    where.push('i.device_id = ?');
    params.push(f.deviceId);
  }
  if (f.since) {
    where.push('(i.updated_at > ? OR (i.updated_at = ? AND i.id > ?))');
    params.push(f.since[0], f.since[0], f.since[1]);
  }
  const rows = await db.all(
    `${INCIDENT_SELECT} ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY i.updated_at, i.id LIMIT ?`,
    [...params, f.limit],
  );
  const items = rows.map(toIncident);
  let cursor: [string, string] = f.since ?? ['', ''];
  const last = items.at(-1);
  if (last) {
    const settled = new Date(Date.parse(nowIso) - settleMs).toISOString();
    if (items.length === f.limit || last.updatedAt < settled) cursor = [last.updatedAt, last.id];
    else if (settled > cursor[0]) cursor = [settled, ''];
  }
  return { items, cursor: encodeCursor(cursor[0], cursor[1]) };
}

// ── timer rules: candidates by SQL over indexed columns ─────────────────────────────────────────

export interface DeviceRow {
  id: string;
  status: string;
  roomName: string | null;
  site: string | null;
  lastSeenAt: string | null;
  certNotAfter: string | null;
}

const toDeviceRow = (r: Row): DeviceRow => ({
  id: String(r.id),
  status: String(r.status),
  roomName: str(r.room_name),
  site: str(r.site),
  lastSeenAt: str(r.last_seen_at),
  certNotAfter: str(r.cert_not_after),
});

const DEVICE_COLS = 'd.id, d.status, d.room_name, d.site, d.last_seen_at, d.cert_not_after';

/** Active devices whose `col` is before `cutoff` and which have no unresolved incident of `rule`. */
async function devicesBefore(
  db: Db,
  col: 'cert_not_after',
  rule: 'certificate-expiring',
  cutoff: string,
  limit: number,
): Promise<DeviceRow[]> {
  const rows = await db.all(
    `SELECT ${DEVICE_COLS} FROM devices d WHERE d.${col} < ? AND d.status = 'active'
       AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.rule_id = '${rule}' AND i.device_id = d.id AND i.status <> 'resolved')
     ORDER BY d.${col} LIMIT ?`,
    [cutoff, limit],
  );
  return rows.map(toDeviceRow);
}

/**
 * Active devices seen before `cutoff` with no unresolved offline incident, oldest bucket first. The
 * walk is on devices_seen_bucket (migration 5: last_seen_at itself is not indexed, so a heartbeat's
 * UPDATE touches no index): the buckets up to the cutoff's, then last_seen_at decides. A device that
 * still reports moved to the current bucket, so the walk sees only the silent ones, plus, when the
 * cutoff is in the current bucket (an offline rule under 5 minutes), the devices seen in it so far.
 */
export async function offlineCandidates(db: Db, cutoff: string, limit: number): Promise<DeviceRow[]> {
  const rows = await db.all(
    `SELECT ${DEVICE_COLS} FROM devices d WHERE d.seen_bucket <= ? AND d.last_seen_at < ? AND ${db.kind === 'sqlite' ? '+' : ''}d.status = 'active'
       AND NOT EXISTS (SELECT 1 FROM incidents i WHERE i.rule_id = 'offline' AND i.device_id = d.id AND i.status <> 'resolved')
     ORDER BY d.seen_bucket, d.last_seen_at LIMIT ?`,
    [seenBucketOf(cutoff), cutoff, limit],
  );
  return rows.map(toDeviceRow);
}

/** Active devices whose certificate ends before `cutoff` with no unresolved expiry incident. */
export function expiryCandidates(db: Db, cutoff: string, limit: number): Promise<DeviceRow[]> {
  return devicesBefore(db, 'cert_not_after', 'certificate-expiring', cutoff, limit);
}

/**
 * Unresolved offline / certificate incidents whose condition may have cleared: the device is gone,
 * no longer active, seen since `cutoff` (offline) or holds a certificate ending after it (expiry).
 */
export async function clearedCandidates(
  db: Db,
  rule: 'offline' | 'certificate-expiring',
  cutoff: string,
): Promise<{ incidentId: string; device: DeviceRow | null }[]> {
  const cleared =
    rule === 'offline' ? 'd.last_seen_at >= ?' : '(d.cert_not_after IS NULL OR d.cert_not_after >= ?)';
  const rows = await db.all(
    `SELECT i.id AS incident_id, ${DEVICE_COLS} FROM incidents i LEFT JOIN devices d ON d.id = i.device_id
      WHERE i.rule_id = ? AND i.status <> 'resolved' AND (d.id IS NULL OR d.status <> 'active' OR ${cleared})`,
    [rule, cutoff],
  );
  return rows.map((r) => ({
    incidentId: String(r.incident_id),
    device: r.id === null || r.id === undefined ? null : toDeviceRow(r),
  }));
}

/** Unresolved incidents of any rule whose device is gone or no longer active (revoked, decommissioned). */
export async function orphanedIncidents(db: Db): Promise<string[]> {
  const rows = await db.all(
    `SELECT i.id FROM incidents i LEFT JOIN devices d ON d.id = i.device_id
      WHERE i.status IN ('open', 'acknowledged') AND (d.id IS NULL OR d.status <> 'active')`,
  );
  return rows.map((r) => String(r.id));
}

export async function deviceRow(db: Db, id: string): Promise<DeviceRow | undefined> {
  const r = await db.get(`SELECT ${DEVICE_COLS} FROM devices d WHERE d.id = ?`, [id]);
  return r ? toDeviceRow(r) : undefined;
}

// ── targets ───────────────────────────────────────────────────────────────────────────────────

function toTarget(r: Row): AlertTarget {
  return {
    id: String(r.id),
    kind: String(r.kind) as TargetKind,
    name: String(r.name),
    url: str(r.url),
    email: str(r.email),
    enabled: Number(r.enabled) === 1,
    createdAt: String(r.created_at),
  };
}

export async function listTargets(db: Db): Promise<AlertTarget[]> {
  return (await db.all('SELECT * FROM alert_targets ORDER BY created_at, id')).map(toTarget);
}

/** The webhook secret of a target (delivery only: never returned by the API after creation). */
export async function targetSecret(db: Db, id: string): Promise<string | null> {
  return str((await db.get('SELECT secret FROM alert_targets WHERE id = ?', [id]))?.secret);
}

/** Creates a target; a webhook gets a fresh `whsec_…` secret, returned here once. */
export async function createTarget(
  db: Db,
  t: { kind: 'webhook'; name: string; url: string } | { kind: 'email'; name: string; email: string },
  nowIso: string,
  who: Actor,
): Promise<{ target: AlertTarget; secret?: string }> {
  const id = `tgt_${orderedId(new Date(nowIso))}`;
  const secret = t.kind === 'webhook' ? `whsec_${randomBytes(32).toString('base64url')}` : null;
  await db.transaction(async (tx) => {
    await tx.run(
      'INSERT INTO alert_targets (id, kind, name, url, email, secret, enabled, created_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?)',
      [
        id,
        t.kind,
        t.name,
        t.kind === 'webhook' ? t.url : null,
        t.kind === 'email' ? t.email : null,
        secret,
        nowIso,
      ],
    );
    // The secret is not in the audit details (the audit log is readable with a read token).
    await audit(tx, nowIso, who, 'alert.target.create', null, {
      target: id,
      kind: t.kind,
      name: t.name,
      ...(t.kind === 'webhook' ? { url: t.url } : { email: t.email }),
    });
  });
  const target: AlertTarget = {
    id,
    kind: t.kind,
    name: t.name,
    url: t.kind === 'webhook' ? t.url : null,
    email: t.kind === 'email' ? t.email : null,
    enabled: true,
    createdAt: nowIso,
  };
  return secret ? { target, secret } : { target };
}

/** Deletes a target and its deliveries (pending ones would have nowhere to go). */
export async function deleteTarget(db: Db, id: string, nowIso: string, who: Actor): Promise<boolean> {
  return db.transaction(async (tx) => {
    const row = await tx.get('SELECT * FROM alert_targets WHERE id = ?', [id]);
    if (!row) return false;
    await tx.run('DELETE FROM alert_deliveries WHERE target_id = ?', [id]);
    await tx.run('DELETE FROM alert_targets WHERE id = ?', [id]);
    const t = toTarget(row);
    await audit(tx, nowIso, who, 'alert.target.delete', null, { target: id, kind: t.kind, name: t.name });
    return true;
  });
}

// ── deliveries (the outbox) ──────────────────────────────────────────────────────────────────

/** One outbox row per enabled target for this incident event (inside the incident's transaction). */
async function enqueue(tx: Db, incident: Incident, event: IncidentEvent, nowIso: string): Promise<void> {
  const targets = await tx.all('SELECT id FROM alert_targets WHERE enabled = 1 ORDER BY id');
  const payload = JSON.stringify(incident);
  for (const t of targets) {
    await tx.run(
      `INSERT INTO alert_deliveries (id, target_id, incident_id, event, payload, status, attempts, next_attempt_at, created_at)
       VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)`,
      [`dlv_${orderedId(new Date(nowIso))}`, String(t.id), incident.id, event, payload, nowIso, nowIso],
    );
  }
}

function toDelivery(r: Row): Delivery {
  return {
    id: String(r.id),
    targetId: String(r.target_id),
    incidentId: String(r.incident_id),
    event: String(r.event) as IncidentEvent,
    status: String(r.status) as DeliveryStatus,
    attempts: Number(r.attempts),
    nextAttemptAt: String(r.next_attempt_at),
    lastError: str(r.last_error),
    createdAt: String(r.created_at),
    deliveredAt: str(r.delivered_at),
  };
}

export async function listDeliveries(
  db: Db,
  f: { status?: DeliveryStatus; limit: number },
): Promise<Delivery[]> {
  const rows = await db.all(
    `SELECT * FROM alert_deliveries ${f.status ? 'WHERE status = ?' : ''} ORDER BY created_at DESC, id DESC LIMIT ?`,
    f.status ? [f.status, f.limit] : [f.limit],
  );
  return rows.map(toDelivery);
}

export async function getDelivery(db: Db, id: string): Promise<Delivery | undefined> {
  const r = await db.get('SELECT * FROM alert_deliveries WHERE id = ?', [id]);
  return r ? toDelivery(r) : undefined;
}

export interface DueDelivery extends Delivery {
  payload: Incident;
  target: AlertTarget;
}

/** Pending deliveries whose time has come, oldest first (e-mail ones only when SMTP is set up). */
export async function dueDeliveries(
  db: Db,
  nowIso: string,
  withEmail: boolean,
  limit: number,
): Promise<DueDelivery[]> {
  const rows = await db.all(
    `SELECT d.*, t.kind AS t_kind, t.name AS t_name, t.url AS t_url, t.email AS t_email, t.enabled AS t_enabled,
        t.created_at AS t_created_at
       FROM alert_deliveries d JOIN alert_targets t ON t.id = d.target_id
      WHERE d.status = 'pending' AND d.next_attempt_at <= ? ${withEmail ? '' : "AND t.kind = 'webhook'"}
      ORDER BY d.next_attempt_at, d.id LIMIT ?`,
    [nowIso, limit],
  );
  return rows.map((r) => ({
    ...toDelivery(r),
    payload: obj(r.payload) as unknown as Incident,
    target: toTarget({
      id: r.target_id,
      kind: r.t_kind,
      name: r.t_name,
      url: r.t_url,
      email: r.t_email,
      enabled: r.t_enabled,
      created_at: r.t_created_at,
    }),
  }));
}

/**
 * Takes a due delivery for one attempt: counts the attempt and moves next_attempt_at to
 * `leaseUntil`, so no other instance tries it meanwhile (and a crash mid-attempt retries after).
 * False when another instance took it first.
 */
export async function leaseDelivery(db: Db, d: Delivery, leaseUntil: string): Promise<boolean> {
  const n = await db.run(
    `UPDATE alert_deliveries SET attempts = attempts + 1, next_attempt_at = ?
      WHERE id = ? AND status = 'pending' AND next_attempt_at = ? AND attempts = ?`,
    [leaseUntil, d.id, d.nextAttemptAt, d.attempts],
  );
  return n === 1;
}

export async function markDelivered(db: Db, id: string, nowIso: string): Promise<void> {
  await db.run(
    "UPDATE alert_deliveries SET status = 'delivered', delivered_at = ?, last_error = NULL WHERE id = ? AND status = 'pending'",
    [nowIso, id],
  );
}

/** Records a failed attempt: retry at `nextAttemptAt`, or dead when null. */
export async function markFailed(
  db: Db,
  id: string,
  error: string,
  nextAttemptAt: string | null,
): Promise<void> {
  await db.run(
    `UPDATE alert_deliveries SET status = ?, last_error = ?${nextAttemptAt ? ', next_attempt_at = ?' : ''}
      WHERE id = ? AND status = 'pending'`,
    nextAttemptAt ? ['pending', error.slice(0, 300), nextAttemptAt, id] : ['dead', error.slice(0, 300), id],
  );
}

/** Dead → pending, due now, for one more attempt (audit `alert.delivery.retry`). */
export async function retryDelivery(
  db: Db,
  id: string,
  nowIso: string,
  who: Actor,
): Promise<{ result: 'retrying' | 'not-dead' | 'missing'; delivery?: Delivery }> {
  return db.transaction(async (tx) => {
    const n = await tx.run(
      "UPDATE alert_deliveries SET status = 'pending', next_attempt_at = ? WHERE id = ? AND status = 'dead'",
      [nowIso, id],
    );
    const r = await tx.get('SELECT * FROM alert_deliveries WHERE id = ?', [id]);
    if (!r) return { result: 'missing' as const };
    const delivery = toDelivery(r);
    if (n === 0) return { result: 'not-dead' as const, delivery };
    await audit(tx, nowIso, who, 'alert.delivery.retry', null, {
      delivery: id,
      incident: delivery.incidentId,
      target: delivery.targetId,
    });
    return { result: 'retrying' as const, delivery };
  });
}
