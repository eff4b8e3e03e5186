// What the relay allows one connection, one address and everyone together, before and after
// authentication (docs/relay.md, "Limits"). Plain data and two small counters; the server applies them.

export interface RelayLimits {
  /** Close (4408) a socket that has not authenticated within this time. */
  authTimeoutMs: number;
  /** Largest frame accepted before authentication (an `auth` message is a few KiB); larger → close 1009. */
  preAuthMaxBytes: number;
  /** Open WebSocket connections in total (authenticated or not); more → close 1013. */
  maxConnections: number;
  /** Open WebSocket connections from one remote address; more → close 1013. */
  maxConnectionsPerAddress: number;
  /** Sustained messages per second per authenticated connection (token bucket refill rate). */
  messagesPerSecond: number;
  /** Messages a connection may send at once before the sustained rate applies (bucket size). */
  messageBurst: number;
}

export const DEFAULT_RELAY_LIMITS: Readonly<RelayLimits> = Object.freeze({
  authTimeoutMs: 5000,
  preAuthMaxBytes: 16 * 1024,
  maxConnections: 2000,
  maxConnectionsPerAddress: 20,
  messagesPerSecond: 50,
  messageBurst: 200,
});

/**
 * Frames a connection may send before its authentication completes: the `auth` and a ping or two.
 * One more closes it (4401), so an unauthenticated socket cannot queue work behind a slow verify.
 */
export const PRE_AUTH_MAX_MESSAGES = 4;

/**
 * Refusals for rate a connection may earn beyond the sustained rate before it is closed (4429): a
 * second bucket of this size, refilled at `messagesPerSecond`, pays for each refused message. A
 * client a little over the rate is only throttled; one flooding far over it (10× the rate: in ~2.5 s)
 * is cut, since a meeting client never does that.
 */
export const RATE_LIMIT_CLOSE_AFTER = 1000;

/**
 * Bulletin-board messages that cost the leader dear: a binding (a signature and a certificate chain
 * to verify) and a resync (the leader answers with its list, a heartbeat and a key — a flood of them
 * is amplified). A meeting client posts a binding on join and again every 10 s while waiting, and
 * asks for a resync at most every 2 s; each connection may post these at 1/s after a burst of 10.
 */
/**
 * A leader fans out: every join, leave and periodic rekey makes it send a wrapped key and list
 * entries to each member. Its message allowance (rate and burst) is multiplied by
 * 1 + members × LEADER_ALLOWANCE_PER_MEMBER, so a 100-member meeting's leader gets 51× the base.
 */
export const LEADER_ALLOWANCE_PER_MEMBER = 0.5;

export const COSTLY_E2EE_TYPES: ReadonlySet<string> = new Set(['e2ee.binding', 'e2ee.resync']);
export const COSTLY_E2EE_PER_SECOND = 1;
export const COSTLY_E2EE_BURST = 10;

/**
 * `share` on/off (issue 12): each change sends every member a roster (certificates included), so a
 * person toggling fast would make the relay send N rosters per toggle. A screen share starts and
 * stops a few times a meeting; 1/s after a burst of 5 is plenty.
 */
export const SHARE_PER_SECOND = 1;
export const SHARE_BURST = 5;

/** Close codes the relay uses (docs/relay.md, "Close codes"). */
export const CLOSE = Object.freeze({
  tooLarge: 1009,
  tryAgainLater: 1013,
  authenticationFailed: 4401,
  /** Certificate revoked or expired during the session (the reason says which). */
  revoked: 4403,
  expired: 4403,
  authTimeout: 4408,
  rateLimited: 4429,
  /**
   * Clustered relay: this node no longer hosts the meeting (drained, or it was placed on another node
   * while this one was unreachable). Reconnect through an entry node and resume.
   */
  moved: 4012,
});

export function resolveLimits(overrides: Partial<RelayLimits> = {}): RelayLimits {
  const limits: RelayLimits = { ...DEFAULT_RELAY_LIMITS };
  for (const key of Object.keys(DEFAULT_RELAY_LIMITS) as (keyof RelayLimits)[]) {
    const value = overrides[key];
    if (value === undefined) continue;
    if (!Number.isFinite(value) || value <= 0) throw new RangeError(`relay limit ${key} must be > 0`);
    limits[key] = value;
  }
  return limits;
}

/** A token bucket: `burst` tokens, refilled at `ratePerSecond`; each message takes one. */
export class TokenBucket {
  #tokens: number;
  #last: number;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    readonly now: () => number = () => performance.now(),
  ) {
    this.#tokens = burst;
    this.#last = now();
  }

  /** scale ≥ 1 multiplies both the rate and the burst (a leader's allowance grows with its meeting). */
  take(scale = 1): boolean {
    const t = this.now();
    this.#tokens = Math.min(
      this.burst * scale,
      this.#tokens + ((t - this.#last) / 1000) * this.ratePerSecond * scale,
    );
    this.#last = t;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

/** Open connections per remote address. */
export class AddressCounter {
  readonly #counts = new Map<string, number>();

  count(address: string): number {
    return this.#counts.get(address) ?? 0;
  }

  add(address: string): void {
    this.#counts.set(address, this.count(address) + 1);
  }

  remove(address: string): void {
    const n = this.count(address) - 1;
    if (n > 0) this.#counts.set(address, n);
    else this.#counts.delete(address);
  }

  get addresses(): number {
    return this.#counts.size;
  }
}

/**
 * One key per client for the per-address cap: an IPv4 address (IPv4-mapped IPv6 counts as IPv4),
 * or for IPv6 its /64 prefix — one host commonly holds a whole /64, so counting single IPv6
 * addresses would let it open as many connections as it likes.
 */
export function addressKey(remoteAddress: string | undefined): string {
  if (!remoteAddress) return 'unknown';
  const lower = remoteAddress.toLowerCase();
  if (lower.startsWith('::ffff:') && lower.includes('.')) return lower.slice(7);
  if (!lower.includes(':')) return lower;
  const groups = expandIpv6(lower.split('%')[0] ?? lower);
  return groups ? `${groups.slice(0, 4).join(':')}::/64` : lower;
}

/** The eight 16-bit groups of an IPv6 address (without leading zeros), or undefined if malformed. */
function expandIpv6(address: string): string[] | undefined {
  const halves = address.split('::');
  if (halves.length > 2) return undefined;
  const part = (h: string | undefined) => (h ? h.split(':') : []);
  const head = part(halves[0]);
  const tail = part(halves[1]);
  // An embedded IPv4 tail (::ffff:1.2.3.4 was handled above; others are rare) counts as two groups.
  const last = tail.length > 0 ? tail : head;
  if (last.at(-1)?.includes('.')) last.splice(-1, 1, '0', '0');
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  if (groups.some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return undefined;
  return groups.map((g) => g.replace(/^0+(?=.)/, ''));
}
