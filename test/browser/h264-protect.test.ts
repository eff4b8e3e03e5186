// The browser's per-NAL H.264 protection against the media worker's own (device/media/frame-protect.ts).
import { describe, expect, it } from 'vitest';
import { openH264AccessUnit, sealH264AccessUnit } from '../../device/media/frame-protect.js';
import { makeKid } from '../../src/core/e2ee/sender-keys.js';
import { SFrameReceiver, SFrameSender } from '../../src/core/sframe/index.js';
import {
  openH264,
  openH264As,
  sealH264,
  sealH264As,
  sliceHeaderPrefix,
  splitNalUnits,
} from './h264-protect.js';
import { WebSFrameReceiver, WebSFrameSender } from './sframe-webcrypto.js';

const kid = makeKid(2, 7);
const baseKey = new Uint8Array(32).fill(0x33);
const sc = [0, 0, 0, 1];
// AUD, SPS, PPS, IDR slice (bodies avoid 00 00 0x, as real emulation-prevented NAL units do).
const au = Uint8Array.from([
  ...sc,
  0x09,
  0xf0,
  ...sc,
  0x67,
  0x42,
  0xc0,
  0x1f,
  0x8c,
  ...sc,
  0x68,
  0xce,
  0x3c,
  0x80,
  ...[0, 0, 1],
  0x65,
  ...new Array(300).fill(0x5a),
]);
const withoutAud = au.subarray(6);

describe('browser H.264 protection (one SFrame per NAL unit, header byte clear)', () => {
  it('the worker opens what the browser seals, and the browser opens what the worker seals', async () => {
    const web = new WebSFrameSender({ kid, baseKey });
    const sealed = await sealH264(web, au);
    const units = splitNalUnits(sealed);
    expect(units.map((u) => (u[0] as number) & 0x1f)).toEqual([7, 8, 5]); // AUD dropped, headers clear
    const node = new SFrameReceiver();
    node.setKey(kid, baseKey);
    const { frame } = openH264AccessUnit(node, units);
    expect(splitNalUnits(frame).map((n) => Buffer.from(n).toString('hex'))).toEqual(
      splitNalUnits(withoutAud).map((n) => Buffer.from(n).toString('hex')),
    );

    const fromWorker = sealH264AccessUnit(new SFrameSender({ kid, baseKey }), au);
    const receiver = new WebSFrameReceiver();
    receiver.setKey(kid, baseKey);
    const joined = Buffer.concat(fromWorker.flatMap((u) => [Buffer.from(sc), Buffer.from(u)]));
    const opened = await openH264(receiver, joined);
    expect(splitNalUnits(opened).map((n) => n.length)).toEqual([5, 4, 301]);
  });

  it('a changed NAL header byte fails authentication', async () => {
    const sealed = await sealH264(new WebSFrameSender({ kid, baseKey }), au);
    const receiver = new WebSFrameReceiver();
    receiver.setKey(kid, baseKey);
    const bad = Uint8Array.from(sealed);
    bad[4] = 0x27; // SPS header 0x67 → 0x27 (nal_ref_idc changed)
    await expect(openH264(receiver, bad)).rejects.toMatchObject({ code: 'AUTH_FAILED' });
  });
});

describe('proposed clear-params H.264 format', () => {
  it('SPS/PPS and slice-header ids stay clear, everything is authenticated, and it round-trips', async () => {
    const sender = new WebSFrameSender({ kid, baseKey });
    const receiver = new WebSFrameReceiver();
    receiver.setKey(kid, baseKey);
    const sealed = await sealH264As(sender, au, 'clear-params');
    const units = splitNalUnits(sealed);
    const nals = splitNalUnits(withoutAud);
    // SPS and PPS: the NAL unit itself first, unchanged; the slice: header byte + slice-header prefix.
    expect(units[0]?.subarray(0, 5)).toEqual(nals[0]);
    expect(units[1]?.subarray(0, 4)).toEqual(nals[1]);
    const prefix = sliceHeaderPrefix(nals[2] as Uint8Array);
    expect(units[2]?.subarray(0, prefix)).toEqual(nals[2]?.subarray(0, prefix));
    expect(await openH264As(receiver, sealed, 'clear-params')).toEqual(
      Uint8Array.from(nals.flatMap((n) => [...sc, ...n])),
    );
    for (const at of [5, 12, 20]) {
      const bad = Uint8Array.from(sealed);
      bad[at] = (bad[at] as number) ^ 0x01;
      await expect(openH264As(receiver, bad, 'clear-params')).rejects.toThrow();
    }
  });

  it('finds the slice header ids: first_mb_in_slice, slice_type, pic_parameter_set_id', () => {
    // 0x88 = 1|0001|000 → ue 0, ue 7 (slice_type), then the pps_id bits continue into byte 2.
    expect(sliceHeaderPrefix(Uint8Array.of(0x65, 0x88, 0x84, 0x00))).toBe(3);
    expect(sliceHeaderPrefix(Uint8Array.of(0x41, 0xe0, 0x00))).toBe(2); // 1|1|1 → 0, 0, 0
  });
});
