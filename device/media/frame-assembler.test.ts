import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FrameAssembler, type RtpFragment } from './frame-assembler.js';

/** Packets of `frames` frames, `perFrame` packets each, starting at sequence number `seq0`. */
function stream(frames: number, perFrame: number, seq0: number): RtpFragment[] {
  const out: RtpFragment[] = [];
  for (let f = 0; f < frames; f++) {
    for (let i = 0; i < perFrame; i++) {
      out.push({
        sequenceNumber: (seq0 + f * perFrame + i) & 0xffff,
        timestamp: 1000 + f * 3000,
        marker: i === perFrame - 1,
        payload: Uint8Array.of(f, i),
      });
    }
  }
  return out;
}

describe('FrameAssembler', () => {
  it('emits every frame in order, also across the 16-bit sequence wrap', () => {
    const a = new FrameAssembler();
    const frames = stream(10, 3, 0xfff0).flatMap((p) => a.push(p));
    expect(frames.map((f) => f.timestamp)).toEqual(Array.from({ length: 10 }, (_, f) => 1000 + f * 3000));
    expect(frames.every((f) => f.payloads.length === 3 && !f.afterLoss)).toBe(true);
  });

  it('puts reordered packets back in order (any shuffle within a frame pair)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.integer({ min: 0, max: 1000 }), (seq0, seed) => {
        const packets = stream(6, 4, seq0);
        // swap neighbours deterministically from the seed: bounded reordering, no loss
        for (let i = seed % 3; i + 1 < packets.length; i += 3) {
          [packets[i], packets[i + 1]] = [packets[i + 1] as RtpFragment, packets[i] as RtpFragment];
        }
        const a = new FrameAssembler();
        const frames = packets.flatMap((p) => a.push(p));
        expect(frames.length).toBe(6);
        for (const [n, f] of frames.entries()) {
          expect(f.payloads.map((p) => [...p])).toEqual([0, 1, 2, 3].map((i) => [n, i]));
        }
      }),
    );
  });

  it('declares a lost packet once later frames complete, skips the damaged frame and flags the next', () => {
    const packets = stream(6, 3, 100).filter((p) => p.sequenceNumber !== 104); // frame 1 loses its middle
    const a = new FrameAssembler();
    const frames = packets.flatMap((p) => a.push(p));
    expect(frames.map((f) => f.timestamp)).toEqual([1000, 7000, 10000, 13000, 16000]);
    expect(frames.map((f) => f.afterLoss)).toEqual([false, true, false, false, false]);
  });

  it('ignores duplicates and packets older than what it emitted', () => {
    const packets = stream(3, 2, 5);
    const a = new FrameAssembler();
    const frames = [...packets, packets[0] as RtpFragment, packets[3] as RtpFragment].flatMap((p) =>
      a.push(p),
    );
    expect(frames.length).toBe(3);
  });

  it('learns the network reorder depth: under 200 ms of jitter frames are waited for, not dropped', () => {
    // 15 fps video (6000 ticks a frame at 90 kHz), 5 packets a frame, each delayed 0–200 ms at
    // random (netem-style jitter reorders packets across frames). Deterministic pseudo-random.
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const frames = 150;
    const packets: { arrival: number; p: RtpFragment }[] = [];
    for (let f = 0; f < frames; f++)
      for (let i = 0; i < 5; i++)
        packets.push({
          arrival: (f * 1000) / 15 + random() * 200,
          p: {
            sequenceNumber: (f * 5 + i) & 0xffff,
            timestamp: f * 6000,
            marker: i === 4,
            payload: Uint8Array.of(f),
          },
        });
    packets.sort((a, b) => a.arrival - b.arrival);
    const a = new FrameAssembler();
    const out = packets.flatMap(({ p }) => a.push(p));
    // The first frames teach it the depth; after that nothing is lost.
    const late = out.filter((f) => f.timestamp >= 20 * 6000);
    expect(late.length).toBe(frames - 20);
    expect(late.some((f) => f.afterLoss)).toBe(false);
    expect(a.reorderWindowTicks).toBeGreaterThan(6000);
    expect(a.reorderWindowTicks).toBeLessThanOrEqual(45_000);
  });

  it('under jitter a packet really lost is still declared lost, within the bounded window', () => {
    const a = new FrameAssembler({ maxReorderTicks: 18_000 });
    // Teach it 12 000 ticks of reordering: frame 1 arrives after frame 3.
    const teach = stream(4, 2, 0);
    const order = [0, 1, 4, 5, 6, 7, 2, 3];
    const taught = order.flatMap((i) => a.push(teach[i] as RtpFragment));
    expect(taught.length).toBe(4);
    // Then a stream with one packet gone for good: 3000 ticks a frame here.
    const rest = stream(20, 2, 8)
      .map((p) => ({ ...p, timestamp: p.timestamp + 100_000 }))
      .filter((p) => p.sequenceNumber !== 10);
    const out = rest.flatMap((p) => a.push(p));
    const lossAt = out.findIndex((f) => f.afterLoss);
    expect(lossAt).toBeGreaterThan(0);
    // Given up once the stream moved on by more than the window (≤ 18 000 ticks = 6 frames + 2).
    expect(out.length).toBeGreaterThanOrEqual(20 - 1 - 8);
  });
});
