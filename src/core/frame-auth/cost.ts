// What sender authentication costs for one room in a meeting: one outgoing stream tagged for every
// other member, and each other member's stream verified — measured in this process with
// process.cpuUsage over given encoded frames (the media benchmark passes its own encoder's frames).
// Three designs priced on the same frames (docs/sframe.md, "Sender authentication"):
//   mac-vector   SHA-256 of the frame + one HMAC-SHA256 per receiver (send) / one HMAC (receive)
//   ed25519      an Ed25519 signature per frame over its SHA-256 (send) / one verify (receive)
//   hash-chain   SHA-256 per frame chained, one Ed25519 signature per `chainBlock` frames (send) /
//                hash per frame + one verify per block (receive); frames wait for their block's
//                signature before they can be verified
import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import { FrameAuthSender, FrameAuthVerifier } from './node.js';
import { parseTrailer } from './trailer.js';

export interface AuthCostInput {
  /** Encoded video frames, each as the units the trailer covers (H.264: protected NAL units). */
  video: Uint8Array[][];
  audio: Uint8Array[];
  videoFps: number;
  audioFps: number;
  /** Other members: receivers of our stream, senders of the streams we receive. */
  peers: number;
  /** Hash chain: frames per signature (default 10: +333 ms video, +200 ms audio before verifying). */
  chainBlock?: number;
  /** Passes over the frames (default 10). */
  rounds?: number;
}

export interface AuthCost {
  /** % of one core for 1 outgoing + `peers` incoming streams at the given rates. */
  macVectorPct: number;
  ed25519Pct: number;
  hashChainPct: number;
  /** µs per frame, sender (tags for all peers) and receiver (one check). */
  macVectorUs: { send: number; receive: number };
  ed25519Us: { send: number; receive: number };
}

function cpuUs(fn: () => void): number {
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  return c.user + c.system;
}

export function measureAuthCost(input: AuthCostInput): AuthCost {
  const rounds = input.rounds ?? 10;
  const block = input.chainBlock ?? 10;
  const frames = [
    ...input.video.map((units) => ({ units, video: true })),
    ...input.audio.map((a) => ({ units: [a], video: false })),
  ];
  const perSecond = (perVideo: number, perAudio: number, streams: number) =>
    (perVideo * input.videoFps + perAudio * input.audioFps) * streams;
  const avg = (fn: (units: Uint8Array[]) => void, video: boolean) => {
    const list = frames.filter((f) => f.video === video);
    if (list.length === 0) return 0;
    const us = cpuUs(() => {
      for (let r = 0; r < rounds; r++) for (const f of list) fn(f.units);
    });
    return us / (rounds * list.length);
  };

  // MAC vector: self = 0, peers 1..n.
  const key = (s: number, r: number) => createHash('sha256').update(`bench ${s}>${r}`).digest();
  const peers = Array.from({ length: input.peers }, (_, i) => i + 1);
  const sender = new FrameAuthSender(peers.map((p) => ({ peerIndex: p, key: key(0, p) })));
  const receiver = new FrameAuthVerifier(1, [{ peerIndex: 0, key: key(0, 1) }]);
  const trailers = new Map(frames.map((f) => [f.units, sender.trailer(f.units)]));
  const macSend = (v: boolean) => avg((u) => sender.trailer(u), v);
  const macReceive = (v: boolean) =>
    avg((u) => receiver.verifyParsed(0, u, parseTrailer(trailers.get(u) as Uint8Array)), v);
  const mac = { sv: macSend(true), sa: macSend(false), rv: macReceive(true), ra: macReceive(false) };

  // Ed25519 per frame.
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const digest = (u: Uint8Array[]) => {
    const h = createHash('sha256');
    for (const x of u) h.update(x);
    return h.digest();
  };
  const sigs = new Map(frames.map((f) => [f.units, sign(null, digest(f.units), privateKey)]));
  const edSend = (v: boolean) => avg((u) => sign(null, digest(u), privateKey), v);
  const edReceive = (v: boolean) =>
    avg((u) => {
      if (!verify(null, digest(u), publicKey, sigs.get(u) as Buffer)) throw new Error('verify failed');
    }, v);
  const ed = { sv: edSend(true), sa: edSend(false), rv: edReceive(true), ra: edReceive(false) };

  // Hash chain: hash per frame (chained), plus a sign/verify amortised over the block.
  let link = Buffer.alloc(32);
  const chainHash = (u: Uint8Array[]) => {
    const h = createHash('sha256').update(link);
    for (const x of u) h.update(x);
    link = h.digest();
  };
  const hv = avg(chainHash, true);
  const ha = avg(chainHash, false);
  const signUs =
    cpuUs(() => {
      for (let i = 0; i < 200; i++) sign(null, link, privateKey);
    }) / 200;
  const sig = sign(null, link, privateKey);
  const verifyUs =
    cpuUs(() => {
      for (let i = 0; i < 200; i++) verify(null, link, publicKey, sig);
    }) / 200;

  const pct = (usPerSecond: number) => usPerSecond / 1e4;
  return {
    macVectorPct: pct(perSecond(mac.sv, mac.sa, 1) + perSecond(mac.rv, mac.ra, input.peers)),
    ed25519Pct: pct(perSecond(ed.sv, ed.sa, 1) + perSecond(ed.rv, ed.ra, input.peers)),
    hashChainPct: pct(
      perSecond(hv + signUs / block, ha + signUs / block, 1) +
        perSecond(hv + verifyUs / block, ha + verifyUs / block, input.peers),
    ),
    macVectorUs: {
      send: (mac.sv * input.videoFps + mac.sa * input.audioFps) / (input.videoFps + input.audioFps),
      receive: (mac.rv * input.videoFps + mac.ra * input.audioFps) / (input.videoFps + input.audioFps),
    },
    ed25519Us: {
      send: (ed.sv * input.videoFps + ed.sa * input.audioFps) / (input.videoFps + input.audioFps),
      receive: (ed.rv * input.videoFps + ed.ra * input.audioFps) / (input.videoFps + input.audioFps),
    },
  };
}
