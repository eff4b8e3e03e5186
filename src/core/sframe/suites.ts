// RFC 9605 §4.5 cipher suites with their Nh/Nka/Nk/Nn/Nt parameters as the RFC lists them.

import { SFrameError } from './errors.js';

export type CipherSuiteId = 0x0001 | 0x0002 | 0x0003 | 0x0004 | 0x0005;

/** AES_256_GCM_SHA512_128: Sealroom's default for every media frame. */
export const DEFAULT_SUITE: CipherSuiteId = 0x0005;

export interface CipherSuite {
  readonly id: CipherSuiteId;
  readonly name: string;
  /** Hash for HKDF (and HMAC for the CTR suites), as node:crypto names it. */
  readonly hash: 'sha256' | 'sha512';
  readonly kind: 'gcm' | 'ctr-hmac';
  /** node:crypto cipher name of the encryption primitive. */
  readonly cipher: 'aes-128-gcm' | 'aes-256-gcm' | 'aes-128-ctr';
  /** Length of the AEAD key derived per KID (for CTR suites: encryption key || authentication key). */
  readonly nk: number;
  /** Length of the AES-CTR encryption part of the key (CTR suites only; 0 for GCM). */
  readonly nka: number;
  /** Nonce length. */
  readonly nn: 12;
  /** Authentication tag length. */
  readonly nt: number;
}

const SUITES: ReadonlyMap<number, CipherSuite> = new Map<number, CipherSuite>([
  [
    0x0001,
    {
      id: 0x0001,
      name: 'AES_128_CTR_HMAC_SHA256_80',
      hash: 'sha256',
      kind: 'ctr-hmac',
      cipher: 'aes-128-ctr',
      nk: 48,
      nka: 16,
      nn: 12,
      nt: 10,
    },
  ],
  [
    0x0002,
    {
      id: 0x0002,
      name: 'AES_128_CTR_HMAC_SHA256_64',
      hash: 'sha256',
      kind: 'ctr-hmac',
      cipher: 'aes-128-ctr',
      nk: 48,
      nka: 16,
      nn: 12,
      nt: 8,
    },
  ],
  [
    0x0003,
    {
      id: 0x0003,
      name: 'AES_128_CTR_HMAC_SHA256_32',
      hash: 'sha256',
      kind: 'ctr-hmac',
      cipher: 'aes-128-ctr',
      nk: 48,
      nka: 16,
      nn: 12,
      nt: 4,
    },
  ],
  [
    0x0004,
    {
      id: 0x0004,
      name: 'AES_128_GCM_SHA256_128',
      hash: 'sha256',
      kind: 'gcm',
      cipher: 'aes-128-gcm',
      nk: 16,
      nka: 0,
      nn: 12,
      nt: 16,
    },
  ],
  [
    0x0005,
    {
      id: 0x0005,
      name: 'AES_256_GCM_SHA512_128',
      hash: 'sha512',
      kind: 'gcm',
      cipher: 'aes-256-gcm',
      nk: 32,
      nka: 0,
      nn: 12,
      nt: 16,
    },
  ],
]);

export const SUPPORTED_SUITES: readonly CipherSuiteId[] = [0x0001, 0x0002, 0x0003, 0x0004, 0x0005];

/** The suite's parameters; UNSUPPORTED_SUITE for anything outside the RFC's five. */
export function cipherSuite(id: number): CipherSuite {
  const suite = SUITES.get(id);
  if (suite === undefined) {
    const shown = typeof id === 'number' ? `0x${id.toString(16).padStart(4, '0')}` : String(id);
    throw new SFrameError('UNSUPPORTED_SUITE', `cipher suite ${shown}`);
  }
  return suite;
}
