// Alert rules as pure functions: given a rule's params and what the service knows about a device
// (its status, last heartbeat time, certificate expiry, or the health it just reported), is the
// rule's condition on, off, or unknown (the report says nothing about it)? No I/O, no clock: the
// engine passes `now`. Health comes from devices, so it is attacker-controlled: every reader here
// accepts any JSON value and never throws.

export const RULE_KINDS = [
  'offline',
  'peripheral-missing',
  'temperature',
  'certificate-expiring',
  'selftest-failed',
] as const;
export type RuleKind = (typeof RULE_KINDS)[number];

/** Rules evaluated from each flushed heartbeat (the others run on the engine's timer). */
export const HEALTH_RULES: readonly RuleKind[] = ['peripheral-missing', 'temperature', 'selftest-failed'];

export interface RuleParams {
  offline: { minutes: number };
  'peripheral-missing': Record<string, never>;
  temperature: { celsius: number };
  'certificate-expiring': { days: number };
  'selftest-failed': Record<string, never>;
}

export const DEFAULT_PARAMS: { [K in RuleKind]: RuleParams[K] } = {
  offline: { minutes: 10 },
  'peripheral-missing': {},
  temperature: { celsius: 80 },
  'certificate-expiring': { days: 14 },
  'selftest-failed': {},
};

/** Bounds of each numeric parameter (inclusive). */
export const PARAM_BOUNDS = {
  offline: { minutes: { min: 1, max: 7 * 24 * 60, integer: true } },
  temperature: { celsius: { min: -40, max: 200, integer: false } },
  'certificate-expiring': { days: { min: 1, max: 365, integer: true } },
} as const;

export function isRuleKind(v: unknown): v is RuleKind {
  return typeof v === 'string' && (RULE_KINDS as readonly string[]).includes(v);
}

/**
 * Validates params for a kind: the params object, or a message for the caller. Only the kind's own
 * keys are accepted (a typo must not silently keep the old threshold).
 */
export function parseParams<K extends RuleKind>(kind: K, input: unknown): RuleParams[K] | string {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) return 'params must be an object';
  const bounds = (
    PARAM_BOUNDS as Record<string, Record<string, { min: number; max: number; integer: boolean }>>
  )[kind];
  const allowed = bounds ? Object.keys(bounds) : [];
  const out: Record<string, number> = {};
  for (const [key, value] of Object.entries(input)) {
    const b = bounds?.[key];
    if (!b) return allowed.length ? `${kind} takes only ${allowed.join(', ')}` : `${kind} takes no params`;
    if (typeof value !== 'number' || !Number.isFinite(value) || (b.integer && !Number.isInteger(value)))
      return `${key} must be ${b.integer ? 'an integer' : 'a number'} from ${b.min} to ${b.max}`;
    if (value < b.min || value > b.max) return `${key} must be from ${b.min} to ${b.max}`;
    out[key] = value;
  }
  // Missing keys keep the default (a PUT may change only the one it names).
  return { ...(DEFAULT_PARAMS[kind] as object), ...out } as RuleParams[K];
}

export type Condition =
  | { state: 'on'; summary: string; details: Record<string, unknown> }
  | { state: 'off' }
  | { state: 'unknown' };

const OFF: Condition = { state: 'off' };
const UNKNOWN: Condition = { state: 'unknown' };

/** A device's name in summaries: its room (and site), else its id. Control characters removed. */
export function deviceLabel(d: { id: string; roomName?: string | null; site?: string | null }): string {
  const room = clean(d.roomName, 80);
  const site = clean(d.site, 80);
  if (room && site) return `${room} (${site})`;
  return room ?? d.id;
}

function clean(v: unknown, max: number): string | null {
  if (typeof v !== 'string') return null;
  const s = v.replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').trim();
  return s ? s.slice(0, max) : null;
}

const DAY_MS = 86_400_000;

/** Heartbeats older than this (ISO) mean offline; the engine's SQL selects last_seen_at < this. */
export function offlineCutoff(p: RuleParams['offline'], now: Date): string {
  return new Date(now.getTime() - p.minutes * 60_000).toISOString();
}

/** Certificates ending before this (ISO) are expiring. */
export function expiryCutoff(p: RuleParams['certificate-expiring'], now: Date): string {
  return new Date(now.getTime() + p.days * DAY_MS).toISOString();
}

export interface DeviceState {
  id: string;
  status: string;
  roomName?: string | null;
  site?: string | null;
  lastSeenAt?: string | null;
  certNotAfter?: string | null;
}

