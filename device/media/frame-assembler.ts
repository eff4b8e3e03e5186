// Reorders one RTP stream's packets and cuts them into frames: a frame is every packet after the
// previous frame's marker packet up to and including the next marker, all with one RTP timestamp.
// A gap that is still open once two later frames are complete, and the stream has moved on by more
// than the reordering it has shown lately, is declared lost: those packets are skipped and the next
// frame carries `afterLoss`, so the caller can request a keyframe. The reorder window adapts: a
// stream that arrives in order loses a gap after two frames (as fast as before), one under network
// jitter (packets overtaking each other by up to 200 ms, docs/reliability.md) waits out the depth it
// was seen to reorder by, up to maxReorderTicks, instead of dropping every overtaken frame. Pure.

export interface RtpFragment {
  sequenceNumber: number;
  timestamp: number;
  marker: boolean;
  payload: Uint8Array;
}

export interface AssembledFrame {
  timestamp: number;
  payloads: Uint8Array[];
  /** Packets were lost since the previous emitted frame. */
  afterLoss: boolean;
}

const seqAdd = (a: number, n: number) => (a + n) & 0xffff;
/** Signed distance a → b on the 16-bit circle. */
const seqDiff = (a: number, b: number) => ((((b - a) & 0xffff) + 0x8000) & 0xffff) - 0x8000;
/** Distance a → b on the 32-bit RTP timestamp circle, clamped at 0 when b is behind a. */
const tsDiff = (a: number, b: number) => Math.max(0, (b - a) | 0);

export class FrameAssembler {
  readonly #packets = new Map<number, RtpFragment>();
  /** Sequence number the next frame starts at; undefined until the first packet. */
  #next: number | undefined;
  #lost = false;
  #emitted = false;
  readonly #maxBuffered: number;
  readonly #maxReorderTicks: number;
  /** Newest packet seen (by sequence number) and its RTP timestamp. */
  #highest: { seq: number; timestamp: number } | undefined;
  /** How far (RTP ticks) packets were lately seen to arrive behind newer ones; decays per frame. */
  #reorderTicks = 0;

  /**
   * maxReorderTicks: the longest a gap is waited for, in RTP clock ticks (default 500 ms at the
   * 90 kHz video clock).
   */
  constructor(opts: { maxBufferedPackets?: number; maxReorderTicks?: number } = {}) {
    this.#maxBuffered = opts.maxBufferedPackets ?? 1024;
    this.#maxReorderTicks = opts.maxReorderTicks ?? 45_000;
  }

  /** The reorder depth the assembler currently waits out before declaring a gap lost (RTP ticks). */
  get reorderWindowTicks(): number {
    return Math.min(this.#reorderTicks, this.#maxReorderTicks);
  }

  push(packet: RtpFragment): AssembledFrame[] {
    if (this.#next === undefined) this.#next = packet.sequenceNumber;
    this.#observeOrder(packet);
    const behind = seqDiff(this.#next, packet.sequenceNumber) < 0;
    // Before the first frame, an earlier packet that arrives late is the real start.
    if (behind && !this.#emitted && seqDiff(packet.sequenceNumber, this.#next) < 64)
      this.#next = packet.sequenceNumber;
    // Late or duplicate: behind what we already emitted.
    else if (behind) return [];
    this.#packets.set(packet.sequenceNumber, packet);
    const out: AssembledFrame[] = [];
    for (;;) {
      const frame = this.#takeFrame();
      if (frame) {
        out.push(frame);
        continue;
      }
      if (!this.#skipLoss()) break;
    }
    return out;
  }

  /** Emits the frame starting at #next if every packet of it is here. */
  #takeFrame(): AssembledFrame | undefined {
    const start = this.#next as number;
    const first = this.#packets.get(start);
    if (!first) return undefined;
    const payloads: Uint8Array[] = [];
    for (let seq = start, n = 0; n < this.#maxBuffered; seq = seqAdd(seq, 1), n++) {
      const p = this.#packets.get(seq);
      if (!p) return undefined;
      if (p.timestamp !== first.timestamp) {
        // A new timestamp without a marker before it: the previous frame's tail is broken.
        this.#dropRange(start, seq);
        this.#next = seq;
        this.#lost = true;
        return undefined;
      }
      payloads.push(p.payload);
      if (p.marker) {
        this.#dropRange(start, seqAdd(seq, 1));
        this.#next = seqAdd(seq, 1);
        const afterLoss = this.#lost;
        this.#lost = false;
        this.#emitted = true;
        this.#reorderTicks *= 0.997; // forget old jitter slowly (half-life ~230 frames)
        return { timestamp: first.timestamp, payloads, afterLoss };
      }
    }
    return undefined;
  }

  /** Gives up on the gap at #next when two complete-looking frames wait behind it. */
  #skipLoss(): boolean {
    const start = this.#next as number;
    const markers = [...this.#packets.values()]
      .filter((p) => p.marker && seqDiff(start, p.sequenceNumber) >= 0)
      .sort((a, b) => seqDiff(b.sequenceNumber, a.sequenceNumber)); // nearest first
    const tooMany = this.#packets.size >= this.#maxBuffered;
    if (markers.length < 3 && !tooMany) return false;
    if (!tooMany && this.#reorderTicks > 0) {
      // Wait while the stream has moved on by less than the reordering it has shown.
      const oldest = [...this.#packets.values()].reduce<RtpFragment | undefined>(
        (o, p) => (o === undefined || seqDiff(o.sequenceNumber, p.sequenceNumber) < 0 ? p : o),
        undefined,
      );
      const newest = markers[markers.length - 1];
      if (oldest && newest && tsDiff(oldest.timestamp, newest.timestamp) <= this.reorderWindowTicks)
        return false;
    }
    const firstMarker = markers[0];
    if (!firstMarker) {
      this.#packets.clear();
      this.#next = undefined;
      this.#lost = true;
      return false;
    }
    // Everything up to the first marker is the damaged frame.
    const resume = seqAdd(firstMarker.sequenceNumber, 1);
    this.#dropRange(start, resume);
    this.#next = resume;
    this.#lost = true;
    return true;
  }

  /** A packet behind the newest one seen tells how deep the network reorders. */
  #observeOrder(packet: RtpFragment): void {
    const highest = this.#highest;
    if (!highest || seqDiff(highest.seq, packet.sequenceNumber) > 0) {
      this.#highest = { seq: packet.sequenceNumber, timestamp: packet.timestamp };
      return;
    }
    const depth = tsDiff(packet.timestamp, highest.timestamp);
    if (depth > this.#reorderTicks) this.#reorderTicks = Math.min(depth * 2, this.#maxReorderTicks);
  }

  #dropRange(from: number, to: number): void {
    for (let seq = from; seq !== to; seq = seqAdd(seq, 1)) this.#packets.delete(seq);
  }

  get bufferedPackets(): number {
    return this.#packets.size;
  }
}
