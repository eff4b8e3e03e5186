// The web participant's frame protection (src/web/media/frame-crypto.ts, the transform worker minus
// Worker glue) in Node's WebCrypto: one SFrame counter per KID across microphone, camera and content;
// nothing sent without keys or while sending is off; frames that fail sender authentication or
// SFrame (tampered, replayed, unknown KID, after a wipe) are refused and counted, never returned; the
// stats carry no key material. Byte-level agreement with the media worker's formats is in test/browser/.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { splitProtectedVp8 } from '../device/media/vp8-protect.js';
import { makeKid } from '../src/core/e2ee/sender-keys.js';
import { FrameCrypto, FrameDropped, videoKind } from '../src/web/media/frame-crypto.js';
import { decodeSFrameHeader } from '../src/web/media/sframe-webcrypto.js';
import type { TransformKeys } from '../src/web/shared/messages.js';

const bytes = (n: number) => new Uint8Array(randomBytes(n));

/** Keys for two members (sender indexes 1 and 2) of epoch `epoch`, as the E2EE worker sends them. */
function pair(epoch = 1) {
  const base = { 1: bytes(32), 2: bytes(32) };
  const auth12 = bytes(32);
  const auth21 = bytes(32);
  const keysFor = (self: 1 | 2, sending = true): TransformKeys => {
    const peer = self === 1 ? 2 : 1;
    return {
      type: 'keys',
      epoch,
      sendKid: makeKid(epoch, self).toString(),
      sendKey: base[self],
      receiveKeys: [{ kid: makeKid(epoch, peer).toString(), key: base[peer] }],
      auth: [{ peerIndex: peer, send: self === 1 ? auth12 : auth21, receive: self === 1 ? auth21 : auth12 }],
      sending,
    };
  };
  return keysFor;
}

const vp8Key = () => {
  const f = bytes(300);
  f[0] = (f[0] as number) & 0xfe; // P bit 0: keyframe (10 clear bytes)
  return f;
};
const opus = () => bytes(80);

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'opened';
  } catch (err) {
    return err instanceof FrameDropped ? err.code : `unexpected ${(err as Error).message}`;
  }
}

