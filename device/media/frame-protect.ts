// SFrame protection of encoded media frames, per codec. Pure (node:crypto through src/core/sframe).
//
// Opus: one SFrame over the whole encoded frame; the RTP payload format carries it as opaque bytes.
// VP8: the clear-prefix format of vp8-protect.ts (its uncompressed data chunk clear, as metadata).
// H.264: the clear-params format of h264-protect.ts (one SFrame per NAL unit; NAL header, parameter
// sets and slice-header ids clear, as metadata).
// Why the video formats leave bytes clear: the RTP packetiser, an SFU and above all a browser's
// depacketiser read them before any receive transform runs (frame type, NAL boundaries and types,
// parameter-set ids); see docs/media.md "Frame formats" and docs/interop.md.
import type { SFrameReceiver, SFrameSender } from '../../src/core/sframe/index.js';

export { openH264AccessUnit, sealH264AccessUnit } from './h264-protect.js';
export { openVp8Frame, sealVp8Frame } from './vp8-protect.js';

/** Opus (and anything whose RTP payload format and receivers need no clear bytes). */
export function sealWholeFrame(sender: SFrameSender, frame: Uint8Array): Uint8Array {
  return sender.encrypt(frame);
}

export function openWholeFrame(
  receiver: SFrameReceiver,
  sealed: Uint8Array,
): { kid: bigint; frame: Uint8Array } {
  const { plaintext, kid } = receiver.decrypt(sealed);
  return { kid, frame: plaintext };
}
