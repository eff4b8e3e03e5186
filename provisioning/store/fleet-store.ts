// Fleet data beside the core store: the device list (keyset paging), summary, health history, site
// profiles and per-device overrides, remote actions and log bundles. Plain functions over the
// portable Db, so the heartbeat path (H-perf) can call takeQueuedActions without the service layer.
import { createHash } from 'node:crypto';
import type { Db, Row, SqlValue } from './db.js';
import { type DeviceStatus, insertAudit, orderedId, StoreConflict } from './store.js';

/** A device is online when its last signed heartbeat is this recent (3 × the 30 s heartbeat). */
export const ONLINE_WINDOW_MS = 90_000;
/** meeting_state values that mean "in a meeting" (MeetingView.status 'active', phase 'in-meeting'). */
export const IN_MEETING_STATES = ['active', 'in-meeting'] as const;
export const PERIPHERAL_KINDS = ['camera', 'microphone', 'speaker', 'display', 'hid'] as const;
export type PeripheralKind = (typeof PERIPHERAL_KINDS)[number];
/** An action a device stays told about until it reports a result; after this it is expired. */
export const ACTION_SENT_TTL_MS = 60 * 60 * 1000;
export const ACTION_KINDS = ['restart', 'renew-certificate', 'collect-logs'] as const;
export type ActionKind = (typeof ACTION_KINDS)[number];

const IN_MEETING_SQL = `meeting_state IN (${IN_MEETING_STATES.map((s) => `'${s}'`).join(', ')})`;

const str = (v: unknown) => (v === null || v === undefined ? null : String(v));
const parseJson = <T>(v: unknown): T | null =>
  v === null || v === undefined ? null : (JSON.parse(String(v)) as T);
const onlineCutoff = (nowIso: string) => new Date(Date.parse(nowIso) - ONLINE_WINDOW_MS).toISOString();

// ── the device list ─────────────────────────────────────────────────────────────────────────

export interface FleetFilter {
  status?: DeviceStatus;
  site?: string;
  /** Substring of device id or room name (case-insensitive). */
  q?: string;
  online?: boolean;
  inMeeting?: boolean;
}

/** Position after the last row of a page: its room name (null rooms sort after all named ones) and id. */
export interface FleetCursor {
  roomName: string | null;
  id: string;
}

/** One row of the list with the fleet columns (the core DeviceRecord fields the list shows, plus these). */
export interface FleetRow {
  id: string;
  status: DeviceStatus;
  roomName: string | null;
  site: string | null;
  softwareVersion: string;
  lastSeenAt: string | null;
  certSerial: string | null;
  certNotAfter: string | null;
  createdAt: string;
  configVersion: number;
  reportedConfigVersion: number | null;
  meetingState: string | null;
  pendingActions: number;
}

const LIST_COLUMNS =
  'id, status, room_name, site, software_version, last_seen_at, cert_serial, cert_not_after, created_at, config_version, reported_config_version, meeting_state, pending_actions';

function toFleetRow(r: Row): FleetRow {
  return {
    id: String(r.id),
    status: r.status as DeviceStatus,
    roomName: str(r.room_name),
    site: str(r.site),
    softwareVersion: String(r.software_version),
    lastSeenAt: str(r.last_seen_at),
    certSerial: str(r.cert_serial),
    certNotAfter: str(r.cert_not_after),
    createdAt: String(r.created_at),
    configVersion: Number(r.config_version),
    reportedConfigVersion:
      r.reported_config_version === null || r.reported_config_version === undefined
        ? null
        : Number(r.reported_config_version),
    meetingState: str(r.meeting_state),
    pendingActions: Number(r.pending_actions ?? 0),
  };
}

function escapeLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/**
 * WHERE terms of a filter. `forOrderedScan`: on SQLite, equality on status / ranges on last_seen_at
 * are written so they cannot drive an index (`+col`): without statistics SQLite would pick
 * devices_status and sort the whole fleet, where walking devices_room in order stops after one page.
 */
