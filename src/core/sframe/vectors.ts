// Checks for entries of the official RFC 9605 test-vector format (groups "header", "aes_ctr_hmac",
// "sframe"), and a parser for that JSON that keeps integers exact: KID and CTR reach 2^64−1, far past
// what JSON.parse can hold in a number (and Node 20 has no JSON.parse source access).

import { type AeadKey, importAeadKey, open, seal } from './aead.js';
import { SFrameError } from './errors.js';
import { FrameKey } from './frame-key.js';
import { decodeHeader, encodeHeader } from './header.js';
import { deriveKeyAndSalt, keyScheduleLabel, sframeSecret } from './keys.js';
import { SFrameReceiver } from './receiver.js';
import { SFrameSender } from './sender.js';
import { type CipherSuiteId, cipherSuite } from './suites.js';

export interface HeaderVector {
  kid: bigint;
  ctr: bigint;
  encoded: string;
}

export interface AesCtrHmacVector {
  cipher_suite: number;
  key: string;
  enc_key: string;
  auth_key: string;
  nonce: string;
  aad: string;
  pt: string;
  ct: string;
}

export interface SFrameVector {
  cipher_suite: number;
  kid: bigint;
  ctr: bigint;
  base_key: string;
  sframe_key_label: string;
  sframe_salt_label: string;
  sframe_secret: string;
  sframe_key: string;
  sframe_salt: string;
  metadata: string;
  nonce: string;
  aad: string;
  pt: string;
  ct: string;
}

export type VectorGroup = 'header' | 'aes_ctr_hmac' | 'sframe';
export const VECTOR_GROUPS: readonly VectorGroup[] = ['header', 'aes_ctr_hmac', 'sframe'];

/** A vector file whose structure is not the official format (not JSON, no known group, ...). */
export class VectorFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'VectorFormatError';
  }
}

// ---------------------------------------------------------------------------------------------
// Exact-integer JSON

/** Marks an integer literal that was turned into a string before JSON.parse. */
const INT_MARK = '\u0000int:';
// Strings are matched first so digits inside them stay untouched.
const TOKENS = /"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;

/** JSON.parse, except that every integer literal becomes the marked string INT_MARK + digits. */
export function parseJsonExactIntegers(text: string): unknown {
  const marked = text.replace(TOKENS, (token) => (/^-?\d+$/.test(token) ? `"\\u0000int:${token}"` : token));
  return JSON.parse(marked);
}

function hexToBytes(hex: string): Uint8Array {
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

function bytesToHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

type Field = 'uint' | 'hex';

function readEntry<T>(entry: unknown, fields: Record<string, Field>): T {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
    throw new VectorFormatError('entry is not a JSON object');
  }
  const out: Record<string, bigint | number | string> = {};
  for (const [name, kind] of Object.entries(fields)) {
    const value = (entry as Record<string, unknown>)[name];
    if (kind === 'uint') {
      if (typeof value !== 'string' || !value.startsWith(INT_MARK) || value.startsWith(`${INT_MARK}-`)) {
        throw new VectorFormatError(`field "${name}" must be a non-negative integer`);
      }
      const n = BigInt(value.slice(INT_MARK.length));
      out[name] = name === 'cipher_suite' ? Number(n) : n;
    } else {
      if (typeof value !== 'string' || !/^(?:[0-9a-fA-F]{2})*$/.test(value)) {
        throw new VectorFormatError(`field "${name}" must be a hex string`);
      }
      out[name] = value.toLowerCase();
    }
  }
  return out as T;
}

const HEADER_FIELDS: Record<string, Field> = { kid: 'uint', ctr: 'uint', encoded: 'hex' };
const AES_CTR_HMAC_FIELDS: Record<string, Field> = {
  cipher_suite: 'uint',
  key: 'hex',
  enc_key: 'hex',
  auth_key: 'hex',
  nonce: 'hex',
  aad: 'hex',
  pt: 'hex',
  ct: 'hex',
};
const SFRAME_FIELDS: Record<string, Field> = {
  cipher_suite: 'uint',
  kid: 'uint',
  ctr: 'uint',
  base_key: 'hex',
  sframe_key_label: 'hex',
  sframe_salt_label: 'hex',
  sframe_secret: 'hex',
  sframe_key: 'hex',
  sframe_salt: 'hex',
  metadata: 'hex',
  nonce: 'hex',
  aad: 'hex',
  pt: 'hex',
  ct: 'hex',
};

/** One vector of the file, or the reason its entry could not be read (which counts as a failure). */
export type ParsedEntry<T> = { ok: true; vector: T } | { ok: false; error: string };

export interface ParsedVectorFile {
  header: ParsedEntry<HeaderVector>[];
  aes_ctr_hmac: ParsedEntry<AesCtrHmacVector>[];
  sframe: ParsedEntry<SFrameVector>[];
}

function readGroup<T>(list: unknown, group: VectorGroup, fields: Record<string, Field>): ParsedEntry<T>[] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new VectorFormatError(`"${group}" must be an array of test vectors`);
  return list.map((entry): ParsedEntry<T> => {
    try {
      return { ok: true, vector: readEntry<T>(entry, fields) };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  });
}

/**
 * Parses a vector file's text. Throws VectorFormatError if it is not JSON or has none of the groups;
 * a malformed single entry is kept as a failed entry so the rest of the file still runs.
 */
