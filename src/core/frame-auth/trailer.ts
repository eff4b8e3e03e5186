// Sender authentication of media frames: the byte layout of the MAC-vector trailer (docs/sframe.md,
// "Sender authentication"). Pure and crypto-free, so the browser participant (WebCrypto, async) and
// the media worker (node:crypto, sync) share this exact code.
//
//   trailer = tag_1 || … || tag_N || r_1 || … || r_N || N || version
//             8 bytes each           uint16_be each     u8   0x01
//
// r_i are the receivers' sender indexes, strictly ascending; tag_i is the first 8 bytes of
// HMAC-SHA256(frameAuthKey(sender → r_i), macInput). Parsed from the end, so it can trail a frame.

export const FRAME_AUTH_VERSION = 1;
export const FRAME_TAG_BYTES = 8;
/** N is one byte. */
export const MAX_FRAME_AUTH_RECEIVERS = 255;
/** H.264 carries the trailer in its own NAL unit: filler data (type 12), nal_ref_idc 0. */
export const H264_TRAILER_NAL_HEADER = 0x0c;
export const H264_TRAILER_NAL_TYPE = 12;
const DIGEST_BYTES = 32;

export type FrameAuthErrorCode =
  /** No trailer, a malformed one, or one with N > the limit / unsorted receivers. */
  | 'MALFORMED_TRAILER'
  /** The trailer carries no tag for this receiver. */
  | 'NO_TAG'
  /** This receiver holds no frame-authentication key for the frame's sender. */
  | 'NO_KEY'
  /** The tag for this receiver does not verify. */
  | 'BAD_TAG';

export class FrameAuthError extends Error {
  readonly code: FrameAuthErrorCode;
  constructor(code: FrameAuthErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'FrameAuthError';
    this.code = code;
  }
}

export const trailerLength = (receivers: number) => receivers * (FRAME_TAG_BYTES + 2) + 2;

export interface ParsedTrailer {
  /** Offset in the input where the trailer starts (= length of the authenticated frame before it). */
  start: number;
  receivers: number[];
  /** r_1 … r_N || N || version: the trailer bytes the MAC covers (everything but the tags). */
  signedTail: Uint8Array;
  /** This receiver's tag, or undefined when the trailer names no such receiver. */
  tagFor(self: number): Uint8Array | undefined;
}

export function checkReceivers(receivers: readonly number[]): void {
  if (receivers.length > MAX_FRAME_AUTH_RECEIVERS)
    throw new RangeError(`at most ${MAX_FRAME_AUTH_RECEIVERS} receivers per frame, got ${receivers.length}`);
  let prev = -1;
  for (const r of receivers) {
    if (!Number.isInteger(r) || r < 0 || r > 0xffff || r <= prev)
      throw new RangeError('receiver indexes must be strictly ascending integers in [0, 65535]');
    prev = r;
  }
}

/** r_1 … r_N || N || version, for receivers already checked. */
export function signedTail(receivers: readonly number[]): Uint8Array {
  const out = new Uint8Array(receivers.length * 2 + 2);
  receivers.forEach((r, i) => {
    out[i * 2] = r >> 8;
    out[i * 2 + 1] = r & 0xff;
  });
  out[out.length - 2] = receivers.length;
  out[out.length - 1] = FRAME_AUTH_VERSION;
  return out;
}

/** What each tag is an HMAC of: SHA-256 of the covered units, then the signed tail. */
export function macInput(digest: Uint8Array, tail: Uint8Array): Uint8Array {
  if (digest.length !== DIGEST_BYTES) throw new RangeError('digest must be 32 bytes');
  const out = new Uint8Array(DIGEST_BYTES + tail.length);
  out.set(digest, 0);
  out.set(tail, DIGEST_BYTES);
  return out;
}

/**
 * The bytes SHA-256 runs over: every covered unit as uint32_be(length) || unit. Opus and VP8 cover
 * one unit (the protected frame), H.264 one per protected NAL unit, in order.
 */
export function* coveredChunks(units: readonly Uint8Array[]): Generator<Uint8Array> {
  for (const u of units) {
    const len = new Uint8Array(4);
    new DataView(len.buffer).setUint32(0, u.length);
    yield len;
    yield u;
  }
}

export function buildTrailer(receivers: readonly number[], tags: readonly Uint8Array[]): Uint8Array {
  checkReceivers(receivers);
  if (tags.length !== receivers.length) throw new RangeError('one tag per receiver');
  const tail = signedTail(receivers);
  const out = new Uint8Array(receivers.length * FRAME_TAG_BYTES + tail.length);
  tags.forEach((t, i) => {
    if (t.length < FRAME_TAG_BYTES) throw new RangeError('tag shorter than 8 bytes');
    out.set(t.subarray(0, FRAME_TAG_BYTES), i * FRAME_TAG_BYTES);
  });
  out.set(tail, receivers.length * FRAME_TAG_BYTES);
  return out;
}

/** Reads the trailer at the end of `bytes`; refuses anything not exactly in the layout above. */
export function parseTrailer(bytes: Uint8Array): ParsedTrailer {
  if (!(bytes instanceof Uint8Array) || bytes.length < 2)
    throw new FrameAuthError('MALFORMED_TRAILER', 'no sender-authentication trailer');
  if (bytes[bytes.length - 1] !== FRAME_AUTH_VERSION)
    throw new FrameAuthError('MALFORMED_TRAILER', 'unknown trailer version');
  const n = bytes[bytes.length - 2] as number;
  const len = trailerLength(n);
  if (bytes.length < len) throw new FrameAuthError('MALFORMED_TRAILER', 'trailer truncated');
  const start = bytes.length - len;
  const tagsEnd = start + n * FRAME_TAG_BYTES;
  const receivers: number[] = [];
  let prev = -1;
  for (let i = 0; i < n; i++) {
    const r = ((bytes[tagsEnd + i * 2] as number) << 8) | (bytes[tagsEnd + i * 2 + 1] as number);
    if (r <= prev) throw new FrameAuthError('MALFORMED_TRAILER', 'receiver indexes not ascending');
    receivers.push(r);
    prev = r;
  }
  return {
    start,
    receivers,
    signedTail: bytes.subarray(tagsEnd),
    tagFor(self: number) {
      const i = receivers.indexOf(self);
      if (i < 0) return undefined;
      return bytes.subarray(start + i * FRAME_TAG_BYTES, start + (i + 1) * FRAME_TAG_BYTES);
    },
  };
}

/** Constant-time comparison of two tags (no early exit on the first differing byte). */
export function tagsEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}
