// Byte helpers shared by the E2EE modules: base64url (the wire form of every byte field), comparisons.
import { timingSafeEqual } from 'node:crypto';
import { E2eeError } from './errors.js';

const BASE64URL = /^[A-Za-z0-9_-]*$/;

export function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url');
}

/** Strict base64url (no padding, canonical): rejects anything that would not re-encode identically. */
export function fromBase64Url(text: string, expectedLength?: number): Uint8Array {
  if (!BASE64URL.test(text) || text.length % 4 === 1) {
    throw new E2eeError('malformed', 'not base64url');
  }
  const bytes = new Uint8Array(Buffer.from(text, 'base64url'));
  if (toBase64Url(bytes) !== text) throw new E2eeError('malformed', 'non-canonical base64url');
  if (expectedLength !== undefined && bytes.length !== expectedLength) {
    throw new E2eeError('malformed', `expected ${expectedLength} bytes, got ${bytes.length}`);
  }
  return bytes;
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
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
