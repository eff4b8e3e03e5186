// The alert engine: evaluates rules (./rules.ts) into incidents (./incidents.ts) and delivers their
// events (./deliveries.ts, ./email.ts). Health rules (peripheral missing, temperature, self-test)
// run on every flushed heartbeat batch; offline and certificate-expiring run on a timer as SQL over
// indexed columns. An in-memory map of unresolved incidents keeps the heartbeat path write-free
// while nothing changes; it is re-read on every timer round, so changes made by other instances are
// picked up (and a stale entry only costs one no-op statement).
import type { FastifyInstance } from 'fastify';
import {
  type AlertRule,
  clearedCandidates,
  type DeviceRow,
  deviceRow,
  ensureDefaultRules,
  expiryCandidates,
  findUnresolved,
  incidentKey,
  listRules,
  offlineCandidates,
  orphanedIncidents,
  openIncident,
  resolveIncident,
  rulesVersion,
  unresolvedKeys,
} from '../store/alerts-store.js';
import type { Db } from '../store/db.js';
import type { ResolvedOptions } from '../service/app.js';
import type { FlushedHeartbeat } from '../service/heartbeats.js';
import { DEFAULT_BACKOFF_MS, deliverDue } from './deliveries.js';
import { createMailer, DEFAULT_MAIL_FROM, type Mailer } from './email.js';
import { step } from './incidents.js';
import {
  type Condition,
  DEFAULT_PARAMS,
  evaluateCertificate,
  evaluateHealthRule,
  evaluateOffline,
  expiryCutoff,
  HEALTH_RULES,
  offlineCutoff,
  parseParams,
  type RuleKind,
  type RuleParams,
} from './rules.js';

export interface AlertOptions {
  /** SMTP server for e-mail targets, e.g. smtp://127.0.0.1:2525 (none: e-mail targets stay pending). */
  smtpUrl?: string;
  /** From address of alert e-mails (default "Sealroom alerts <alerts@sealroom.invalid>"). */
  mailFrom?: string;
  /** How often offline and certificate rules are evaluated (default 30 s). */
  evaluateIntervalMs?: number;
  /** How often due deliveries are attempted (default 2 s). */
  deliveryIntervalMs?: number;
  /** Wait before retry n (ms); after the last a delivery goes to the dead-letter list. */
  retryBackoffMs?: number[];
  /** Per-attempt timeout (default 10 s). */
  deliveryTimeoutMs?: number;
}

export interface AlertEngine {
  /** Runs the periodic rules now (tests). */
  evaluateNow(): Promise<void>;
  /** Attempts due deliveries now (tests). */
  deliverNow(): Promise<void>;
  close(): Promise<void>;
}

/** The engine plus its heartbeat entry point (startAlerts wires it to the heartbeat pipeline). */
export interface AlertEngineCore extends AlertEngine {
  /** Evaluates the health rules on a flushed batch. Never throws. */
  onHeartbeats(batch: FlushedHeartbeat[]): Promise<void>;
}

export interface EngineDeps extends AlertOptions {
  db: Db;
  now: () => Date;
  publicUrl: string;
  log?: { warn(obj: unknown, msg: string): void };
  /** Start the timers (default true; false: only the *Now methods run). */
  timers?: boolean;
}

/** Devices per timer round and rule: a fleet going dark all at once is worked off over rounds. */
const ROUND_LIMIT = 2000;
const TIMER_RULES = ['offline', 'certificate-expiring'] as const;

declare module 'fastify' {
  interface FastifyInstance {
    /** The alert engine (tests call alertEngine.evaluateNow() / deliverNow()). */
    alertEngine: AlertEngine;
  }
}

export function startAlerts(
  app: FastifyInstance,
  opts: ResolvedOptions,
  options: AlertOptions = {},
): AlertEngine {
  const engine = createAlertEngine({
    ...options,
    db: opts.store.db,
    now: opts.now,
    publicUrl: opts.publicUrl,
    log: app.log,
  });
  // The pipeline awaits its listeners: after heartbeats.flush() the health rules have run.
  opts.heartbeats.onFlush((batch) => engine.onHeartbeats(batch));
  app.decorate('alertEngine', engine);
  return engine;
}

