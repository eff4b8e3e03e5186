// Everything derived once per (base key, KID, suite) and reused for every frame of that KID:
// the imported AEAD key, the salt split for a cheap nonce, and a nonce buffer rewritten in place.

import { type AeadKey, importAeadKey } from './aead.js';
import { checkBaseKey, checkKid, deriveKeyAndSalt } from './keys.js';
import { type CipherSuite, type CipherSuiteId, cipherSuite } from './suites.js';

export class FrameKey {
  readonly suite: CipherSuite;
  readonly aeadKey: AeadKey;
  private readonly saltLow: bigint;
  /** salt XOR uint96_be(ctr), rewritten per frame; node:crypto copies it into the cipher context. */
  private readonly nonce: Buffer;

  constructor(suiteId: CipherSuiteId, baseKey: Uint8Array, kid: bigint) {
    this.suite = cipherSuite(suiteId);
    checkBaseKey(baseKey);
    checkKid(kid);
    const { key, salt } = deriveKeyAndSalt(suiteId, baseKey, kid);
    this.aeadKey = importAeadKey(this.suite, key);
    key.fill(0);
    this.nonce = Buffer.from(salt);
    // CTR < 2^64, so only the low 8 of the 12 salt bytes ever change.
    this.saltLow = this.nonce.readBigUInt64BE(4);
  }

  /** The §4.4.3 nonce for `ctr`; valid until the next call. */
  nonceFor(ctr: bigint): Buffer {
    this.nonce.writeBigUInt64BE(this.saltLow ^ ctr, 4);
    return this.nonce;
  }
}
