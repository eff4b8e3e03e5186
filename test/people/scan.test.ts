// The relay-traffic scanner of the people test can fail: a key planted in a WebSocket frame (in any
// of its encodings) or a plaintext window planted in an RTP payload is found; sealed media recorded
// as the SFU would record it is opened with the right keys (and not with wrong ones), and its
// plaintext is not found in the sealed traffic.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { packetizeVp8 } from '../../device/media/rtp-payload.js';
import { sealAuthenticated } from '../../device/media/sender-auth.js';
import type { KeysEvent } from '../../src/core/e2ee/index.js';
import { makeKid } from '../../src/core/e2ee/sender-keys.js';
import { FrameAuthSender } from '../../src/core/frame-auth/node.js';
import { SFrameSender } from '../../src/core/sframe/index.js';
import type { RecordEntry } from '../../src/relay/server.js';
import { findAny, haystacks, keyNeedles, keysEventNeedles, recoverPlaintext } from './scan.js';

const key = new Uint8Array(randomBytes(32));
const kid = makeKid(3, 2);
const keys: KeysEvent[] = [
  {
    type: 'keys',
    meetingId: 'm',
    epoch: 3,
    sendKid: makeKid(3, 1),
    sendKey: new Uint8Array(randomBytes(32)),
    receiveKeys: [{ kid, key, epoch: 3, senderIndex: 2 }],
    sending: true,
    auth: [{ peerIndex: 2, send: new Uint8Array(randomBytes(32)), receive: new Uint8Array(randomBytes(32)) }],
  },
];

/** A VP8 keyframe-shaped frame: clear header (bit 0 of byte 0 = 0), then varied content. */
function vp8Frame(n: number): Buffer {
  const f = randomBytes(400 + n * 10);
  f[0] = (f[0] ?? 0) & 0xfe;
  return f;
}

function recorded(frames: Buffer[], seal = true): RecordEntry[] {
  const sender = new SFrameSender({ kid, baseKey: key });
  const auth = new FrameAuthSender([{ peerIndex: 1, key: new Uint8Array(32).fill(1) }]);
  const out: RecordEntry[] = [{ kind: 'ws-in', connection: 'c1' as never, data: '{"type":"hello"}' }];
  frames.forEach((f, i) => {
    const wire = seal ? sealAuthenticated('vp8', sender, auth, f) : f;
    for (const payload of packetizeVp8(wire, i, 200))
      out.push({
        kind: 'rtp',
        meetingId: 'm',
        participantId: 'p2',
        media: 'video',
        timestamp: i * 3000,
        payload: Buffer.from(payload),
      } as RecordEntry);
  });
  return out;
}

describe('relay traffic scan', () => {
  it('finds a key in any encoding inside a WebSocket frame, and nothing in clean traffic', () => {
    const needles = keysEventNeedles('room', keys);
    expect(needles).toHaveLength(4 * 4); // send, receive, auth send, auth receive × 4 encodings
    const clean = haystacks(recorded([vp8Frame(1), vp8Frame(2)]));
    expect(findAny(clean, needles)).toBeUndefined();
    for (const enc of ['base64', 'base64url', 'hex'] as const) {
      const leak = Buffer.from(key).toString(enc);
      const hay = [...clean, Buffer.from(JSON.stringify({ type: 'signal', sdp: `a=x:${leak}` }))];
      expect(findAny(hay, needles)?.needle.what).toMatch(/receive key/);
    }
    expect(findAny([Buffer.concat([randomBytes(7), key])], keyNeedles('k', key))?.needle.what).toBe(
      'k (raw)',
    );
  });

  it('opens recorded sealed VP8 with the rooms’ keys; its plaintext is not in the sealed traffic but is found when sent in the clear', () => {
    const frames = Array.from({ length: 12 }, (_, i) => vp8Frame(i));
    const sealed = recorded(frames);
    const got = recoverPlaintext(sealed, keys, new Set(['p2']));
    expect(got.opened.get('p2/video')).toBe(12);
    expect(got.needles.length).toBeGreaterThanOrEqual(12);
    expect(findAny(haystacks(sealed), got.needles)).toBeUndefined();
    // The same frames in the clear: their plaintext is found.
    expect(findAny(haystacks(recorded(frames, false)), got.needles)?.needle.what).toBe('p2/video plaintext');
    // Wrong keys open nothing.
    const wrong = [
      { ...keys[0], receiveKeys: [{ ...keys[0]?.receiveKeys[0], key: new Uint8Array(32).fill(5) }] },
    ] as KeysEvent[];
    expect(recoverPlaintext(sealed, wrong, new Set(['p2'])).opened.get('p2/video') ?? 0).toBe(0);
  });
});
