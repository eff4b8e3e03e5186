// Software updates in the fleet (issue 14): the update state each device reports (device-signed,
// newest `at` wins, so a replayed or late older report never moves it back), the rollout summary
// per channel, and the channel/window/pause IT assigns — which is plain device configuration, key
// `update` of the site profile or of the device's override (fleet-store.ts merges them).
// Plain functions over the portable Db, both SQLite and PostgreSQL (migration 6).
import type { Db, Row } from './db.js';
import { putProfile, setDeviceOverride } from './fleet-store.js';
import { insertAudit, StoreConflict } from './store.js';

export const UPDATE_STATES = [
  'idle',
  'available',
  'downloading',
  'waiting',
  'installing',
  'restarting',
  'verifying',
  'committed',
  'rolled-back',
  'failed',
] as const;
export type UpdateStateName = (typeof UPDATE_STATES)[number];
/** States worth a line in the audit log (the others change every few seconds during an update). */
export const AUDITED_UPDATE_STATES: readonly UpdateStateName[] = ['committed', 'rolled-back', 'failed'];
/** What the console lists as needing attention. */
export const PROBLEM_UPDATE_STATES: readonly UpdateStateName[] = ['rolled-back', 'failed'];

/** Channel names: the same rule as the TUF target paths (src/update/tuf-repo.ts). */
export const CHANNEL_RE = /^[a-z0-9][a-z0-9-]{0,31}$/;
export const DEFAULT_CHANNEL = 'stable';
/** HH:MM, 00:00..23:59. */
export const WINDOW_TIME_RE = /^([01][0-9]|2[0-3]):[0-5][0-9]$/;
/** A report dated further ahead of the service's clock than this is refused (a clock gone wrong). */
export const MAX_FUTURE_SKEW_MS = 5 * 60_000;

/** What a device reports (POST /v1/devices/:id/update-state), `at` normalised to ISO UTC. */
export interface UpdateReport {
  at: string;
  state: UpdateStateName;
  current: string;
  target?: string;
  channel: string;
  progress?: number;
  error?: string;
}

export interface StoredUpdateState {
  at: string;
  state: UpdateStateName;
  current: string;
  target: string | null;
  channel: string;
  progress: number | null;
  error: string | null;
  /** Service time the report arrived. */
  receivedAt: string;
  /** Service time the state (or target) last changed. */
  changedAt: string;
}

/** The `update` key of a device's effective configuration, as the device reads it. */
export interface UpdatePolicy {
  channel: string;
  window: { start: string; end: string } | null;
  paused: boolean;
}

const str = (v: unknown) => (v === null || v === undefined ? null : String(v));

function toStored(r: Row): StoredUpdateState {
  return {
    at: String(r.at),
    state: String(r.state) as UpdateStateName,
    current: String(r.current_version),
    target: str(r.target_version),
    channel: String(r.channel),
    progress: r.progress === null || r.progress === undefined ? null : Number(r.progress),
    error: str(r.error),
    receivedAt: String(r.received_at),
    changedAt: String(r.changed_at),
  };
}

/** The update policy in an effective configuration (bad values fall back to the defaults). */
export function updatePolicyOf(config: Record<string, unknown> | null | undefined): UpdatePolicy {
  const u = config?.update;
  const o = (typeof u === 'object' && u !== null && !Array.isArray(u) ? u : {}) as Record<string, unknown>;
  const w = o.window as { start?: unknown; end?: unknown } | undefined;
  const window =
    typeof w === 'object' &&
    w !== null &&
    typeof w.start === 'string' &&
    typeof w.end === 'string' &&
    WINDOW_TIME_RE.test(w.start) &&
    WINDOW_TIME_RE.test(w.end)
      ? { start: w.start, end: w.end }
      : null;
  return {
    channel: typeof o.channel === 'string' && CHANNEL_RE.test(o.channel) ? o.channel : DEFAULT_CHANNEL,
    window,
    paused: o.paused === true,
  };
}

export type RecordResult =
  | { applied: true; stored: StoredUpdateState }
  | { applied: false; stored: StoredUpdateState; reason: 'older' };

