// The receive path's screen-content rules (issue 12), with the worker's own key objects and real
// SFrame + sender authentication: a content m-line's frame reaches the wall's content line only when
// it authenticates and its sender is a verified member named as the sharer; it never lands on a
// camera line; and one sender's single SFrame counter shared by audio, camera and content, with the
// three streams arriving interleaved and out of order across each other, passes the replay window.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { RtpHeader, RtpPacket } from 'werift';
import { SFrameReceiver, SFrameSender, plausibleCounter } from '../../src/core/sframe/index.js';
import { silentLogger } from '../../src/util/log.js';
import { zeroCounters } from './ipc.js';
import { MediaKeyState, type WireKeys } from './key-state.js';
import { type ReceiveHost, ReceivePath } from './receive.js';
import { packetizeVp8 } from './rtp-payload.js';
import { sealAuthenticated } from './sender-auth.js';
import { DEFAULT_SETTINGS } from './templates.js';
import type { WallHub } from './wall/hub.js';

const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');
const rnd = () => new Uint8Array(randomBytes(32));
const kid = (s: number) => (1n << 16n) | BigInt(s);
const ROOM = 1;
const ALICE = 2;

// VP8: bit 0 of byte 0 clear = keyframe.
const KEY = Buffer.from([0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 1, 2, 3, 4, 5, 6]);
const DELTA = Buffer.from([0x11, 0x02, 0x00, 7, 7, 7, 7, 7]);

function meeting() {
  const base = new Map([ROOM, ALICE].map((m) => [m, rnd()]));
  const pair = new Map<string, Uint8Array>();
  const auth = (s: number, r: number) => {
    const id = `${s}>${r}`;
    if (!pair.has(id)) pair.set(id, rnd());
    return pair.get(id) as Uint8Array;
  };
  const keysFor = (self: number, forgeAuth = false): WireKeys => ({
    epoch: 1,
    sendKid: kid(self).toString(),
    sendKey: b64(base.get(self) as Uint8Array),
    receiveKeys: [...base].map(([m, k]) => ({ kid: kid(m).toString(), key: b64(k) })),
    sending: true,
    auth: [...base.keys()]
      .filter((m) => m !== self)
      .map((m) => ({
        peerIndex: m,
        send: b64(forgeAuth ? rnd() : auth(self, m)),
        receive: b64(auth(m, self)),
      })),
  });
  return { keysFor };
}

const state = () =>
  new MediaKeyState(
    new SFrameReceiver({ replayWindow: 256, plausibleCounter }),
    (k, baseKey, initialCounter) => new SFrameSender({ kid: k, baseKey, initialCounter }),
  );

function receiver(allowed: Set<number>) {
  const keys = state();
  const m = meeting();
  keys.set(m.keysFor(ROOM));
  const content: number[] = [];
  const camera: number[] = [];
  const c = zeroCounters();
  const wall = {
    contentFrame: (s: number) => content.push(s),
    remoteFrame: (s: number) => camera.push(s),
  } as unknown as WallHub;
  const host: ReceiveHost = {
    settings: () => ({ ...DEFAULT_SETTINGS, codec: 'vp8', tiles: 4 }),
    keys,
    counters: c,
    wall,
    gallery: () => undefined,
    speakerMix: () => undefined,
    sendPli: () => {},
    addCryptoNs: () => {},
    slotAssigned: () => {},
    contentAllowed: (s) => allowed.has(s),
    log: silentLogger,
  };
  return { path: new ReceivePath(host), content, camera, counters: c, m };
}

/** A sender: one SFrameSender (one counter) for every stream, as the SPEC asks. */
function sender(m: ReturnType<typeof meeting>, forgeAuth = false) {
  const keys = state();
  keys.set(m.keysFor(ALICE, forgeAuth));
  const k = keys.sendKeys();
  if (!k) throw new Error('no send keys');
  // RTP sequence numbers are per stream (SSRC); the SFrame counter is not.
  const seq = { camera: 0, content: 0 };
  let ts = 0;
  return {
    video(frame: Buffer, stream: 'camera' | 'content' = 'content'): RtpPacket[] {
      const sealed = sealAuthenticated('vp8', k.sender, k.auth, frame) as Uint8Array;
      ts += 3000;
      const payloads = packetizeVp8(sealed, seq[stream] & 0x7fff);
      return payloads.map((p, i) => {
        seq[stream]++;
        return new RtpPacket(
          new RtpHeader({
            sequenceNumber: seq[stream],
            timestamp: ts,
            marker: i === payloads.length - 1,
            payloadType: 96,
          }),
          p,
        );
      });
    },
    audio(): RtpPacket {
      const sealed = Buffer.from(sealAuthenticated('opus', k.sender, k.auth, Buffer.alloc(40, 1)));
      return new RtpPacket(new RtpHeader({ sequenceNumber: 1, timestamp: 0, payloadType: 111 }), sealed);
    },
  };
}

