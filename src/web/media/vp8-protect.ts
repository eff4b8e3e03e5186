// How the browser participant lays SFrame over a VP8 frame, on WebCrypto (async). The layout itself is
// the media worker's (device/media/vp8-protect.ts, the single implementation); this only binds it to
// the browser's SFrame. Two formats:
//  - 'clear-prefix' (default, what the media worker sends): the VP8 uncompressed data chunk — 10 bytes
//    of a keyframe, 3 of a delta frame — stays clear and is bound as SFrame metadata.
//  - 'whole-frame': one SFrame over the whole frame, no metadata — the former format, kept to show
//    in Chromium why it was abandoned (test/browser/proposed-formats.test.ts).
import {
  Vp8FormatError,
  isVp8Keyframe,
  joinVp8,
  splitProtectedVp8,
  splitVp8Frame,
  vp8ClearBytes,
} from '../../../device/media/vp8-protect.js';
import type { WebSFrameReceiver, WebSFrameSender } from './sframe-webcrypto.js';

export { Vp8FormatError, isVp8Keyframe, vp8ClearBytes };

export type Vp8Format = 'whole-frame' | 'clear-prefix';

export async function sealVp8(
  sender: WebSFrameSender,
  frame: Uint8Array,
  format: Vp8Format,
): Promise<Uint8Array> {
  if (format === 'whole-frame') return sender.seal(frame);
  const { clear, body } = splitVp8Frame(frame);
  return joinVp8(clear, await sender.seal(body, clear));
}

/** Inverse of sealVp8; throws (WebSFrameError / Vp8FormatError) rather than return unauthenticated bytes. */
export async function openVp8(
  receiver: Pick<WebSFrameReceiver, 'open'>,
  protectedFrame: Uint8Array,
  format: Vp8Format,
): Promise<Uint8Array> {
  if (format === 'whole-frame') return (await receiver.open(protectedFrame)).plaintext;
  const { clear, sealed } = splitProtectedVp8(protectedFrame);
  return joinVp8(clear, (await receiver.open(sealed, clear)).plaintext);
}
