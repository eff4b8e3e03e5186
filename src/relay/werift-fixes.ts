// Fixes for known werift 0.24 defects (see docs/relay.md): applyWeriftFixes is process-wide, applied
// once before any PeerConnection is made; routePliByMediaSsrc is applied to each PeerConnection.
import {
  PictureLossIndication,
  RTCRtpSender,
  type RTCPeerConnection,
  type RtcpPacket,
  RtcpPayloadSpecificFeedback,
  RtpHeader,
  RtpPacket,
  TransportWideCC,
} from 'werift';

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

/** The parts of werift's (private) RtpRouter that routePliByMediaSsrc relies on. */
interface RouterInternals {
  ssrcTable: Record<number, unknown>;
  routeRtcp: (packet: RtcpPacket) => void;
}

const pliRouted = new WeakSet<object>();

/**
 * werift's RtpRouter hands a payload-specific feedback (PLI) to whatever is registered under its
 * *sender* SSRC first, and only then to the owner of its media SSRC
 * (node_modules/werift/lib/webrtc/src/media/router.js, routeRtcp: `ssrcTable[senderSsrc] ||
 * ssrcTable[mediaSsrc]`). Chromium names its own outgoing camera SSRC as the sender of the PLIs it
 * sends for a received video stream; at the relay that SSRC is registered to the RTCRtpReceiver of
 * the subscriber's own published video, which ignores a PLI. So a browser subscriber's keyframe
 * requests never reached `sender.onPictureLossIndication` and were never relayed to the publisher:
 * a subscriber that missed the first keyframe stayed black for good. Route a PLI by its media SSRC
 * (RFC 4585 6.3.1) when that SSRC is one of this connection's senders; anything else as before.
 */
export function routePliByMediaSsrc(pc: RTCPeerConnection): void {
  const router = (pc as unknown as { router?: Partial<RouterInternals> }).router;
  if (!router || typeof router.routeRtcp !== 'function' || typeof router.ssrcTable !== 'object')
    throw new Error('werift RtpRouter internals changed: cannot route PLI by media SSRC');
  if (pliRouted.has(router)) return;
  pliRouted.add(router);
  const original = router.routeRtcp;
  const table = router.ssrcTable;
  router.routeRtcp = (packet: RtcpPacket) => {
    if (
      packet.type === RtcpPayloadSpecificFeedback.type &&
      packet.feedback.count === PictureLossIndication.count
    ) {
      const target = table[(packet.feedback as PictureLossIndication).mediaSsrc];
      if (target instanceof RTCRtpSender) {
        target.handleRtcpPacket(packet);
        return;
      }
    }
    original.call(router, packet);
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
