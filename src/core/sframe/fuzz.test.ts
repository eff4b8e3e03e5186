// Whatever bytes arrive from the network, decodeHeader and decrypt answer with an SFrameError or
// (for decrypt) authenticated plaintext — never another exception, never a crash.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SFrameError } from './errors.js';
import { MAX_UINT64, decodeHeader, encodeHeader } from './header.js';
import { SFrameReceiver, SFrameSender, SUPPORTED_SUITES } from './index.js';

function onlySFrameErrors(fn: () => unknown): 'ok' | string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof SFrameError) return err.code;
    throw new Error(`escaped a non-SFrameError: ${String(err)}`);
  }
}

/** Receivers holding keys for small KIDs in every suite, so random headers often reach the AEAD. */
function keyedReceiver(): SFrameReceiver {
  const receiver = new SFrameReceiver({ maxFrameBytes: 4096 });
  for (let kid = 0n; kid < 8n; kid++) {
    receiver.setKey(kid, new Uint8Array(16).fill(Number(kid)), SUPPORTED_SUITES[Number(kid) % 5]!);
  }
  receiver.setKey(MAX_UINT64, new Uint8Array(16));
  return receiver;
}

/** Random bytes, plus inputs that start with a real header so the later stages get exercised. */
const hostileInput = fc.oneof(
  fc.uint8Array({ maxLength: 80 }),
  fc
    .tuple(
      fc.oneof(fc.bigInt({ min: 0n, max: 8n }), fc.constant(MAX_UINT64)),
      fc.bigInt({ min: 0n, max: MAX_UINT64 }),
      fc.uint8Array({ maxLength: 60 }),
    )
    .map(([kid, ctr, rest]) => new Uint8Array([...encodeHeader(kid, ctr), ...rest])),
);

describe('SFrame fuzzing', () => {
  it('decodeHeader on random bytes: a header or an SFrameError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 }), (bytes) => {
        const result = onlySFrameErrors(() => decodeHeader(bytes));
        expect(['ok', 'TRUNCATED', 'MALFORMED_HEADER']).toContain(result);
      }),
      { numRuns: 5000 },
    );
  });

  it('decrypt on hostile input: only SFrameErrors, never plaintext', () => {
    const receiver = keyedReceiver();
    fc.assert(
      fc.property(
        hostileInput,
        fc.option(fc.uint8Array({ maxLength: 16 }), { nil: undefined }),
        (bytes, md) => {
          // A random 4-byte tag (suite 3) could match by chance once in 2^32; nothing else can pass.
          expect(onlySFrameErrors(() => receiver.decrypt(bytes, md))).not.toBe('ok');
        },
      ),
      { numRuns: 5000 },
    );
  });

  it('decrypt on mutated genuine frames: only SFrameErrors or the genuine plaintext', () => {
    const receiver = keyedReceiver();
    const senders = [0n, 3n, 4n, MAX_UINT64].map(
      (kid) =>
        new SFrameSender({
          kid,
          baseKey: new Uint8Array(16).fill(kid === MAX_UINT64 ? 0 : Number(kid)),
          suite: kid === MAX_UINT64 ? 0x0005 : SUPPORTED_SUITES[Number(kid) % 5]!,
        }),
    );
    fc.assert(
      fc.property(
        fc.nat(3),
        fc.uint8Array({ maxLength: 64 }),
        fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }),
        fc.nat(100),
        (which, pt, edits, cut) => {
          const frame = Uint8Array.from(senders[which]!.encrypt(pt));
          for (const [pos, value] of edits) frame[pos % frame.length] = value;
          const input = cut < 10 ? frame.subarray(0, frame.length - cut) : frame;
          try {
            const out = receiver.decrypt(input);
            // Edits can be no-ops (same byte written back): then it must be the genuine frame.
            expect(Buffer.from(out.plaintext).equals(Buffer.from(pt))).toBe(true);
          } catch (err) {
            if (!(err instanceof SFrameError)) throw new Error(`escaped a non-SFrameError: ${String(err)}`);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('decrypt on values that are not bytes: SFrameError', () => {
    const receiver = keyedReceiver();
    for (const junk of [null, undefined, 'frame', 42, {}, [0, 1, 2], new ArrayBuffer(8)]) {
      expect(onlySFrameErrors(() => receiver.decrypt(junk as unknown as Uint8Array))).toBe(
        'MALFORMED_HEADER',
      );
    }
    const frame = new SFrameSender({ kid: 0n, baseKey: new Uint8Array(16), suite: 0x0001 }).encrypt(
      new Uint8Array(4),
    );
    expect(onlySFrameErrors(() => receiver.decrypt(frame, 'md' as unknown as Uint8Array))).toBe(
      'MALFORMED_HEADER',
    );
  });
});
