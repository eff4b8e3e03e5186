// RFC 9605 §4.4.2 key schedule: one HKDF-Extract of the base key with an empty salt, then two
// HKDF-Expands whose labels bind the KID and the cipher suite, so a base key shared by mistake across
// KIDs or suites still yields unrelated keys.

import { createHmac, hkdfSync } from 'node:crypto';
import { SFrameError } from './errors.js';
import { MAX_UINT64 } from './header.js';
import { type CipherSuiteId, cipherSuite } from './suites.js';

/** Base keys shorter than this are refused: they would be weaker than the AES key they feed. */
export const MIN_BASE_KEY_BYTES = 16;

const KEY_LABEL = 'SFrame 1.0 Secret key ';
const SALT_LABEL = 'SFrame 1.0 Secret salt ';

/** `prefix || uint64_be(kid) || uint16_be(suite)`, the HKDF-Expand info of §4.4.2. */
export function keyScheduleLabel(kind: 'key' | 'salt', kid: bigint, suite: CipherSuiteId): Uint8Array {
  const prefix = Buffer.from(kind === 'key' ? KEY_LABEL : SALT_LABEL, 'latin1');
  const label = Buffer.alloc(prefix.length + 10);
  prefix.copy(label, 0);
  label.writeBigUInt64BE(kid, prefix.length);
  label.writeUInt16BE(suite, prefix.length + 8);
  return label;
}

export function checkBaseKey(baseKey: Uint8Array): void {
  if (!(baseKey instanceof Uint8Array)) throw new SFrameError('INVALID_KEY', 'base key is not a Uint8Array');
  if (baseKey.length < MIN_BASE_KEY_BYTES) {
    throw new SFrameError('INVALID_KEY', `base key has ${baseKey.length} bytes, at least 16 are required`);
  }
}

export function checkKid(kid: bigint): void {
  if (typeof kid !== 'bigint' || kid < 0n || kid > MAX_UINT64) {
    throw new SFrameError('INVALID_KEY', `KID must be a bigint in [0, 2^64-1], got ${String(kid)}`);
  }
}

/** HKDF-Extract(salt = "", base_key): exposed for known-answer tests of the intermediate secret. */
export function sframeSecret(suite: CipherSuiteId, baseKey: Uint8Array): Uint8Array {
  return createHmac(cipherSuite(suite).hash, Buffer.alloc(0)).update(baseKey).digest();
}

/** The per-KID AEAD key (Nk bytes) and salt (Nn bytes) for `baseKey`. */
export function deriveKeyAndSalt(
  suite: CipherSuiteId,
  baseKey: Uint8Array,
  kid: bigint,
): { key: Uint8Array; salt: Uint8Array } {
  const params = cipherSuite(suite);
  checkBaseKey(baseKey);
  checkKid(kid);
  const noSalt = Buffer.alloc(0);
  const key = hkdfSync(params.hash, baseKey, noSalt, keyScheduleLabel('key', kid, suite), params.nk);
  const salt = hkdfSync(params.hash, baseKey, noSalt, keyScheduleLabel('salt', kid, suite), params.nn);
  return { key: new Uint8Array(key), salt: new Uint8Array(salt) };
}
