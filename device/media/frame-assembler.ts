// Reorders one RTP stream's packets and cuts them into frames: a frame is every packet after the
// previous frame's marker packet up to and including the next marker, all with one RTP timestamp.
// A gap that is still open once two later frames are complete is declared lost: those packets are
// skipped and the next frame carries `afterLoss`, so the caller can request a keyframe. Pure.

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

export class FrameAssembler {
  readonly #packets = new Map<number, RtpFragment>();
  /** Sequence number the next frame starts at; undefined until the first packet. */
  #next: number | undefined;
  #lost = false;
  #emitted = false;
  readonly #maxBuffered: number;

  constructor(opts: { maxBufferedPackets?: number } = {}) {
    this.#maxBuffered = opts.maxBufferedPackets ?? 1024;
  }

  push(packet: RtpFragment): AssembledFrame[] {
    if (this.#next === undefined) this.#next = packet.sequenceNumber;
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

  #dropRange(from: number, to: number): void {
    for (let seq = from; seq !== to; seq = seqAdd(seq, 1)) this.#packets.delete(seq);
  }

  get bufferedPackets(): number {
    return this.#packets.size;
  }
}
