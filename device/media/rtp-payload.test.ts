import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isH264Keyframe, isVp8Keyframe, joinAnnexB, splitAnnexB } from './bitstream.js';
import {
  depacketizeH264,
  depacketizeVp8,
  packetizeH264,
  packetizeVp8,
  parseVp8Payload,
} from './rtp-payload.js';

const nalArb = fc
  .tuple(fc.integer({ min: 1, max: 23 }), fc.uint8Array({ minLength: 1, maxLength: 4000 }))
  .map(([type, body]) => Uint8Array.of(0x60 | type, ...body));

describe('H.264 RTP payload (RFC 6184)', () => {
  it('round-trips any NAL units through single-NAL and FU-A packets within the size limit', () => {
    fc.assert(
      fc.property(
        fc.array(nalArb, { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 100, max: 1400 }),
        (nals, max) => {
          const packets = packetizeH264(nals, max);
          for (const p of packets) expect(p.length).toBeLessThanOrEqual(max);
          const back = depacketizeH264(packets);
          expect(back?.map((n) => Buffer.from(n).toString('hex'))).toEqual(
            nals.map((n) => Buffer.from(n).toString('hex')),
          );
        },
      ),
      { numRuns: 100 },
    );
  });

  it('refuses a frame whose FU-A start or end is missing', () => {
    const nal = Uint8Array.of(0x65, ...new Uint8Array(3000).fill(7));
    const packets = packetizeH264([nal], 1000);
    expect(packets.length).toBe(4);
    expect(depacketizeH264(packets.slice(1))).toBeUndefined();
    expect(depacketizeH264(packets.slice(0, -1))).toBeUndefined();
  });

  it('unpacks STAP-A aggregates (as browsers send SPS+PPS)', () => {
    const sps = Uint8Array.of(0x67, 1, 2, 3);
    const pps = Uint8Array.of(0x68, 4);
    const stap = Uint8Array.of(0x78, 0, sps.length, ...sps, 0, pps.length, ...pps);
    expect(depacketizeH264([stap])?.map((n) => [...n])).toEqual([[...sps], [...pps]]);
  });
});

describe('VP8 RTP payload (RFC 7741)', () => {
  it('round-trips opaque frames and marks only the first packet as a start', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 9000 }),
        fc.integer({ min: 0, max: 0x7fff }),
        (frame, pid) => {
          const packets = packetizeVp8(frame, pid, 1200);
          expect(packets.map((p) => parseVp8Payload(p)?.start)).toEqual(packets.map((_, i) => i === 0));
          expect(parseVp8Payload(packets[0] as Buffer)?.pictureId).toBe(pid);
          expect(Buffer.from(depacketizeVp8(packets) as Buffer).equals(Buffer.from(frame))).toBe(true);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('refuses a frame that does not begin with a start packet', () => {
    const packets = packetizeVp8(new Uint8Array(5000), 1);
    expect(depacketizeVp8(packets.slice(1))).toBeUndefined();
  });
});

describe('bitstream facts', () => {
  it('splits Annex B with 3- and 4-byte start codes and joins back', () => {
    const stream = Uint8Array.of(0, 0, 0, 1, 0x67, 1, 0, 0, 1, 0x68, 2, 0, 0, 0, 1, 0x65, 3, 4);
    const nals = splitAnnexB(stream);
    expect(nals.map((n) => [...n])).toEqual([
      [0x67, 1],
      [0x68, 2],
      [0x65, 3, 4],
    ]);
    expect(isH264Keyframe(nals)).toBe(true);
    expect(isH264Keyframe(nals.slice(0, 2))).toBe(false);
    expect(splitAnnexB(joinAnnexB(nals)).map((n) => [...n])).toEqual(nals.map((n) => [...n]));
  });

  it('tells VP8 key frames from inter frames by bit 0 of the frame tag', () => {
    expect(isVp8Keyframe(Uint8Array.of(0x10, 0x02, 0x00))).toBe(true);
    expect(isVp8Keyframe(Uint8Array.of(0x31, 0x02, 0x00))).toBe(false);
  });
});
