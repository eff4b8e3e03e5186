import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  FRAME_TAG_BYTES,
  FrameAuthError,
  FrameAuthSender,
  FrameAuthVerifier,
  parseTrailer,
  trailerLength,
} from './index.js';

// Three members 1, 2, 3; key(S→R) is known to S and R only.
const key = new Map<string, Uint8Array>();
const k = (s: number, r: number) => {
  const id = `${s}>${r}`;
  if (!key.has(id)) key.set(id, new Uint8Array(randomBytes(32)));
  return key.get(id) as Uint8Array;
};
const senderFor = (s: number, peers: number[]) =>
  new FrameAuthSender(peers.map((r) => ({ peerIndex: r, key: k(s, r) })));
const verifierFor = (r: number, peers: number[]) =>
  new FrameAuthVerifier(
    r,
    peers.map((s) => ({ peerIndex: s, key: k(s, r) })),
  );

function code(fn: () => unknown): string {
  try {
    fn();
    return 'ok';
  } catch (err) {
    return err instanceof FrameAuthError ? err.code : `other: ${(err as Error).message}`;
  }
}

describe('MAC-vector trailer', () => {
  const frame = new Uint8Array(randomBytes(1200));

  it('has the documented layout: tags, ascending receivers, N, version', () => {
    const t = senderFor(1, [3, 2]).trailer([frame]);
    expect(t.length).toBe(trailerLength(2));
    expect(t.length).toBe(2 * FRAME_TAG_BYTES + 2 * 2 + 2);
    expect([...t.subarray(16)]).toEqual([0, 2, 0, 3, 2, 1]);
    const p = parseTrailer(t);
    expect(p.receivers).toEqual([2, 3]);
    expect(p.start).toBe(0);
  });

  it('each receiver verifies its own tag from the sender', () => {
    const t = senderFor(1, [2, 3]).trailer([frame]);
    expect(code(() => verifierFor(2, [1, 3]).verify(1, [frame], t))).toBe('ok');
    expect(code(() => verifierFor(3, [1, 2]).verify(1, [frame], t))).toBe('ok');
  });

  it('a member cannot pass its frames off as another member’s', () => {
    // Member 3 tags with its own keys but claims to be sender 1 (e.g. under 1's KID): receiver 2
    // checks with key(1→2), which 3 does not hold.
    const forged = senderFor(3, [1, 2]).trailer([frame]);
    expect(code(() => verifierFor(2, [1, 3]).verify(1, [frame], forged))).toBe('BAD_TAG');
    // Copying 1's genuine tag onto another frame fails too.
    const genuine = senderFor(1, [2, 3]).trailer([frame]);
    const other = Uint8Array.from(frame);
    other[0] = (other[0] as number) ^ 1;
    expect(code(() => verifierFor(2, [1, 3]).verify(1, [other], genuine))).toBe('BAD_TAG');
  });

  it('refuses a missing tag, a tag for another receiver, an unknown sender, a truncated trailer', () => {
    const t = senderFor(1, [3]).trailer([frame]);
    expect(code(() => verifierFor(2, [1, 3]).verify(1, [frame], t))).toBe('NO_TAG');
    // Receiver 3's tag relabelled as receiver 2's: wrong key, and the MAC covers the receiver list.
    const relabelled = Uint8Array.from(t);
    relabelled[relabelled.length - 3] = 2;
    expect(code(() => verifierFor(2, [1, 3]).verify(1, [frame], relabelled))).toBe('BAD_TAG');
    expect(code(() => verifierFor(3, [2]).verify(1, [frame], t))).toBe('NO_KEY');
    for (let cut = 1; cut < t.length; cut++) {
      expect(code(() => verifierFor(3, [1]).verify(1, [frame], t.subarray(cut)))).toBe('MALFORMED_TRAILER');
    }
    expect(code(() => verifierFor(3, [1]).verify(1, [frame], new Uint8Array(0)))).toBe('MALFORMED_TRAILER');
  });

  it('binds the unit boundaries (H.264 units cannot be re-cut)', () => {
    const a = frame.subarray(0, 600);
    const b = frame.subarray(600);
    const t = senderFor(1, [2]).trailer([a, b]);
    expect(code(() => verifierFor(2, [1]).verify(1, [a, b], t))).toBe('ok');
    expect(code(() => verifierFor(2, [1]).verify(1, [frame], t))).toBe('BAD_TAG');
    expect(code(() => verifierFor(2, [1]).verify(1, [frame.subarray(0, 601), frame.subarray(601)], t))).toBe(
      'BAD_TAG',
    );
  });

  it('a sender alone sends an empty vector; limits are enforced', () => {
    const t = senderFor(1, []).trailer([frame]);
    expect([...t]).toEqual([0, 1]);
    expect(code(() => verifierFor(2, [1]).verify(1, [frame], t))).toBe('NO_TAG');
    const many = Array.from({ length: 256 }, (_, i) => ({ peerIndex: i, key: new Uint8Array(32) }));
    expect(() => new FrameAuthSender(many)).toThrow(RangeError);
  });

  it('fuzz: random and mutated trailers never verify and never throw anything else', () => {
    const sender = senderFor(1, [2, 3, 4]);
    const v = verifierFor(3, [1, 2, 4]);
    const t = sender.trailer([frame]);
    let accepted = 0;
    for (let i = 0; i < 3000; i++) {
      const m = Uint8Array.from(t);
      const flips = 1 + (i % 4);
      for (let f = 0; f < flips; f++) {
        const at = (Math.random() * m.length) | 0;
        m[at] = (m[at] as number) ^ (1 + ((Math.random() * 255) | 0));
      }
      const candidate = i % 5 === 0 ? new Uint8Array(randomBytes((Math.random() * 60) | 0)) : m;
      const c = code(() => v.verify(1, [frame], candidate));
      expect(['ok', 'BAD_TAG', 'NO_TAG', 'MALFORMED_TRAILER']).toContain(c);
      // Accepted exactly when receiver 3's tag (bytes 8–16) and the signed tail (24–) are intact.
      const intact =
        candidate.length === t.length &&
        Buffer.compare(candidate.subarray(8, 16), t.subarray(8, 16)) === 0 &&
        Buffer.compare(candidate.subarray(24), t.subarray(24)) === 0;
      expect(c === 'ok').toBe(intact);
      if (c === 'ok') accepted++;
    }
    // A mutation that leaves receiver 3's tag, the list, N and version intact still verifies:
    // only the other receivers' tags changed, which receiver 3 neither reads nor needs.
    const onlyOthers = Uint8Array.from(t);
    onlyOthers[0] = (onlyOthers[0] as number) ^ 0xff; // receiver 2's tag
    expect(code(() => v.verify(1, [frame], onlyOthers))).toBe('ok');
    expect(accepted).toBeLessThan(3000 * 0.5);
  });
});
