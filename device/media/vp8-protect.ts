// SFrame protection of a VP8 frame in the 'clear-prefix' format: the frame's uncompressed data chunk
// (RFC 6386 §9.1) stays clear and is bound as SFrame metadata (authenticated, not sent twice); SFrame
// covers the rest.
//
//   keyframe   (bit 0 of byte 0 is 0): 10 clear bytes — frame tag (3), start code 9d 01 2a, width, height
//   delta frame (bit 0 of byte 0 is 1):  3 clear bytes — frame tag
//   on wire  = frame[0:n] || SFrame(frame[n:], metadata = frame[0:n])
//
// Why: a browser's VP8 depacketiser (libwebrtc) reads the frame type from bit 0 of payload byte 0 and
// a keyframe's size from bytes 6–9 before any receive transform runs. With one SFrame over the whole
// frame that byte is the SFrame header's config byte and browsers mislabel frames (docs/interop.md).
//
// The layout helpers below are pure and crypto-free so that the browser participant (WebCrypto, async)
// uses exactly this code too; sealVp8Frame/openVp8Frame bind it to src/core/sframe (sync).
import type { SFrameReceiver, SFrameSender } from '../../src/core/sframe/index.js';
import { isVp8Keyframe } from './bitstream.js';

export { isVp8Keyframe };

export const VP8_KEYFRAME_CLEAR_BYTES = 10;
export const VP8_DELTA_CLEAR_BYTES = 3;

export class Vp8FormatError extends Error {
  override name = 'Vp8FormatError';
}

/** Clear bytes of a frame (plain or protected: the clear byte 0 says which). */
export function vp8ClearBytes(frame: Uint8Array): number {
  return isVp8Keyframe(frame) ? VP8_KEYFRAME_CLEAR_BYTES : VP8_DELTA_CLEAR_BYTES;
}

/** A plain VP8 frame → its clear header and the body to seal. Refuses frames shorter than their header. */
export function splitVp8Frame(frame: Uint8Array): { clear: Uint8Array; body: Uint8Array } {
  const n = vp8ClearBytes(frame);
  if (frame.length < n)
    throw new Vp8FormatError(`VP8 frame of ${frame.length} bytes is shorter than its header`);
  return { clear: frame.subarray(0, n), body: frame.subarray(n) };
}

/** A protected frame → its clear header (the SFrame metadata) and the SFrame. */
export function splitProtectedVp8(wire: Uint8Array): { clear: Uint8Array; sealed: Uint8Array } {
  const n = vp8ClearBytes(wire);
  if (wire.length <= n) throw new Vp8FormatError(`protected VP8 frame of ${wire.length} bytes is too short`);
  return { clear: wire.subarray(0, n), sealed: wire.subarray(n) };
}

/** clear || rest, in one new buffer (both directions). */
export function joinVp8(clear: Uint8Array, rest: Uint8Array): Uint8Array {
  const out = new Uint8Array(clear.length + rest.length);
  out.set(clear, 0);
  out.set(rest, clear.length);
  return out;
}

export function sealVp8Frame(sender: Pick<SFrameSender, 'encrypt'>, frame: Uint8Array): Uint8Array {
  const { clear, body } = splitVp8Frame(frame);
  return joinVp8(clear, sender.encrypt(body, clear));
}

/** Inverse of sealVp8Frame; throws (SFrameError / Vp8FormatError) rather than return unauthenticated bytes. */
export function openVp8Frame(
  receiver: Pick<SFrameReceiver, 'decrypt'>,
  wire: Uint8Array,
): { kid: bigint; frame: Uint8Array } {
  const { clear, sealed } = splitProtectedVp8(wire);
  const { plaintext, kid } = receiver.decrypt(sealed, clear);
  return { kid, frame: joinVp8(clear, plaintext) };
}
