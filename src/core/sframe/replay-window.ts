// Per-KID anti-replay window: the sliding window of RFC 4303 §3.4.3, which RFC 9605 leaves to the application.
// It remembers the highest counter accepted and which of the `size` counters below it were seen.
// `check` never changes state; `accept` is called only after the frame authenticated, so a forged
// frame cannot move the window or burn a counter.

import { SFrameError } from './errors.js';

export const DEFAULT_REPLAY_WINDOW = 128;
/** Upper bound on the window, to keep the per-KID state small. */
export const MAX_REPLAY_WINDOW = 65_536;

export class ReplayWindow {
  readonly size: number;
  /** seen[ctr mod size] for counters in (highest − size, highest]. */
  private readonly seen: Uint8Array;
  private readonly sizeBig: bigint;
  private highest = -1n;

  constructor(size: number = DEFAULT_REPLAY_WINDOW) {
    if (!Number.isInteger(size) || size < 0 || size > MAX_REPLAY_WINDOW) {
      throw new RangeError(`replay window must be an integer in [0, ${MAX_REPLAY_WINDOW}], got ${size}`);
    }
    this.size = size;
    this.sizeBig = BigInt(size);
    this.seen = new Uint8Array(Math.max(size, 1));
  }

  /** The highest accepted counter, or undefined before the first. */
  get highestAccepted(): bigint | undefined {
    return this.highest < 0n ? undefined : this.highest;
  }

  /** Throws REPLAY or TOO_OLD if `ctr` must be refused. */
  check(ctr: bigint): void {
    if (ctr > this.highest) return;
    const behind = this.highest - ctr;
    if (behind >= this.sizeBig) {
      throw new SFrameError(
        'TOO_OLD',
        `counter ${ctr} is behind the replay window (highest ${this.highest})`,
      );
    }
    if (this.seen[this.slot(ctr)] === 1)
      throw new SFrameError('REPLAY', `counter ${ctr} was already accepted`);
  }

  /** Records an authenticated `ctr` (which passed `check`). */
  accept(ctr: bigint): void {
    if (this.size === 0) {
      this.highest = ctr;
      return;
    }
    if (ctr > this.highest) {
      const gap = ctr - this.highest;
      if (gap >= this.sizeBig || this.highest < 0n) {
        this.seen.fill(0);
      } else {
        // Counters skipped over become unseen slots inside the window.
        for (let c = this.highest + 1n; c < ctr; c++) this.seen[this.slot(c)] = 0;
      }
      this.highest = ctr;
    }
    this.seen[this.slot(ctr)] = 1;
  }

  private slot(ctr: bigint): number {
    return Number(ctr % this.sizeBig);
  }
}
