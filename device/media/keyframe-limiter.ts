// Rate limit for keyframes forced at a receiver's request (PLI/FIR, the SFU on behalf of a new
// subscriber, the daemon). A receiver that cannot decode sends a PLI every few hundred ms, and several
// receivers each send their own: honouring each one with a fresh keyframe floods the uplink with
// keyframes (116 in 12 s against one browser, docs/interop.md). At most one requested keyframe per
// interval; a request inside the interval is coalesced into one deferred keyframe at its end, so every
// requester still gets a keyframe no later than one interval after asking. Keyframes the engine forces
// for its own reasons (new epoch, camera back, slate) are never held back, but count as the answer to
// any request made before them. Pure: the caller passes the time and runs the timer.

export type KeyframeDecision =
  | { action: 'force' }
  /** Force one in `inMs`, then call fire() to confirm it is still needed. */
  | { action: 'schedule'; inMs: number }
  /** A deferred keyframe is already scheduled; it answers this request too. */
  | { action: 'coalesced' };

export const KEYFRAME_MIN_INTERVAL_MS = 500;

export class KeyframeLimiter {
  #lastForced = Number.NEGATIVE_INFINITY;
  /** When the deferred keyframe is due, and the latest request it answers. */
  #pending: { dueAt: number; lastRequest: number } | undefined;

  constructor(readonly minIntervalMs = KEYFRAME_MIN_INTERVAL_MS) {}

  /** A receiver asked for a keyframe at `now` (ms, monotonic). */
  request(now: number): KeyframeDecision {
    const p = this.#pending;
    // A deferred keyframe whose timer never ran (engine stopped) must not swallow requests for ever.
    if (p && now <= p.dueAt + this.minIntervalMs) {
      p.lastRequest = now;
      return { action: 'coalesced' };
    }
    this.#pending = undefined;
    if (now - this.#lastForced >= this.minIntervalMs) return { action: 'force' };
    const dueAt = this.#lastForced + this.minIntervalMs;
    this.#pending = { dueAt, lastRequest: now };
    return { action: 'schedule', inMs: dueAt - now };
  }

  /** The deferred keyframe's timer ran: true if it must still be forced (none went out since the request). */
  fire(): boolean {
    const p = this.#pending;
    this.#pending = undefined;
    return p !== undefined && this.#lastForced < p.lastRequest;
  }

  /** A keyframe was forced at `now`, for whatever reason. */
  forced(now: number): void {
    this.#lastForced = now;
  }
}