/**
 * Stores a device's report if it is newer than the stored one (`at` strictly later); an older or
 * equal `at` leaves the stored state as it is (a replay, or a retry of something already taken).
 * Terminal states (committed, rolled-back, failed) are written to the audit log when they change.
 * The caller has checked that the device exists and is active.
 */
export async function recordUpdateState(
  db: Db,
  args: { deviceId: string; report: UpdateReport; now: string },
): Promise<RecordResult> {
  const r = args.report;
  return db.transaction(async (tx) => {
    const prevRow = await tx.get(
      `SELECT * FROM device_update_state WHERE device_id = ?${tx.kind === 'postgres' ? ' FOR UPDATE' : ''}`,
      [args.deviceId],
    );
    const prev = prevRow ? toStored(prevRow) : undefined;
    if (prev && prev.at >= r.at) return { applied: false, stored: prev, reason: 'older' };
    const changed = !prev || prev.state !== r.state || prev.target !== (r.target ?? null);
    const changedAt = changed ? args.now : prev.changedAt;
    // The WHERE guard keeps "newest wins" even against a concurrent first insert.
    const n = await tx.run(
      `INSERT INTO device_update_state
         (device_id, at, state, current_version, target_version, channel, progress, error, received_at, changed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (device_id) DO UPDATE SET at = excluded.at, state = excluded.state,
         current_version = excluded.current_version, target_version = excluded.target_version,
         channel = excluded.channel, progress = excluded.progress, error = excluded.error,
         received_at = excluded.received_at, changed_at = excluded.changed_at
       WHERE device_update_state.at < excluded.at`,
      [
        args.deviceId,
        r.at,
        r.state,
        r.current,
        r.target ?? null,
        r.channel,
        r.progress ?? null,
        r.error ?? null,
        args.now,
        changedAt,
      ],
    );
    if (n === 0) {
      const again = await tx.get('SELECT * FROM device_update_state WHERE device_id = ?', [args.deviceId]);
      return { applied: false, stored: toStored(again!), reason: 'older' };
    }
    if (changed && AUDITED_UPDATE_STATES.includes(r.state))
      await insertAudit(tx, args.now, `device:${args.deviceId}`, 'device.update', args.deviceId, {
        state: r.state,
        current: r.current,
        ...(r.target !== undefined ? { target: r.target } : {}),
        channel: r.channel,
        ...(r.error !== undefined ? { error: r.error } : {}),
        at: r.at,
      });
    return {
      applied: true,
      stored: {
        at: r.at,
        state: r.state,
        current: r.current,
        target: r.target ?? null,
        channel: r.channel,
        progress: r.progress ?? null,
        error: r.error ?? null,
        receivedAt: args.now,
        changedAt,
      },
    };
  });
}

export async function getUpdateState(db: Db, deviceId: string): Promise<StoredUpdateState | undefined> {
  const r = await db.get('SELECT * FROM device_update_state WHERE device_id = ?', [deviceId]);
  return r ? toStored(r) : undefined;
}

/** A device's update card: what IT assigned (from its effective config) and what it reported. */
export async function deviceUpdateView(
  db: Db,
  deviceId: string,
  config: Record<string, unknown> | null,
): Promise<UpdatePolicy & { reported: StoredUpdateState | null; channelPending: boolean }> {
  const policy = updatePolicyOf(config);
  const reported = (await getUpdateState(db, deviceId)) ?? null;
  return { ...policy, reported, channelPending: reported !== null && reported.channel !== policy.channel };
}

// ── rollout summary ─────────────────────────────────────────────────────────────────────────

export interface ChannelRollout {
  channel: string;
  /** Active devices assigned to this channel (their effective config). */
  devices: number;
  /** Devices whose updates are paused. */
  paused: number;
  /** Devices whose last report names another channel (they have not applied the assignment yet). */
  channelPending: number;
  /** Running version → devices (the reported version, else the one the device enrolled/heartbeats with). */
  versions: Record<string, number>;
  /** Update state → devices ('unknown': never reported). */
  states: Record<string, number>;
  /** Newest release published in the hosted TUF repository, per architecture (when the service hosts it). */
  latest: Record<string, string>;
}