export function parseVectorFile(text: string): ParsedVectorFile {
  let doc: unknown;
  try {
    doc = parseJsonExactIntegers(text);
  } catch (err) {
    throw new VectorFormatError(`not valid JSON: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new VectorFormatError(
      'expected a JSON object with "header", "aes_ctr_hmac" and/or "sframe" arrays',
    );
  }
  const groups = doc as Record<string, unknown>;
  if (!VECTOR_GROUPS.some((g) => g in groups)) {
    throw new VectorFormatError('none of the groups "header", "aes_ctr_hmac", "sframe" is present');
  }
  return {
    header: readGroup(groups.header, 'header', HEADER_FIELDS),
    aes_ctr_hmac: readGroup(groups.aes_ctr_hmac, 'aes_ctr_hmac', AES_CTR_HMAC_FIELDS),
    sframe: readGroup(groups.sframe, 'sframe', SFRAME_FIELDS),
  };
}

// ---------------------------------------------------------------------------------------------
// Checks: each throws an Error naming the first mismatch

function expectHex(what: string, actual: Uint8Array, expected: string): void {
  const got = bytesToHex(actual);
  if (got !== expected) throw new Error(`${what}: expected ${expected}, got ${got}`);
}

function expectEqual<T>(what: string, actual: T, expected: T): void {
  if (actual !== expected) throw new Error(`${what}: expected ${String(expected)}, got ${String(actual)}`);
}

function expectSFrameError(what: string, code: string, fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (err instanceof SFrameError && err.code === code) return;
    throw new Error(`${what}: expected SFrameError ${code}, got ${String(err)}`);
  }
  throw new Error(`${what}: expected SFrameError ${code}, but it succeeded`);
}

function flipLastBit(bytes: Uint8Array): Uint8Array {
  const copy = Uint8Array.from(bytes);
  copy[copy.length - 1]! ^= 1;
  return copy;
}

export function checkHeaderVector(v: HeaderVector): void {
  expectHex('encodeHeader', encodeHeader(v.kid, v.ctr), v.encoded);
  const decoded = decodeHeader(hexToBytes(v.encoded));
  expectEqual('decoded KID', decoded.kid, v.kid);
  expectEqual('decoded CTR', decoded.ctr, v.ctr);
  expectEqual('decoded header length', decoded.headerLength, v.encoded.length / 2);
}

export function checkAesCtrHmacVector(v: AesCtrHmacVector): void {
  const suite = cipherSuite(v.cipher_suite);
  if (suite.kind !== 'ctr-hmac') throw new Error(`suite ${v.cipher_suite} is not an AES-CTR-HMAC suite`);
  const key = hexToBytes(v.key);
  expectHex('enc_key', key.subarray(0, suite.nka), v.enc_key);
  expectHex('auth_key', key.subarray(suite.nka), v.auth_key);
  const aeadKey: AeadKey = importAeadKey(suite, key);
  const nonce = hexToBytes(v.nonce);
  const aad = hexToBytes(v.aad);
  const ct = hexToBytes(v.ct);
  expectHex('ciphertext', seal(aeadKey, nonce, aad, hexToBytes(v.pt)), v.ct);
  expectHex('decrypted', open(aeadKey, nonce, aad, undefined, ct), v.pt);
  expectSFrameError('tampered tag', 'AUTH_FAILED', () =>
    open(aeadKey, nonce, aad, undefined, flipLastBit(ct)),
  );
}

export function checkSFrameVector(v: SFrameVector): void {
  const suite = cipherSuite(v.cipher_suite).id as CipherSuiteId;
  const baseKey = hexToBytes(v.base_key);
  const metadata = hexToBytes(v.metadata);
  expectHex('sframe_key_label', keyScheduleLabel('key', v.kid, suite), v.sframe_key_label);
  expectHex('sframe_salt_label', keyScheduleLabel('salt', v.kid, suite), v.sframe_salt_label);
  expectHex('sframe_secret', sframeSecret(suite, baseKey), v.sframe_secret);
  const { key, salt } = deriveKeyAndSalt(suite, baseKey, v.kid);
  expectHex('sframe_key', key, v.sframe_key);
  expectHex('sframe_salt', salt, v.sframe_salt);
  expectHex('nonce', new FrameKey(suite, baseKey, v.kid).nonceFor(v.ctr), v.nonce);
  const header = encodeHeader(v.kid, v.ctr);
  const aad = new Uint8Array(header.length + metadata.length);
  aad.set(header, 0);
  aad.set(metadata, header.length);
  expectHex('aad', aad, v.aad);

  const sender = new SFrameSender({ kid: v.kid, baseKey, suite, initialCounter: v.ctr });
  expectHex('sframe', sender.encrypt(hexToBytes(v.pt), metadata), v.ct);

  const receiver = new SFrameReceiver();
  receiver.setKey(v.kid, baseKey, suite);
  const ct = hexToBytes(v.ct);
  expectSFrameError('tampered frame', 'AUTH_FAILED', () => receiver.decrypt(flipLastBit(ct), metadata));
  const frame = receiver.decrypt(ct, metadata);
  expectHex('decrypted', frame.plaintext, v.pt);
  expectEqual('decrypted KID', frame.kid, v.kid);
  expectEqual('decrypted CTR', frame.ctr, v.ctr);
  expectSFrameError('replayed frame', 'REPLAY', () => receiver.decrypt(ct, metadata));
}