describe('screen content in the receive path', () => {
  it('goes to the content line only for a verified sharer, never to a camera line', () => {
    const allowed = new Set([ALICE]);
    const { path, content, camera, counters: c, m } = receiver(allowed);
    const alice = sender(m);
    for (const p of alice.video(KEY)) path.onRtp({ kind: 'video', ssrc: 50, packet: p, content: true });
    for (const p of alice.video(DELTA)) path.onRtp({ kind: 'video', ssrc: 50, packet: p, content: true });
    expect(content).toEqual([ALICE, ALICE]);
    expect(camera).toEqual([]);
    expect(c.contentFramesDecrypted).toBe(2);
    // No longer the sharer (or not verified): dropped, counted, and it restarts at a keyframe.
    allowed.clear();
    for (const p of alice.video(DELTA)) path.onRtp({ kind: 'video', ssrc: 50, packet: p, content: true });
    expect(content).toHaveLength(2);
    expect(c.contentFramesDropped).toBe(1);
    allowed.add(ALICE);
    for (const p of alice.video(DELTA)) path.onRtp({ kind: 'video', ssrc: 50, packet: p, content: true });
    expect(content).toHaveLength(2);
    for (const p of alice.video(KEY)) path.onRtp({ kind: 'video', ssrc: 50, packet: p, content: true });
    expect(content).toHaveLength(3);
  });

  it('drops content whose authentication tag is forged, even from the sharer', () => {
    const { path, content, counters: c, m } = receiver(new Set([ALICE]));
    const forger = sender(m, true);
    for (let i = 0; i < 3; i++)
      for (const p of forger.video(KEY)) path.onRtp({ kind: 'video', ssrc: 60, packet: p, content: true });
    expect(content).toEqual([]);
    expect(c.authFailures).toBe(3);
  });

  it('accepts one counter shared by audio, camera and content, interleaved and reordered across streams', () => {
    const { path, content, camera, counters: c, m } = receiver(new Set([ALICE]));
    const alice = sender(m);
    // Sealed in this order (counters rising across the three streams)…
    const sealed: { kind: 'audio' | 'camera' | 'content'; packets: RtpPacket[] }[] = [];
    for (let i = 0; i < 60; i++) {
      sealed.push({ kind: 'audio', packets: [alice.audio()] });
      sealed.push({ kind: 'camera', packets: alice.video(i % 20 === 0 ? KEY : DELTA, 'camera') });
      sealed.push({ kind: 'content', packets: alice.video(i % 20 === 0 ? KEY : DELTA) });
    }
    // …and delivered stream by stream in chunks of 10 frames: each stream's counters stay in order,
    // but across streams they arrive up to ~30 counters behind the newest one seen.
    const order = (k: string) => sealed.filter((s) => s.kind === k);
    const [audio, cam, scr] = [order('audio'), order('camera'), order('content')];
    for (let i = 0; i < 60; i += 10)
      for (const [list, ssrc] of [
        [scr, 70],
        [audio, 71],
        [cam, 72],
      ] as const)
        for (const s of list.slice(i, i + 10))
          for (const p of s.packets)
            path.onRtp(
              ssrc === 71
                ? { kind: 'audio', ssrc, packet: p }
                : { kind: 'video', ssrc, packet: p, ...(ssrc === 70 ? { content: true } : {}) },
            );
    expect(c.decryptFailures).toBe(0);
    expect(content).toHaveLength(60);
    expect(camera).toHaveLength(60);
    expect(c.audioFramesDecrypted).toBe(60);
  });
});