/** Offline: an ACTIVE device that has been seen at least once and not for `minutes`. */
export function evaluateOffline(p: RuleParams['offline'], d: DeviceState, now: Date): Condition {
  if (d.status !== 'active' || !d.lastSeenAt) return OFF;
  const seen = Date.parse(d.lastSeenAt);
  if (!Number.isFinite(seen)) return UNKNOWN;
  const silentMs = now.getTime() - seen;
  if (silentMs < p.minutes * 60_000) return OFF;
  const minutes = Math.floor(silentMs / 60_000);
  return {
    state: 'on',
    summary: `${deviceLabel(d)} offline for ${minutes} min`,
    details: { lastSeenAt: d.lastSeenAt, minutes: p.minutes },
  };
}

/** Certificate expiring: an ACTIVE device whose certificate ends within `days` (or has ended). */
export function evaluateCertificate(
  p: RuleParams['certificate-expiring'],
  d: DeviceState,
  now: Date,
): Condition {
  if (d.status !== 'active' || !d.certNotAfter) return OFF;
  const end = Date.parse(d.certNotAfter);
  if (!Number.isFinite(end)) return UNKNOWN;
  const leftMs = end - now.getTime();
  if (leftMs >= p.days * DAY_MS) return OFF;
  const daysLeft = Math.floor(leftMs / DAY_MS);
  return {
    state: 'on',
    summary:
      leftMs <= 0
        ? `${deviceLabel(d)} certificate expired`
        : `${deviceLabel(d)} certificate expires in ${daysLeft} day${daysLeft === 1 ? '' : 's'}`,
    details: { certNotAfter: d.certNotAfter, daysLeft, days: p.days },
  };
}

const PERIPHERALS = ['camera', 'microphone', 'speaker', 'display', 'hid'] as const;

/** Missing peripheral kinds a report names (known kinds, each once, in order); null: no valid list. */
export function missingPeripherals(health: unknown): string[] | null {
  const p = field(field(health, 'peripherals'), 'missing');
  // A malformed list says nothing (it must not clear an incident); unknown kinds are ignored.
  if (!Array.isArray(p) || p.length > 64 || !p.every((v) => typeof v === 'string')) return null;
  const set = new Set<string>();
  for (const v of p) if ((PERIPHERALS as readonly string[]).includes(v)) set.add(v);
  return PERIPHERALS.filter((k) => set.has(k));
}

function field(v: unknown, key: string): unknown {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)[key]
    : undefined;
}

/** Peripheral missing: the heartbeat lists a camera, microphone, speaker, display or HID as missing. */
export function evaluatePeripherals(d: DeviceState, health: unknown): Condition {
  const missing = missingPeripherals(health);
  if (missing === null) return UNKNOWN;
  if (missing.length === 0) return OFF;
  return {
    state: 'on',
    summary: `${deviceLabel(d)}: ${missing.join(', ')} missing`,
    details: { missing },
  };
}

/** Temperature above `celsius` (strictly). A report without a finite temperature says nothing. */
export function evaluateTemperature(
  p: RuleParams['temperature'],
  d: DeviceState,
  health: unknown,
): Condition {
  const t = field(health, 'temperatureC');
  // Beyond the schema's range is garbage, not a fire.
  if (typeof t !== 'number' || !Number.isFinite(t) || t < -100 || t > 300) return UNKNOWN;
  if (t <= p.celsius) return OFF;
  return {
    state: 'on',
    summary: `${deviceLabel(d)} at ${Math.round(t * 10) / 10} °C (above ${p.celsius} °C)`,
    details: { temperatureC: t, celsius: p.celsius },
  };
}

/** Self-test failed at boot: `selfTest.ok === false`; the failed checks are named in the summary. */
export function evaluateSelfTest(d: DeviceState, health: unknown): Condition {
  const st = field(health, 'selfTest');
  const ok = field(st, 'ok');
  if (typeof ok !== 'boolean') return UNKNOWN;
  if (ok) return OFF;
  const raw = field(st, 'failed');
  const failed = Array.isArray(raw)
    ? raw
        .slice(0, 16)
        .map((v) => clean(v, 60))
        .filter((v): v is string => v !== null)
    : [];
  const at = field(st, 'at');
  return {
    state: 'on',
    summary: `${deviceLabel(d)} self-test failed${failed.length ? `: ${failed.join(', ')}` : ''}`,
    details: { failed, ...(typeof at === 'string' && at.length <= 40 ? { at } : {}) },
  };
}

/** One health rule against one heartbeat's health (never throws, whatever `health` is). */
export function evaluateHealthRule(
  kind: RuleKind,
  params: unknown,
  d: DeviceState,
  health: unknown,
): Condition {
  try {
    switch (kind) {
      case 'peripheral-missing':
        return evaluatePeripherals(d, health);
      case 'temperature':
        return evaluateTemperature(params as RuleParams['temperature'], d, health);
      case 'selftest-failed':
        return evaluateSelfTest(d, health);
      default:
        return UNKNOWN;
    }
  } catch {
    // A getter or proxy cannot reach here from JSON, but an engine must not stop on one report.
    return UNKNOWN;
  }
}
