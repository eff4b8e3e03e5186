// Browser backend of the E2EE core (see api.ts): @noble/curves and @noble/hashes, randomness from
// crypto.getRandomValues. Same shape as node.ts; scripts/esbuild-core-browser.mjs swaps it in when
// bundling for the web participant. Also runs in Node (tests use it to prove both agree).
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { sha3_256 } from '@noble/hashes/sha3.js';
import type { CryptoBackend, Ed25519Signer, X25519Agreement } from './api.js';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
const DECODE = new Int16Array(128).fill(-1);
for (let i = 0; i < ALPHABET.length; i++) DECODE[ALPHABET.charCodeAt(i)] = i;

function toBase64Url(bytes: Uint8Array): string {
  let out = '';
  let i = 0;
  for (; i + 2 < bytes.length; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]! + ALPHABET[n & 63]!;
  }
  const rest = bytes.length - i;
  if (rest === 1) {
    const n = bytes[i]! << 16;
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]!;
  } else if (rest === 2) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8);
    out += ALPHABET[n >> 18]! + ALPHABET[(n >> 12) & 63]! + ALPHABET[(n >> 6) & 63]!;
  }
  return out;
}

/** Lenient like Buffer: stops at the first non-alphabet character; the caller checks canonical form. */
function decodeBase64Url(text: string): Uint8Array {
  const out = new Uint8Array(Math.floor((text.length * 3) / 4));
  let bits = 0;
  let acc = 0;
  let n = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    const value = code < 128 ? DECODE[code]! : -1;
    if (value < 0) break;
    acc = ((acc << 6) | value) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (acc >> bits) & 0xff;
    }
  }
  return out.subarray(0, n);
}

function equalSameLength(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) throw new RangeError('inputs must have the same length');
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function signerFromSeed(seed: Uint8Array): Ed25519Signer {
  const secret = Uint8Array.from(seed);
  return {
    publicKey: ed25519.getPublicKey(secret),
    sign: (message) => ed25519.sign(message, secret),
  };
}

export const backend: CryptoBackend = {
  name: 'browser',
  randomBytes(length) {
    const out = new Uint8Array(length);
    // getRandomValues fills at most 65536 bytes per call.
    for (let i = 0; i < length; i += 65536) globalThis.crypto.getRandomValues(out.subarray(i, i + 65536));
    return out;
  },
  sha256: (data) => sha256(data),
  sha3_256: (data) => sha3_256(data),
  hkdfSha256: (ikm, salt, info, length) => hkdf(sha256, ikm, salt, info, length),
  equalSameLength,
  toBase64Url,
  decodeBase64Url,
  ed25519FromSeed: signerFromSeed,
  ed25519FromPlatformKey() {
    throw new TypeError('no platform Ed25519 keys in the browser backend: use createBindingAsync');
  },
  ed25519Verify(publicKey, message, signature) {
    try {
      // zip215: false = RFC 8032 / OpenSSL rules, so both backends accept exactly the same signatures.
      return ed25519.verify(signature, message, publicKey, { zip215: false });
    } catch {
      return false;
    }
  },
  x25519FromSeed(seed): X25519Agreement {
    const secret = Uint8Array.from(seed);
    return {
      publicKey: x25519.getPublicKey(secret),
      agree: (peer) => x25519.getSharedSecret(secret, peer),
    };
  },
};
