// Ed25519 identity keys and X25519 ephemeral keys on the platform backend (crypto/backend.ts:
// node:crypto on Node, @noble in a browser bundle). Keys are made from 32-byte seeds so tests can be
// deterministic; public keys travel as their raw 32 bytes.
import type { KeyObject } from 'node:crypto'; // type only: erased, nothing imported at run time
import { plain } from './bytes.js';
import { backend, type Ed25519Signer, type X25519Agreement } from './crypto/backend.js';
import { E2eeError } from './errors.js';

/** Source of randomness: returns n fresh random bytes. Injected so tests are deterministic. */
export type RandomSource = (length: number) => Uint8Array;
export const secureRandom: RandomSource = (length) => backend.randomBytes(length);

/** A long-term Ed25519 identity key (the device key; its certificate is checked outside this core). */
export class IdentityKeyPair {
  readonly publicKey: Uint8Array;
  readonly #signer: Ed25519Signer;

  private constructor(signer: Ed25519Signer) {
    this.#signer = signer;
    this.publicKey = signer.publicKey;
  }

  static fromSeed(seed: Uint8Array): IdentityKeyPair {
    if (seed.length !== 32) throw new E2eeError('malformed', 'Ed25519 seed must be 32 bytes');
    return new IdentityKeyPair(backend.ed25519FromSeed(seed));
  }

  /** Wraps an existing node:crypto Ed25519 private key (e.g. the device key loaded from disk). */
  static fromKeyObject(privateKey: KeyObject): IdentityKeyPair {
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new E2eeError('malformed', 'not an Ed25519 key');
    return new IdentityKeyPair(backend.ed25519FromPlatformKey(privateKey));
  }

  static generate(random: RandomSource = secureRandom): IdentityKeyPair {
    return IdentityKeyPair.fromSeed(random(32));
  }

  sign(message: Uint8Array): Uint8Array {
    return this.#signer.sign(message);
  }
}

export function verifyEd25519(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  return backend.ed25519Verify(publicKey, message, signature);
}

/** A per-meeting X25519 key; never stored, never reused across meetings. */
export class EphemeralKeyPair {
  readonly publicKey: Uint8Array;
  readonly #key: X25519Agreement;

  private constructor(key: X25519Agreement) {
    this.#key = key;
    this.publicKey = key.publicKey;
  }

  static fromSeed(seed: Uint8Array): EphemeralKeyPair {
    if (seed.length !== 32) throw new E2eeError('malformed', 'X25519 seed must be 32 bytes');
    return new EphemeralKeyPair(backend.x25519FromSeed(seed));
  }

  static generate(random: RandomSource = secureRandom): EphemeralKeyPair {
    return EphemeralKeyPair.fromSeed(random(32));
  }

  /** X25519(private, peer); refuses low-order peer keys (all-zero shared secret). */
  agree(peerPublicKey: Uint8Array): Uint8Array {
    let shared: Uint8Array;
    try {
      if (peerPublicKey.length !== 32) throw new E2eeError('malformed', 'public key must be 32 bytes');
      shared = plain(this.#key.agree(peerPublicKey));
    } catch {
      throw new E2eeError('malformed', 'X25519 agreement failed (invalid peer key)');
    }
    if (shared.every((b) => b === 0)) throw new E2eeError('malformed', 'low-order X25519 peer key');
    return shared;
  }
}

// A fixed private scalar for the trial agreement below: any valid, non-low-order peer key gives a
// non-zero result under every scalar, so one trial decides for all (RFC 7748 §6.1: zero ⇔ low order).
let trialKey: EphemeralKeyPair | undefined;

/** True iff `publicKey` is 32 bytes that X25519 accepts and that is not of low order. */
export function isUsableX25519PublicKey(publicKey: Uint8Array): boolean {
  if (publicKey.length !== 32) return false;
  trialKey ??= EphemeralKeyPair.fromSeed(new Uint8Array(32).fill(0x5a));
  try {
    trialKey.agree(publicKey);
    return true;
  } catch {
    return false;
  }
}
