// Sender authentication on node:crypto: one pairwise MAC per receiver, appended to every frame.
// A frame's units are hashed once (SHA-256); each tag is HMAC-SHA256 over that digest and the
// trailer's receiver list under frameAuthKey(sender → receiver), truncated to 8 bytes. Only the
// sender and that receiver hold the key, so a member holding the group key cannot forge another
// member's frames to anyone (docs/sframe.md, "Sender authentication").
import { type KeyObject, createHash, createHmac, createSecretKey, timingSafeEqual } from 'node:crypto';
import {
  FRAME_TAG_BYTES,
  FrameAuthError,
  buildTrailer,
  checkReceivers,
  coveredChunks,
  parseTrailer,
  signedTail,
} from './trailer.js';

export interface PeerAuthKey {
  peerIndex: number;
  key: Uint8Array;
}

function digest(units: readonly Uint8Array[]): Buffer {
  const h = createHash('sha256');
  for (const c of coveredChunks(units)) h.update(c);
  return h.digest();
}

function tag(key: KeyObject, d: Buffer, tail: Uint8Array): Buffer {
  return createHmac('sha256', key).update(d).update(tail).digest().subarray(0, FRAME_TAG_BYTES);
}

function importKey(k: Uint8Array): KeyObject {
  if (!(k instanceof Uint8Array) || k.length < 16) throw new RangeError('frame-auth key must be ≥ 16 bytes');
  return createSecretKey(Buffer.from(k));
}

/** The sending side: tags every frame for every current peer. */
export class FrameAuthSender {
  readonly receivers: readonly number[];
  readonly #keys: KeyObject[];
  readonly #tail: Uint8Array;

  constructor(keys: readonly PeerAuthKey[]) {
    const sorted = [...keys].sort((a, b) => a.peerIndex - b.peerIndex);
    this.receivers = sorted.map((k) => k.peerIndex);
    checkReceivers(this.receivers);
    this.#keys = sorted.map((k) => importKey(k.key));
    this.#tail = signedTail(this.receivers);
  }

  /** The trailer for a frame whose covered units are `units` (see coveredChunks). */
  trailer(units: readonly Uint8Array[]): Uint8Array {
    const d = digest(units);
    return buildTrailer(
      this.receivers,
      this.#keys.map((k) => tag(k, d, this.#tail)),
    );
  }
}

/** The receiving side: checks this receiver's own tag, under the key shared with the claimed sender. */
export class FrameAuthVerifier {
  readonly selfIndex: number;
  readonly #keys = new Map<number, KeyObject>();

  constructor(selfIndex: number, keys: readonly PeerAuthKey[]) {
    this.selfIndex = selfIndex;
    for (const k of keys) this.#keys.set(k.peerIndex, importKey(k.key));
  }

  hasPeer(senderIndex: number): boolean {
    return this.#keys.has(senderIndex);
  }

  /**
   * Throws a FrameAuthError unless `trailer` (exactly the trailer bytes; see parseTrailer) holds a
   * valid tag for this receiver from `senderIndex` over `units`. Changes no state.
   */
  verify(senderIndex: number, units: readonly Uint8Array[], trailer: Uint8Array): void {
    const parsed = parseTrailer(trailer);
    if (parsed.start !== 0) throw new FrameAuthError('MALFORMED_TRAILER', 'bytes before the trailer');
    this.verifyParsed(senderIndex, units, parsed);
  }

  verifyParsed(
    senderIndex: number,
    units: readonly Uint8Array[],
    parsed: ReturnType<typeof parseTrailer>,
  ): void {
    const key = this.#keys.get(senderIndex);
    if (!key) throw new FrameAuthError('NO_KEY', `no frame-authentication key for sender ${senderIndex}`);
    const mine = parsed.tagFor(this.selfIndex);
    if (!mine) throw new FrameAuthError('NO_TAG', `no tag for receiver ${this.selfIndex}`);
    const expected = tag(key, digest(units), parsed.signedTail);
    if (!timingSafeEqual(expected, mine))
      throw new FrameAuthError('BAD_TAG', `tag from sender ${senderIndex} does not verify`);
  }
}