export function createAlertEngine(deps: EngineDeps): AlertEngineCore {
  const { db, now } = deps;
  const log = deps.log;
  const evaluateIntervalMs = deps.evaluateIntervalMs ?? 30_000;
  const deliveryIntervalMs = deps.deliveryIntervalMs ?? 2000;
  const mailer: Mailer | undefined = deps.smtpUrl
    ? createMailer({
        smtpUrl: deps.smtpUrl,
        from: deps.mailFrom ?? DEFAULT_MAIL_FROM,
        publicUrl: deps.publicUrl.replace(/\/$/, ''),
        timeoutMs: deps.deliveryTimeoutMs ?? 10_000,
      })
    : undefined;
  const delivery = {
    db,
    now,
    backoffMs: deps.retryBackoffMs ?? DEFAULT_BACKOFF_MS,
    timeoutMs: deps.deliveryTimeoutMs ?? 10_000,
    ...(mailer ? { mailer } : {}),
    ...(log ? { log } : {}),
  };
  let closed = false;
  const ready = ensureDefaultRules(db, now().toISOString());
  ready.catch((err) => log?.warn({ err }, 'alert rules could not be seeded'));

  // ── rules cache: re-read when this process changed one, else at most every few seconds ──
  let rules:
    | { version: number; at: number; byKind: Map<RuleKind, { enabled: boolean; params: unknown }> }
    | undefined;
  const rulesTtlMs = Math.min(evaluateIntervalMs, 5000);
  async function currentRules() {
    const t = now().getTime();
    if (!rules || rules.version !== rulesVersion(db) || t - rules.at >= rulesTtlMs || t < rules.at) {
      const version = rulesVersion(db);
      const list: AlertRule[] = await listRules(db);
      const byKind = new Map<RuleKind, { enabled: boolean; params: unknown }>();
      for (const r of list) {
        // A row edited by hand into nonsense falls back to the defaults instead of stopping alerts.
        const p = parseParams(r.kind, r.params);
        byKind.set(r.kind, {
          enabled: r.enabled,
          params: typeof p === 'string' ? DEFAULT_PARAMS[r.kind] : p,
        });
      }
      rules = { version, at: t, byKind };
    }
    return rules.byKind;
  }

  // ── unresolved incidents of heartbeat-driven rules (and offline: a heartbeat clears it) ──
  let open = new Map<string, string>();
  /** The rules version the map was read at (-1: never): a rule change here may have resolved some. */
  let openAt = -1;
  async function refreshOpen() {
    const version = rulesVersion(db);
    open = await unresolvedKeys(db, [...HEALTH_RULES, 'offline']);
    openAt = version;
  }

  /** Applies one condition of (rule, device); true when an incident changed. */
  async function apply(rule: RuleKind, deviceId: string, c: Condition): Promise<boolean> {
    const key = incidentKey(rule, deviceId);
    const known = open.get(key);
    const s = step(known ? { id: known, status: 'open' } : undefined, c);
    if (s.do === 'none' || c.state === 'unknown') return false;
    const t = now().toISOString();
    if (s.do === 'resolve') {
      open.delete(key);
      return (await resolveIncident(db, s.id, t)) !== null;
    }
    if (c.state !== 'on') return false;
    const opened = await openIncident(db, {
      rule,
      deviceId,
      summary: c.summary,
      details: c.details,
      nowIso: t,
    });
    if (opened) {
      open.set(key, opened.id);
      return true;
    }
    // Another instance (or an earlier round we did not cache) opened it: remember it.
    const existing = await findUnresolved(db, rule, deviceId);
    if (existing) open.set(key, existing.id);
    return false;
  }

  async function onHeartbeats(batch: FlushedHeartbeat[]): Promise<void> {
    if (closed || batch.length === 0) return;
    let changed = false;
    try {
      await ready;
      if (openAt !== rulesVersion(db)) await refreshOpen();
      const byKind = await currentRules();
      for (const hb of batch) {
        try {
          changed = (await evaluateHeartbeat(hb, byKind)) || changed;
        } catch (err) {
          log?.warn({ err, deviceId: hb?.deviceId }, 'alert evaluation of a heartbeat failed');
        }
      }
    } catch (err) {
      log?.warn({ err }, 'alert evaluation of heartbeats failed');
    }
    if (changed) kick();
  }

  async function evaluateHeartbeat(
    hb: FlushedHeartbeat,
    byKind: Map<RuleKind, { enabled: boolean; params: unknown }>,
  ): Promise<boolean> {
    if (typeof hb?.deviceId !== 'string') return false;
    let changed = false;
    let device: DeviceRow | undefined;
    for (const kind of HEALTH_RULES) {
      const rule = byKind.get(kind);
      if (!rule?.enabled) continue;
      // The label (room, site) is only needed to open an incident: read the device lazily.
      const label = {
        id: hb.deviceId,
        status: 'active' as const,
        roomName: device?.roomName,
        site: device?.site,
      };
      let c = evaluateHealthRule(kind, rule.params, label, hb.health);
      if (c.state === 'on' && !open.has(incidentKey(kind, hb.deviceId)) && !device) {
        device = await deviceRow(db, hb.deviceId);
        c = evaluateHealthRule(
          kind,
          rule.params,
          { ...label, roomName: device?.roomName, site: device?.site },
          hb.health,
        );
      }
      changed = (await apply(kind, hb.deviceId, c)) || changed;
    }
    // A heartbeat is the end of "offline" (the timer would also see it, a round later).
    const offline = byKind.get('offline');
    const openOffline = open.get(incidentKey('offline', hb.deviceId));
    if (openOffline && offline?.enabled && typeof hb.signedAt === 'string') {
      const c = evaluateOffline(
        offline.params as RuleParams['offline'],
        { id: hb.deviceId, status: 'active', lastSeenAt: hb.signedAt },
        now(),
      );
      changed = (await apply('offline', hb.deviceId, c)) || changed;
    }
    return changed;
  }

  async function evaluateTimerRules(): Promise<void> {
    if (closed) return;
    await ready;
    const byKind = await currentRules();
    let changed = false;
    const t = now();
    for (const kind of TIMER_RULES) {
      const rule = byKind.get(kind);
      if (!rule?.enabled) continue;
      const isOffline = kind === 'offline';
      const cutoff = isOffline
        ? offlineCutoff(rule.params as RuleParams['offline'], t)
        : expiryCutoff(rule.params as RuleParams['certificate-expiring'], t);
      const evaluate = (d: DeviceRow): Condition =>
        isOffline
          ? evaluateOffline(rule.params as RuleParams['offline'], d, t)
          : evaluateCertificate(rule.params as RuleParams['certificate-expiring'], d, t);
      const candidates = isOffline
        ? await offlineCandidates(db, cutoff, ROUND_LIMIT)
        : await expiryCandidates(db, cutoff, ROUND_LIMIT);
      for (const d of candidates) {
        const c = evaluate(d);
        if (c.state !== 'on') continue;
        const opened = await openIncident(db, {
          rule: kind,
          deviceId: d.id,
          summary: c.summary,
          details: c.details,
          nowIso: now().toISOString(),
        });
        if (opened) changed = true;
      }
      for (const { incidentId, device } of await clearedCandidates(db, kind, cutoff)) {
        // The SQL found it cleared; the rule function has the last word (device gone: resolve).
        if (device && evaluate(device).state !== 'off') continue;
        if (await resolveIncident(db, incidentId, now().toISOString())) changed = true;
      }
    }
    // A revoked, decommissioned or deleted device no longer reports: nothing of it stays open.
    for (const id of await orphanedIncidents(db)) {
      if (await resolveIncident(db, id, now().toISOString())) changed = true;
    }
    await refreshOpen();
    if (changed) kick();
  }

  // One evaluation and one delivery round at a time; a *Now call waits for the running one.
  let evaluating: Promise<void> = Promise.resolve();
  let delivering: Promise<void> = Promise.resolve();
  const evaluateNow = () => {
    evaluating = evaluating.then(evaluateTimerRules).catch((err) => {
      if (!closed) log?.warn({ err }, 'alert rule evaluation failed');
    });
    return evaluating;
  };
  const deliverNow = () => {
    delivering = delivering
      .then(async () => {
        if (!closed) await deliverDue(delivery);
      })
      .catch((err) => {
        if (!closed) log?.warn({ err }, 'alert delivery round failed');
      });
    return delivering;
  };
  // New outbox rows: try them now rather than at the next tick.
  const kick = () => {
    if (!closed) setImmediate(() => void deliverNow());
  };

  const timers: NodeJS.Timeout[] = [];
  if (deps.timers !== false) {
    timers.push(setInterval(() => void evaluateNow(), evaluateIntervalMs).unref());
    timers.push(setInterval(() => void deliverNow(), deliveryIntervalMs).unref());
    setImmediate(() => void evaluateNow());
  }

  return {
    onHeartbeats,
    evaluateNow,
    deliverNow,
    async close() {
      if (closed) return;
      closed = true;
      for (const t of timers) clearInterval(t);
      await Promise.allSettled([evaluating, delivering]);
      mailer?.close();
    },
  };
}
