// RTP payload formats for already-protected frames. Pure.
//
// VP8 and Opus frames are SFrame-protected whole, so the payload is opaque ciphertext: VP8 uses the
// RFC 7741 payload descriptor (S bit, 15-bit PictureID) in front of ciphertext chunks, Opus one packet
// per frame. H.264 is protected per NAL unit with the one-byte NAL header left clear (see
// frame-protect.ts), so RFC 6184 packetisation (single NAL unit / FU-A, STAP-A on receive) still works
// and an SFU or browser sees valid NAL structure.

/** Payload bytes per RTP packet: 1200 keeps packets under a 1280-byte IPv6 minimum MTU with SRTP. */
export const DEFAULT_MAX_PAYLOAD = 1200;

const FU_A = 28;
const STAP_A = 24;

// ---- VP8 (RFC 7741) ----

export function packetizeVp8(
  frame: Uint8Array,
  pictureId: number,
  maxPayload = DEFAULT_MAX_PAYLOAD,
): Buffer[] {
  const chunk = maxPayload - 4;
  const out: Buffer[] = [];
  for (let at = 0; at < frame.length || out.length === 0; at += chunk) {
    const part = frame.subarray(at, Math.min(frame.length, at + chunk));
    const head = Buffer.from([
      at === 0 ? 0x90 : 0x80,
      0x80,
      0x80 | ((pictureId >> 8) & 0x7f),
      pictureId & 0xff,
    ]);
    out.push(Buffer.concat([head, part]));
  }
  return out;
}

export interface Vp8Packet {
  /** First packet of a frame (S = 1 and partition index 0). */
  start: boolean;
  pictureId?: number;
  body: Uint8Array;
}

export function parseVp8Payload(payload: Uint8Array): Vp8Packet | undefined {
  if (payload.length < 1) return undefined;
  const b0 = payload[0] as number;
  let at = 1;
  let pictureId: number | undefined;
  if (b0 & 0x80) {
    const ext = payload[at++];
    if (ext === undefined) return undefined;
    if (ext & 0x80) {
      const p0 = payload[at++];
      if (p0 === undefined) return undefined;
      if (p0 & 0x80) {
        const p1 = payload[at++];
        if (p1 === undefined) return undefined;
        pictureId = ((p0 & 0x7f) << 8) | p1;
      } else pictureId = p0 & 0x7f;
    }
    if (ext & 0x40) at++; // TL0PICIDX
    if (ext & 0x30) at++; // TID/Y/KEYIDX
  }
  if (at > payload.length) return undefined;
  return { start: (b0 & 0x10) !== 0 && (b0 & 0x07) === 0, pictureId, body: payload.subarray(at) };
}

/** Joins the packets of one frame; undefined if the first packet is not a frame start. */
export function depacketizeVp8(payloads: readonly Uint8Array[]): Buffer | undefined {
  const parsed = payloads.map(parseVp8Payload);
  if (parsed.length === 0 || !parsed[0]?.start || parsed.some((p) => p === undefined)) return undefined;
  return Buffer.concat(parsed.map((p) => (p as Vp8Packet).body));
}

// ---- H.264 (RFC 6184, packetization-mode=1) ----

export function packetizeH264(nals: readonly Uint8Array[], maxPayload = DEFAULT_MAX_PAYLOAD): Buffer[] {
  const out: Buffer[] = [];
  for (const nal of nals) {
    if (nal.length <= maxPayload) {
      out.push(Buffer.from(nal));
      continue;
    }
    const header = nal[0] as number;
    const indicator = (header & 0xe0) | FU_A;
    const type = header & 0x1f;
    const chunk = maxPayload - 2;
    for (let at = 1; at < nal.length; at += chunk) {
      const end = Math.min(nal.length, at + chunk);
      const fuHeader = (at === 1 ? 0x80 : 0) | (end === nal.length ? 0x40 : 0) | type;
      out.push(Buffer.concat([Buffer.from([indicator, fuHeader]), nal.subarray(at, end)]));
    }
  }
  return out;
}

/** The NAL units of one frame's packets, or undefined if a fragment is missing or malformed. */
export function depacketizeH264(payloads: readonly Uint8Array[]): Uint8Array[] | undefined {
  const nals: Uint8Array[] = [];
  let fu: Uint8Array[] | undefined;
  for (const p of payloads) {
    if (p.length < 1) return undefined;
    const type = (p[0] as number) & 0x1f;
    if (type === FU_A) {
      if (p.length < 2) return undefined;
      const fuHeader = p[1] as number;
      const start = (fuHeader & 0x80) !== 0;
      const end = (fuHeader & 0x40) !== 0;
      if (start) {
        if (fu) return undefined;
        fu = [Uint8Array.of(((p[0] as number) & 0xe0) | (fuHeader & 0x1f))];
      } else if (!fu) return undefined;
      fu.push(p.subarray(2));
      if (end) {
        nals.push(Buffer.concat(fu));
        fu = undefined;
      }
    } else if (fu) {
      return undefined;
    } else if (type === STAP_A) {
      let at = 1;
      while (at + 2 <= p.length) {
        const size = ((p[at] as number) << 8) | (p[at + 1] as number);
        at += 2;
        if (size === 0 || at + size > p.length) return undefined;
        nals.push(p.subarray(at, at + size));
        at += size;
      }
    } else if (type >= 1 && type <= 23) {
      nals.push(p);
    } else return undefined;
  }
  return fu ? undefined : nals;
}
