// A minimal DER reader for the two things a library parse cannot give us exactly: the raw bytes a
// signature covers (the TBSCertificate as sent) and OIDs too large for a JS number (the person EKU,
// which @peculiar/asn1-schema prints as "2.25.{hex}"). Pure: runs in the browser.

export interface Tlv {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the first content byte. */
  contentStart: number;
  /** Offset just past the content. */
  end: number;
}

/** Reads one definite-length TLV at `offset` (single-byte tags only); undefined when malformed. */
export function readTlv(der: Uint8Array, offset: number): Tlv | undefined {
  if (offset + 2 > der.length) return undefined;
  const tag = der[offset] as number;
  if ((tag & 0x1f) === 0x1f) return undefined;
  let len = der[offset + 1] as number;
  let p = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    // DER: no indefinite length, at most 4 length bytes, minimal encoding.
    if (n === 0 || n > 4 || p + n > der.length) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (der[p + i] as number);
    if (len < 0x80 || (der[p] as number) === 0) return undefined;
    p += n;
  }
  if (p + len > der.length) return undefined;
  return { tag, start: offset, contentStart: p, end: p + len };
}

/** The children of a constructed TLV's content; undefined when they do not tile it exactly. */
export function children(der: Uint8Array, parent: Tlv): Tlv[] | undefined {
  const out: Tlv[] = [];
  let p = parent.contentStart;
  while (p < parent.end) {
    const t = readTlv(der, p);
    if (!t || t.end > parent.end) return undefined;
    out.push(t);
    p = t.end;
  }
  return out;
}

/** The content bytes of an OBJECT IDENTIFIER in dotted form (arcs of any size, via BigInt). */
export function oidContent(dotted: string): Uint8Array {
  const arcs = dotted.split('.').map((a) => BigInt(a));
  if (arcs.length < 2) throw new Error('an OID has at least two arcs');
  const first = (arcs[0] as bigint) * 40n + (arcs[1] as bigint);
  const out: number[] = [];
  for (const arc of [first, ...arcs.slice(2)]) {
    const chunk: number[] = [Number(arc & 0x7fn)];
    let rest = arc >> 7n;
    while (rest > 0n) {
      chunk.unshift(Number(rest & 0x7fn) | 0x80);
      rest >>= 7n;
    }
    out.push(...chunk);
  }
  return Uint8Array.from(out);
}

/** The OIDs (as content bytes) of an ExtendedKeyUsage extnValue; undefined when malformed. */
export function ekuOids(extnValue: Uint8Array): Uint8Array[] | undefined {
  const seq = readTlv(extnValue, 0);
  if (seq?.tag !== 0x30 || seq.end !== extnValue.length) return undefined;
  const items = children(extnValue, seq);
  if (!items || items.some((t) => t.tag !== 0x06)) return undefined;
  return items.map((t) => extnValue.subarray(t.contentStart, t.end));
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}