function filterTerms(db: Db, f: FleetFilter, nowIso: string, forOrderedScan: boolean) {
  const terms: string[] = [];
  const params: SqlValue[] = [];
  const col = (c: string) => (forOrderedScan && db.kind === 'sqlite' ? `+${c}` : c);
  if (f.status) {
    terms.push(`${col('status')} = ?`);
    params.push(f.status);
  }
  if (f.site !== undefined) {
    terms.push('site = ?');
    params.push(f.site);
  }
  if (f.q) {
    const like = `%${escapeLike(f.q.toLowerCase())}%`;
    // Device ids are lower case already (sr-[a-z2-7]{20}): no LOWER() per row for them. SQLite's LIKE
    // ignores ASCII case by itself (and its LOWER() folds only ASCII): a third faster without LOWER().
    const room = db.kind === 'sqlite' ? 'room_name' : 'LOWER(room_name)';
    terms.push(`(id LIKE ? ESCAPE '\\' OR ${room} LIKE ? ESCAPE '\\')`);
    params.push(like, like);
  }
  const cutoff = onlineCutoff(nowIso);
  // ISO-8601 UTC text of one format compares like the times it names.
  if (f.online === true) {
    terms.push(`${col('last_seen_at')} >= ?`);
    params.push(cutoff);
  } else if (f.online === false) {
    terms.push(`(last_seen_at IS NULL OR ${col('last_seen_at')} < ?)`);
    params.push(cutoff);
  }
  if (f.inMeeting === true) {
    terms.push(`${IN_MEETING_SQL} AND ${col('last_seen_at')} >= ?`);
    params.push(cutoff);
  } else if (f.inMeeting === false) {
    terms.push(
      `(meeting_state IS NULL OR NOT ${IN_MEETING_SQL} OR last_seen_at IS NULL OR ${col('last_seen_at')} < ?)`,
    );
    params.push(cutoff);
  }
  return { terms, params };
}

const where = (terms: string[]) => (terms.length ? `WHERE ${terms.join(' AND ')}` : '');

/** A short hash of the filter: a cursor only continues the listing it came from. */
export function filterKey(f: FleetFilter): string {
  const canon = JSON.stringify([
    f.status ?? null,
    f.site ?? null,
    f.q ?? null,
    f.online ?? null,
    f.inMeeting ?? null,
  ]);
  return createHash('sha256').update(canon).digest('base64url').slice(0, 12);
}

/** Opaque cursor: base64url of JSON `{v:1, r, i, f}`. */
export function encodeCursor(c: FleetCursor, f: FleetFilter): string {
  return Buffer.from(JSON.stringify({ v: 1, r: c.roomName, i: c.id, f: filterKey(f) })).toString('base64url');
}

/** The cursor, or a reason it is refused (malformed, tampered with, or from another filter). */
export function decodeCursor(s: string, f: FleetFilter): FleetCursor | string {
  if (!/^[A-Za-z0-9_-]{1,1024}$/.test(s)) return 'the cursor is not one this service issued';
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  } catch {
    return 'the cursor is not one this service issued';
  }
  const o = v as { v?: unknown; r?: unknown; i?: unknown; f?: unknown };
  if (
    typeof v !== 'object' ||
    v === null ||
    Array.isArray(v) ||
    Object.keys(o).sort().join() !== 'f,i,r,v' ||
    o.v !== 1 ||
    !(o.r === null || (typeof o.r === 'string' && o.r.length <= 200)) ||
    typeof o.i !== 'string' ||
    o.i.length < 1 ||
    o.i.length > 128 ||
    typeof o.f !== 'string'
  )
    return 'the cursor is not one this service issued';
  if (o.f !== filterKey(f))
    return 'the cursor belongs to a listing with other filters: start again without it';
  return { roomName: o.r as string | null, id: o.i };
}

/**
 * One page of the fleet, ordered by room name then id; devices without a room (pending) come last.
 * Keyset paging walks the index devices_room (or devices_site_room with a site) in two segments —
 * named rooms, then NULL rooms by id — because SQLite and PostgreSQL sort NULLs on opposite ends.
 * `offset` (the old CLI) skips rows in the same order (slower: the database counts them).
 */
export async function listFleet(
  db: Db,
  f: FleetFilter,
  page: { limit: number; cursor?: FleetCursor; offset?: number },
  nowIso: string,
): Promise<{ total: number; rows: FleetRow[]; next: FleetCursor | null }> {
  const scan = filterTerms(db, f, nowIso, true);
  const counted = filterTerms(db, f, nowIso, false);
  // The count and the page run at once (two pool connections on PostgreSQL; SQLite queues them).
  const totalRow = db.get(`SELECT COUNT(*) AS n FROM devices ${where(counted.terms)}`, counted.params);
  totalRow.catch(() => {}); // awaited below; if the page fails first, its error is the one thrown
  const rows = await pageRows(db, scan, page);
  const total = Number((await totalRow)?.n ?? 0);
  const more = rows.length > page.limit;
  const out = rows.slice(0, page.limit).map(toFleetRow);
  const last = out.at(-1);
  return { total, rows: out, next: more && last ? { roomName: last.roomName, id: last.id } : null };
}

