import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SFrameReceiver, SFrameSender } from '../../src/core/sframe/index.js';
import { joinAnnexB, splitAnnexB } from './bitstream.js';
import { openH264AccessUnit, openWholeFrame, sealH264AccessUnit, sealWholeFrame } from './frame-protect.js';

const kid = 0x10002n;
const key = randomBytes(32);

function pair() {
  const sender = new SFrameSender({ kid, baseKey: key });
  const receiver = new SFrameReceiver();
  receiver.setKey(kid, key);
  return { sender, receiver };
}

// An access unit as x264 emits it: AUD, SPS, PPS, IDR slice.
const au = joinAnnexB([
  Uint8Array.of(0x09, 0x10),
  Uint8Array.of(0x67, 0x42, 0xc0, 0x1f),
  Uint8Array.of(0x68, 0xce, 0x3c, 0x80),
  Uint8Array.of(0x65, ...randomBytes(3000)),
]);

describe('H.264 per-NAL protection', () => {
  it('keeps NAL headers clear, hides the rest, and restores the access unit without the AUD', () => {
    const { sender, receiver } = pair();
    const units = sealH264AccessUnit(sender, au);
    expect(units.map((u) => u[0])).toEqual([0x67, 0x68, 0x65]);
    const slice = splitAnnexB(au)[3] as Uint8Array;
    expect(Buffer.from(units[2] as Uint8Array).includes(Buffer.from(slice.subarray(1, 64)))).toBe(false);
    const opened = openH264AccessUnit(receiver, units);
    expect(opened.kid).toBe(kid);
    expect(opened.frame.equals(joinAnnexB(splitAnnexB(au).slice(1)))).toBe(true);
  });

  it('refuses a unit whose clear NAL header was changed (it is authenticated)', () => {
    const { sender, receiver } = pair();
    const units = sealH264AccessUnit(sender, au);
    const tampered = Buffer.from(units[2] as Uint8Array);
    tampered[0] = 0x61; // IDR → non-IDR slice
    expect(() =>
      openH264AccessUnit(receiver, [units[0] as Uint8Array, units[1] as Uint8Array, tampered]),
    ).toThrow();
  });

  it('decodes nothing with the wrong key', () => {
    const { sender } = pair();
    const other = new SFrameReceiver();
    other.setKey(kid, randomBytes(32));
    expect(() => openH264AccessUnit(other, sealH264AccessUnit(sender, au))).toThrow();
  });
});

describe('whole-frame protection (VP8, Opus)', () => {
  it('round-trips and refuses a replayed frame', () => {
    const { sender, receiver } = pair();
    const frame = randomBytes(500);
    const sealed = sealWholeFrame(sender, frame);
    expect(Buffer.from(openWholeFrame(receiver, sealed).frame).equals(frame)).toBe(true);
    expect(() => openWholeFrame(receiver, sealed)).toThrow();
  });
});
