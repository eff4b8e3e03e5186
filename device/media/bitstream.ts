// Codec bitstream facts the media path needs, because the GStreamer binding hands us bare buffers
// without flags: where H.264 NAL units start and end, and which frames are keyframes. Pure.

export type VideoCodec = 'h264' | 'vp8';

/** H.264 NAL unit types we look at (ITU-T H.264 table 7-1). */
export const NAL_IDR = 5;
export const NAL_SPS = 7;
export const NAL_PPS = 8;
export const NAL_AUD = 9;

/** Splits an Annex B byte stream (00 00 01 / 00 00 00 01 start codes) into NAL units, start codes removed. */
export function splitAnnexB(stream: Uint8Array): Uint8Array[] {
  const starts: { at: number; len: number }[] = [];
  for (let i = 0; i + 2 < stream.length; i++) {
    if (stream[i] === 0 && stream[i + 1] === 0) {
      if (stream[i + 2] === 1) {
        starts.push({ at: i, len: 3 });
        i += 2;
      } else if (stream[i + 2] === 0 && stream[i + 3] === 1) {
        starts.push({ at: i, len: 4 });
        i += 3;
      }
    }
  }
  const nals: Uint8Array[] = [];
  for (let k = 0; k < starts.length; k++) {
    const s = starts[k] as { at: number; len: number };
    const end = k + 1 < starts.length ? (starts[k + 1] as { at: number }).at : stream.length;
    const nal = stream.subarray(s.at + s.len, end);
    if (nal.length > 0) nals.push(nal);
  }
  return nals;
}

const START_CODE = Uint8Array.of(0, 0, 0, 1);

/** Joins NAL units into an Annex B access unit (4-byte start codes), as decoders after appsrc expect. */
export function joinAnnexB(nals: readonly Uint8Array[]): Buffer {
  return Buffer.concat(nals.flatMap((n) => [START_CODE, n]));
}

export function nalType(nal: Uint8Array): number {
  return (nal[0] ?? 0) & 0x1f;
}

/** An access unit is a keyframe when it carries an IDR slice. */
export function isH264Keyframe(nals: readonly Uint8Array[]): boolean {
  return nals.some((n) => nalType(n) === NAL_IDR);
}

/** VP8 (RFC 6386 §9.1): bit 0 of the first byte of the frame tag is 0 for a key frame. */
export function isVp8Keyframe(frame: Uint8Array): boolean {
  return frame.length > 0 && ((frame[0] as number) & 0x01) === 0;
}