/** The page's rows (limit + 1, to know whether there is more) in the API's order. */
async function pageRows(
  db: Db,
  scan: { terms: string[]; params: SqlValue[] },
  page: { limit: number; cursor?: FleetCursor; offset?: number },
): Promise<Row[]> {
  const want = page.limit + 1;
  let rows: Row[];
  if (page.offset !== undefined && page.offset > 0 && !page.cursor) {
    rows = await db.all(
      `SELECT ${LIST_COLUMNS} FROM devices ${where(scan.terms)}
       ORDER BY CASE WHEN room_name IS NULL THEN 1 ELSE 0 END, room_name, id LIMIT ? OFFSET ?`,
      [...scan.params, want, page.offset],
    );
  } else {
    rows = [];
    const c = page.cursor;
    if (!c || c.roomName !== null) {
      const terms = [...scan.terms];
      const params = [...scan.params];
      if (c) {
        terms.push('room_name >= ? AND (room_name > ? OR id > ?)');
        params.push(c.roomName, c.roomName, c.id);
      } else terms.push('room_name IS NOT NULL');
      rows = await db.all(
        `SELECT ${LIST_COLUMNS} FROM devices ${where(terms)} ORDER BY room_name, id LIMIT ?`,
        [...params, want],
      );
    }
    if (rows.length < want) {
      const terms = [...scan.terms, 'room_name IS NULL'];
      const params = [...scan.params];
      if (c && c.roomName === null) {
        terms.push('id > ?');
        params.push(c.id);
      }
      rows.push(
        ...(await db.all(`SELECT ${LIST_COLUMNS} FROM devices ${where(terms)} ORDER BY id LIMIT ?`, [
          ...params,
          want - rows.length,
        ])),
      );
    }
  }
  return rows;
}

/** Unresolved incidents per device, for one page of ids (one grouped query). */
export async function openIncidentCounts(db: Db, ids: string[]): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  if (ids.length === 0) return out;
  const rows = await db.all(
    `SELECT device_id, COUNT(*) AS n FROM incidents WHERE device_id IN (${ids.map(() => '?').join(', ')})
       AND status <> 'resolved' GROUP BY device_id`,
    ids,
  );
  for (const r of rows) out.set(String(r.device_id), Number(r.n));
  return out;
}

export function isOnline(lastSeenAt: string | null, nowIso: string): boolean {
  return lastSeenAt !== null && lastSeenAt >= onlineCutoff(nowIso);
}

export function isInMeeting(meetingState: string | null, lastSeenAt: string | null, nowIso: string): boolean {
  return (
    isOnline(lastSeenAt, nowIso) &&
    meetingState !== null &&
    (IN_MEETING_STATES as readonly string[]).includes(meetingState)
  );
}

export interface FleetSummary {
  /** Active devices (claimed, not revoked); online + offline = devices. */
  devices: number;
  online: number;
  offline: number;
  inMeeting: number;
  /** Devices waiting for a claim. */
  pending: number;
  openIncidents: number;
  sites: string[];
}

export async function fleetSummary(db: Db, nowIso: string): Promise<FleetSummary> {
  const cutoff = onlineCutoff(nowIso);
  const r = await db.get(
    `SELECT
       SUM(CASE WHEN status = 'active' THEN 1 ELSE 0 END) AS devices,
       SUM(CASE WHEN status = 'active' AND last_seen_at >= ? THEN 1 ELSE 0 END) AS online,
       SUM(CASE WHEN status = 'active' AND last_seen_at >= ? AND ${IN_MEETING_SQL} THEN 1 ELSE 0 END) AS in_meeting,
       SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS pending
     FROM devices`,
    [cutoff, cutoff],
  );
  const incidents = await db.get("SELECT COUNT(*) AS n FROM incidents WHERE status <> 'resolved'");
  const sites = await db.all(
    'SELECT site FROM devices WHERE site IS NOT NULL GROUP BY site UNION SELECT site FROM site_profiles ORDER BY site',
  );
  const devices = Number(r?.devices ?? 0);
  const online = Number(r?.online ?? 0);
  return {
    devices,
    online,
    offline: devices - online,
    inMeeting: Number(r?.in_meeting ?? 0),
    pending: Number(r?.pending ?? 0),
    openIncidents: Number(incidents?.n ?? 0),
    sites: sites.map((s) => String(s.site)),
  };
}

