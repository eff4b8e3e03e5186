// The AEAD of each suite on node:crypto (OpenSSL, AES-NI). AES-GCM for 0x0004/0x0005; for
// 0x0001–0x0003 the RFC 9605 §4.5.1 construction: AES-CTR with IV = nonce || 0x00000000, then a
// truncated HMAC over len(aad) || len(ct) || Nt (each uint64) || nonce || aad || ct. The AAD arrives
// in two parts (SFrame header, then metadata) so nobody has to concatenate them per frame.
// Opening verifies the tag before any plaintext leaves this module.

import {
  type KeyObject,
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  timingSafeEqual,
} from 'node:crypto';
import { SFrameError } from './errors.js';
import type { CipherSuite } from './suites.js';

const EMPTY = new Uint8Array(0);

/** An AEAD key ready for use: KeyObjects are made once so OpenSSL does not re-import them per frame. */
export interface AeadKey {
  readonly suite: CipherSuite;
  readonly encKey: KeyObject;
  /** HMAC key of the CTR suites; undefined for GCM. */
  readonly authKey: KeyObject | undefined;
}

export function importAeadKey(suite: CipherSuite, key: Uint8Array): AeadKey {
  if (!(key instanceof Uint8Array) || key.length !== suite.nk) {
    throw new SFrameError('INVALID_KEY', `${suite.name} needs a ${suite.nk}-byte key`);
  }
  if (suite.kind === 'gcm') return { suite, encKey: createSecretKey(key), authKey: undefined };
  return {
    suite,
    encKey: createSecretKey(key.subarray(0, suite.nka)),
    authKey: createSecretKey(key.subarray(suite.nka)),
  };
}

function ctrIv(nonce: Uint8Array): Uint8Array {
  const iv = new Uint8Array(16);
  iv.set(nonce, 0);
  return iv;
}

function hmacTag(
  key: AeadKey,
  nonce: Uint8Array,
  aad1: Uint8Array,
  aad2: Uint8Array,
  ct: Uint8Array,
): Uint8Array {
  const lengths = Buffer.alloc(24);
  lengths.writeBigUInt64BE(BigInt(aad1.length + aad2.length), 0);
  lengths.writeBigUInt64BE(BigInt(ct.length), 8);
  lengths.writeBigUInt64BE(BigInt(key.suite.nt), 16);
  const mac = createHmac('sha256', key.authKey!);
  mac.update(lengths).update(nonce).update(aad1);
  if (aad2.length > 0) mac.update(aad2);
  return mac.update(ct).digest().subarray(0, key.suite.nt);
}

/**
 * Encrypts `pt` and writes ciphertext || tag into out[offset ..]; `out` must have room for
 * pt.length + Nt bytes there. `nonce` is read, not kept.
 */
export function sealInto(
  key: AeadKey,
  nonce: Uint8Array,
  aad1: Uint8Array,
  aad2: Uint8Array | undefined,
  pt: Uint8Array,
  out: Uint8Array,
  offset: number,
): void {
  const suite = key.suite;
  if (suite.kind === 'gcm') {
    const cipher = createCipheriv(suite.cipher as 'aes-256-gcm', key.encKey, nonce, { authTagLength: 16 });
    cipher.setAAD(aad1);
    if (aad2 !== undefined && aad2.length > 0) cipher.setAAD(aad2);
    const ct = cipher.update(pt);
    out.set(ct, offset);
    cipher.final();
    out.set(cipher.getAuthTag(), offset + ct.length);
    return;
  }
  const cipher = createCipheriv('aes-128-ctr', key.encKey, ctrIv(nonce));
  const ct = cipher.update(pt);
  cipher.final();
  out.set(ct, offset);
  out.set(hmacTag(key, nonce, aad1, aad2 ?? EMPTY, ct), offset + ct.length);
}

/**
 * Verifies and decrypts `ctAndTag` (ciphertext || Nt-byte tag). Throws SFrameError AUTH_FAILED on any
 * mismatch; returns plaintext only after the tag checked out.
 */
export function open(
  key: AeadKey,
  nonce: Uint8Array,
  aad1: Uint8Array,
  aad2: Uint8Array | undefined,
  ctAndTag: Uint8Array,
): Uint8Array {
  const suite = key.suite;
  const ctEnd = ctAndTag.length - suite.nt;
  if (ctEnd < 0) throw new SFrameError('TRUNCATED', `shorter than the ${suite.nt}-byte tag`);
  const ct = ctAndTag.subarray(0, ctEnd);
  const tag = ctAndTag.subarray(ctEnd);
  if (suite.kind === 'gcm') {
    const decipher = createDecipheriv(suite.cipher as 'aes-256-gcm', key.encKey, nonce, {
      authTagLength: 16,
    });
    decipher.setAAD(aad1);
    if (aad2 !== undefined && aad2.length > 0) decipher.setAAD(aad2);
    decipher.setAuthTag(tag);
    const pt = decipher.update(ct);
    try {
      decipher.final();
    } catch {
      throw new SFrameError('AUTH_FAILED', 'authentication tag mismatch');
    }
    return pt;
  }
  const expected = hmacTag(key, nonce, aad1, aad2 ?? EMPTY, ct);
  if (!timingSafeEqual(expected, tag)) throw new SFrameError('AUTH_FAILED', 'authentication tag mismatch');
  const decipher = createDecipheriv('aes-128-ctr', key.encKey, ctrIv(nonce));
  const pt = decipher.update(ct);
  decipher.final();
  return pt;
}

/** One-shot seal for known-answer tests: returns ciphertext || tag. */
export function seal(key: AeadKey, nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array {
  const out = new Uint8Array(pt.length + key.suite.nt);
  sealInto(key, nonce, aad, undefined, pt, out, 0);
  return out;
}
