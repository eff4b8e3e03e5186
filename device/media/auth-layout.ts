// Where the sender-authentication trailer sits in each codec's protected frame (docs/sframe.md,
// "Sender authentication"). Pure and crypto-free: the browser participant uses it too.
//
//   Opus, VP8: wire = protected frame || trailer        (RTP payload formats carry both opaquely;
//              VP8's clear bytes stay at the front, where depacketisers read them)
//   H.264:     protected NAL units, then one more NAL unit: 0x0c || escaped(trailer)
//              (filler data, nal_ref_idc 0: packetisers and depacketisers pass it through like any
//              NAL unit; H.264 emulation prevention keeps start codes out of the tags)
// The trailer covers the protected frame (Opus, VP8) or every protected NAL unit before it (H.264).
import {
  FrameAuthError,
  H264_TRAILER_NAL_HEADER,
  H264_TRAILER_NAL_TYPE,
  type ParsedTrailer,
  parseTrailer,
} from '../../src/core/frame-auth/trailer.js';
import { nalType } from './bitstream.js';
import { escapeEmulation, unescapeEmulation } from './h264-protect.js';

export function appendTrailer(frame: Uint8Array, trailer: Uint8Array): Uint8Array {
  const out = new Uint8Array(frame.length + trailer.length);
  out.set(frame, 0);
  out.set(trailer, frame.length);
  return out;
}

/** Opus / VP8 wire bytes → the protected frame and its parsed trailer. Throws FrameAuthError. */
export function splitTrailer(wire: Uint8Array): { frame: Uint8Array; trailer: ParsedTrailer } {
  const trailer = parseTrailer(wire);
  return { frame: wire.subarray(0, trailer.start), trailer };
}

export function trailerNal(trailer: Uint8Array): Uint8Array {
  const body = escapeEmulation(trailer);
  const out = new Uint8Array(body.length + 1);
  out[0] = H264_TRAILER_NAL_HEADER;
  out.set(body, 1);
  return out;
}

export const isTrailerNal = (nal: Uint8Array) => nal.length > 0 && nalType(nal) === H264_TRAILER_NAL_TYPE;

/** H.264 protected units → the units the trailer covers and the parsed trailer (the last unit). */
export function splitTrailerNal(units: readonly Uint8Array[]): {
  units: Uint8Array[];
  trailer: ParsedTrailer;
} {
  const last = units[units.length - 1];
  if (!last || last[0] !== H264_TRAILER_NAL_HEADER)
    throw new FrameAuthError('MALFORMED_TRAILER', 'H.264 frame without a trailer NAL unit');
  const trailer = parseTrailer(unescapeEmulation(last.subarray(1)));
  if (trailer.start !== 0) throw new FrameAuthError('MALFORMED_TRAILER', 'bytes before the trailer');
  return { units: units.slice(0, -1), trailer };
}
