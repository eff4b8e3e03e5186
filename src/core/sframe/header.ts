// RFC 9605 §4.3 header: one config byte |X|K(3)|Y|C(3)| followed by the KID bytes, then the CTR bytes.
// A value below 8 sits in K/C with its flag clear; otherwise the flag is set, K/C holds (length − 1)
// and the value follows big-endian in the fewest bytes (1..8). Decoding insists on that minimal form:
// the header is authenticated as AAD, so two spellings of one (KID, CTR) would be two different frames.

import { SFrameError } from './errors.js';

export const MAX_UINT64 = 0xffff_ffff_ffff_ffffn;
/** Longest possible header: config byte + 8 KID bytes + 8 CTR bytes. */
export const MAX_HEADER_LENGTH = 17;

const TWO_POW_32 = 0x1_0000_0000;

function checkUint64(name: string, value: bigint): void {
  if (typeof value !== 'bigint' || value < 0n || value > MAX_UINT64) {
    throw new RangeError(`${name} must be a bigint in [0, 2^64-1], got ${String(value)}`);
  }
}

/** Bytes needed to carry `value` after the config byte: 0 when it fits in the 3-bit field. */
export function extraLength(value: bigint): number {
  if (value < 8n) return 0;
  if (value <= 0xffff_ffffn) {
    const n = Number(value);
    return n <= 0xff ? 1 : n <= 0xffff ? 2 : n <= 0xff_ffff ? 3 : 4;
  }
  const hi = Number(value >> 32n);
  return hi <= 0xff ? 5 : hi <= 0xffff ? 6 : hi <= 0xff_ffff ? 7 : 8;
}

/** Writes `value` big-endian into out[offset .. offset+length). */
function writeUintBE(out: Uint8Array, offset: number, value: bigint, length: number): void {
  let lo = Number(value & 0xffff_ffffn);
  let hi = length > 4 ? Number(value >> 32n) : 0;
  for (let i = offset + length - 1; i >= offset; i--) {
    if (i >= offset + length - 4) {
      out[i] = lo & 0xff;
      lo >>>= 8;
    } else {
      out[i] = hi & 0xff;
      hi >>>= 8;
    }
  }
}

function readUintBE(buf: Uint8Array, offset: number, length: number): bigint {
  if (length <= 6) {
    let n = 0;
    for (let i = offset; i < offset + length; i++) n = n * 256 + buf[i]!;
    return BigInt(n);
  }
  let hi = 0;
  const split = offset + length - 4;
  for (let i = offset; i < split; i++) hi = hi * 256 + buf[i]!;
  const lo = ((buf[split]! << 24) | (buf[split + 1]! << 16) | (buf[split + 2]! << 8) | buf[split + 3]!) >>> 0;
  return BigInt(hi) * BigInt(TWO_POW_32) + BigInt(lo);
}

/** Length of the header for (kid, ctr), without building it. */
export function headerLength(kid: bigint, ctr: bigint): number {
  return 1 + extraLength(kid) + extraLength(ctr);
}

/**
 * Writes the header for (kid, ctr) at out[offset..] and returns its length. No validation: the hot
 * path calls it with values it already checked.
 */
export function writeHeader(out: Uint8Array, offset: number, kid: bigint, ctr: bigint): number {
  const kidLen = extraLength(kid);
  const ctrLen = extraLength(ctr);
  const k = kidLen === 0 ? Number(kid) << 4 : 0x80 | ((kidLen - 1) << 4);
  const c = ctrLen === 0 ? Number(ctr) : 0x08 | (ctrLen - 1);
  out[offset] = k | c;
  if (kidLen > 0) writeUintBE(out, offset + 1, kid, kidLen);
  if (ctrLen > 0) writeUintBE(out, offset + 1 + kidLen, ctr, ctrLen);
  return 1 + kidLen + ctrLen;
}

/** The minimal RFC 9605 header for (kid, ctr). RangeError for values outside [0, 2^64−1]. */
export function encodeHeader(kid: bigint, ctr: bigint): Uint8Array {
  checkUint64('kid', kid);
  checkUint64('ctr', ctr);
  const out = new Uint8Array(headerLength(kid, ctr));
  writeHeader(out, 0, kid, ctr);
  return out;
}

export interface DecodedHeader {
  kid: bigint;
  ctr: bigint;
  headerLength: number;
}

function readField(
  buf: Uint8Array,
  offset: number,
  extended: boolean,
  bits: number,
  name: string,
): { value: bigint; next: number } {
  if (!extended) return { value: BigInt(bits), next: offset };
  const length = bits + 1;
  if (buf.length < offset + length) {
    throw new SFrameError('TRUNCATED', `header announces a ${length}-byte ${name} but the input ends`);
  }
  if (buf[offset] === 0 || (length === 1 && buf[offset]! < 8)) {
    throw new SFrameError('MALFORMED_HEADER', `${name} is not minimally encoded`);
  }
  return { value: readUintBE(buf, offset, length), next: offset + length };
}

/**
 * Parses the header at the start of `buf` (anything may follow it). Throws SFrameError TRUNCATED when
 * the input ends inside the header, MALFORMED_HEADER for a non-minimal encoding or non-byte input.
 */
export function decodeHeader(buf: Uint8Array): DecodedHeader {
  if (!(buf instanceof Uint8Array)) throw new SFrameError('MALFORMED_HEADER', 'input is not a Uint8Array');
  if (buf.length === 0) throw new SFrameError('TRUNCATED', 'empty input has no SFrame header');
  const config = buf[0]!;
  const kid = readField(buf, 1, (config & 0x80) !== 0, (config >> 4) & 0x07, 'KID');
  const ctr = readField(buf, kid.next, (config & 0x08) !== 0, config & 0x07, 'CTR');
  return { kid: kid.value, ctr: ctr.value, headerLength: ctr.next };
}
