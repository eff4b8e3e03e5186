// The browser's H.264 protection (WebCrypto) against the media worker's own (device/media/h264-protect.ts).
import { describe, expect, it } from 'vitest';
import { openH264AccessUnit, sealH264AccessUnit } from '../../device/media/h264-protect.js';
import { makeKid } from '../../src/core/e2ee/sender-keys.js';
import { SFrameReceiver, SFrameSender } from '../../src/core/sframe/index.js';
import {
  openH264As,
  sealH264As,
  sliceHeaderPrefix,
  splitNalUnits,
} from '../../src/web/media/h264-protect.js';
import { WebSFrameReceiver, WebSFrameSender } from '../../src/web/media/sframe-webcrypto.js';

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
  0x88,
  0x84,
  ...new Array(300).fill(0x5a),
]);
const withoutAud = au.subarray(6);
const hexUnits = (b: Uint8Array) => splitNalUnits(b).map((n) => Buffer.from(n).toString('hex'));

function webPair() {
  const receiver = new WebSFrameReceiver();
  receiver.setKey(kid, baseKey);
  return { sender: new WebSFrameSender({ kid, baseKey }), receiver };
}

describe('browser H.264 clear-params protection (the media worker’s format)', () => {
  it('the worker opens what the browser seals, the browser opens what the worker seals, byte for byte', async () => {
    const { sender, receiver } = webPair();
    const sealed = await sealH264As(sender, au);
    const units = splitNalUnits(sealed);
    expect(units.map((u) => (u[0] as number) & 0x1f)).toEqual([7, 8, 5]); // AUD dropped, headers clear
    const node = new SFrameReceiver();
    node.setKey(kid, baseKey);
    const { frame } = openH264AccessUnit(node, units);
    expect(hexUnits(frame)).toEqual(hexUnits(withoutAud));

    const fromWorker = sealH264AccessUnit(new SFrameSender({ kid, baseKey }), au);
    // Same key, KID and CTR: the same protected units.
    expect(units.map((u) => Buffer.from(u).toString('hex'))).toEqual(
      fromWorker.map((u) => Buffer.from(u).toString('hex')),
    );
    const joined = Uint8Array.from(fromWorker.flatMap((u) => [...sc, ...u]));
    expect(hexUnits(await openH264As(receiver, joined))).toEqual(hexUnits(withoutAud));
  });

  it('SPS/PPS and slice-header ids stay clear, everything is authenticated', async () => {
    const { sender, receiver } = webPair();
    const sealed = await sealH264As(sender, au, 'clear-params');
    const units = splitNalUnits(sealed);
    const nals = splitNalUnits(withoutAud);
    expect(units[0]?.subarray(0, 5)).toEqual(nals[0]);
    expect(units[1]?.subarray(0, 4)).toEqual(nals[1]);
    const prefix = sliceHeaderPrefix(nals[2] as Uint8Array);
    expect(prefix).toBe(3);
    expect(units[2]?.subarray(0, prefix)).toEqual(nals[2]?.subarray(0, prefix));
    for (const at of [5, 12, 20, 30]) {
      const bad = Uint8Array.from(sealed);
      bad[at] = (bad[at] as number) ^ 0x01;
      await expect(openH264As(receiver, bad, 'clear-params')).rejects.toThrow();
    }
    expect(hexUnits(await openH264As(receiver, sealed, 'clear-params'))).toEqual(hexUnits(withoutAud));
  });
});

describe('the former per-NAL format (kept for the Chromium comparison)', () => {
  it('header byte clear, round-trips, and a changed header byte fails authentication', async () => {
    const { sender, receiver } = webPair();
    const sealed = await sealH264As(sender, au, 'per-nal');
    expect(splitNalUnits(sealed).map((u) => u[0])).toEqual([0x67, 0x68, 0x65]);
    const bad = Uint8Array.from(sealed);
    bad[4] = 0x27; // SPS header 0x67 → 0x27 (nal_ref_idc changed)
    await expect(openH264As(receiver, bad, 'per-nal')).rejects.toMatchObject({ code: 'AUTH_FAILED' });
    expect(hexUnits(await openH264As(receiver, sealed, 'per-nal'))).toEqual(hexUnits(withoutAud));
  });
});
