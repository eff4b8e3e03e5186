import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SFrameReceiver, SFrameSender, decodeHeader } from '../../src/core/sframe/index.js';
import { joinAnnexB, splitAnnexB } from './bitstream.js';
import {
  H264FormatError,
  escapeEmulation,
  openH264AccessUnit,
  sealH264AccessUnit,
  sliceHeaderPrefix,
  unescapeEmulation,
  splitProtectedNal,
} from './h264-protect.js';

const kid = 0x10002n;
const key = randomBytes(32);

function pair() {
  const sender = new SFrameSender({ kid, baseKey: key });
  const receiver = new SFrameReceiver();
  receiver.setKey(kid, key);
  return { sender, receiver };
}

const sps = Uint8Array.of(0x67, 0x42, 0xc0, 0x1f, 0x8c, 0x8d, 0x40);
const pps = Uint8Array.of(0x68, 0xce, 0x3c, 0x80);
const sei = Uint8Array.of(0x06, 0x05, 0x10, ...randomBytes(16), 0x80);
// IDR slice: 0x88 0x84 = first_mb 0, slice_type 7, pps_id 0 → 3 clear bytes with the header byte.
const idr = Uint8Array.of(0x65, 0x88, 0x84, ...randomBytes(3000));
// An access unit as x264 emits it: AUD, SPS, PPS, SEI, IDR slice.
const au = joinAnnexB([Uint8Array.of(0x09, 0x10), sps, pps, sei, idr]);

describe('H.264 clear-params protection', () => {
  it('sends SPS/PPS clear with a trailing tag, the slice header ids clear, hides the slice data, and restores the access unit without the AUD', () => {
    const { sender, receiver } = pair();
    const units = sealH264AccessUnit(sender, au);
    expect(units.map((u) => (u[0] as number) & 0x1f)).toEqual([7, 8, 6, 5]);
    expect(Buffer.from(units[0] as Uint8Array).subarray(0, sps.length)).toEqual(Buffer.from(sps));
    expect(Buffer.from(units[1] as Uint8Array).subarray(0, pps.length)).toEqual(Buffer.from(pps));
    expect(sliceHeaderPrefix(idr)).toBe(3);
    const slice = units[3] as Uint8Array;
    expect(Buffer.from(slice.subarray(0, 3))).toEqual(Buffer.from(idr.subarray(0, 3)));
    expect(Buffer.from(slice).includes(Buffer.from(idr.subarray(3, 64)))).toBe(false);
    expect(Buffer.from(units[2] as Uint8Array).includes(Buffer.from(sei.subarray(3, 19)))).toBe(false);
    // Every unit's SFrame is under our KID (what an SFU or test can check without keys).
    for (const u of units) expect(decodeHeader(splitProtectedNal(u).sframe).kid).toBe(kid);
    const opened = openH264AccessUnit(receiver, units);
    expect(opened.kid).toBe(kid);
    expect(opened.frame.equals(joinAnnexB(splitAnnexB(au).slice(1)))).toBe(true);
  });

  it('refuses a unit whose clear bytes were changed (they are authenticated)', () => {
    const { sender } = pair();
    const units = sealH264AccessUnit(sender, au);
    const cases: [number, number][] = [
      [0, 2], // SPS profile byte
      [1, 1], // PPS ids
      [3, 0], // IDR → non-IDR slice header byte
      [3, 2], // pps_id bits
    ];
    for (const [unit, at] of cases) {
      const { receiver } = pair();
      const tampered = units.map((u) => Buffer.from(u));
      (tampered[unit] as Buffer)[at] = ((tampered[unit] as Buffer)[at] as number) ^ 0x01;
      expect(() => openH264AccessUnit(receiver, tampered)).toThrow();
    }
  });

  it('decodes nothing with the wrong key; refuses malformed units', () => {
    const { sender } = pair();
    const other = new SFrameReceiver();
    other.setKey(kid, randomBytes(32));
    expect(() => openH264AccessUnit(other, sealH264AccessUnit(sender, au))).toThrow();
    const { receiver } = pair();
    expect(() => openH264AccessUnit(receiver, [])).toThrow(H264FormatError);
    expect(() => openH264AccessUnit(receiver, [Uint8Array.of(0x67, 0x42, 0x50)])).toThrow(H264FormatError);
    expect(() => openH264AccessUnit(receiver, [Uint8Array.of(0x65, 0x88, 0x84)])).toThrow(H264FormatError);
  });

  it('finds the slice header ids: first_mb_in_slice, slice_type, pic_parameter_set_id', () => {
    // 0x88 = 1|0001|000 → ue 0, ue 7 (slice_type), then the pps_id bits continue into byte 2.
    expect(sliceHeaderPrefix(Uint8Array.of(0x65, 0x88, 0x84, 0x00))).toBe(3);
    expect(sliceHeaderPrefix(Uint8Array.of(0x41, 0xe0, 0x00))).toBe(2); // 1|1|1 → 0, 0, 0
    expect(() => sliceHeaderPrefix(Uint8Array.of(0x41, 0x00, 0x00))).toThrow(H264FormatError);
  });
});

describe('emulation prevention of the protected bytes', () => {
  /** 00 00 00, 00 00 01 or 00 00 02: what Annex B parsers take for a start code (00 00 03 is the escape). */
  const hasStartCodeLike = (b: Uint8Array) => {
    for (let i = 0; i + 2 < b.length; i++)
      if (b[i] === 0 && b[i + 1] === 0 && (b[i + 2] as number) <= 2) return true;
    return false;
  };

  it('escape/unescape round-trip for any bytes and any preceding zeros, and leave no start code', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 200 }).map((a) => a.map((x) => (x < 160 ? 0 : x % 5))), // zero-heavy
        fc.integer({ min: 0, max: 2 }),
        (bytes, zeros) => {
          const escaped = escapeEmulation(bytes, zeros);
          expect(unescapeEmulation(escaped, zeros)).toEqual(bytes);
          // Followed by a non-zero byte, as the next start code or the parameter-set length byte is.
          const onWire = Uint8Array.from([...new Array(zeros).fill(0), ...escaped, 0xff]);
          expect(hasStartCodeLike(onWire)).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a protected unit never holds a start code, whatever the ciphertext (64 × 1 MB slices, real AES-GCM)', () => {
    const { sender, receiver } = pair();
    // 64 MB of ciphertext: 00 00 0x (x ≤ 3) turns up about 16 times (4 / 2^24 per byte).
    const bigSlice = Buffer.concat([Uint8Array.of(0x65, 0x88, 0x84), Buffer.alloc(1 << 20, 0x5a)]);
    const bigAu = joinAnnexB([sps, pps, bigSlice]);
    let escapes = 0;
    for (let i = 0; i < 64; i++) {
      const units = sealH264AccessUnit(sender, bigAu);
      for (const u of units) expect(hasStartCodeLike(u)).toBe(false);
      const slice = units[2] as Uint8Array;
      const { clear, sframe } = splitProtectedNal(slice);
      escapes += slice.length - clear.length - sframe.length;
      expect(
        Buffer.from(openH264AccessUnit(receiver, units).frame).equals(joinAnnexB([sps, pps, bigSlice])),
      ).toBe(true);
    }
    expect(escapes).toBeGreaterThan(0);
  });
});
