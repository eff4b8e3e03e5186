import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SFrameError } from './errors.js';
import { MAX_UINT64, decodeHeader, encodeHeader } from './header.js';
import { checkHeaderVector, parseVectorFile } from './vectors.js';

const VECTORS = parseVectorFile(
  readFileSync(new URL('./testdata/rfc9605-test-vectors.json', import.meta.url), 'utf8'),
);

const uint64 = fc.bigInt({ min: 0n, max: MAX_UINT64 });
/** Values concentrated on the encoding's length boundaries, where the bugs live. */
const boundaryUint64 = fc
  .oneof(
    uint64,
    fc.integer({ min: 0, max: 64 }).map((bits) => (1n << BigInt(bits)) - 1n),
    fc.integer({ min: 0, max: 63 }).map((bits) => 1n << BigInt(bits)),
    fc.integer({ min: 0, max: 16 }),
  )
  .map((v) => BigInt(v));

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return err instanceof SFrameError ? err.code : `non-SFrameError: ${String(err)}`;
  }
  return 'no error';
}

describe('SFrame header (RFC 9605 §4.3)', () => {
  it('matches all 289 official header vectors, both ways', () => {
    expect(VECTORS.header).toHaveLength(289);
    for (const entry of VECTORS.header) {
      if (!entry.ok) throw new Error(entry.error);
      checkHeaderVector(entry.vector);
    }
  });

  it('reads KID/CTR beyond 2^53 exactly from the vector file', () => {
    const last = VECTORS.header.at(-1)!;
    expect(last.ok && last.vector).toEqual({
      kid: 18446744073709551615n,
      ctr: 18446744073709551615n,
      encoded: 'ffffffffffffffffffffffffffffffffff',
    });
  });

  it('round-trips every KID and CTR, with trailing payload ignored', () => {
    fc.assert(
      fc.property(boundaryUint64, boundaryUint64, fc.uint8Array({ maxLength: 20 }), (kid, ctr, tail) => {
        const header = encodeHeader(kid, ctr);
        const framed = new Uint8Array([...header, ...tail]);
        expect(decodeHeader(framed)).toEqual({ kid, ctr, headerLength: header.length });
      }),
      { numRuns: 2000 },
    );
  });

  it('uses the fewest bytes: values below 8 inline, else minimal big-endian', () => {
    fc.assert(
      fc.property(boundaryUint64, boundaryUint64, (kid, ctr) => {
        const bytesFor = (v: bigint) => (v < 8n ? 0 : Math.ceil(v.toString(16).length / 2));
        expect(encodeHeader(kid, ctr).length).toBe(1 + bytesFor(kid) + bytesFor(ctr));
      }),
      { numRuns: 1000 },
    );
  });

  it('reports an input that ends inside the header as TRUNCATED', () => {
    fc.assert(
      fc.property(boundaryUint64, boundaryUint64, (kid, ctr) => {
        const header = encodeHeader(kid, ctr);
        for (let cut = 0; cut < header.length; cut++) {
          expect(codeOf(() => decodeHeader(header.subarray(0, cut)))).toBe('TRUNCATED');
        }
      }),
      { numRuns: 300 },
    );
  });

  it('rejects non-minimal encodings as MALFORMED_HEADER', () => {
    // KID 5 written as one extra byte instead of inline; CTR 0x0100 padded to three bytes.
    expect(codeOf(() => decodeHeader(Uint8Array.of(0x80, 0x05, 0x00)))).toBe('MALFORMED_HEADER');
    expect(codeOf(() => decodeHeader(Uint8Array.of(0x0a, 0x00, 0x01, 0x00)))).toBe('MALFORMED_HEADER');
    expect(codeOf(() => decodeHeader(Uint8Array.of(0x08, 0x07)))).toBe('MALFORMED_HEADER');
    // The smallest legal extended values decode.
    expect(decodeHeader(Uint8Array.of(0x88, 0x08, 0x08))).toEqual({ kid: 8n, ctr: 8n, headerLength: 3 });
  });

  it('refuses to encode values outside [0, 2^64-1]', () => {
    expect(() => encodeHeader(-1n, 0n)).toThrow(RangeError);
    expect(() => encodeHeader(0n, MAX_UINT64 + 1n)).toThrow(RangeError);
    expect(() => encodeHeader(1 as unknown as bigint, 0n)).toThrow(RangeError);
  });

  it('rejects empty and non-byte input with typed errors', () => {
    expect(codeOf(() => decodeHeader(new Uint8Array(0)))).toBe('TRUNCATED');
    expect(codeOf(() => decodeHeader('00' as unknown as Uint8Array))).toBe('MALFORMED_HEADER');
  });
});
