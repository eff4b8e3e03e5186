// Sender/receiver behaviour: round trips in every suite, interop with an independent implementation
// of RFC 9605 (built here from @noble primitives), tamper detection, replay window, key handling.

import { gcm } from '@noble/ciphers/aes.js';
import { expand, extract } from '@noble/hashes/hkdf.js';
import { sha256, sha512 } from '@noble/hashes/sha2.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SFrameError, type SFrameErrorCode } from './errors.js';
import { MAX_UINT64, decodeHeader } from './header.js';
import {
  type CipherSuiteId,
  DEFAULT_SUITE,
  SFrameReceiver,
  SFrameSender,
  SUPPORTED_SUITES,
  deriveKeyAndSalt,
} from './index.js';

const suites = fc.constantFrom(...SUPPORTED_SUITES);
const kids = fc.oneof(fc.bigInt({ min: 0n, max: 300n }), fc.bigInt({ min: 0n, max: MAX_UINT64 }));
const counters = fc.oneof(fc.bigInt({ min: 0n, max: 1000n }), fc.bigInt({ min: 0n, max: MAX_UINT64 - 1n }));
const baseKeys = fc.uint8Array({ minLength: 16, maxLength: 64 });
const payloads = fc.uint8Array({ maxLength: 300 });
const metadatas = fc.option(fc.uint8Array({ maxLength: 40 }), { nil: undefined });

function errorCode(fn: () => unknown): SFrameErrorCode | 'no error' | string {
  try {
    fn();
  } catch (err) {
    return err instanceof SFrameError ? err.code : `non-SFrameError ${String(err)}`;
  }
  return 'no error';
}

function pair(
  suite: CipherSuiteId,
  kid: bigint,
  baseKey: Uint8Array,
  initialCounter = 0n,
  replayWindow = 128,
) {
  const sender = new SFrameSender({ kid, baseKey, suite, initialCounter });
  const receiver = new SFrameReceiver({ replayWindow });
  receiver.setKey(kid, baseKey, suite);
  return { sender, receiver };
}

// ---- an independent RFC 9605 implementation for the GCM suites (noble, not node:crypto) ----

function referenceHeader(kid: bigint, ctr: bigint): number[] {
  const bytes = (v: bigint) => {
    const out: number[] = [];
    for (let x = v; x > 0n; x >>= 8n) out.unshift(Number(x & 0xffn));
    return out;
  };
  const k = kid < 8n ? [] : bytes(kid);
  const c = ctr < 8n ? [] : bytes(ctr);
  const cfg =
    (kid < 8n ? Number(kid) << 4 : 0x80 | ((k.length - 1) << 4)) |
    (ctr < 8n ? Number(ctr) : 0x08 | (c.length - 1));
  return [cfg, ...k, ...c];
}

function referenceSeal(
  suite: 0x0004 | 0x0005,
  baseKey: Uint8Array,
  kid: bigint,
  ctr: bigint,
  pt: Uint8Array,
  metadata: Uint8Array,
) {
  const hash = suite === 0x0005 ? sha512 : sha256;
  const nk = suite === 0x0005 ? 32 : 16;
  const label = (prefix: string) => {
    const info = new Uint8Array(prefix.length + 10);
    info.set(new TextEncoder().encode(prefix));
    new DataView(info.buffer).setBigUint64(prefix.length, kid);
    new DataView(info.buffer).setUint16(prefix.length + 8, suite);
    return info;
  };
  const secret = extract(hash, baseKey, new Uint8Array(0));
  const key = expand(hash, secret, label('SFrame 1.0 Secret key '), nk);
  const salt = expand(hash, secret, label('SFrame 1.0 Secret salt '), 12);
  const nonce = Uint8Array.from(salt);
  const ctrBytes = new Uint8Array(12);
  new DataView(ctrBytes.buffer).setBigUint64(4, ctr);
  for (let i = 0; i < 12; i++) nonce[i]! ^= ctrBytes[i]!;
  const header = Uint8Array.from(referenceHeader(kid, ctr));
  const aad = new Uint8Array([...header, ...metadata]);
  return { sframe: new Uint8Array([...header, ...gcm(key, nonce, aad).encrypt(pt)]), key, salt };
}

