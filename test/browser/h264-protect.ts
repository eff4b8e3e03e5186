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
