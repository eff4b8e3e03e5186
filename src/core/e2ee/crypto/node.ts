// node:crypto backend of the E2EE core (see api.ts). OpenSSL's Ed25519/X25519 are ~20x faster than
// @noble/curves (measured in bench:rekey); keys are KeyObjects made from 32-byte seeds.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  hkdfSync,
  KeyObject,
  randomBytes as nodeRandomBytes,
  sign,
  timingSafeEqual,
  verify,
} from 'node:crypto';
import type { CryptoBackend, Ed25519Signer, X25519Agreement } from './api.js';

// DER prefixes of PKCS#8 private keys and SPKI public keys (RFC 8410) for the two curves.
const ED25519_PKCS8 = Buffer.from('302e020100300506032b657004220420', 'hex');
const ED25519_SPKI = Buffer.from('302a300506032b6570032100', 'hex');
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');
const X25519_SPKI = Buffer.from('302a300506032b656e032100', 'hex');

const der = (prefix: Buffer, raw: Uint8Array) => Buffer.concat([prefix, raw]);

function rawPublic(key: KeyObject): Uint8Array {
  const spki = key.export({ format: 'der', type: 'spki' });
  return new Uint8Array(spki.subarray(spki.length - 32));
}

function importPublic(prefix: Buffer, raw: Uint8Array): KeyObject {
  if (raw.length !== 32) throw new RangeError('public key must be 32 bytes');
  return createPublicKey({ key: der(prefix, raw), format: 'der', type: 'spki' });
}

// Parsing a public key costs more than verifying with it; the same few keys verify every message.
const verifyKeyCache = new Map<string, KeyObject>();
function ed25519PublicKey(raw: Uint8Array): KeyObject {
  const id = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('hex');
  let key = verifyKeyCache.get(id);
  if (!key) {
    key = importPublic(ED25519_SPKI, raw);
    if (verifyKeyCache.size > 4096) verifyKeyCache.clear();
    verifyKeyCache.set(id, key);
  }
  return key;
}

function signer(privateKey: KeyObject): Ed25519Signer {
  return {
    publicKey: rawPublic(createPublicKey(privateKey)),
    sign: (message) => new Uint8Array(sign(null, message, privateKey)),
  };
}

export const backend: CryptoBackend = {
  name: 'node',
  randomBytes: (length) => new Uint8Array(nodeRandomBytes(length)),
  sha256: (data) => new Uint8Array(createHash('sha256').update(data).digest()),
  sha3_256: (data) => new Uint8Array(createHash('sha3-256').update(data).digest()),
  hkdfSha256: (ikm, salt, info, length) => new Uint8Array(hkdfSync('sha256', ikm, salt, info, length)),
  equalSameLength: (a, b) => timingSafeEqual(a, b),
  toBase64Url: (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url'),
  decodeBase64Url: (text) => new Uint8Array(Buffer.from(text, 'base64url')),
  ed25519FromSeed: (seed) =>
    signer(createPrivateKey({ key: der(ED25519_PKCS8, seed), format: 'der', type: 'pkcs8' })),
  ed25519FromPlatformKey(key) {
    if (!(key instanceof KeyObject) || key.type !== 'private' || key.asymmetricKeyType !== 'ed25519') {
      throw new TypeError('not an Ed25519 private KeyObject');
    }
    return signer(key);
  },
  ed25519Verify(publicKey, message, signature) {
    try {
      return verify(null, message, ed25519PublicKey(publicKey), signature);
    } catch {
      return false; // an invalid point encoding is just a bad signature
    }
  },
  x25519FromSeed(seed): X25519Agreement {
    const privateKey = createPrivateKey({ key: der(X25519_PKCS8, seed), format: 'der', type: 'pkcs8' });
    return {
      publicKey: rawPublic(createPublicKey(privateKey)),
      agree: (peer) =>
        new Uint8Array(diffieHellman({ privateKey, publicKey: importPublic(X25519_SPKI, peer) })),
    };
  },
};