describe('SFrame sender and receiver', () => {
  it('round-trips random KID/CTR/payload/metadata in every suite', () => {
    fc.assert(
      fc.property(suites, kids, counters, baseKeys, payloads, metadatas, (suite, kid, ctr, key, pt, md) => {
        const { sender, receiver } = pair(suite, kid, key, ctr);
        const frame = sender.encrypt(pt, md);
        const out = receiver.decrypt(frame, md);
        expect(Buffer.from(out.plaintext).equals(Buffer.from(pt))).toBe(true);
        expect(out.kid).toBe(kid);
        expect(out.ctr).toBe(ctr);
        expect(decodeHeader(frame)).toMatchObject({ kid, ctr });
      }),
      { numRuns: 400 },
    );
  });

  it('produces exactly what an independent RFC 9605 implementation (noble) produces, and reads it', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(0x0004 as const, 0x0005 as const),
        kids,
        counters,
        baseKeys,
        payloads,
        fc.uint8Array({ maxLength: 40 }),
        (suite, kid, ctr, baseKey, pt, md) => {
          const reference = referenceSeal(suite, baseKey, kid, ctr, pt, md);
          const derived = deriveKeyAndSalt(suite, baseKey, kid);
          expect(Buffer.from(derived.key).equals(Buffer.from(reference.key))).toBe(true);
          expect(Buffer.from(derived.salt).equals(Buffer.from(reference.salt))).toBe(true);
          const { sender, receiver } = pair(suite, kid, baseKey, ctr);
          expect(Buffer.from(sender.encrypt(pt, md)).equals(Buffer.from(reference.sframe))).toBe(true);
          expect(Buffer.from(receiver.decrypt(reference.sframe, md).plaintext).equals(Buffer.from(pt))).toBe(
            true,
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it('uses AES_256_GCM_SHA512_128 by default', () => {
    expect(DEFAULT_SUITE).toBe(0x0005);
    const key = new Uint8Array(32).fill(7);
    const frame = new SFrameSender({ kid: 9n, baseKey: key }).encrypt(new Uint8Array(10));
    expect(frame.length).toBe(1 + 1 + 10 + 16);
    const receiver = new SFrameReceiver();
    receiver.setKey(9n, key, 0x0004);
    expect(errorCode(() => receiver.decrypt(frame))).toBe('AUTH_FAILED');
  });

  it('rejects any single tampered byte of header, ciphertext or tag, and keeps the original valid', () => {
    fc.assert(
      fc.property(
        suites,
        kids,
        counters,
        baseKeys,
        payloads,
        metadatas,
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (suite, kid, ctr, key, pt, md, where, flip) => {
          const { sender, receiver } = pair(suite, kid, key, ctr);
          const frame = sender.encrypt(pt, md);
          const forged = Uint8Array.from(frame);
          forged[where % forged.length]! ^= flip;
          const code = errorCode(() => receiver.decrypt(forged, md));
          // A header byte may turn into another KID (no key) or an impossible header; never success.
          expect(['AUTH_FAILED', 'UNKNOWN_KEY', 'MALFORMED_HEADER', 'TRUNCATED']).toContain(code);
          // The forgery moved nothing: the genuine frame still decrypts.
          expect(receiver.decrypt(frame, md).ctr).toBe(ctr);
        },
      ),
      { numRuns: 600 },
    );
  });

  it('rejects a tampered, added or dropped metadata byte', () => {
    fc.assert(
      fc.property(
        suites,
        baseKeys,
        payloads,
        fc.uint8Array({ minLength: 1, maxLength: 40 }),
        fc.nat(),
        (suite, key, pt, md, where) => {
          const { sender, receiver } = pair(suite, 1n, key);
          const frame = sender.encrypt(pt, md);
          const tampered = Uint8Array.from(md);
          tampered[where % md.length]! ^= 0x01;
          expect(errorCode(() => receiver.decrypt(frame, tampered))).toBe('AUTH_FAILED');
          expect(errorCode(() => receiver.decrypt(frame, md.subarray(1)))).toBe('AUTH_FAILED');
          expect(errorCode(() => receiver.decrypt(frame, new Uint8Array([...md, 0])))).toBe('AUTH_FAILED');
          expect(errorCode(() => receiver.decrypt(frame))).toBe('AUTH_FAILED');
          expect(receiver.decrypt(frame, md).ctr).toBe(0n);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('accepts frames reordered within the window exactly once, then refuses replays', () => {
    const windowSize = 32;
    fc.assert(
      fc.property(
        suites,
        fc.integer({ min: 1, max: 3 * windowSize }),
        fc.nat(),
        fc.bigInt({ min: 0n, max: MAX_UINT64 - 200n }),
        (suite, count, seed, start) => {
          const { sender, receiver } = pair(suite, 4n, new Uint8Array(16).fill(1), start, windowSize);
          const frames = Array.from({ length: count }, (_, i) => sender.encrypt(Uint8Array.of(i)));
          // Shuffle by swapping only inside blocks shorter than the window: everything stays in reach.
          const order = frames.map((_, i) => i);
          const rand = fc.sample(fc.nat(), { seed, numRuns: count });
          for (let i = 0; i < count; i++) {
            const block = Math.floor(i / (windowSize / 2)) * (windowSize / 2);
            const j = block + (rand[i]! % Math.min(windowSize / 2, count - block));
            [order[i], order[j]] = [order[j]!, order[i]!];
          }
          for (const i of order) expect(receiver.decrypt(frames[i]!).plaintext[0]).toBe(i);
          for (const i of order.slice(-windowSize)) {
            expect(['REPLAY', 'TOO_OLD']).toContain(errorCode(() => receiver.decrypt(frames[i]!)));
          }
        },
      ),
      { numRuns: 150 },
    );
  });

  it('refuses a replay inside the window with REPLAY and a frame behind it with TOO_OLD', () => {
    const { sender, receiver } = pair(DEFAULT_SUITE, 2n, new Uint8Array(32), 0n, 16);
    const frames = Array.from({ length: 40 }, () => sender.encrypt(new Uint8Array(3)));
    receiver.decrypt(frames[20]!);
    expect(errorCode(() => receiver.decrypt(frames[20]!))).toBe('REPLAY');
    expect(receiver.decrypt(frames[5]!).ctr).toBe(5n); // 15 behind: inside a 16-frame window
    expect(errorCode(() => receiver.decrypt(frames[4]!))).toBe('TOO_OLD'); // 16 behind
    expect(errorCode(() => receiver.decrypt(frames[5]!))).toBe('REPLAY');
    receiver.decrypt(frames[39]!); // jump ahead: 20 and 5 fall out of the window
    expect(errorCode(() => receiver.decrypt(frames[20]!))).toBe('TOO_OLD');
    expect(receiver.decrypt(frames[30]!).ctr).toBe(30n); // skipped counters inside the window still count
    expect(errorCode(() => receiver.decrypt(frames[30]!))).toBe('REPLAY');
  });

  it('a window of 0 accepts only increasing counters', () => {
    const { sender, receiver } = pair(DEFAULT_SUITE, 2n, new Uint8Array(32), 0n, 0);
    const [a, b, c] = [
      sender.encrypt(new Uint8Array(1)),
      sender.encrypt(new Uint8Array(1)),
      sender.encrypt(new Uint8Array(1)),
    ];
    receiver.decrypt(b);
    expect(errorCode(() => receiver.decrypt(a))).toBe('TOO_OLD');
    expect(errorCode(() => receiver.decrypt(b))).toBe('TOO_OLD');
    expect(receiver.decrypt(c).ctr).toBe(2n);
  });

  it('does not let a forged frame with a far-ahead counter push genuine frames out of the window', () => {
    const key = new Uint8Array(32).fill(3);
    const { sender, receiver } = pair(DEFAULT_SUITE, 6n, key, 0n, 8);
    const genuine = sender.encrypt(new Uint8Array(5));
    // Same KID, huge counter, wrong key: looks plausible, fails authentication.
    const forged = new SFrameSender({
      kid: 6n,
      baseKey: new Uint8Array(32).fill(4),
      initialCounter: 1_000_000n,
    }).encrypt(new Uint8Array(5));
    expect(errorCode(() => receiver.decrypt(forged))).toBe('AUTH_FAILED');
    expect(receiver.decrypt(genuine).ctr).toBe(0n);
  });

  it('rejects frames for unknown and removed KIDs with UNKNOWN_KEY, and picks keys by KID', () => {
    fc.assert(
      fc.property(kids, kids, baseKeys, baseKeys, (kidA, kidB, keyA, keyB) => {
        fc.pre(kidA !== kidB);
        const receiver = new SFrameReceiver();
        const a = new SFrameSender({ kid: kidA, baseKey: keyA });
        const b = new SFrameSender({ kid: kidB, baseKey: keyB });
        receiver.setKey(kidA, keyA);
        expect(errorCode(() => receiver.decrypt(b.encrypt(new Uint8Array(4))))).toBe('UNKNOWN_KEY');
        receiver.setKey(kidB, keyB);
        expect(receiver.decrypt(b.encrypt(new Uint8Array(4))).kid).toBe(kidB);
        expect(receiver.decrypt(a.encrypt(new Uint8Array(4))).kid).toBe(kidA);
        receiver.removeKey(kidA);
        expect(receiver.hasKey(kidA)).toBe(false);
        expect(receiver.hasKey(kidB)).toBe(true);
        expect(errorCode(() => receiver.decrypt(a.encrypt(new Uint8Array(4))))).toBe('UNKNOWN_KEY');
      }),
      { numRuns: 100 },
    );
  });

  it('rejects a frame made with the wrong base key for its KID', () => {
    const receiver = new SFrameReceiver();
    receiver.setKey(1n, new Uint8Array(32).fill(1));
    const frame = new SFrameSender({ kid: 1n, baseKey: new Uint8Array(32).fill(2) }).encrypt(
      new Uint8Array(8),
    );
    expect(errorCode(() => receiver.decrypt(frame))).toBe('AUTH_FAILED');
  });

  it('keeps the replay window when the same key is set again, and resets it for a new key', () => {
    const key = new Uint8Array(32).fill(1);
    const { sender, receiver } = pair(DEFAULT_SUITE, 1n, key);
    const frame = sender.encrypt(new Uint8Array(2));
    receiver.decrypt(frame);
    receiver.setKey(1n, Uint8Array.from(key));
    expect(errorCode(() => receiver.decrypt(frame))).toBe('REPLAY');
    const newKey = new Uint8Array(32).fill(2);
    receiver.setKey(1n, newKey);
    const fresh = new SFrameSender({ kid: 1n, baseKey: newKey }).encrypt(new Uint8Array(2));
    expect(errorCode(() => receiver.decrypt(frame))).toBe('AUTH_FAILED'); // old key is gone
    expect(receiver.decrypt(fresh).ctr).toBe(0n); // counter 0 again, under the new key
  });

  it('never reuses a counter: the sender stops at 2^64-1 with COUNTER_EXHAUSTED', () => {
    const sender = new SFrameSender({
      kid: 1n,
      baseKey: new Uint8Array(16),
      initialCounter: MAX_UINT64 - 1n,
    });
    expect(decodeHeader(sender.encrypt(new Uint8Array(1))).ctr).toBe(MAX_UINT64 - 1n);
    expect(decodeHeader(sender.encrypt(new Uint8Array(1))).ctr).toBe(MAX_UINT64);
    expect(errorCode(() => sender.encrypt(new Uint8Array(1)))).toBe('COUNTER_EXHAUSTED');
    expect(errorCode(() => sender.encrypt(new Uint8Array(1)))).toBe('COUNTER_EXHAUSTED');
    expect(
      errorCode(
        () => new SFrameSender({ kid: 1n, baseKey: new Uint8Array(16), initialCounter: MAX_UINT64 + 1n }),
      ),
    ).toBe('COUNTER_EXHAUSTED');
  });

  it('gives every frame of a sender a distinct counter, in order', () => {
    const sender = new SFrameSender({ kid: 77n, baseKey: new Uint8Array(16), initialCounter: 5n });
    const ctrs = Array.from({ length: 50 }, () => decodeHeader(sender.encrypt(new Uint8Array(1))).ctr);
    expect(ctrs).toEqual(Array.from({ length: 50 }, (_, i) => BigInt(i + 5)));
  });

  it('refuses short base keys, bad KIDs and unknown suites with typed errors', () => {
    expect(errorCode(() => new SFrameSender({ kid: 1n, baseKey: new Uint8Array(15) }))).toBe('INVALID_KEY');
    expect(errorCode(() => new SFrameSender({ kid: -1n, baseKey: new Uint8Array(16) }))).toBe('INVALID_KEY');
    expect(errorCode(() => new SFrameSender({ kid: MAX_UINT64 + 1n, baseKey: new Uint8Array(16) }))).toBe(
      'INVALID_KEY',
    );
    expect(
      errorCode(() => new SFrameSender({ kid: 1n, baseKey: new Uint8Array(16), suite: 6 as CipherSuiteId })),
    ).toBe('UNSUPPORTED_SUITE');
    expect(errorCode(() => new SFrameReceiver().setKey(1n, new Uint8Array(8)))).toBe('INVALID_KEY');
    expect(errorCode(() => new SFrameReceiver().setKey(1n, new Uint8Array(16), 0 as CipherSuiteId))).toBe(
      'UNSUPPORTED_SUITE',
    );
    expect(() => new SFrameReceiver({ replayWindow: -1 })).toThrow(RangeError);
  });

  it('refuses frames above maxFrameBytes with TOO_LARGE before any other check', () => {
    const { sender } = pair(DEFAULT_SUITE, 1n, new Uint8Array(16));
    const receiver = new SFrameReceiver({ maxFrameBytes: 100 });
    receiver.setKey(1n, new Uint8Array(16));
    expect(receiver.decrypt(sender.encrypt(new Uint8Array(100 - 17))).ctr).toBe(0n);
    expect(errorCode(() => receiver.decrypt(sender.encrypt(new Uint8Array(100 - 16))))).toBe('TOO_LARGE');
    expect(errorCode(() => receiver.decrypt(new Uint8Array(101)))).toBe('TOO_LARGE');
  });

  it('reports a frame shorter than header + tag as TRUNCATED', () => {
    fc.assert(
      fc.property(suites, payloads, fc.nat(), (suite, pt, cut) => {
        const { sender, receiver } = pair(suite, 300n, new Uint8Array(16));
        const frame = sender.encrypt(pt);
        const headerLength = decodeHeader(frame).headerLength;
        const short = frame.subarray(0, headerLength + (cut % (frame.length - pt.length - headerLength)));
        expect(errorCode(() => receiver.decrypt(short))).toBe('TRUNCATED');
      }),
      { numRuns: 200 },
    );
  });

  it("keeps working after a consumer transfers (detaches) a frame's underlying buffer", () => {
    const { sender, receiver } = pair(DEFAULT_SUITE, 1n, new Uint8Array(16));
    const first = sender.encrypt(new Uint8Array(100).fill(1));
    structuredClone(first.buffer, { transfer: [first.buffer] });
    expect(first.byteLength).toBe(0);
    const next = sender.encrypt(new Uint8Array(100).fill(2));
    expect(receiver.decrypt(next).plaintext[0]).toBe(2);
  });

  it('returns output buffers that do not alias each other', () => {
    const { sender } = pair(DEFAULT_SUITE, 1n, new Uint8Array(16));
    const a = sender.encrypt(new Uint8Array(100).fill(1));
    const copy = Uint8Array.from(a);
    for (let i = 0; i < 2000; i++) sender.encrypt(new Uint8Array(100).fill(2));
    expect(Buffer.from(a).equals(Buffer.from(copy))).toBe(true);
  });
});