describe('web transform frame protection', () => {
  it('seals every send stream under one counter per KID, and the peer opens each frame', async () => {
    const keys = pair();
    const a = new FrameCrypto();
    const b = new FrameCrypto();
    await a.setKeys(keys(1));
    await b.setKeys(keys(2));
    const ctrs: bigint[] = [];
    for (let i = 0; i < 4; i++) {
      const mic = opus();
      const cam = vp8Key();
      const screen = vp8Key();
      const wMic = (await a.seal('send-microphone', 'audio', mic))!;
      const wCam = (await a.seal('send-camera', 'vp8', cam))!;
      const wScreen = (await a.seal('send-content', 'vp8', screen))!;
      ctrs.push(
        decodeSFrameHeader(wMic).ctr,
        decodeSFrameHeader(splitProtectedVp8(wCam).sealed).ctr,
        decodeSFrameHeader(splitProtectedVp8(wScreen).sealed).ctr,
      );
      expect(await b.open('receive-audio', 'audio', wMic)).toEqual(mic);
      expect(await b.open('receive-video', 'vp8', wCam)).toEqual(cam);
      expect(await b.open('receive-content', 'vp8', wScreen)).toEqual(screen);
    }
    expect(ctrs).toEqual(Array.from({ length: 12 }, (_, i) => BigInt(i))); // one counter, never repeated
    // The same keys again (a keys event for another reason) keep the counter going.
    await a.setKeys(keys(1));
    expect(decodeSFrameHeader((await a.seal('send-microphone', 'audio', opus()))!).ctr).toBe(12n);
    const stats = a.stats();
    expect(stats.streams['send-camera']).toMatchObject({ sent: 4, dropped: 0 });
    expect(b.stats().streams['receive-content']).toMatchObject({ opened: 4, failed: {} });
  });

  it('sends nothing without keys, while sending is off, or after a wipe', async () => {
    const keys = pair();
    const a = new FrameCrypto();
    expect(await a.seal('send-camera', 'vp8', vp8Key())).toBeUndefined();
    await a.setKeys(keys(1, false));
    expect(await a.seal('send-camera', 'vp8', vp8Key())).toBeUndefined();
    await a.setKeys(keys(1, true));
    expect(await a.seal('send-camera', 'vp8', vp8Key())).toBeInstanceOf(Uint8Array);
    await a.wipe();
    expect(await a.seal('send-camera', 'vp8', vp8Key())).toBeUndefined();
    expect(a.stats()).toMatchObject({ epoch: 0, sending: false });
    expect(a.stats().streams['send-camera']).toMatchObject({ sent: 1, dropped: 3 });
  });

  it('refuses tampered, replayed, unauthenticated, unknown-KID frames and everything after a wipe', async () => {
    const keys = pair();
    const a = new FrameCrypto();
    const b = new FrameCrypto();
    await a.setKeys(keys(1));
    await b.setKeys(keys(2));
    const wire = (await a.seal('send-camera', 'vp8', vp8Key()))!;
    // A flipped bit anywhere: the tag for us fails first (sender authentication before SFrame).
    for (const at of [0, 5, 20, wire.length - 1]) {
      const bad = Uint8Array.from(wire);
      bad[at] = (bad[at] as number) ^ 1;
      expect(await code(b.open('receive-video', 'vp8', bad))).not.toBe('opened');
    }
    expect(await code(b.open('receive-video', 'vp8', wire))).toBe('opened');
    expect(await code(b.open('receive-video', 'vp8', wire))).toBe('REPLAY');
    // Another meeting's member with the same KID but other keys: no valid tag for us.
    const other = pair();
    const c = new FrameCrypto();
    await c.setKeys(other(1));
    expect(await code(b.open('receive-video', 'vp8', (await c.seal('send-camera', 'vp8', vp8Key()))!))).toBe(
      'BAD_TAG',
    );
    // A sender b holds no key for (epoch 2): refused.
    const later = pair(2);
    const d = new FrameCrypto();
    await d.setKeys(later(1));
    expect(
      await code(b.open('receive-audio', 'audio', (await d.seal('send-microphone', 'audio', opus()))!)),
    ).not.toBe('opened');
    // Garbage, empty.
    expect(await code(b.open('receive-audio', 'audio', new Uint8Array(0)))).toBe('EMPTY');
    expect(await code(b.open('receive-audio', 'audio', bytes(50)))).not.toBe('opened');
    await b.wipe();
    const fresh = (await a.seal('send-microphone', 'audio', opus()))!;
    expect(await code(b.open('receive-audio', 'audio', fresh))).toBe('NO_KEYS');
    const failed = b.stats().streams['receive-video']!.failed;
    expect(failed.REPLAY).toBe(1);
    expect(Object.values(failed).reduce((x, y) => x + y, 0)).toBe(6);
    const text = JSON.stringify([a.stats(), b.stats()]);
    for (const k of [keys(1), keys(2)])
      for (const key of [k.sendKey, ...k.auth.flatMap((x) => [x.send, x.receive])])
        expect(text).not.toContain(Buffer.from(key).toString('hex'));
    expect(text).not.toMatch(/[0-9a-f]{32}|(\d+,){16}/);
  });

  it('moves to a new epoch: new KID from counter 0, the old epoch refused once it is dropped', async () => {
    const e1 = pair(1);
    const e2 = pair(2);
    const a = new FrameCrypto();
    const b = new FrameCrypto();
    await a.setKeys(e1(1));
    await b.setKeys(e1(2));
    const old = (await a.seal('send-microphone', 'audio', opus()))!;
    // Frame-authentication keys come from the members' ephemeral keys: the same in every epoch.
    const next2 = (self: 1 | 2): TransformKeys => ({ ...e2(self), auth: e1(self).auth });
    const both = (self: 1 | 2): TransformKeys => ({
      ...next2(self),
      receiveKeys: [...e2(self).receiveKeys, ...e1(self).receiveKeys],
    });
    await a.setKeys(both(1));
    await b.setKeys(both(2));
    const next = (await a.seal('send-microphone', 'audio', opus()))!;
    expect(decodeSFrameHeader(next)).toMatchObject({ kid: makeKid(2, 1), ctr: 0n });
    expect(await code(b.open('receive-audio', 'audio', old))).toBe('opened'); // overlap: still accepted
    expect(await code(b.open('receive-audio', 'audio', next))).toBe('opened');
    await b.setKeys(next2(2)); // overlap over
    const stale = Uint8Array.from(old);
    expect(await code(b.open('receive-audio', 'audio', stale))).not.toBe('opened');
  });
});

describe('video codec of a frame', () => {
  it('takes the frame metadata first, then the page, then VP8', () => {
    expect(videoKind('vp8', 'video/H264')).toBe('h264');
    expect(videoKind('h264', 'video/VP8')).toBe('vp8');
    expect(videoKind('h264', undefined)).toBe('h264');
    expect(videoKind(undefined, 'video/AV1')).toBe('vp8');
  });
});
