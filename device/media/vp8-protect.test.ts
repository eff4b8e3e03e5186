import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SFrameReceiver, SFrameSender } from '../../src/core/sframe/index.js';
import { Vp8FormatError, openVp8Frame, sealVp8Frame, vp8ClearBytes } from './vp8-protect.js';

const kid = 0x10002n;
const key = randomBytes(32);

function pair(initialCounter = 0n) {
  const sender = new SFrameSender({ kid, baseKey: key, initialCounter });
  const receiver = new SFrameReceiver({ replayWindow: 4096 });
  receiver.setKey(kid, key);
  return { sender, receiver };
}

// Keyframe: frame tag (P=0), start code 9d 01 2a, width 320, height 240 (14-bit LE); delta: P=1.
const keyframe = Buffer.from([
  0x50,
  0x42,
  0x00,
  0x9d,
  0x01,
  0x2a,
  0x40,
  0x01,
  0xf0,
  0x00,
  ...randomBytes(400),
]);
const delta = Buffer.from([0x31, 0x05, 0x00, ...randomBytes(120)]);

describe('VP8 clear-prefix protection', () => {
  it('keeps the 10-byte keyframe header and the 3-byte delta header clear, hides the rest, and round-trips', () => {
    const { sender, receiver } = pair();
    for (const frame of [keyframe, delta]) {
      const n = vp8ClearBytes(frame);
      expect(n).toBe(frame === keyframe ? 10 : 3);
      const wire = sealVp8Frame(sender, frame);
      expect(Buffer.from(wire.subarray(0, n)).equals(frame.subarray(0, n))).toBe(true);
      expect(Buffer.from(wire).includes(frame.subarray(n, n + 32))).toBe(false);
      expect(wire.length).toBe(frame.length + 4 + 16); // SFrame header (3-byte KID, CTR < 8) + GCM tag
      const opened = openVp8Frame(receiver, wire);
      expect(opened.kid).toBe(kid);
      expect(Buffer.from(opened.frame).equals(frame)).toBe(true);
    }
  });

  it('byte 0 on the wire tells keyframes from delta frames at any counter (whole-frame SFrame did not)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 48n }), fc.boolean(), (ctr, key) => {
        const { sender } = pair(ctr);
        const wire = sealVp8Frame(sender, key ? keyframe : delta);
        return (((wire[0] as number) & 1) === 0) === key;
      }),
      { numRuns: 50 },
    );
  });

  it('refuses a frame whose clear header was changed (it is authenticated), a replay and a wrong key', () => {
    const { sender, receiver } = pair();
    const wire = sealVp8Frame(sender, keyframe);
    for (const at of [1, 3, 6, 9]) {
      const bad = Buffer.from(wire);
      bad[at] = (bad[at] as number) ^ 0x04;
      expect(() => openVp8Frame(receiver, bad)).toThrow();
    }
    openVp8Frame(receiver, wire);
    expect(() => openVp8Frame(receiver, wire)).toThrow(); // replay
    const other = new SFrameReceiver();
    other.setKey(kid, randomBytes(32));
    expect(() => openVp8Frame(other, sealVp8Frame(sender, delta))).toThrow();
  });

  it('refuses frames shorter than their header, sealed or not', () => {
    const { sender, receiver } = pair();
    expect(() => sealVp8Frame(sender, keyframe.subarray(0, 9))).toThrow(Vp8FormatError);
    expect(() => openVp8Frame(receiver, keyframe.subarray(0, 10))).toThrow(Vp8FormatError);
    expect(() => openVp8Frame(receiver, new Uint8Array(0))).toThrow(Vp8FormatError);
  });
});
