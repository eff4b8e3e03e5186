// The werift fixes the SFU depends on: padded congestion feedback, private packet copies.
import {
  RecvDelta,
  RtcpHeader,
  RtcpPacketConverter,
  RtpHeader,
  RtpPacket,
  RunLengthChunk,
  TransportWideCC,
} from 'werift';
import { describe, expect, it } from 'vitest';
import { applyWeriftFixes, clonePacketForSubscriber } from '../src/relay/werift-fixes.js';
import { keepCandidatesOn } from '../src/relay/sfu.js';

function feedback(deltas: number): TransportWideCC {
  return new TransportWideCC({
    senderSsrc: 1,
    mediaSourceSsrc: 2,
    baseSequenceNumber: 10,
    packetStatusCount: deltas,
    referenceTime: 100,
    fbPktCount: 1,
    packetChunks: [new RunLengthChunk({ packetStatus: 1, runLength: deltas })],
    recvDeltas: Array.from({ length: deltas }, () => new RecvDelta({ type: 1, delta: 250 })),
    header: new RtcpHeader({ type: 205, count: 15 }),
  });
}

describe('werift fixes', () => {
  it('pads every transport-wide CC feedback to a multiple of 4 bytes, with the padding bit and a valid length', () => {
    applyWeriftFixes();
    for (let deltas = 1; deltas <= 8; deltas++) {
      const bytes = feedback(deltas).serialize();
      expect(bytes.length % 4).toBe(0);
      // RTCP length field: 32-bit words minus one.
      expect((bytes.readUInt16BE(2) + 1) * 4).toBe(bytes.length);
      const unpadded = 4 + 16 + 2 + deltas;
      expect((bytes[0] ?? 0) & 0x20).toBe(unpadded % 4 === 0 ? 0 : 0x20);
      // It still parses, and says the same thing.
      const [parsed] = RtcpPacketConverter.deSerialize(bytes);
      expect(parsed).toBeDefined();
    }
  });

  it('gives each subscriber its own header without the publisher extensions, sharing only the payload', () => {
    const payload = Buffer.from('ciphertext');
    const original = new RtpPacket(
      new RtpHeader({
        ssrc: 7,
        sequenceNumber: 9,
        timestamp: 1234,
        marker: true,
        payloadType: 96,
        extension: true,
        extensions: [{ id: 3, payload: Buffer.from([1]) }],
      }),
      payload,
    );
    const a = clonePacketForSubscriber(original);
    const b = clonePacketForSubscriber(original);
    a.header.ssrc = 100;
    a.header.sequenceNumber = 1;
    expect(b.header.ssrc).toBe(7);
    expect(original.header.sequenceNumber).toBe(9);
    expect(a.header.extensions).toEqual([]);
    expect(original.header.extensions).toHaveLength(1);
    expect(b.payload.equals(payload)).toBe(true);
    expect(b.header.marker).toBe(true);
    expect(b.header.timestamp).toBe(1234);
  });
});

describe('loopback-only offers', () => {
  it('keeps only the ICE candidates on the relay’s media address', () => {
    const sdp = [
      'v=0',
      'a=candidate:1 1 udp 2116026367 127.0.0.1 34481 typ host generation 0',
      'a=candidate:2 1 udp 2116026367 192.0.2.2 36108 typ host generation 0',
      'a=candidate:3 1 udp 2116026367 fd00::2 39065 typ host generation 0',
      'a=end-of-candidates',
      '',
    ].join('\r\n');
    const kept = keepCandidatesOn(sdp, '127.0.0.1');
    expect(kept).toContain('127.0.0.1 34481');
    expect(kept).not.toContain('192.0.2.2');
    expect(kept).not.toContain('fd00::2');
    expect(kept).toContain('a=end-of-candidates');
  });
});
