// ML-KEM-768 (FIPS 203) for the v2 hybrid key wrap, on @noble/post-quantum on every platform (node:crypto
// has no ML-KEM in Node 20). Each participant makes one key pair per meeting, from a 64-byte seed
// drawn from the session's random source (deterministic tests), and publishes the 1184-byte
// encapsulation key in its signed binding.
import { ml_kem768 } from '@noble/post-quantum/ml-kem.js';
import { E2eeError } from './errors.js';
import type { RandomSource } from './keys.js';

export const KEM_PUBLIC_KEY_BYTES = 1184;
export const KEM_CIPHERTEXT_BYTES = 1088;
export const KEM_SEED_BYTES = 64;
export const KEM_MESSAGE_BYTES = 32;
export const KEM_SHARED_SECRET_BYTES = 32;

export class KemKeyPair {
  readonly publicKey: Uint8Array;
  readonly #secretKey: Uint8Array;

  private constructor(keys: { publicKey: Uint8Array; secretKey: Uint8Array }) {
    this.publicKey = keys.publicKey;
    this.#secretKey = keys.secretKey;
  }

  /** FIPS 203 ML-KEM.KeyGen_internal(d, z) with seed = d || z (64 bytes). */
  static fromSeed(seed: Uint8Array): KemKeyPair {
    if (seed.length !== KEM_SEED_BYTES) throw new E2eeError('malformed', 'ML-KEM seed must be 64 bytes');
    return new KemKeyPair(ml_kem768.keygen(Uint8Array.from(seed)));
  }

  static generate(random: RandomSource): KemKeyPair {
    return KemKeyPair.fromSeed(random(KEM_SEED_BYTES));
  }

  /**
   * The 32-byte shared secret of `ciphertext`. ML-KEM rejects implicitly: a tampered ciphertext
   * gives an unrelated secret (so the wrapped key will not open), never an error.
   */
  decapsulate(ciphertext: Uint8Array): Uint8Array {
    if (ciphertext.length !== KEM_CIPHERTEXT_BYTES) {
      throw new E2eeError('malformed', 'ML-KEM ciphertext must be 1088 bytes');
    }
    return ml_kem768.decapsulate(Uint8Array.from(ciphertext), this.#secretKey);
  }

  wipe(): void {
    this.#secretKey.fill(0);
  }
}

/**
 * FIPS 203 ML-KEM.Encaps with its 32-byte message `m` drawn from `random` (given here so tests and
 * the known answers are deterministic). Throws on a key that fails the FIPS 203 modulus check.
 */
export function kemEncapsulate(
  publicKey: Uint8Array,
  random: RandomSource,
): { ciphertext: Uint8Array; sharedSecret: Uint8Array } {
  if (!isValidKemPublicKey(publicKey))
    throw new E2eeError('malformed', 'invalid ML-KEM-768 encapsulation key');
  const message = random(KEM_MESSAGE_BYTES);
  if (message.length !== KEM_MESSAGE_BYTES)
    throw new E2eeError('malformed', 'random source returned short bytes');
  const { cipherText, sharedSecret } = ml_kem768.encapsulate(
    Uint8Array.from(publicKey),
    Uint8Array.from(message),
  );
  return { ciphertext: cipherText, sharedSecret };
}

/**
 * FIPS 203 §7.2 input check of an encapsulation key: 1184 bytes whose 3·256 12-bit coefficients
 * (ByteDecode12) are all below q = 3329, i.e. ByteEncode12(ByteDecode12(ek)) = ek. Checked when a
 * binding is verified, so a key that every later encapsulation would refuse never enters the list.
 */
export function isValidKemPublicKey(publicKey: Uint8Array): boolean {
  if (publicKey.length !== KEM_PUBLIC_KEY_BYTES) return false;
  for (let i = 0; i < 384 * 3; i += 3) {
    const b0 = publicKey[i]!;
    const b1 = publicKey[i + 1]!;
    const b2 = publicKey[i + 2]!;
    if ((b0 | ((b1 & 0x0f) << 8)) >= 3329 || ((b1 >> 4) | (b2 << 4)) >= 3329) return false;
  }
  return true;
}
