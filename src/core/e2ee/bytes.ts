// Byte helpers shared by the E2EE modules: base64url (the wire form of every byte field), comparisons.
import { backend } from './crypto/backend.js';
import { E2eeError } from './errors.js';

const BASE64URL = /^[A-Za-z0-9_-]*$/;

export function toBase64Url(bytes: Uint8Array): string {
  return backend.toBase64Url(bytes);
}

/** Strict base64url (no padding, canonical): rejects anything that would not re-encode identically. */
export function fromBase64Url(text: string, expectedLength?: number): Uint8Array {
  if (!BASE64URL.test(text) || text.length % 4 === 1) {
    throw new E2eeError('malformed', 'not base64url');
  }
  const bytes = backend.decodeBase64Url(text);
  if (toBase64Url(bytes) !== text) throw new E2eeError('malformed', 'non-canonical base64url');
  if (expectedLength !== undefined && bytes.length !== expectedLength) {
    throw new E2eeError('malformed', `expected ${expectedLength} bytes, got ${bytes.length}`);
  }
  return bytes;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && backend.equalSameLength(a, b);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** A plain Uint8Array view/copy (noble rejects some Buffer subclasses in strict mode). */
export function plain(bytes: Uint8Array): Uint8Array {
  return bytes.constructor === Uint8Array ? bytes : new Uint8Array(bytes);
}

/** True iff `text` is canonical unpadded base64url (one byte string, one spelling). */
export function isCanonicalBase64Url(text: string): boolean {
  return BASE64URL.test(text) && text.length % 4 !== 1 && toBase64Url(backend.decodeBase64Url(text)) === text;
}

export function toHex(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) out += b.toString(16).padStart(2, '0');
  return out;
}

export function fromHex(text: string): Uint8Array {
  if (!/^(?:[0-9a-f]{2})*$/i.test(text)) throw new E2eeError('malformed', 'not hex');
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(text.slice(2 * i, 2 * i + 2), 16);
  return out;
}
