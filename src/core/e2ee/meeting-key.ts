// Wrapping the meeting key for one recipient:
//   shared  = v1: X25519(leader ephemeral, recipient ephemeral)        (cached per key pair)
//             v2: the hybrid X25519 + ML-KEM-768 wrap secret of hybrid-wrap.ts (cached likewise)
// and, with the v2 labels in a v2 meeting (docs/protocol.md §12):
//   wrapKey = HKDF-SHA256(ikm = shared, salt = "", info = encode(wrap-key label, meeting, leader,
//             recipient, leader eph, recipient eph, epoch), 32)
//   box     = XChaCha20-Poly1305(wrapKey, nonce[24]).seal(meetingKey, aad = encode(wrap-aad label,
//             meeting, leader, recipient, epoch))
// Only the leader and the recipient can compute `shared`, so a box that opens also authenticates
// the leader. The DH result does not change between epochs: a rekey costs one HKDF and one seal.
import { backend } from './crypto/backend.js';
import { xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { toBase64Url } from './bytes.js';
import { encodeCanonical } from './canonical.js';
import { E2eeError } from './errors.js';
import type { EphemeralKeyPair, RandomSource } from './keys.js';
import { LABELS, LABELS_V2, type ProtocolVersion } from './labels.js';

export const MEETING_KEY_BYTES = 32;
export const WRAP_NONCE_BYTES = 24;

export interface WrapContext {
  meetingId: string;
  leaderId: string;
  recipientId: string;
  epoch: number;
  leaderEphemeralKey: Uint8Array;
  recipientEphemeralKey: Uint8Array;
  /** The meeting's protocol version (default 1): picks the labels. */
  version?: ProtocolVersion;
}

const labelsOf = (ctx: WrapContext) => ((ctx.version ?? 1) === 2 ? LABELS_V2 : LABELS);

export interface WrappedKey {
  epoch: number;
  nonce: Uint8Array; // 24 bytes
  ciphertext: Uint8Array; // 32-byte key + 16-byte tag
}

export function wrapAad(ctx: WrapContext): Uint8Array {
  return encodeCanonical(labelsOf(ctx).wrapAad, ctx.meetingId, ctx.leaderId, ctx.recipientId, ctx.epoch);
}

export function deriveWrapKey(shared: Uint8Array, ctx: WrapContext): Uint8Array {
  const info = encodeCanonical(
    labelsOf(ctx).wrapKey,
    ctx.meetingId,
    ctx.leaderId,
    ctx.recipientId,
    ctx.leaderEphemeralKey,
    ctx.recipientEphemeralKey,
    ctx.epoch,
  );
  return backend.hkdfSha256(shared, new Uint8Array(0), info, 32);
}

export function sealMeetingKey(
  shared: Uint8Array,
  ctx: WrapContext,
  meetingKey: Uint8Array,
  nonce: Uint8Array,
): WrappedKey {
  if (meetingKey.length !== MEETING_KEY_BYTES)
    throw new E2eeError('malformed', 'meeting key must be 32 bytes');
  if (nonce.length !== WRAP_NONCE_BYTES) throw new E2eeError('malformed', 'nonce must be 24 bytes');
  const ciphertext = xchacha20poly1305(deriveWrapKey(shared, ctx), nonce, wrapAad(ctx)).encrypt(meetingKey);
  return { epoch: ctx.epoch, nonce, ciphertext };
}

export function openMeetingKey(shared: Uint8Array, ctx: WrapContext, wrapped: WrappedKey): Uint8Array {
  if (wrapped.epoch !== ctx.epoch) throw new E2eeError('unwrap-failed', 'epoch mismatch');
  if (wrapped.nonce.length !== WRAP_NONCE_BYTES || wrapped.ciphertext.length !== MEETING_KEY_BYTES + 16) {
    throw new E2eeError('malformed', 'wrapped key has the wrong size');
  }
  try {
    return xchacha20poly1305(deriveWrapKey(shared, ctx), wrapped.nonce, wrapAad(ctx)).decrypt(
      wrapped.ciphertext,
    );
  } catch {
    throw new E2eeError('unwrap-failed', 'wrapped meeting key does not authenticate');
  }
}

/**
 * Caches X25519 results of one local ephemeral key against peer ephemeral keys. The leader keeps one
 * entry per participant; a participant keeps one per leader ephemeral key it has seen.
 */
export class SharedSecretCache {
  readonly #local: EphemeralKeyPair;
  readonly #secrets = new Map<string, Uint8Array>();

  constructor(local: EphemeralKeyPair) {
    this.#local = local;
  }

  get(peerEphemeralKey: Uint8Array): Uint8Array {
    const id = toBase64Url(peerEphemeralKey);
    let shared = this.#secrets.get(id);
    if (!shared) {
      shared = this.#local.agree(peerEphemeralKey);
      this.#secrets.set(id, shared);
    }
    return shared;
  }

  forget(peerEphemeralKey: Uint8Array): void {
    this.#secrets.get(toBase64Url(peerEphemeralKey))?.fill(0);
    this.#secrets.delete(toBase64Url(peerEphemeralKey));
  }

  get size(): number {
    return this.#secrets.size;
  }
}

export function drawMeetingKey(random: RandomSource): Uint8Array {
  const key = random(MEETING_KEY_BYTES);
  if (key.length !== MEETING_KEY_BYTES)
    throw new E2eeError('malformed', 'random source returned a short key');
  return key;
}
