// The media worker's H.264 protection, redone for the browser: one SFrame per NAL unit over the bytes
// after the one-byte NAL header, which stays clear and is bound as SFrame metadata; access-unit
// delimiters are dropped (device/media/frame-protect.ts). Chromium hands encoded H.264 frames to a
// transform as an Annex B access unit (start codes included).

const START_CODE = Uint8Array.of(0, 0, 0, 1);
const NAL_AUD = 9;

import type { WebSFrameReceiver, WebSFrameSender } from './sframe-webcrypto.js';

/** NAL units of an Annex B access unit (3- or 4-byte start codes removed). */
export function splitNalUnits(au: Uint8Array): Uint8Array[] {
  const starts: { at: number; len: number }[] = [];
  for (let i = 0; i + 2 < au.length; i++) {
    if (au[i] === 0 && au[i + 1] === 0) {
      if (au[i + 2] === 1) {
        starts.push({ at: i, len: 3 });
        i += 2;
      } else if (au[i + 2] === 0 && au[i + 3] === 1) {
        starts.push({ at: i, len: 4 });
        i += 3;
      }
    }
  }
  return starts
    .map((s, k) =>
      au.subarray(s.at + s.len, k + 1 < starts.length ? (starts[k + 1] as { at: number }).at : au.length),
    )
    .filter((n) => n.length > 0);
}

function joinNalUnits(nals: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(nals.reduce((n, x) => n + 4 + x.length, 0));
  let at = 0;
  for (const n of nals) {
    out.set(START_CODE, at);
    out.set(n, at + 4);
    at += 4 + n.length;
  }
  return out;
}

export async function sealH264(sender: WebSFrameSender, au: Uint8Array): Promise<Uint8Array> {
  const sealed: Uint8Array[] = [];
  for (const nal of splitNalUnits(au)) {
    if (((nal[0] as number) & 0x1f) === NAL_AUD) continue;
    const header = nal.subarray(0, 1);
    const body = await sender.seal(nal.subarray(1), header);
    const unit = new Uint8Array(1 + body.length);
    unit.set(header, 0);
    unit.set(body, 1);
    sealed.push(unit);
  }
  return joinNalUnits(sealed);
}

/**
 * Opens every protected NAL unit of an access unit; throws if any fails, so a frame is decoded whole
 * or not at all. A sealed body may itself contain 00 00 01: the split is only as good as the
 * packetiser's NAL boundaries, which is why the worker never re-splits on the receive side either.
 */
export async function openH264(
  receiver: Pick<WebSFrameReceiver, 'open'>,
  au: Uint8Array,
): Promise<Uint8Array> {
  const opened: Uint8Array[] = [];
  for (const unit of splitNalUnits(au)) {
    const header = unit.subarray(0, 1);
    const { plaintext } = await receiver.open(unit.subarray(1), header);
    const nal = new Uint8Array(1 + plaintext.length);
    nal.set(header, 0);
    nal.set(plaintext, 1);
    opened.push(nal);
  }
  return joinNalUnits(opened);
}

// ---- PROPOSED (docs/interop.md): what Chromium's H.264 receive path needs in the clear ----
//
// SPS and PPS travel clear, authenticated by an SFrame over no plaintext with the NAL unit as
// metadata, appended after it with its length in one last byte. A slice keeps its header byte and
// the slice header up to pic_parameter_set_id (three Exp-Golomb fields) clear, bound as metadata.

const NAL_SPS = 7;
const NAL_PPS = 8;

/** Bytes of a slice NAL unit (header byte included) that hold first_mb_in_slice, slice_type, pps_id. */
export function sliceHeaderPrefix(nal: Uint8Array): number {
  let bit = 8; // after the NAL header byte
  const readBit = () => {
    const byte = nal[bit >> 3];
    if (byte === undefined) throw new RangeError('slice header truncated');
    const v = (byte >> (7 - (bit & 7))) & 1;
    bit++;
    return v;
  };
  for (let field = 0; field < 3; field++) {
    let zeros = 0;
    while (readBit() === 0) if (++zeros > 31) throw new RangeError('bad Exp-Golomb code');
    for (let i = 0; i < zeros; i++) readBit();
  }
  return Math.ceil(bit / 8);
}

async function sealUnitClearParams(sender: WebSFrameSender, nal: Uint8Array): Promise<Uint8Array> {
  const type = (nal[0] as number) & 0x1f;
  if (type === NAL_SPS || type === NAL_PPS) {
    const tag = await sender.seal(new Uint8Array(0), nal);
    const out = new Uint8Array(nal.length + tag.length + 1);
    out.set(nal, 0);
    out.set(tag, nal.length);
    out[out.length - 1] = tag.length;
    return out;
  }
  const n = sliceHeaderPrefix(nal);
  const clear = nal.subarray(0, n);
  const body = await sender.seal(nal.subarray(n), clear);
  const out = new Uint8Array(n + body.length);
  out.set(clear, 0);
  out.set(body, n);
  return out;
}

async function openUnitClearParams(
  receiver: Pick<WebSFrameReceiver, 'open'>,
  unit: Uint8Array,
): Promise<Uint8Array> {
  const type = (unit[0] as number) & 0x1f;
  if (type === NAL_SPS || type === NAL_PPS) {
    const len = unit[unit.length - 1] ?? 0;
    const nal = unit.subarray(0, unit.length - 1 - len);
    await receiver.open(unit.subarray(unit.length - 1 - len, unit.length - 1), nal);
    return nal;
  }
  const n = sliceHeaderPrefix(unit);
  const clear = unit.subarray(0, n);
  const { plaintext } = await receiver.open(unit.subarray(n), clear);
  const out = new Uint8Array(n + plaintext.length);
  out.set(clear, 0);
  out.set(plaintext, n);
  return out;
}

export type H264Format = 'per-nal' | 'clear-params';

export async function sealH264As(
  sender: WebSFrameSender,
  au: Uint8Array,
  format: H264Format,
): Promise<Uint8Array> {
  if (format === 'per-nal') return sealH264(sender, au);
  const units: Uint8Array[] = [];
  for (const nal of splitNalUnits(au)) {
    if (((nal[0] as number) & 0x1f) === NAL_AUD) continue;
    units.push(await sealUnitClearParams(sender, nal));
  }
  return joinNalUnits(units);
}

export async function openH264As(
  receiver: Pick<WebSFrameReceiver, 'open'>,
  au: Uint8Array,
  format: H264Format,
): Promise<Uint8Array> {
  if (format === 'per-nal') return openH264(receiver, au);
  const nals: Uint8Array[] = [];
  for (const unit of splitNalUnits(au)) nals.push(await openUnitClearParams(receiver, unit));
  return joinNalUnits(nals);
}
