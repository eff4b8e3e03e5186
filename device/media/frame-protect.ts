// SFrame protection of encoded media frames, per codec. Pure (node:crypto through src/core/sframe).
//
// Opus: one SFrame over the whole encoded frame; the RTP payload format carries it as opaque bytes.
// VP8: the clear-prefix format of vp8-protect.ts (its uncompressed data chunk clear, as metadata),
// because browsers read the frame type from byte 0 before their receive transform runs.
// H.264: one SFrame per NAL unit over the bytes after the one-byte NAL header, which stays clear and
// is bound as SFrame metadata (authenticated, not sent twice). The RTP packetiser and any SFU or
// browser depacketiser need NAL boundaries and types (FU-A fragmentation, STAP-A, IDR detection);
// encrypting the whole access unit would hide them and require a non-standard payload format. The
// cost is one AEAD tag and SFrame header per NAL (x264 zerolatency emits 1 slice per frame, plus
// SPS/PPS on keyframes); access-unit delimiters are dropped before sealing.
import type { SFrameReceiver, SFrameSender } from '../../src/core/sframe/index.js';
import { NAL_AUD, joinAnnexB, nalType, splitAnnexB } from './bitstream.js';

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

/** Annex B access unit → protected NAL units (header byte clear, rest SFrame). */
export function sealH264AccessUnit(sender: SFrameSender, accessUnit: Uint8Array): Uint8Array[] {
  return splitAnnexB(accessUnit)
    .filter((nal) => nalType(nal) !== NAL_AUD)
    .map((nal) => {
      const header = nal.subarray(0, 1);
      const sealed = sender.encrypt(nal.subarray(1), header);
      const out = Buffer.allocUnsafe(1 + sealed.length);
      out[0] = header[0] as number;
      out.set(sealed, 1);
      return out;
    });
}

/**
 * Protected NAL units of one frame → Annex B access unit. Throws (SFrameError) if any unit fails, so
 * a frame is decoded whole or not at all; all units must come from one KID.
 */
export function openH264AccessUnit(
  receiver: SFrameReceiver,
  units: readonly Uint8Array[],
): { kid: bigint; frame: Buffer } {
  let kid: bigint | undefined;
  const nals = units.map((unit) => {
    const header = unit.subarray(0, 1);
    const opened = receiver.decrypt(unit.subarray(1), header);
    if (kid !== undefined && opened.kid !== kid)
      throw new Error('NAL units of one frame from different KIDs');
    kid = opened.kid;
    const nal = Buffer.allocUnsafe(1 + opened.plaintext.length);
    nal[0] = header[0] as number;
    nal.set(opened.plaintext, 1);
    return nal;
  });
  if (kid === undefined) throw new Error('empty H.264 frame');
  return { kid, frame: joinAnnexB(nals) };
}
