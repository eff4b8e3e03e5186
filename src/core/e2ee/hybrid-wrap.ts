// Protocol v2's wrap secret per (leader ephemeral key, member): X25519 and ML-KEM-768 combined the
// way X-Wing does (draft-connolly-cfrg-xwing-kem), so the meeting key stays secret while either
// problem stays hard — a recorded meeting is not opened later by a quantum computer (ML-KEM), and a
// flaw in the young ML-KEM code or standard alone does not open it either (X25519):
//   (ct, ssM) = ML-KEM-768.Encaps(member's encapsulation key)       leader, once per member
//   ssX       = X25519(leader ephemeral, member ephemeral)
//   secret    = SHA3-256(encode("sealroom/v2/wrap-secret", ssM, ssX, ct, leaderEph, memberEph))
// then wrapKey = HKDF(secret, v2 info with the epoch) as in v1 (meeting-key.ts). docs/protocol.md §12.
// The leader encapsulates once per member per leader key and caches (ct, secret): every e2ee.key to
// that member repeats ct, so a lost first message costs nothing; a member decapsulates once per
// ciphertext it has seen open a key and caches that.
import { bytesEqual, toBase64Url } from './bytes.js';
import { encodeCanonical } from './canonical.js';
import { backend } from './crypto/backend.js';
import { E2eeError } from './errors.js';
import { type KemKeyPair, kemEncapsulate } from './kem.js';
import type { RandomSource } from './keys.js';
import { LABELS_V2 } from './labels.js';
import type { SharedSecretCache } from './meeting-key.js';

export interface HybridInput {
  kemSecret: Uint8Array; // ML-KEM-768 shared secret, 32 bytes
  x25519Secret: Uint8Array; // X25519(leader ephemeral, member ephemeral), 32 bytes
  kemCiphertext: Uint8Array; // 1088 bytes
  leaderEphemeralKey: Uint8Array;
  memberEphemeralKey: Uint8Array;
}

export function combineWrapSecret(input: HybridInput): Uint8Array {
  return backend.sha3_256(
    encodeCanonical(
      LABELS_V2.wrapSecret,
      input.kemSecret,
      input.x25519Secret,
      input.kemCiphertext,
      input.leaderEphemeralKey,
      input.memberEphemeralKey,
    ),
  );
}

interface LeaderEntry {
  ciphertext: Uint8Array;
  ciphertextText: string; // its base64url, as every e2ee.key to this member repeats it
  secret: Uint8Array;
}

/** Leader side: one encapsulation per member (by its ephemeral key, unique per binding), cached. */
export class LeaderWrapSecrets {
  readonly #x25519: SharedSecretCache;
  readonly #leaderEphemeralKey: Uint8Array;
  readonly #random: RandomSource;
  readonly #entries = new Map<string, LeaderEntry>();

  constructor(x25519: SharedSecretCache, leaderEphemeralKey: Uint8Array, random: RandomSource) {
    this.#x25519 = x25519;
    this.#leaderEphemeralKey = leaderEphemeralKey;
    this.#random = random;
  }

  get(member: { ephemeralKey: Uint8Array; kemKey?: Uint8Array | undefined }): LeaderEntry {
    const id = toBase64Url(member.ephemeralKey);
    let entry = this.#entries.get(id);
    if (!entry) {
      if (!member.kemKey) throw new E2eeError('downgrade', 'member of a v2 meeting without an ML-KEM key');
      const x25519Secret = this.#x25519.get(member.ephemeralKey);
      const { ciphertext, sharedSecret } = kemEncapsulate(member.kemKey, this.#random);
      entry = {
        ciphertext,
        ciphertextText: toBase64Url(ciphertext),
        secret: combineWrapSecret({
          kemSecret: sharedSecret,
          x25519Secret,
          kemCiphertext: ciphertext,
          leaderEphemeralKey: this.#leaderEphemeralKey,
          memberEphemeralKey: member.ephemeralKey,
        }),
      };
      sharedSecret.fill(0);
      this.#entries.set(id, entry);
    }
    return entry;
  }

  forget(memberEphemeralKey: Uint8Array): void {
    const id = toBase64Url(memberEphemeralKey);
    this.#entries.get(id)?.secret.fill(0);
    this.#entries.delete(id);
  }

  get size(): number {
    return this.#entries.size;
  }
}

/** Member side: the wrap secret for (leader ephemeral key, ciphertext); decapsulates once per pair. */
export class MemberWrapSecrets {
  readonly #kem: KemKeyPair;
  readonly #x25519: SharedSecretCache;
  readonly #memberEphemeralKey: Uint8Array;
  // Only pairs that opened a key are kept (a relay's garbage ciphertexts are not); a few leaders at most.
  readonly #confirmed = new Map<string, { ciphertext: Uint8Array; secret: Uint8Array }>();

  constructor(kem: KemKeyPair, x25519: SharedSecretCache, memberEphemeralKey: Uint8Array) {
    this.#kem = kem;
    this.#x25519 = x25519;
    this.#memberEphemeralKey = memberEphemeralKey;
  }

  /** The secret (cached if this pair opened a key before); call confirm() once it did. */
  get(leaderEphemeralKey: Uint8Array, ciphertext: Uint8Array): Uint8Array {
    const cached = this.#confirmed.get(toBase64Url(leaderEphemeralKey));
    if (cached && bytesEqual(cached.ciphertext, ciphertext)) return cached.secret;
    const kemSecret = this.#kem.decapsulate(ciphertext);
    const secret = combineWrapSecret({
      kemSecret,
      x25519Secret: this.#x25519.get(leaderEphemeralKey),
      kemCiphertext: ciphertext,
      leaderEphemeralKey,
      memberEphemeralKey: this.#memberEphemeralKey,
    });
    kemSecret.fill(0);
    return secret;
  }

  /** The pair opened a genuine key: keep its secret for the next epochs. */
  confirm(leaderEphemeralKey: Uint8Array, ciphertext: Uint8Array, secret: Uint8Array): void {
    if (this.#confirmed.size >= 8) this.#confirmed.clear();
    this.#confirmed.set(toBase64Url(leaderEphemeralKey), { ciphertext: Uint8Array.from(ciphertext), secret });
  }
}
