// Built-in known-answer tests, run at boot by `sealroom selftest`: a spread of header encodings from
// the official RFC 9605 vectors (every length class of KID and CTR), the three AES-CTR-HMAC AEAD
// vectors and one full SFrame vector per cipher suite. Copied verbatim from
// ../shared/sframe/test-vectors.json, so a broken OpenSSL, a mis-built module or a regression in the
// key schedule is caught before the first frame is encrypted.

import type { KnownAnswerTest } from '../selftest.js';
import { SFrameError } from './errors.js';
import { SFrameReceiver } from './receiver.js';
import { SFrameSender } from './sender.js';
import { MAX_UINT64 } from './header.js';
import { cipherSuite } from './suites.js';
import {
  type AesCtrHmacVector,
  type HeaderVector,
  type SFrameVector,
  checkAesCtrHmacVector,
  checkHeaderVector,
  checkSFrameVector,
} from './vectors.js';

const HEADER_VECTORS: HeaderVector[] = [
  { kid: 0n, ctr: 0n, encoded: '00' },
  { kid: 0n, ctr: 255n, encoded: '08ff' },
  { kid: 0n, ctr: 18446744073709551615n, encoded: '0fffffffffffffffff' },
  { kid: 1n, ctr: 1n, encoded: '11' },
  { kid: 255n, ctr: 256n, encoded: '89ff0100' },
  { kid: 65536n, ctr: 16777215n, encoded: 'aa010000ffffff' },
  { kid: 4294967295n, ctr: 1099511627776n, encoded: 'bdffffffff010000000000' },
  { kid: 281474976710656n, ctr: 72057594037927935n, encoded: 'ee01000000000000ffffffffffffff' },
  { kid: 72057594037927936n, ctr: 4294967296n, encoded: 'fc01000000000000000100000000' },
  { kid: 18446744073709551615n, ctr: 0n, encoded: 'f0ffffffffffffffff' },
  { kid: 18446744073709551615n, ctr: 18446744073709551615n, encoded: 'ffffffffffffffffffffffffffffffffff' },
];
const AES_CTR_HMAC_VECTORS: AesCtrHmacVector[] = [
  {
    cipher_suite: 0x0001,
    key: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f',
    enc_key: '000102030405060708090a0b0c0d0e0f',
    auth_key: '101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f',
    nonce: '101112131415161718191a1b',
    aad: '4945544620534672616d65205747',
    pt: '64726166742d696574662d736672616d652d656e63',
    ct: '6339af04ada1d064688a442b8dc69d5b6bfa40f4bef0583e8081069cc60705',
  },
  {
    cipher_suite: 0x0002,
    key: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f',
    enc_key: '000102030405060708090a0b0c0d0e0f',
    auth_key: '101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f',
    nonce: '101112131415161718191a1b',
    aad: '4945544620534672616d65205747',
    pt: '64726166742d696574662d736672616d652d656e63',
    ct: '6339af04ada1d064688a442b8dc69d5b6bfa40f4be6e93b7da076927bb',
  },
  {
    cipher_suite: 0x0003,
    key: '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f',
    enc_key: '000102030405060708090a0b0c0d0e0f',
    auth_key: '101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f',
    nonce: '101112131415161718191a1b',
    aad: '4945544620534672616d65205747',
    pt: '64726166742d696574662d736672616d652d656e63',
    ct: '6339af04ada1d064688a442b8dc69d5b6bfa40f4be09480509',
  },
];
const SFRAME_VECTORS: SFrameVector[] = [
  {
    cipher_suite: 0x0001,
    kid: 291n,
    ctr: 17767n,
    base_key: '000102030405060708090a0b0c0d0e0f',
    sframe_key_label: '534672616d6520312e3020536563726574206b65792000000000000001230001',
    sframe_salt_label: '534672616d6520312e30205365637265742073616c742000000000000001230001',
    sframe_secret: 'd926952ca8b7ec4a95941d1ada3a5203ceff8cceee34f574d23909eb314c40c0',
    sframe_key:
      '3f7d9a7c83ae8e1c8a11ae695ab59314b367e359fadac7b9c46b2bc6f81f46e16b96f0811868d59402b7e870102720b3',
    sframe_salt: '50b29329a04dc0f184ac3168',
    metadata: '4945544620534672616d65205747',
    nonce: '50b29329a04dc0f184ac740f',
    aad: '99012345674945544620534672616d65205747',
    pt: '64726166742d696574662d736672616d652d656e63',
    ct: '9901234567449408b6f490086165b9d6f62b24ae1a59a56486b4ae8ed036b88912e24f11',
  },
  {
    cipher_suite: 0x0002,
    kid: 291n,
    ctr: 17767n,
    base_key: '000102030405060708090a0b0c0d0e0f',
    sframe_key_label: '534672616d6520312e3020536563726574206b65792000000000000001230002',
    sframe_salt_label: '534672616d6520312e30205365637265742073616c742000000000000001230002',
    sframe_secret: 'd926952ca8b7ec4a95941d1ada3a5203ceff8cceee34f574d23909eb314c40c0',
    sframe_key:
      'e2ec5c797540310483b16bf6e7a570d2a27d192fe869c7ccd8584a8d9dab91549fbe553f5113461ec6aa83bf3865553e',
    sframe_salt: 'e68ac8dd3d02fbcd368c5577',
    metadata: '4945544620534672616d65205747',
    nonce: 'e68ac8dd3d02fbcd368c1010',
    aad: '99012345674945544620534672616d65205747',
    pt: '64726166742d696574662d736672616d652d656e63',
    ct: '99012345673f31438db4d09434e43afa0f8a2f00867a2be085046a9f5cb4f101d607',
  },
  {
    cipher_suite: 0x0003,
    kid: 291n,
    ctr: 17767n,
    base_key: '000102030405060708090a0b0c0d0e0f',
    sframe_key_label: '534672616d6520312e3020536563726574206b65792000000000000001230003',
    sframe_salt_label: '534672616d6520312e30205365637265742073616c742000000000000001230003',
    sframe_secret: 'd926952ca8b7ec4a95941d1ada3a5203ceff8cceee34f574d23909eb314c40c0',
    sframe_key:
      '2c5703089cbb8c583475e4fc461d97d18809df79b6d550f78eb6d50ffa80d89211d57909934f46f5405e38cd583c69fe',
    sframe_salt: '38c16e4f5159700c00c7f350',
    metadata: '4945544620534672616d65205747',
    nonce: '38c16e4f5159700c00c7b637',
    aad: '99012345674945544620534672616d65205747',
    pt: '64726166742d696574662d736672616d652d656e63',
    ct: '990123456717fc8af28a5a695afcfc6c8df6358a17e26b2fcb3bae32e443',
  },
  {
    cipher_suite: 0x0004,
    kid: 291n,
    ctr: 17767n,
    base_key: '000102030405060708090a0b0c0d0e0f',
    sframe_key_label: '534672616d6520312e3020536563726574206b65792000000000000001230004',
    sframe_salt_label: '534672616d6520312e30205365637265742073616c742000000000000001230004',
    sframe_secret: 'd926952ca8b7ec4a95941d1ada3a5203ceff8cceee34f574d23909eb314c40c0',
    sframe_key: 'd34f547f4ca4f9a7447006fe7fcbf768',
    sframe_salt: '75234edefe07819026751816',
    metadata: '4945544620534672616d65205747',
    nonce: '75234edefe07819026755d71',
    aad: '99012345674945544620534672616d65205747',
    pt: '64726166742d696574662d736672616d652d656e63',
    ct: '9901234567b7412c2513a1b66dbb48841bbaf17f598751176ad847681a69c6d0b091c07018ce4adb34eb',
  },
  {
    cipher_suite: 0x0005,
    kid: 291n,
    ctr: 17767n,
    base_key: '000102030405060708090a0b0c0d0e0f',
    sframe_key_label: '534672616d6520312e3020536563726574206b65792000000000000001230005',
    sframe_salt_label: '534672616d6520312e30205365637265742073616c742000000000000001230005',
    sframe_secret:
      '0fc3ea6de6aac97a35f194cf9bed94d4b5230f1cb45a785c9fe5dce9c188938ab6ba005bc4c0a19181599e9d1bcf7b74aca48b60bf5e254e546d809313e083a3',
    sframe_key: 'd3e27b0d4a5ae9e55df01a70e6d4d28d969b246e2936f4b7a5d9b494da6b9633',
    sframe_salt: '84991c167b8cd23c93708ec7',
    metadata: '4945544620534672616d65205747',
    nonce: '84991c167b8cd23c9370cba0',
    aad: '99012345674945544620534672616d65205747',
    pt: '64726166742d696574662d736672616d652d656e63',
    ct: '990123456794f509d36e9beacb0e261d99c7d1e972f1fed787d4049f17ca21353c1cc24d56ceabced279',
  },
];