export async function listSites(
  db: Db,
  nowIso: string,
): Promise<{ site: string; devices: number; online: number; profileVersion: number | null }[]> {
  const cutoff = onlineCutoff(nowIso);
  const counts = await db.all(
    `SELECT site, COUNT(*) AS n, SUM(CASE WHEN last_seen_at >= ? THEN 1 ELSE 0 END) AS online
     FROM devices WHERE site IS NOT NULL AND status = 'active' GROUP BY site`,
    [cutoff],
  );
  const profiles = await db.all('SELECT site, version FROM site_profiles');
  const bySite = new Map<
    string,
    { site: string; devices: number; online: number; profileVersion: number | null }
  >();
  for (const c of counts)
    bySite.set(String(c.site), {
      site: String(c.site),
      devices: Number(c.n),
      online: Number(c.online ?? 0),
      profileVersion: null,
    });
  for (const p of profiles) {
    const s = String(p.site);
    const e = bySite.get(s) ?? { site: s, devices: 0, online: 0, profileVersion: null };
    e.profileVersion = Number(p.version);
    bySite.set(s, e);
  }
  return [...bySite.values()].sort((a, b) => (a.site < b.site ? -1 : a.site > b.site ? 1 : 0));
}

// ── device detail: fleet columns, certificate, peripherals ──────────────────────────────────

export interface FleetDetailExtra {
  reportedConfigVersion: number | null;
  meetingState: string | null;
  configOverride: Record<string, unknown> | null;
  peripheralsBaseline: Record<string, string | null> | null;
  pendingActions: number;
  profileVersion: number | null;
  certificate: { serial: string; notBefore: string; notAfter: string } | null;
}

export async function fleetDetailExtra(db: Db, deviceId: string): Promise<FleetDetailExtra | undefined> {
  const r = await db.get(
    `SELECT d.reported_config_version, d.meeting_state, d.config_override, d.peripherals_baseline, d.pending_actions,
            p.version AS profile_version, c.serial, c.not_before, c.not_after
     FROM devices d
     LEFT JOIN site_profiles p ON p.site = d.site
     LEFT JOIN certificates c ON c.serial = d.cert_serial
     WHERE d.id = ?`,
    [deviceId],
  );
  if (!r) return undefined;
  return {
    reportedConfigVersion:
      r.reported_config_version === null || r.reported_config_version === undefined
        ? null
        : Number(r.reported_config_version),
    meetingState: str(r.meeting_state),
    configOverride: parseJson(r.config_override),
    peripheralsBaseline: parseJson(r.peripherals_baseline),
    pendingActions: Number(r.pending_actions ?? 0),
    profileVersion:
      r.profile_version === null || r.profile_version === undefined ? null : Number(r.profile_version),
    certificate: r.serial
      ? { serial: String(r.serial), notBefore: String(r.not_before), notAfter: String(r.not_after) }
      : null,
  };
}

interface HealthPeripherals {
  present?: unknown;
  missing?: unknown;
  names?: unknown;
}

const kindsIn = (v: unknown): PeripheralKind[] =>
  Array.isArray(v) ? PERIPHERAL_KINDS.filter((k) => v.includes(k)) : [];

/** The baseline a health report sets (kind → name, null when unnamed), or null when it lists none. */
export function baselineFrom(health: Record<string, unknown> | null): Record<string, string | null> | null {
  const p = health?.peripherals as HealthPeripherals | undefined;
  if (!p || typeof p !== 'object') return null;
  const names = (p.names && typeof p.names === 'object' ? p.names : {}) as Record<string, unknown>;
  const kinds = [...kindsIn(p.present), ...kindsIn(p.missing)];
  if (kinds.length === 0) return null;
  const out: Record<string, string | null> = {};
  for (const k of kinds) out[k] = typeof names[k] === 'string' ? (names[k] as string) : null;
  return out;
}

export interface PeripheralView {
  kind: PeripheralKind;
  state: 'ok' | 'missing' | 'changed' | 'new';
  name: string | null;
  expected: string | null;
}