export interface RolloutProblem {
  deviceId: string;
  roomName: string | null;
  site: string | null;
  channel: string;
  state: UpdateStateName;
  current: string;
  target: string | null;
  error: string | null;
  at: string;
}

export interface RolloutSummary {
  channels: ChannelRollout[];
  /** Latest rolled-back / failed devices (at most 50), newest first. */
  problems: RolloutProblem[];
}

/** SQL of the assigned channel / paused flag, read from devices.config (JSON text) per dialect. */
function policySql(db: Db): { channel: string; paused: string } {
  return db.kind === 'postgres'
    ? {
        channel: "(d.config::jsonb #>> '{update,channel}')",
        paused: "(d.config::jsonb #>> '{update,paused}')",
      }
    : {
        channel: "json_extract(d.config, '$.update.channel')",
        paused: "json_extract(d.config, '$.update.paused')",
      };
}

const inc = (m: Record<string, number>, k: string, n: number) => {
  Object.defineProperty(m, k, {
    value: (Object.hasOwn(m, k) ? (m[k] as number) : 0) + n,
    enumerable: true,
    writable: true,
    configurable: true,
  });
};

/**
 * Per assigned channel: devices, versions and states; and the devices whose last update failed or
 * rolled back. One grouped scan of the active devices (optionally of one site).
 */
export async function rolloutSummary(
  db: Db,
  o: { site?: string; latest?: Map<string, Record<string, string>> } = {},
): Promise<RolloutSummary> {
  const p = policySql(db);
  const siteTerm = o.site !== undefined ? ' AND d.site = ?' : '';
  const params = o.site !== undefined ? [o.site] : [];
  const rows = await db.all(
    `SELECT ${p.channel} AS channel, ${p.paused} AS paused, u.channel AS reported_channel,
            COALESCE(u.current_version, d.software_version) AS version, COALESCE(u.state, 'unknown') AS state,
            COUNT(*) AS n
     FROM devices d LEFT JOIN device_update_state u ON u.device_id = d.id
     WHERE d.status = 'active'${siteTerm}
     GROUP BY ${p.channel}, ${p.paused}, u.channel, COALESCE(u.current_version, d.software_version),
       COALESCE(u.state, 'unknown')`,
    params,
  );
  const byChannel = new Map<string, ChannelRollout>();
  const entry = (channel: string) => {
    let e = byChannel.get(channel);
    if (!e) {
      e = {
        channel,
        devices: 0,
        paused: 0,
        channelPending: 0,
        versions: {},
        states: {},
        latest: o.latest?.get(channel) ?? {},
      };
      byChannel.set(channel, e);
    }
    return e;
  };
  for (const r of rows) {
    const raw = r.channel;
    const channel = typeof raw === 'string' && CHANNEL_RE.test(raw) ? raw : DEFAULT_CHANNEL;
    const n = Number(r.n);
    const e = entry(channel);
    e.devices += n;
    if (r.paused === 1 || r.paused === 'true' || r.paused === true) e.paused += n;
    if (
      r.reported_channel !== null &&
      r.reported_channel !== undefined &&
      String(r.reported_channel) !== channel
    )
      e.channelPending += n;
    inc(e.versions, String(r.version), n);
    inc(e.states, String(r.state), n);
  }
  // Channels with a release but no device yet still show (what a canary ring looks like at first).
  for (const c of o.latest?.keys() ?? []) if (CHANNEL_RE.test(c)) entry(c);
  const problemRows = await db.all(
    `SELECT d.id, d.room_name, d.site, u.channel, u.state, u.current_version, u.target_version, u.error, u.at
     FROM device_update_state u JOIN devices d ON d.id = u.device_id
     WHERE d.status = 'active' AND u.state IN (${PROBLEM_UPDATE_STATES.map(() => '?').join(', ')})${siteTerm}
     ORDER BY u.at DESC LIMIT 50`,
    [...PROBLEM_UPDATE_STATES, ...params],
  );
  return {
    channels: [...byChannel.values()].sort((a, b) =>
      a.channel < b.channel ? -1 : a.channel > b.channel ? 1 : 0,
    ),
    problems: problemRows.map((r) => ({
      deviceId: String(r.id),
      roomName: str(r.room_name),
      site: str(r.site),
      channel: String(r.channel),
      state: String(r.state) as UpdateStateName,
      current: String(r.current_version),
      target: str(r.target_version),
      error: str(r.error),
      at: String(r.at),
    })),
  };
}

