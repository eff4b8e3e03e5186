// The active speaker, from each far sender's decoded audio level. Pure: the caller passes levels and
// the time. A sender becomes the active speaker once it has been the loudest one above the floor for
// `holdMs` without interruption; silence (nobody above the floor) keeps the last speaker.

export const SPEAKER_FLOOR_DBOV = -50;
export const SPEAKER_HOLD_MS = 1500;
/** A level older than this counts as silence (the sender stopped sending audio). */
const LEVEL_STALE_MS = 500;

/** RMS level of mono S16LE samples in dB relative to full scale (a full-scale square wave is 0). */
export function dbov(pcm: Uint8Array): number {
  const n = Math.floor(pcm.length / 2);
  if (n === 0) return Number.NEGATIVE_INFINITY;
  const view = new DataView(pcm.buffer, pcm.byteOffset, n * 2);
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const x = view.getInt16(i * 2, true) / 32768;
    sum += x * x;
  }
  return sum > 0 ? 10 * Math.log10(sum / n) : Number.NEGATIVE_INFINITY;
}

export class ActiveSpeakerPicker {
  readonly #levels = new Map<number, { dbov: number; at: number }>();
  #active: number | undefined;
  #candidate: { sender: number; since: number } | undefined;

  constructor(
    readonly floorDbov = SPEAKER_FLOOR_DBOV,
    readonly holdMs = SPEAKER_HOLD_MS,
  ) {}

  get active(): number | undefined {
    return this.#active;
  }

  /** A level measurement of `sender` at `now` (ms); returns the active speaker after it. */
  level(sender: number, level: number, now: number): number | undefined {
    this.#levels.set(sender, { dbov: level, at: now });
    return this.pick(now);
  }

  /** The sender is gone: forget it (and if it was the active speaker, nobody is). */
  forget(sender: number): void {
    this.#levels.delete(sender);
    if (this.#active === sender) this.#active = undefined;
    if (this.#candidate?.sender === sender) this.#candidate = undefined;
  }

  pick(now: number): number | undefined {
    let loudest: number | undefined;
    let best = this.floorDbov;
    for (const [sender, l] of this.#levels) {
      if (now - l.at > LEVEL_STALE_MS) continue;
      if (l.dbov > best) {
        best = l.dbov;
        loudest = sender;
      }
    }
    // Silence keeps the last speaker; the speaker being loudest again ends any contest.
    if (loudest === undefined || loudest === this.#active) {
      this.#candidate = undefined;
      return this.#active;
    }
    if (this.#candidate?.sender !== loudest) this.#candidate = { sender: loudest, since: now };
    if (now - this.#candidate.since >= this.holdMs) {
      this.#active = loudest;
      this.#candidate = undefined;
    }
    return this.#active;
  }
}