/** The last health's peripherals against the baseline: missing, changed (other name), new (not in it). */
export function peripheralsDiff(
  health: Record<string, unknown> | null,
  baseline: Record<string, string | null> | null,
): PeripheralView[] {
  const p = (health?.peripherals ?? {}) as HealthPeripherals;
  const present = kindsIn(p.present);
  const missing = kindsIn(p.missing);
  const names = (p.names && typeof p.names === 'object' ? p.names : {}) as Record<string, unknown>;
  const base = baseline ?? {};
  const out: PeripheralView[] = [];
  for (const kind of PERIPHERAL_KINDS) {
    const inBase = Object.hasOwn(base, kind);
    const expected = inBase ? (base[kind] ?? null) : null;
    const name = typeof names[kind] === 'string' ? (names[kind] as string) : null;
    if (missing.includes(kind)) out.push({ kind, state: 'missing', name: null, expected });
    else if (present.includes(kind)) {
      const state = !inBase
        ? 'new'
        : expected !== null && name !== null && expected !== name
          ? 'changed'
          : 'ok';
      out.push({ kind, state, name, expected });
    } else if (inBase) out.push({ kind, state: 'missing', name: null, expected });
  }
  return out;
}

/** Sets the peripherals baseline if the device has none yet; true when this call set it. */
export async function setBaselineIfUnset(
  db: Db,
  deviceId: string,
  baseline: Record<string, string | null>,
): Promise<boolean> {
  const n = await db.run(
    'UPDATE devices SET peripherals_baseline = ? WHERE id = ? AND peripherals_baseline IS NULL',
    [JSON.stringify(baseline), deviceId],
  );
  return n === 1;
}

/** One point of a device's health history, as GET /v1/devices/:id/health sends it. */
export interface HealthSample {
  at: string;
  loadPercent: number | null;
  temperatureC: number | null;
  memoryUsedBytes: number | null;
  memoryTotalBytes: number | null;
  diskUsedBytes: number | null;
  diskTotalBytes: number | null;
}

/** Health samples of the last `hours`, oldest first. */
export async function healthSamples(db: Db, deviceId: string, sinceIso: string): Promise<HealthSample[]> {
  const rows = await db.all(
    'SELECT * FROM health_samples WHERE device_id = ? AND at >= ? ORDER BY at LIMIT 20000',
    [deviceId, sinceIso],
  );
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return rows.map((r) => ({
    at: String(r.at),
    loadPercent: num(r.load_percent),
    temperatureC: num(r.temperature_c),
    memoryUsedBytes: num(r.memory_used),
    memoryTotalBytes: num(r.memory_total),
    diskUsedBytes: num(r.disk_used),
    diskTotalBytes: num(r.disk_total),
  }));
}

// ── configuration: site profiles and device overrides ───────────────────────────────────────

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Profile ← override: objects merge key by key, anything else (arrays, scalars, null) in the override
 * replaces. Keys are defined as own data properties, so a "__proto__" key stays a plain key.
 */
export function deepMerge(
  base: Record<string, unknown>,
  over: Record<string, unknown>,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const put = (k: string, v: unknown) =>
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  for (const k of Object.keys(base)) put(k, base[k]);
  for (const k of Object.keys(over)) {
    const b = Object.hasOwn(out, k) ? out[k] : undefined;
    const o = over[k];
    put(k, isPlainObject(b) && isPlainObject(o) ? deepMerge(b, o) : o);
  }
  return out;
}

/** Deepest a configuration document may nest (merging and comparing recurse over it). */
export const MAX_CONFIG_DEPTH = 32;

/** Nesting depth of a JSON value, measured without recursion (a hostile document cannot overflow it). */
export function jsonDepth(v: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[v, 0]];
  while (stack.length > 0) {
    const [x, d] = stack.pop()!;
    if (typeof x !== 'object' || x === null) continue;
    max = Math.max(max, d + 1);
    if (max > MAX_CONFIG_DEPTH) return max;
    for (const c of Array.isArray(x) ? x : Object.values(x)) stack.push([c, d + 1]);
  }
  return max;
}

