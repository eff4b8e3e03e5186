// How the browser participant protects H.264, on WebCrypto (async). Chromium hands encoded H.264 frames
// to a transform as an Annex B access unit (start codes included). Two formats:
//  - 'clear-params' (default, what the media worker sends): the layout of device/media/h264-protect.ts
//    (the single implementation; this only binds it to the browser's SFrame).
//  - 'per-nal': the worker's former format — one SFrame per NAL unit with only the header byte clear —
//    kept to show in Chromium why it was abandoned (test/browser/proposed-formats.test.ts).
import {
  annexB,
  joinOpenedNal,
  joinSealedNal,
  nalUnitsToProtect,
  sliceHeaderPrefix,
  splitPlainNal,
  splitProtectedNal,
} from '../../../device/media/h264-protect.js';
import { splitAnnexB } from '../../../device/media/bitstream.js';
import type { WebSFrameReceiver, WebSFrameSender } from './sframe-webcrypto.js';

export { sliceHeaderPrefix };
/** NAL units of an Annex B access unit (3- or 4-byte start codes removed). */
export const splitNalUnits = splitAnnexB;

export type H264Format = 'per-nal' | 'clear-params';

/** The former per-NAL layout: header byte clear and bound as metadata, the rest SFrame (unescaped). */
const formerSplit = (nal: Uint8Array) => ({ clear: nal.subarray(0, 1), rest: nal.subarray(1) });
const concat = (a: Uint8Array, b: Uint8Array) => {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
};

export async function sealH264As(
  sender: WebSFrameSender,
  au: Uint8Array,
  format: H264Format = 'clear-params',
): Promise<Uint8Array> {
  const units: Uint8Array[] = [];
  for (const nal of nalUnitsToProtect(au)) {
    if (format === 'per-nal') {
      const { clear, rest } = formerSplit(nal);
      units.push(concat(clear, await sender.seal(rest, clear)));
    } else {
      const split = splitPlainNal(nal);
      units.push(joinSealedNal(split, await sender.seal(split.body, split.clear)));
    }
  }
  return annexB(units);
}

/**
 * Opens every protected NAL unit of an access unit; throws if any fails, so a frame is decoded whole
 * or not at all. A sealed body may itself contain 00 00 01: the split is only as good as Chromium's
 * NAL boundaries (docs/interop.md); the worker never re-splits on its receive side.
 */
export async function openH264As(
  receiver: Pick<WebSFrameReceiver, 'open'>,
  au: Uint8Array,
  format: H264Format = 'clear-params',
): Promise<Uint8Array> {
  const nals: Uint8Array[] = [];
  for (const unit of splitAnnexB(au)) {
    if (format === 'per-nal') {
      const { clear, rest } = formerSplit(unit);
      nals.push(concat(clear, (await receiver.open(rest, clear)).plaintext));
    } else {
      const { parameterSet, clear, sframe } = splitProtectedNal(unit);
      nals.push(joinOpenedNal(parameterSet, clear, (await receiver.open(sframe, clear)).plaintext));
    }
  }
  return annexB(nals);
}
