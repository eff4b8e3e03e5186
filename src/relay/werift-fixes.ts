// Process-wide fixes for known werift 0.24 defects (see ../../shared DESIGN notes in docs/relay.md).
// Applied once, idempotently, before any PeerConnection is made.
import { RtpHeader, RtpPacket, TransportWideCC } from 'werift';

let applied = false;

/**
 * werift pads transport-wide congestion feedback only when the parsed header already had the padding
 * bit; feedback it builds itself goes out unaligned, which Chromium answers by holding its uplink
 * near 150 kbit/s. Serialize once; when unaligned, set the padding bit and serialize again.
 */
export function applyWeriftFixes(): void {
  if (applied) return;
  applied = true;
  const original = TransportWideCC.prototype.serialize;
  TransportWideCC.prototype.serialize = function serializePadded(this: TransportWideCC) {
    this.header.padding = false;
    const plain = original.call(this);
    if (plain.length % 4 === 0) return plain;
    this.header.padding = true;
    return original.call(this);
  };
}

/**
 * A private copy of a publisher's packet for one subscriber: werift's sender rewrites the header
 * in place (SSRC, sequence number, payload type, extensions), so subscribers must never share one
 * RtpPacket. Publisher header extensions are dropped: the subscriber's sender writes its own.
 * The payload (an SFrame ciphertext) is never read or changed, so its buffer can be shared.
 */
export function clonePacketForSubscriber(packet: RtpPacket): RtpPacket {
  const h = packet.header;
  const header = new RtpHeader({
    version: h.version,
    padding: false,
    paddingSize: 0,
    extension: false,
    marker: h.marker,
    payloadType: h.payloadType,
    sequenceNumber: h.sequenceNumber,
    timestamp: h.timestamp,
    ssrc: h.ssrc,
    csrc: [],
    extensions: [],
  });
  return new RtpPacket(header, packet.payload);
}