/** JSON with sorted keys: two configs are the same when these strings are. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (isPlainObject(v))
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`)
      .join(',')}}`;
  return JSON.stringify(v ?? null);
}

export interface SiteProfile {
  site: string;
  config: Record<string, unknown>;
  version: number;
  updatedAt: string;
  updatedBy: string;
}

export async function getProfile(db: Db, site: string): Promise<SiteProfile | undefined> {
  const r = await db.get('SELECT * FROM site_profiles WHERE site = ?', [site]);
  return r
    ? {
        site: String(r.site),
        config: JSON.parse(String(r.config)) as Record<string, unknown>,
        version: Number(r.version),
        updatedAt: String(r.updated_at),
        updatedBy: String(r.updated_by),
      }
    : undefined;
}

/**
 * A device's override: config_override, or — for devices configured before profiles existed — its
 * whole config (it was per device then), so a new profile never drops what IT set on a device.
 */
const overrideOf = (r: Row): Record<string, unknown> =>
  (parseJson<Record<string, unknown>>(r.config_override ?? r.config) ?? {}) as Record<string, unknown>;

/** Recomputes one device's effective config in `tx`; bumps config_version only when it changed. */
async function recompute(
  tx: Db,
  r: Row,
  profile: Record<string, unknown>,
  override: Record<string, unknown>,
): Promise<boolean> {
  const effective = deepMerge(profile, override);
  const changed = canonicalJson(effective) !== canonicalJson(JSON.parse(String(r.config)));
  await tx.run(
    `UPDATE devices SET config_override = ?, config = ?, config_version = config_version + ? WHERE id = ?`,
    [JSON.stringify(override), JSON.stringify(effective), changed ? 1 : 0, String(r.id)],
  );
  return changed;
}

