// The browser participant's WebCrypto SFrame, checked in Node (same crypto.subtle API as Chromium):
// every official RFC 9605 header vector and GCM SFrame vector, then interop both ways with Sealroom's
// own implementation (src/core/sframe) using the media worker's KIDs and per-sender keys.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { deriveSenderBaseKey, makeKid } from '../../src/core/e2ee/sender-keys.js';
import { SFrameReceiver, SFrameSender } from '../../src/core/sframe/index.js';
import {
  WebSFrameError,
  WebSFrameReceiver,
  WebSFrameSender,
  decodeSFrameHeader,
  deriveSFrameKey,
  encodeSFrameHeader,
  sframeNonce,
} from '../../src/web/media/sframe-webcrypto.js';

interface HeaderVector {
  kid: string;
  ctr: string;
  encoded: string;
}
interface SFrameVector {
  cipher_suite: number;
  kid: string;
  ctr: string;
  base_key: string;
  sframe_key: string;
  sframe_salt: string;
  metadata: string;
  nonce: string;
  pt: string;
  ct: string;
}

// KID/CTR exceed 2^53: keep their digits as strings before JSON.parse, then read them as BigInt.
const vectorText = readFileSync(
  fileURLToPath(new URL('../../src/core/sframe/testdata/rfc9605-test-vectors.json', import.meta.url)),
  'utf8',
).replace(/"(kid|ctr)":\s*(\d+)/g, '"$1":"$2"');
const vectors = JSON.parse(vectorText) as { header: HeaderVector[]; sframe: SFrameVector[] };
const gcmVectors = vectors.sframe.filter((v) => v.cipher_suite === 4 || v.cipher_suite === 5);

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));

describe('WebCrypto SFrame against the official RFC 9605 vectors', () => {
  it('encodes and decodes all header vectors', () => {
    expect(vectors.header.length).toBe(289);
    for (const v of vectors.header) {
      const kid = BigInt(v.kid);
      const ctr = BigInt(v.ctr);
      expect(hex(encodeSFrameHeader(kid, ctr))).toBe(v.encoded);
      const parsed = decodeSFrameHeader(unhex(`${v.encoded}ff`));
      expect(parsed).toEqual({ kid, ctr, length: v.encoded.length / 2 });
    }
  });

  it.each(gcmVectors.map((v) => [v.cipher_suite, v] as const))(
    'suite %i: key, salt, nonce, seal and open',
    async (suite, v) => {
      const kid = BigInt(v.kid);
      const ctr = BigInt(v.ctr);
      const material = await deriveSFrameKey(unhex(v.base_key), kid, suite as 4 | 5);
      expect(hex(material.rawKey)).toBe(v.sframe_key);
      expect(hex(material.salt)).toBe(v.sframe_salt);
      expect(hex(sframeNonce(material.salt, ctr))).toBe(v.nonce);
      const sender = new WebSFrameSender({
        kid,
        baseKey: unhex(v.base_key),
        suite: suite as 4 | 5,
        initialCounter: ctr,
      });
      expect(hex(await sender.seal(unhex(v.pt), unhex(v.metadata)))).toBe(v.ct);
      const receiver = new WebSFrameReceiver({ suite: suite as 4 | 5 });
      receiver.setKey(kid, unhex(v.base_key));
      const opened = await receiver.open(unhex(v.ct), unhex(v.metadata));
      expect(hex(opened.plaintext)).toBe(v.pt);
    },
  );

  it('has both GCM vectors', () => {
    expect(gcmVectors.map((v) => v.cipher_suite).sort()).toEqual([4, 5]);
  });
});

describe('WebCrypto SFrame refusals', () => {
  const kid = makeKid(1, 2);
  const key = new Uint8Array(32).fill(7);

  it('any flipped bit fails authentication, unknown KIDs and replays are refused', async () => {
    const sender = new WebSFrameSender({ kid, baseKey: key });
    const receiver = new WebSFrameReceiver({ replayWindow: 4 });
    receiver.setKey(kid, key);
    const frames = await Promise.all(
      [1, 2, 3, 4, 5, 6].map((n) => sender.seal(new Uint8Array(n * 10).fill(n))),
    );
    const sealed = frames[0] as Uint8Array;
    for (let i = 0; i < sealed.length; i++) {
      const bad = Uint8Array.from(sealed);
      bad[i] = (bad[i] as number) ^ 0x01;
      const err = await receiver.open(bad).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(WebSFrameError);
    }
    await expect(receiver.open(frames[5] as Uint8Array)).resolves.toMatchObject({ ctr: 5n });
    await expect(receiver.open(frames[3] as Uint8Array)).resolves.toMatchObject({ ctr: 3n }); // late, in window
    await expect(receiver.open(frames[3] as Uint8Array)).rejects.toMatchObject({ code: 'REPLAY' });
    await expect(receiver.open(frames[0] as Uint8Array)).rejects.toMatchObject({ code: 'REPLAY' }); // too old
    const other = new WebSFrameReceiver();
    await expect(other.open(sealed)).rejects.toMatchObject({ code: 'UNKNOWN_KEY' });
    other.setKey(kid, new Uint8Array(32).fill(8));
    await expect(other.open(sealed)).rejects.toMatchObject({ code: 'AUTH_FAILED' });
    await expect(other.open(sealed.subarray(0, 10))).rejects.toMatchObject({ code: 'TRUNCATED' });
    await expect(other.open(Uint8Array.of(0x08, 0x01))).rejects.toMatchObject({ code: 'MALFORMED_HEADER' });
  });

  it('concurrent seals never share a counter', async () => {
    const sender = new WebSFrameSender({ kid, baseKey: key });
    const sealed = await Promise.all(Array.from({ length: 40 }, () => sender.seal(new Uint8Array(8))));
    const ctrs = sealed.map((s) => decodeSFrameHeader(s).ctr);
    expect(new Set(ctrs).size).toBe(40);
  });
});

describe('interop with Sealroom’s node:crypto SFrame (media worker keys and KIDs)', () => {
  const meetingKey = new Uint8Array(32).fill(0x42);

  it('browser-sealed frames open in src/core/sframe and the reverse, metadata included', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 2 ** 20 }),
        fc.integer({ min: 0, max: 0xffff }),
        fc.uint8Array({ minLength: 0, maxLength: 3000 }),
        fc.uint8Array({ maxLength: 12 }),
        fc.bigInt({ min: 0n, max: (1n << 40n) - 1n }),
        async (epoch, senderIndex, frame, metadata, initialCounter) => {
          const kid = makeKid(epoch, senderIndex);
          const baseKey = deriveSenderBaseKey(meetingKey, epoch, senderIndex, {
            meetingId: 'm-webcrypto',
            creationNonce: new Uint8Array(32).fill(6),
          });
          const web = new WebSFrameSender({ kid, baseKey, initialCounter });
          const node = new SFrameReceiver();
          node.setKey(kid, baseKey);
          const fromWeb = await web.seal(frame, metadata);
          expect(hex(node.decrypt(fromWeb, metadata).plaintext)).toBe(hex(frame));

          const nodeSender = new SFrameSender({ kid, baseKey, initialCounter });
          const webReceiver = new WebSFrameReceiver();
          webReceiver.setKey(kid, baseKey);
          const fromNode = nodeSender.encrypt(frame, metadata);
          // Same key, KID and CTR: both implementations must produce the very same bytes.
          expect(hex(fromNode)).toBe(hex(fromWeb));
          expect(hex((await webReceiver.open(fromNode, metadata)).plaintext)).toBe(hex(frame));
        },
      ),
      { numRuns: 60 },
    );
  });
});
