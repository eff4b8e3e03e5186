// The canonical byte encoding of every signed statement, hash input and KDF info string.
// encode(label, f1, …, fn) = field(label) || field(f1) || … || field(fn), where
//   field(x) = u32be(len(bytes(x))) || bytes(x), and
//   bytes(string) = UTF-8, bytes(integer) = u64be, bytes(Uint8Array) = the bytes themselves.
// The label fixes the number, order and type of fields, and the length prefixes make the encoding
// injective, so no two different statements share a byte string. See docs/protocol.md §2.
import { E2eeError } from './errors.js';

export type Field = Uint8Array | string | number | bigint;

const utf8 = new TextEncoder();

function fieldBytes(field: Field): Uint8Array {
  if (field instanceof Uint8Array) return field;
  if (typeof field === 'string') return utf8.encode(field);
  const value = BigInt(field);
  if (value < 0n || value > 0xffff_ffff_ffff_ffffn) {
    throw new E2eeError('malformed', `integer field out of range: ${value}`);
  }
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, value);
  return out;
}

export function encodeCanonical(label: string, ...fields: Field[]): Uint8Array {
  const parts = [label, ...fields].map(fieldBytes);
  const out = new Uint8Array(parts.reduce((n, p) => n + 4 + p.length, 0));
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const part of parts) {
    view.setUint32(offset, part.length);
    out.set(part, offset + 4);
    offset += 4 + part.length;
  }
  return out;
}
