// SFrame protection of an H.264 access unit in the 'clear-params' format: one protected unit per NAL
// unit, each leaving clear what a browser's H.264 receive path (libwebrtc's depacketiser and
// H264SpsPpsTracker) parses before any receive transform runs, and binding it as SFrame metadata:
//
//   SPS (7), PPS (8):       nal || SFrame(empty, metadata = nal) || len(SFrame)   (1 byte)
//                           — the parameter set itself clear and authenticated; parsers ignore the
//                           trailing bytes, the receiver verifies and strips them.
//   slice (1 non-IDR, 5 IDR): nal[0:n] || SFrame(nal[n:], metadata = nal[0:n])
//                           — n covers the header byte and the slice header up to and including
//                           pic_parameter_set_id (first_mb_in_slice, slice_type, pps_id: 3 Exp-Golomb).
//   any other NAL unit:     nal[0:1] || SFrame(nal[1:], metadata = nal[0:1])   (header byte only)
//   access-unit delimiters (9) are dropped.
//   SFrame bytes (written S above) go on the wire with H.264 emulation prevention: 03 inserted after
//   every 00 00 that is followed by a byte ≤ 03, counting zeros from the end of the clear bytes.
//
// Emulation prevention keeps a protected unit free of start codes (00 00 01), so a browser that
// hands its transform's output to a packetiser splitting at start codes (Chromium does), or splits
// the access unit it receives the same way, never cuts ciphertext in two. The worker's own RTP path
// carries NAL units whole and would not need it; the format is one for both.
//
// The receiver derives n from the clear bytes alone (type from byte 0, the Exp-Golomb fields from the
// clear prefix), so the layout needs no extra signalling. The layout helpers are pure and crypto-free
// so the browser participant (WebCrypto, async, Annex B) runs this very code; sealH264AccessUnit and
// openH264AccessUnit bind it to src/core/sframe for the media worker, whose RTP path carries NAL units
// individually (RFC 6184 single NAL / FU-A), never re-split at start codes.
import type { SFrameReceiver, SFrameSender } from '../../src/core/sframe/index.js';
import { NAL_AUD, NAL_IDR, NAL_PPS, NAL_SPS, joinAnnexB, nalType, splitAnnexB } from './bitstream.js';

const NAL_SLICE = 1;

export class H264FormatError extends Error {
  override name = 'H264FormatError';
}

/** Bytes of a slice NAL unit (header byte included) up to and including pic_parameter_set_id. */
export function sliceHeaderPrefix(nal: Uint8Array): number {
  let bit = 8; // after the NAL header byte
  const readBit = () => {
    const byte = nal[bit >> 3];
    if (byte === undefined) throw new H264FormatError('slice header truncated');
    const v = (byte >> (7 - (bit & 7))) & 1;
    bit++;
    return v;
  };
  for (let field = 0; field < 3; field++) {
    let zeros = 0;
    while (readBit() === 0) if (++zeros > 31) throw new H264FormatError('bad Exp-Golomb code');
    for (let i = 0; i < zeros; i++) readBit();
  }
  return Math.ceil(bit / 8);
}

const isParameterSet = (nal: Uint8Array) => nalType(nal) === NAL_SPS || nalType(nal) === NAL_PPS;
const clearBytes = (nal: Uint8Array) =>
  nalType(nal) === NAL_SLICE || nalType(nal) === NAL_IDR ? sliceHeaderPrefix(nal) : 1;

/** What to seal of one plain NAL unit: `body` under SFrame with `clear` as metadata. */
export interface PlainNalSplit {
  parameterSet: boolean;
  clear: Uint8Array;
  body: Uint8Array;
}

export function splitPlainNal(nal: Uint8Array): PlainNalSplit {
  if (nal.length === 0) throw new H264FormatError('empty NAL unit');
  if (isParameterSet(nal)) return { parameterSet: true, clear: nal, body: new Uint8Array(0) };
  const n = clearBytes(nal);
  return { parameterSet: false, clear: nal.subarray(0, n), body: nal.subarray(n) };
}

/** Trailing zero bytes of `b` that an emulation-prevention run continuing after it must count (0–2). */
function trailingZeros(b: Uint8Array): number {
  if (b.length >= 1 && b[b.length - 1] === 0) return b.length >= 2 && b[b.length - 2] === 0 ? 2 : 1;
  return 0;
}

/**
 * H.264 emulation prevention (§7.4.1): 00 00 0x (x ≤ 3) → 00 00 03 0x; `zeros` zero bytes precede
 * `bytes`. Returns `bytes` itself when nothing needs escaping (the usual case).
 */
export function escapeEmulation(bytes: Uint8Array, zeros = 0): Uint8Array {
  let out: Uint8Array | undefined;
  let o = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (zeros >= 2 && b <= 3) {
      if (!out) {
        out = new Uint8Array(bytes.length + Math.ceil(bytes.length / 2) + 1);
        out.set(bytes.subarray(0, i), 0);
        o = i;
      }
      out[o++] = 3;
      zeros = 0;
    }
    if (out) out[o++] = b;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return out ? out.subarray(0, o) : bytes;
}