/** Stores the site profile and recomputes every active device of the site; returns the changed ids. */
export async function putProfile(
  db: Db,
  args: { site: string; config: Record<string, unknown>; actor: string; tokenId: string | null; now: string },
): Promise<{ profile: SiteProfile; changed: string[] }> {
  return db.transaction(async (tx) => {
    const old = await tx.get('SELECT version FROM site_profiles WHERE site = ?', [args.site]);
    const version = old ? Number(old.version) + 1 : 1;
    await tx.run(
      `INSERT INTO site_profiles (site, config, version, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (site) DO UPDATE SET config = excluded.config, version = excluded.version,
         updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      [args.site, JSON.stringify(args.config), version, args.now, args.actor],
    );
    const devices = await tx.all(
      "SELECT id, config, config_override FROM devices WHERE site = ? AND status = 'active' ORDER BY id",
      [args.site],
    );
    const changed: string[] = [];
    for (const d of devices)
      if (await recompute(tx, d, args.config, overrideOf(d))) changed.push(String(d.id));
    await insertAudit(
      tx,
      args.now,
      args.actor,
      'site.profile',
      null,
      { site: args.site, version, config: args.config, devicesChanged: changed.length },
      args.tokenId,
    );
    return {
      profile: { site: args.site, config: args.config, version, updatedAt: args.now, updatedBy: args.actor },
      changed,
    };
  });
}

/** Sets a device's override (PUT /v1/devices/:id/config); returns the config version it now has. */
export async function setDeviceOverride(
  db: Db,
  args: {
    deviceId: string;
    override: Record<string, unknown>;
    actor: string;
    tokenId: string | null;
    now: string;
  },
): Promise<{ configVersion: number; changed: boolean }> {
  return db.transaction(async (tx) => {
    const d = await tx.get('SELECT id, status, site, config, config_override FROM devices WHERE id = ?', [
      args.deviceId,
    ]);
    if (!d) throw new StoreConflict('unknown device');
    if (d.status !== 'active') throw new StoreConflict('only active devices take configuration');
    const p =
      d.site === null
        ? undefined
        : await tx.get('SELECT config FROM site_profiles WHERE site = ?', [String(d.site)]);
    const profile = p ? (JSON.parse(String(p.config)) as Record<string, unknown>) : {};
    const changed = await recompute(tx, d, profile, args.override);
    await insertAudit(
      tx,
      args.now,
      args.actor,
      'device.config',
      args.deviceId,
      { config: args.override, changed },
      args.tokenId,
    );
    const v = await tx.get('SELECT config_version FROM devices WHERE id = ?', [args.deviceId]);
    return { configVersion: Number(v?.config_version), changed };
  });
}

/**
 * After a claim: the claim's config becomes the device's override and its site's profile (if any)
 * is merged under it. No audit row of its own (the claim's row says what was set).
 */
export async function applySiteProfile(db: Db, deviceId: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    const d = await tx.get(
      "SELECT id, site, config, config_override FROM devices WHERE id = ? AND status = 'active'",
      [deviceId],
    );
    if (!d || d.site === null) return false;
    const p = await tx.get('SELECT config FROM site_profiles WHERE site = ?', [String(d.site)]);
    if (!p) return false;
    return recompute(tx, d, JSON.parse(String(p.config)) as Record<string, unknown>, overrideOf(d));
  });
}

// ── remote actions ──────────────────────────────────────────────────────────────────────────

export interface ActionRecord {
  id: string;
  deviceId: string;
  kind: string;
  status: 'queued' | 'sent' | 'done' | 'failed' | 'expired';
  createdAt: string;
  createdBy: string;
  sentAt: string | null;
  finishedAt: string | null;
  result: { message?: string; bundleBytes?: number } | null;
}

function toAction(r: Row): ActionRecord {
  return {
    id: String(r.id),
    deviceId: String(r.device_id),
    kind: String(r.kind),
    status: r.status as ActionRecord['status'],
    createdAt: String(r.created_at),
    createdBy: String(r.created_by),
    sentAt: str(r.sent_at),
    finishedAt: str(r.finished_at),
    result: parseJson(r.result),
  };
}

/** devices.pending_actions = queued + sent-unfinished actions of the device. */
export async function refreshPendingActions(tx: Db, deviceId: string): Promise<void> {
  await tx.run(
    `UPDATE devices SET pending_actions = (SELECT COUNT(*) FROM device_actions a
       WHERE a.device_id = devices.id AND a.status IN ('queued', 'sent')) WHERE id = ?`,
    [deviceId],
  );
}

/** Expires this device's actions sent before now − 1 h; keeps pending_actions equal to the live count. */
export async function expireActions(tx: Db, deviceId: string, nowIso: string): Promise<number> {
  const before = new Date(Date.parse(nowIso) - ACTION_SENT_TTL_MS).toISOString();
  const n = await tx.run(
    "UPDATE device_actions SET status = 'expired', finished_at = ? WHERE device_id = ? AND status = 'sent' AND sent_at < ?",
    [nowIso, deviceId, before],
  );
  if (n > 0) await refreshPendingActions(tx, deviceId);
  return n;
}

/**
 * Hands the device its queued actions: marks them sent (sent_at = now) and returns them oldest
 * first. Sent actions still count in devices.pending_actions until a result (or expiry) arrives.
 * Actions left 'sent' for over an hour become 'expired' here too.
 */
export async function takeQueuedActions(
  db: Db,
  deviceId: string,
  nowIso: string,
): Promise<{ id: string; kind: string }[]> {
  return db.transaction(async (tx) => {
    await expireActions(tx, deviceId, nowIso);
    const rows = await tx.all(
      "SELECT id, kind FROM device_actions WHERE device_id = ? AND status = 'queued' ORDER BY created_at, id",
      [deviceId],
    );
    if (rows.length > 0) {
      await tx.run(
        "UPDATE device_actions SET status = 'sent', sent_at = ? WHERE device_id = ? AND status = 'queued'",
        [nowIso, deviceId],
      );
    }
    return rows.map((r) => ({ id: String(r.id), kind: String(r.kind) }));
  });
}

/** Queues an action for an active device; one unfinished action per kind (a second → conflict). */
export async function queueAction(
  db: Db,
  args: { deviceId: string; kind: ActionKind; actor: string; tokenId: string | null; now: string },
): Promise<ActionRecord> {
  return db.transaction(async (tx) => {
    const d = await tx.get('SELECT status FROM devices WHERE id = ?', [args.deviceId]);
    if (!d) throw new StoreConflict('unknown device');
    if (d.status !== 'active')
      throw new StoreConflict(`the device is ${String(d.status)}: it takes no actions`);
    await expireActions(tx, args.deviceId, args.now);
    const busy = await tx.get(
      "SELECT id FROM device_actions WHERE device_id = ? AND kind = ? AND status IN ('queued', 'sent')",
      [args.deviceId, args.kind],
    );
    if (busy)
      throw new StoreConflict(
        `a ${args.kind} action is already pending for this device (${String(busy.id)})`,
      );
    // Time-ordered: actions queued in one millisecond still list and deliver in queue order.
    const id = `act_${orderedId(new Date(args.now))}`;
    await tx.run(
      `INSERT INTO device_actions (id, device_id, kind, status, created_at, created_by) VALUES (?, ?, ?, 'queued', ?, ?)`,
      [id, args.deviceId, args.kind, args.now, args.actor],
    );
    await refreshPendingActions(tx, args.deviceId);
    await insertAudit(
      tx,
      args.now,
      args.actor,
      'device.action',
      args.deviceId,
      { actionId: id, kind: args.kind },
      args.tokenId,
    );
    return {
      id,
      deviceId: args.deviceId,
      kind: args.kind,
      status: 'queued',
      createdAt: args.now,
      createdBy: args.actor,
      sentAt: null,
      finishedAt: null,
      result: null,
    };
  });
}

/** The device's actions, newest first (at most 100); overdue sent ones are expired first. */
export async function listActions(db: Db, deviceId: string, nowIso: string): Promise<ActionRecord[]> {
  await db.transaction((tx) => expireActions(tx, deviceId, nowIso));
  const rows = await db.all(
    'SELECT * FROM device_actions WHERE device_id = ? ORDER BY created_at DESC, id DESC LIMIT 100',
    [deviceId],
  );
  return rows.map(toAction);
}

export async function getAction(db: Db, actionId: string): Promise<ActionRecord | undefined> {
  const r = await db.get('SELECT * FROM device_actions WHERE id = ?', [actionId]);
  return r ? toAction(r) : undefined;
}

export class ActionNotFound extends Error {
  override readonly name = 'ActionNotFound';
}

/**
 * Records the result a device reported for one of ITS actions (another device's id → not found,
 * indistinguishable from an unknown id). Only a sent action takes a result; a collect-logs result
 * may carry the gzip bundle (checked by the route), kept with its SHA-256.
 */
export async function recordActionResult(
  db: Db,
  args: {
    deviceId: string;
    actionId: string;
    status: 'done' | 'failed';
    message?: string;
    bundle?: Buffer;
    now: string;
  },
): Promise<ActionRecord> {
  return db.transaction(async (tx) => {
    await expireActions(tx, args.deviceId, args.now);
    const r = await tx.get('SELECT * FROM device_actions WHERE id = ? AND device_id = ?', [
      args.actionId,
      args.deviceId,
    ]);
    if (!r) throw new ActionNotFound('unknown action');
    const a = toAction(r);
    if (a.status !== 'sent')
      throw new StoreConflict(
        a.status === 'queued'
          ? 'this action was not sent to the device yet'
          : `this action is already ${a.status}`,
      );
    if (args.bundle && a.kind !== 'collect-logs')
      throw new StoreConflict('only a collect-logs action carries a bundle');
    const result: ActionRecord['result'] = {};
    if (args.message !== undefined) result.message = args.message;
    if (args.bundle) {
      result.bundleBytes = args.bundle.length;
      await tx.run(
        'INSERT INTO log_bundles (action_id, device_id, created_at, size_bytes, sha256, content) VALUES (?, ?, ?, ?, ?, ?)',
        [
          a.id,
          a.deviceId,
          args.now,
          args.bundle.length,
          createHash('sha256').update(args.bundle).digest('hex'),
          args.bundle.toString('base64'),
        ],
      );
    }
    await tx.run(
      "UPDATE device_actions SET status = ?, finished_at = ?, result = ? WHERE id = ? AND status = 'sent'",
      [args.status, args.now, JSON.stringify(result), a.id],
    );
    await refreshPendingActions(tx, args.deviceId);
    await insertAudit(tx, args.now, `device:${args.deviceId}`, 'device.action-result', args.deviceId, {
      actionId: a.id,
      kind: a.kind,
      status: args.status,
      ...(args.message !== undefined ? { message: args.message } : {}),
      ...(args.bundle ? { bundleBytes: args.bundle.length } : {}),
    });
    return { ...a, status: args.status, finishedAt: args.now, result };
  });
}

export async function getBundle(
  db: Db,
  actionId: string,
): Promise<{ deviceId: string; content: Buffer; sha256: string; createdAt: string } | undefined> {
  const r = await db.get(
    'SELECT device_id, content, sha256, created_at FROM log_bundles WHERE action_id = ?',
    [actionId],
  );
  return r
    ? {
        deviceId: String(r.device_id),
        content: Buffer.from(String(r.content), 'base64'),
        sha256: String(r.sha256),
        createdAt: String(r.created_at),
      }
    : undefined;
}