// ── assigning channels (convenience over profiles and overrides) ────────────────────────────

export interface UpdatePolicyChange {
  channel?: string;
  /** null removes the window (updates at any time). */
  window?: { start: string; end: string } | null;
  paused?: boolean;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** `config` with its `update` key changed as asked (a copy; other keys untouched). */
export function withUpdatePolicy(
  config: Record<string, unknown>,
  change: UpdatePolicyChange,
): Record<string, unknown> {
  const cur = isPlainObject(config.update) ? { ...config.update } : {};
  const put = (k: string, v: unknown) =>
    Object.defineProperty(cur, k, { value: v, enumerable: true, writable: true, configurable: true });
  if (change.channel !== undefined) put('channel', change.channel);
  if (change.window === null) delete (cur as Record<string, unknown>).window;
  else if (change.window !== undefined) put('window', { start: change.window.start, end: change.window.end });
  if (change.paused !== undefined) put('paused', change.paused);
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(config))
    Object.defineProperty(out, k, { value: config[k], enumerable: true, writable: true, configurable: true });
  out.update = cur;
  return out;
}

/**
 * Sets the channel / window / pause of a site (its profile) or of one device (its override), in
 * one transaction: read, change the `update` key, write through putProfile / setDeviceOverride
 * (which recompute the devices' effective configs and audit as usual), plus an `update.policy`
 * audit row. Returns the devices whose configuration changed (the heartbeat cache forgets them).
 */
export async function setUpdatePolicy(
  db: Db,
  args: {
    target: { site: string } | { deviceId: string };
    change: UpdatePolicyChange;
    actor: string;
    tokenId: string | null;
    now: string;
  },
): Promise<{ changed: string[]; update: Record<string, unknown>; version: number }> {
  return db.transaction(async (tx) => {
    const lock = tx.kind === 'postgres' ? ' FOR UPDATE' : '';
    if ('site' in args.target) {
      const site = args.target.site;
      // Two admins at once on PostgreSQL: the second waits for the first (no lost update).
      if (tx.kind === 'postgres') await tx.get('SELECT pg_advisory_xact_lock(727014)');
      const row = await tx.get(`SELECT config FROM site_profiles WHERE site = ?${lock}`, [site]);
      const old = row ? (JSON.parse(String(row.config)) as Record<string, unknown>) : {};
      const config = withUpdatePolicy(old, args.change);
      const { profile, changed } = await putProfile(tx, {
        site,
        config,
        actor: args.actor,
        tokenId: args.tokenId,
        now: args.now,
      });
      await insertAudit(
        tx,
        args.now,
        args.actor,
        'update.policy',
        null,
        { site, ...args.change },
        args.tokenId,
      );
      return { changed, update: config.update as Record<string, unknown>, version: profile.version };
    }
    const deviceId = args.target.deviceId;
    const d = await tx.get(`SELECT status, config, config_override FROM devices WHERE id = ?${lock}`, [
      deviceId,
    ]);
    if (!d) throw new StoreConflict('unknown device');
    if (d.status !== 'active') throw new StoreConflict('only active devices take configuration');
    // Same rule as fleet-store's overrideOf: devices from before profiles kept their whole config.
    const old = (JSON.parse(String(d.config_override ?? d.config)) ?? {}) as Record<string, unknown>;
    const override = withUpdatePolicy(old, args.change);
    const r = await setDeviceOverride(tx, {
      deviceId,
      override,
      actor: args.actor,
      tokenId: args.tokenId,
      now: args.now,
    });
    await insertAudit(tx, args.now, args.actor, 'update.policy', deviceId, { ...args.change }, args.tokenId);
    return {
      changed: r.changed ? [deviceId] : [],
      update: override.update as Record<string, unknown>,
      version: r.configVersion,
    };
  });
}
