// The recorded relay traffic against what must never be in it: every key the rooms hold (raw, base64,
// base64url, hex) and plaintext the test recovers itself — the people's and rooms' media frames,
// opened with the keys the rooms hold (so we know the plaintext really crossed, sealed), of which
// windows must not appear anywhere in what the relay saw. One pass over all the traffic: needles are
// indexed by their first 8 bytes, so the scan is linear in the traffic, not traffic × needles.
import { splitTrailer } from '../../device/media/auth-layout.js';
import { depacketizeVp8 } from '../../device/media/rtp-payload.js';
import { openVp8Frame } from '../../device/media/vp8-protect.js';
import type { KeysEvent } from '../../src/core/e2ee/index.js';
import { SFrameReceiver } from '../../src/core/sframe/index.js';
import type { RecordEntry } from '../../src/relay/server.js';

export interface Needle {
  what: string;
  bytes: Buffer;
}

/** A key as it could leak: raw bytes and the text encodings a JSON message would carry. */
export function keyNeedles(what: string, raw: Uint8Array): Needle[] {
  const b = Buffer.from(raw);
  if (b.every((x) => x === 0)) throw new Error(`${what}: an all-zero key was handed out`);
  return [
    { what: `${what} (raw)`, bytes: b },
    { what: `${what} (base64)`, bytes: Buffer.from(b.toString('base64').replace(/=+$/, '')) },
    { what: `${what} (base64url)`, bytes: Buffer.from(b.toString('base64url')) },
    { what: `${what} (hex)`, bytes: Buffer.from(b.toString('hex')) },
  ];
}

/** Every SFrame base key and frame-authentication key in these keys events. */
export function keysEventNeedles(owner: string, events: readonly KeysEvent[]): Needle[] {
  const out: Needle[] = [];
  const seen = new Set<string>();
  const add = (what: string, k: Uint8Array) => {
    const hex = Buffer.from(k).toString('hex');
    if (seen.has(hex)) return;
    seen.add(hex);
    out.push(...keyNeedles(`${owner} ${what}`, k));
  };
  for (const e of events) {
    add(`send key epoch ${e.epoch}`, e.sendKey);
    for (const r of e.receiveKeys) add(`receive key ${r.kid}`, r.key);
    for (const a of e.auth) {
      add(`auth send key ↔ ${a.peerIndex}`, a.send);
      add(`auth receive key ↔ ${a.peerIndex}`, a.receive);
    }
  }
  return out;
}

/** The haystacks: every WebSocket frame (UTF-8) and every RTP payload the relay saw. */
export function haystacks(recorded: readonly RecordEntry[]): Buffer[] {
  return recorded.map((e) => (e.kind === 'rtp' ? e.payload : Buffer.from(e.data, 'utf8')));
}

/** The first needle found in any haystack, or undefined. Needles shorter than 8 bytes are refused. */
export function findAny(
  hay: readonly Buffer[],
  needles: readonly Needle[],
): { needle: Needle; at: number } | undefined {
  const index = new Map<bigint, Needle[]>();
  for (const n of needles) {
    if (n.bytes.length < 8) throw new Error(`needle too short: ${n.what}`);
    const k = n.bytes.readBigUInt64LE(0);
    index.set(k, [...(index.get(k) ?? []), n]);
  }
  for (const [h, buf] of hay.entries()) {
    for (let i = 0; i + 8 <= buf.length; i++) {
      const hits = index.get(buf.readBigUInt64LE(i));
      if (!hits) continue;
      for (const n of hits)
        if (i + n.bytes.length <= buf.length && buf.subarray(i, i + n.bytes.length).equals(n.bytes))
          return { needle: n, at: h };
    }
  }
  return undefined;
}

export interface Recovered {
  /** Frames opened with the rooms' keys, per publisher and kind. */
  opened: Map<string, number>;
  /** Plaintext windows (16 bytes of frame content past the clear header) to look for. */
  needles: Needle[];
}

/**
 * Opens the recorded media of `publishers` (participant ids) with every receive key the rooms got,
 * and returns windows of the recovered plaintext. Video: the RTP payloads of one timestamp in
 * arrival order, VP8-depacketised, the MAC trailer split off, then the clear-prefix SFrame opened;
 * audio: one SFrame per packet. Frames that do not open (reordered packets, a key not held) are
 * skipped; the caller asserts that enough did.
 */
export function recoverPlaintext(
  recorded: readonly RecordEntry[],
  keys: readonly KeysEvent[],
  publishers: ReadonlySet<string>,
  perPublisherKind = 40,
): Recovered {
  const receiver = new SFrameReceiver({ replayWindow: 1 << 15 });
  for (const e of keys)
    for (const r of e.receiveKeys) if (!receiver.hasKey(r.kid)) receiver.setKey(r.kid, r.key);
  const frames = new Map<string, { pid: string; media: string; payloads: Buffer[] }>();
  const order: string[] = [];
  for (const e of recorded) {
    if (e.kind !== 'rtp' || !publishers.has(e.participantId)) continue;
    const key = `${e.participantId}/${e.media}/${e.timestamp}`;
    let f = frames.get(key);
    if (!f) {
      f = { pid: e.participantId, media: e.media, payloads: [] };
      frames.set(key, f);
      order.push(key);
    }
    f.payloads.push(e.payload);
  }
  const opened = new Map<string, number>();
  const needles: Needle[] = [];
  // A window of a few repeated values (silence, flat picture) says nothing: keep varied ones only.
  const push = (what: string, b: Uint8Array) => {
    if (new Set(b).size >= 8) needles.push({ what, bytes: Buffer.from(b) });
  };
  for (const key of order) {
    const f = frames.get(key);
    if (!f) continue;
    const tag = `${f.pid}/${f.media}`;
    if ((opened.get(tag) ?? 0) >= perPublisherKind) continue;
    try {
      let plain: Uint8Array;
      if (f.media === 'audio') {
        for (const p of f.payloads) {
          const { frame } = splitTrailer(p);
          plain = receiver.decrypt(frame).plaintext;
          if (plain.length >= 24) push(`${tag} plaintext`, plain.subarray(4, 20));
          opened.set(tag, (opened.get(tag) ?? 0) + 1);
        }
        continue;
      }
      const wire = depacketizeVp8(f.payloads);
      if (!wire) continue;
      const { frame } = splitTrailer(wire);
      plain = openVp8Frame(receiver, frame).frame;
      // Past VP8's clear header (10 bytes on a keyframe, 3 otherwise): compressed picture data.
      const start = ((plain[0] ?? 1) & 1) === 0 ? 10 : 3;
      if (plain.length >= start + 40) {
        push(`${tag} plaintext`, plain.subarray(start + 8, start + 24));
        const mid = start + Math.floor((plain.length - start) / 2);
        push(`${tag} plaintext`, plain.subarray(mid, mid + 16));
      }
      opened.set(tag, (opened.get(tag) ?? 0) + 1);
    } catch {
      // not this one
    }
  }
  return { opened, needles };
}