function suiteLabel(id: number): string {
  return `0x${id.toString(16).padStart(4, '0')} ${cipherSuite(id).name}`;
}

/** A sender at CTR 2^64−1 encrypts once, then refuses: (key, KID, CTR) is never reused. */
function counterExhaustionTest(): void {
  const sender = new SFrameSender({ kid: 1n, baseKey: new Uint8Array(16), initialCounter: MAX_UINT64 });
  const last = sender.encrypt(new Uint8Array(4));
  try {
    sender.encrypt(new Uint8Array(4));
  } catch (err) {
    if (err instanceof SFrameError && err.code === 'COUNTER_EXHAUSTED') {
      const receiver = new SFrameReceiver();
      receiver.setKey(1n, new Uint8Array(16));
      if (receiver.decrypt(last).ctr !== MAX_UINT64) throw new Error('last frame did not carry CTR 2^64-1');
      return;
    }
    throw err;
  }
  throw new Error('sender encrypted past CTR 2^64-1');
}

export const sframeKnownAnswerTests: KnownAnswerTest[] = [
  ...HEADER_VECTORS.map((v) => ({
    name: `header kid=${v.kid} ctr=${v.ctr}`,
    run: () => checkHeaderVector(v),
  })),
  ...AES_CTR_HMAC_VECTORS.map((v) => ({
    name: `AEAD ${suiteLabel(v.cipher_suite)}`,
    run: () => checkAesCtrHmacVector(v),
  })),
  ...SFRAME_VECTORS.map((v) => ({
    name: `SFrame ${suiteLabel(v.cipher_suite)}`,
    run: () => checkSFrameVector(v),
  })),
  { name: 'counter exhaustion at 2^64-1', run: counterExhaustionTest },
];
