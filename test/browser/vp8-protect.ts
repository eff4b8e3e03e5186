// How the browser participant lays SFrame over a VP8 frame. Two formats:
//  - 'whole-frame': one SFrame over the whole frame, no metadata. This is what Sealroom's media worker
//    sends today (device/media/frame-protect.ts), so it is the default.
//  - 'clear-prefix': the PROPOSED fix (docs/interop.md): the VP8 payload header stays clear — 10 bytes
//    of a keyframe (frame tag, start code, width, height), 3 of a delta frame (frame tag) — and is
//    bound as SFrame metadata (authenticated, not sent twice); SFrame covers the rest. Chromium's VP8
//    depacketiser reads the frame type and size from these bytes before any receive transform runs.
// Pure apart from WebCrypto (through the SFrame classes).
import type { WebSFrameReceiver, WebSFrameSender } from './sframe-webcrypto.js';

export type Vp8Format = 'whole-frame' | 'clear-prefix';

/** RFC 6386 §9.1: bit 0 of the frame tag is 0 on a key frame. */
export const isVp8Keyframe = (frame: Uint8Array) => frame.length > 0 && ((frame[0] as number) & 1) === 0;

/** Clear bytes of the proposed format: the whole uncompressed data chunk of RFC 6386 §9.1. */
export const vp8ClearBytes = (frame: Uint8Array) => (isVp8Keyframe(frame) ? 10 : 3);

export class Vp8FormatError extends Error {
  override name = 'Vp8FormatError';
}

export async function sealVp8(
  sender: WebSFrameSender,
  frame: Uint8Array,
  format: Vp8Format,
): Promise<Uint8Array> {
  if (format === 'whole-frame') return sender.seal(frame);
  const n = vp8ClearBytes(frame);
  if (frame.length < n)
    throw new Vp8FormatError(`VP8 frame of ${frame.length} bytes is shorter than its header`);
  const clear = frame.subarray(0, n);
  const sealed = await sender.seal(frame.subarray(n), clear);
  const out = new Uint8Array(n + sealed.length);
  out.set(clear, 0);
  out.set(sealed, n);
  return out;
}

/** Inverse of sealVp8; throws (WebSFrameError / Vp8FormatError) rather than return unauthenticated bytes. */
export async function openVp8(
  receiver: Pick<WebSFrameReceiver, 'open'>,
  protectedFrame: Uint8Array,
  format: Vp8Format,
): Promise<Uint8Array> {
  if (format === 'whole-frame') return (await receiver.open(protectedFrame)).plaintext;
  const n = vp8ClearBytes(protectedFrame);
  if (protectedFrame.length <= n) throw new Vp8FormatError('protected VP8 frame too short');
  const clear = protectedFrame.subarray(0, n);
  const { plaintext } = await receiver.open(protectedFrame.subarray(n), clear);
  const out = new Uint8Array(n + plaintext.length);
  out.set(clear, 0);
  out.set(plaintext, n);
  return out;
}
