// WallHub with stand-in peers: sessions, keyframe gating on slot switches and new sessions, PLI
// routing, slot reports. The real peer is in peer.test.ts, the whole path in test/wall-worker.test.ts.
import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/util/log.js';
import type { FromWorker } from '../ipc.js';
import { CONTENT_TAKEOVER_MS, WallHub, type WallPeerPort } from './hub.js';
import { CONTENT_LINE, SELF_LINE, type WallPeerEvents } from './peer.js';

class FakePeer extends EventEmitter<WallPeerEvents> implements WallPeerPort {
  readonly offer = 'v=0 fake';
  readonly mids = Array.from({ length: 11 }, (_, i) => String(i));
  connected = false;
  closed = false;
  answers: string[] = [];
  sent: { line: number; payloads: readonly Buffer[]; timestamp: number }[] = [];
  async answer(sdp: string): Promise<void> {
    if (this.answers.length > 0) throw new Error('wall session already answered');
    this.answers.push(sdp);
  }
  send(line: number, payloads: readonly Buffer[], timestamp: number): boolean {
    if (!this.connected) return false;
    this.sent.push({ line, payloads, timestamp });
    return true;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  connect(): void {
    this.connected = true;
    this.emit('state', 'connected');
  }
}

// VP8: bit 0 of byte 0 clear = keyframe.
const KEY = Buffer.from([0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 1, 2, 3]);
const DELTA = Buffer.from([0x11, 0x02, 0x00, 7, 7, 7]);

function setup() {
  const peers: FakePeer[] = [];
  const messages: FromWorker[] = [];
  const remoteKeyframes: number[] = [];
  const contentKeyframes: number[] = [];
  let ownKeyframes = 0;
  const hub = new WallHub({
    codec: () => 'vp8',
    requestRemoteKeyframe: (s, content) => (content ? contentKeyframes : remoteKeyframes).push(s),
    requestOwnKeyframe: () => {
      ownKeyframes++;
    },
    send: (m) => messages.push(m),
    log: silentLogger,
    createPeer: async () => {
      const p = new FakePeer();
      peers.push(p);
      return p;
    },
  });
  return { hub, peers, messages, remoteKeyframes, contentKeyframes, own: () => ownKeyframes };
}

const slotsOf = (m: FromWorker | undefined) => (m?.type === 'wall-slots' ? m : undefined);

describe('WallHub', () => {
  it('starts every m-line of a new session at a keyframe and keeps RTP timestamps', async () => {
    const { hub, peers, remoteKeyframes, own } = setup();
    hub.remoteFrame(5, KEY, 1000);
    expect(hub.lines[0]).toBe(5);
    await hub.open('s1');
    const peer = peers[0] as FakePeer;
    peer.connect();
    expect(remoteKeyframes).toContain(5);
    expect(own()).toBe(1);
    remoteKeyframes.length = 0;
    // Delta frames before a keyframe are held back, and the sender is asked again.
    hub.remoteFrame(5, DELTA, 2000);
    expect(peer.sent).toHaveLength(0);
    expect(remoteKeyframes).toEqual([5]);
    hub.remoteFrame(5, KEY, 3000);
    hub.remoteFrame(5, DELTA, 6000);
    expect(peer.sent.map((s) => [s.line, s.timestamp])).toEqual([
      [0, 3000],
      [0, 6000],
    ]);
    // VP8 payload descriptor with PictureID in front of the frame, unchanged bytes behind it.
    const first = peer.sent[0]?.payloads[0] as Buffer;
    expect(first.subarray(4)).toEqual(KEY);
    expect(hub.framesForwarded).toBe(2);
    // Self-view frames go to the self m-line, also starting at a keyframe.
    hub.selfFrame(DELTA, 7000);
    hub.selfFrame(KEY, 8000);
    expect(peer.sent.filter((s) => s.line === SELF_LINE).map((s) => s.timestamp)).toEqual([8000]);
  });

  it('routes the page’s keyframe requests: remote m-line → that sender, self → own encoder', async () => {
    const { hub, peers, remoteKeyframes, own } = setup();
    hub.remoteFrame(5, KEY, 1);
    hub.remoteFrame(9, KEY, 1);
    await hub.open('s1');
    remoteKeyframes.length = 0;
    const before = own();
    (peers[0] as FakePeer).emit('keyframeRequest', 1);
    expect(remoteKeyframes).toEqual([9]);
    (peers[0] as FakePeer).emit('keyframeRequest', SELF_LINE);
    expect(own()).toBe(before + 1);
    (peers[0] as FakePeer).emit('keyframeRequest', 4); // an idle m-line: nobody to ask
    expect(remoteKeyframes).toEqual([9]);
  });

  it('reports slots on every change, refuses answers it must not take, closes the oldest of five', async () => {
    const { hub, peers, messages } = setup();
    await hub.open('s1');
    const opened = slotsOf(hub.slotsMessage());
    expect(opened?.slots.map((s) => s.kind)).toEqual([...Array(9).fill('remote'), 'self', 'content']);
    hub.remoteFrame(4, KEY, 1);
    expect(slotsOf(messages.at(-1))?.slots[0]).toEqual({ mid: '0', kind: 'remote', senderIndex: 4 });
    await hub.answer('s1', 'answer');
    await expect(hub.answer('s1', 'second answer')).rejects.toThrow(/already answered/);
    await expect(hub.answer('nope', 'answer')).rejects.toThrow(/unknown/);
    for (const id of ['s2', 's3', 's4', 's5']) await hub.open(id);
    expect(hub.sessionCount).toBe(4);
    expect(peers[0]?.closed).toBe(true);
    await expect(hub.answer('s1', 'late')).rejects.toThrow(/unknown/);
    hub.senderGone(4);
    expect(slotsOf(messages.at(-1))?.slots[0]).toEqual({ mid: '0', kind: 'remote' });
  });

  it('more than 9 senders: the active speaker takes an m-line, which restarts at a keyframe', async () => {
    const { hub, peers, messages, remoteKeyframes } = setup();
    for (let s = 0; s < 10; s++) hub.remoteFrame(s, KEY, 1, undefined, s);
    expect(hub.lines).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    await hub.open('s1');
    const peer = peers[0] as FakePeer;
    peer.connect();
    for (let s = 0; s < 9; s++) hub.remoteFrame(s, KEY, 2, undefined, 100);
    remoteKeyframes.length = 0;
    // Sender 9 talks for 1.5 s: active speaker, on the m-line of the last-arrived silent sender (8).
    for (let t = 1000; t <= 2600; t += 100) hub.level(9, -20, t);
    expect(hub.activeSpeaker).toBe(9);
    expect(hub.lines[8]).toBe(9);
    expect(remoteKeyframes).toContain(9);
    expect(slotsOf(messages.at(-1))).toMatchObject({ activeSpeaker: 9 });
    const sent = peer.sent.length;
    hub.remoteFrame(9, DELTA, 3);
    hub.remoteFrame(8, KEY, 3); // 8 is no longer shown
    expect(peer.sent.length).toBe(sent);
    hub.remoteFrame(9, KEY, 4);
    expect(peer.sent.at(-1)).toMatchObject({ line: 8, timestamp: 4 });
  });

  it('puts a sharer’s screen on the content line, from a keyframe, and reports its sender', async () => {
    const { hub, peers, messages, contentKeyframes } = setup();
    await hub.open('s1');
    const peer = peers[0] as FakePeer;
    peer.connect();
    hub.contentFrame(4, DELTA, 100, false, 0);
    const slots = slotsOf(messages.at(-1));
    expect(slots?.slots.find((s) => s.kind === 'content')?.senderIndex).toBe(4);
    // Camera lines are untouched by content.
    expect(hub.lines.every((l) => l === undefined)).toBe(true);
    expect(peer.sent).toHaveLength(0);
    expect(contentKeyframes).toEqual([4]);
    hub.contentFrame(4, KEY, 200, true, 10);
    hub.contentFrame(4, DELTA, 300, false, 20);
    expect(peer.sent.map((s) => [s.line, s.timestamp])).toEqual([
      [CONTENT_LINE, 200],
      [CONTENT_LINE, 300],
    ]);
    // The page's PLI on the content line goes to the sharer's screen, not its camera.
    contentKeyframes.length = 0;
    peer.emit('keyframeRequest', CONTENT_LINE);
    expect(contentKeyframes).toEqual([4]);
  });

  it('a second sharer takes the line only after the first is silent; gone and not-allowed clear it', async () => {
    const { hub, peers, messages } = setup();
    await hub.open('s1');
    (peers[0] as FakePeer).connect();
    hub.contentFrame(4, KEY, 100, true, 0);
    // Two streams at once (a hostile relay forwarding both): the shown one keeps the line.
    hub.contentFrame(6, KEY, 100, true, CONTENT_TAKEOVER_MS / 2);
    expect(hub.contentSender).toBe(4);
    hub.contentFrame(6, KEY, 100, true, CONTENT_TAKEOVER_MS + 10);
    expect(hub.contentSender).toBe(6);
    hub.contentAllowed((s) => s !== 6);
    expect(hub.contentSender).toBeUndefined();
    expect(slotsOf(messages.at(-1))?.slots.find((s) => s.kind === 'content')?.senderIndex).toBeUndefined();
    hub.contentFrame(4, KEY, 100, true, 5000);
    hub.senderGone(4);
    expect(hub.contentSender).toBeUndefined();
    hub.contentFrame(4, KEY, 100, true, 6000);
    hub.contentGone();
    expect(hub.contentSender).toBeUndefined();
  });
});
