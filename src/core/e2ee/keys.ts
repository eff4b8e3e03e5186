// Ed25519 identity keys and X25519 ephemeral keys on node:crypto (OpenSSL: ~20x faster than
// @noble/curves, measured in bench:rekey). Keys are made from 32-byte seeds so tests can be
// deterministic; public keys travel as their raw 32 bytes.
import {
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  type KeyObject,
  randomBytes,
  sign,
  verify,
} from 'node:crypto';
import { concatBytes, plain } from './bytes.js';
import { E2eeError } from './errors.js';

/** Source of randomness: returns n fresh random bytes. Injected so tests are deterministic. */
export type RandomSource = (length: number) => Uint8Array;
export const secureRandom: RandomSource = (length) => new Uint8Array(randomBytes(length));

// DER prefixes of PKCS#8 private keys and SPKI public keys (RFC 8410) for the two curves.
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');
const ED25519_SPKI = Buffer.from('302a300506032b6570032100', 'hex');
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');

function rawPublic(key: KeyObject): Uint8Array {
  const der = key.export({ format: 'der', type: 'spki' });
  return new Uint8Array(der.subarray(der.length - 32));
}

function importPublic(prefix: Buffer, raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new E2eeError('malformed', 'public key must be 32 bytes');
  return createPublicKey({ key: Buffer.from(concatBytes(prefix, raw)), format: 'der', type: 'spki' });
}

// Parsing a public key costs more than verifying with it; the same few keys verify every message.
const verifyKeyCache = new Map<string, KeyObject>();
function ed25519PublicKey(raw: Uint8Array): KeyObject {
  const id = Buffer.from(raw).toString('hex');
  let key = verifyKeyCache.get(id);
  if (!key) {
    key = importPublic(ED25519_SPKI, raw);
    if (verifyKeyCache.size > 4096) verifyKeyCache.clear();
    verifyKeyCache.set(id, key);
  }
  return key;
}

/** A long-term Ed25519 identity key (the device key; its certificate is checked outside this core). */
export class IdentityKeyPair {
  readonly publicKey: Uint8Array;
  readonly #privateKey: KeyObject;

  private constructor(privateKey: KeyObject) {
    this.#privateKey = privateKey;
    this.publicKey = rawPublic(createPublicKey(privateKey));
  }

  static fromSeed(seed: Uint8Array): IdentityKeyPair {
    if (seed.length !== 32) throw new E2eeError('malformed', 'Ed25519 seed must be 32 bytes');
    const der = Buffer.from(concatBytes(ED25519_PKCS8, seed));
    return new IdentityKeyPair(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
  }

  /** Wraps an existing node:crypto Ed25519 private key (e.g. the device key loaded from disk). */
  static fromKeyObject(privateKey: KeyObject): IdentityKeyPair {
    if (privateKey.asymmetricKeyType !== 'ed25519') throw new E2eeError('malformed', 'not an Ed25519 key');
    return new IdentityKeyPair(privateKey);
  }

  static generate(random: RandomSource = secureRandom): IdentityKeyPair {
    return IdentityKeyPair.fromSeed(random(32));
  }

  sign(message: Uint8Array): Uint8Array {
    return new Uint8Array(sign(null, message, this.#privateKey));
  }
}

export function verifyEd25519(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  try {
    return verify(null, message, ed25519PublicKey(publicKey), signature);
  } catch {
    return false; // an invalid point encoding is just a bad signature
  }
}

/** A per-meeting X25519 key; never stored, never reused across meetings. */
export class EphemeralKeyPair {
  readonly publicKey: Uint8Array;
  readonly #privateKey: KeyObject;

  private constructor(privateKey: KeyObject) {
    this.#privateKey = privateKey;
    this.publicKey = rawPublic(createPublicKey(privateKey));
  }

  static fromSeed(seed: Uint8Array): EphemeralKeyPair {
    if (seed.length !== 32) throw new E2eeError('malformed', 'X25519 seed must be 32 bytes');
    const der = Buffer.from(concatBytes(X25519_PKCS8, seed));
    return new EphemeralKeyPair(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }));
  }

  static generate(random: RandomSource = secureRandom): EphemeralKeyPair {
    return EphemeralKeyPair.fromSeed(random(32));
  }

  /** X25519(private, peer); refuses low-order peer keys (all-zero shared secret). */
  agree(peerPublicKey: Uint8Array): Uint8Array {
    let shared: Uint8Array;
    try {
      shared = plain(
        diffieHellman({ privateKey: this.#privateKey, publicKey: importPublic(X25519_SPKI, peerPublicKey) }),
      );
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