/** Inverse of escapeEmulation: drops the 03 of every 00 00 03. Returns `bytes` itself if none. */
export function unescapeEmulation(bytes: Uint8Array, zeros = 0): Uint8Array {
  let out: Uint8Array | undefined;
  let o = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i] as number;
    if (zeros >= 2 && b === 3) {
      if (!out) {
        out = new Uint8Array(bytes.length);
        out.set(bytes.subarray(0, i), 0);
        o = i;
      }
      zeros = 0;
      continue;
    }
    if (out) out[o++] = b;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return out ? out.subarray(0, o) : bytes;
}

/** The protected unit for a split and its SFrame. */
export function joinSealedNal(split: PlainNalSplit, sframe: Uint8Array): Uint8Array {
  const escaped = escapeEmulation(sframe, trailingZeros(split.clear));
  if (!split.parameterSet) return concat(split.clear, escaped);
  if (escaped.length > 255) throw new H264FormatError('parameter-set SFrame longer than 255 bytes');
  const out = new Uint8Array(split.clear.length + escaped.length + 1);
  out.set(split.clear, 0);
  out.set(escaped, split.clear.length);
  out[out.length - 1] = escaped.length;
  return out;
}

/** A protected unit → its clear bytes (the SFrame metadata) and its SFrame. */
export function splitProtectedNal(unit: Uint8Array): {
  parameterSet: boolean;
  clear: Uint8Array;
  sframe: Uint8Array;
} {
  if (unit.length === 0) throw new H264FormatError('empty protected NAL unit');
  if (isParameterSet(unit)) {
    const len = unit[unit.length - 1] as number;
    if (unit.length < len + 2) throw new H264FormatError('protected parameter set too short');
    const end = unit.length - 1;
    const clear = unit.subarray(0, end - len);
    return {
      parameterSet: true,
      clear,
      sframe: unescapeEmulation(unit.subarray(end - len, end), trailingZeros(clear)),
    };
  }
  const n = clearBytes(unit);
  if (unit.length <= n) throw new H264FormatError('protected NAL unit too short');
  const clear = unit.subarray(0, n);
  return { parameterSet: false, clear, sframe: unescapeEmulation(unit.subarray(n), trailingZeros(clear)) };
}

/** The plain NAL unit from a protected unit's clear bytes and its opened plaintext. */
export function joinOpenedNal(parameterSet: boolean, clear: Uint8Array, plaintext: Uint8Array): Uint8Array {
  if (!parameterSet) return concat(clear, plaintext);
  if (plaintext.length !== 0) throw new H264FormatError('parameter-set SFrame carried plaintext');
  return clear;
}

/** NAL units to protect from an Annex B access unit: access-unit delimiters dropped. */
export const nalUnitsToProtect = (accessUnit: Uint8Array) =>
  splitAnnexB(accessUnit).filter((nal) => nalType(nal) !== NAL_AUD);

/** NAL units → Annex B (4-byte start codes) as a plain Uint8Array (browsers have no Buffer). */
export function annexB(nals: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(nals.reduce((n, x) => n + 4 + x.length, 0));
  let at = 0;
  for (const nal of nals) {
    out.set(START_CODE, at);
    out.set(nal, at + 4);
    at += 4 + nal.length;
  }
  return out;
}

const START_CODE = Uint8Array.of(0, 0, 0, 1);

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Annex B access unit → protected NAL units (media worker, node:crypto). */
export function sealH264AccessUnit(
  sender: Pick<SFrameSender, 'encrypt'>,
  accessUnit: Uint8Array,
): Uint8Array[] {
  return nalUnitsToProtect(accessUnit).map((nal) => {
    const split = splitPlainNal(nal);
    return joinSealedNal(split, sender.encrypt(split.body, split.clear));
  });
}

/**
 * Protected NAL units of one frame → Annex B access unit. Throws (SFrameError / H264FormatError) if
 * any unit fails, so a frame is decoded whole or not at all; all units must come from one KID.
 */
export function openH264AccessUnit(
  receiver: Pick<SFrameReceiver, 'decrypt'>,
  units: readonly Uint8Array[],
): { kid: bigint; frame: Buffer } {
  let kid: bigint | undefined;
  const nals = units.map((unit) => {
    const { parameterSet, clear, sframe } = splitProtectedNal(unit);
    const opened = receiver.decrypt(sframe, clear);
    if (kid !== undefined && opened.kid !== kid)
      throw new H264FormatError('NAL units of one frame from different KIDs');
    kid = opened.kid;
    return joinOpenedNal(parameterSet, clear, opened.plaintext);
  });
  if (kid === undefined) throw new H264FormatError('empty H.264 frame');
  return { kid, frame: joinAnnexB(nals) };
}
