// The werift SFU with real PeerConnections on loopback: every participant gets every other
// participant's packets (byte-exact, with its own header extensions stripped), never its own;
// keyframes are requested on subscription and PLI is forwarded; publishers come and go.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectMedia,
  LoopbackMediaPeer,
  type ReceivedPacket,
} from '../device/daemon/loopback-media-peer.js';
import { RelayConnection } from '../device/daemon/relay-connection.js';
import { createDevelopmentCa, issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { type Relay, startRelay } from '../src/relay/server.js';
import { silentLogger } from '../src/util/log.js';

interface Room {
  name: string;
  connection: RelayConnection;
  peer: LoopbackMediaPeer;
  participantId: string;
  received: ReceivedPacket[];
}

let relay: Relay;
const rooms: Room[] = [];
let timer: NodeJS.Timeout | undefined;
const PRIVATE_EXTENSION_ID = 14;

async function room(ca: Awaited<ReturnType<typeof createDevelopmentCa>>, name: string): Promise<Room> {
  const device = await issueDevelopmentDevice(ca, { roomName: name });
  const connection = await RelayConnection.connect(relay.url, {
    certificatePem: device.certificatePem,
    identityKey: device.identityKey,
  });
  const r: Room = { name, connection, peer: new LoopbackMediaPeer(), participantId: '', received: [] };
  r.peer.on('packet', (p) => r.received.push(p));
  rooms.push(r);
  return r;
}

function fromSender(r: Room, sender: Room, kind: 'audio' | 'video') {
  return r.received.filter(
    (p) => p.kind === kind && p.payload.toString().startsWith(`${sender.name}|${kind}|`),
  );
}

beforeAll(async () => {
  const ca = await createDevelopmentCa();
  relay = await startRelay({ log: silentLogger, trust: { caPems: [ca.certPem] } });
  const [a, b, c] = [await room(ca, 'A'), await room(ca, 'B'), await room(ca, 'C')];
  if (!a || !b || !c) throw new Error('rooms');
  // Every room publishes a numbered "frame" per kind every 20 ms, with a private header extension.
  let n = 0;
  timer = setInterval(() => {
    n++;
    for (const r of rooms) {
      if (!r.peer.connected) continue;
      for (const kind of ['audio', 'video'] as const)
        r.peer.send(
          kind,
          Buffer.from(`${r.name}|${kind}|${n}|${'x'.repeat(kind === 'video' ? 900 : 60)}`),
          n * 960,
          {
            extensions: [{ id: PRIVATE_EXTENSION_ID, payload: Buffer.from([1, 2, 3]) }],
          },
        );
    }
  }, 20);
});

afterAll(async () => {
  if (timer) clearInterval(timer);
  for (const r of rooms) {
    r.connection.terminate();
    await r.peer.close();
  }
  await relay?.close();
});

async function admitAll(): Promise<void> {
  const [a, b, c] = rooms as [Room, Room, Room];
  const created = await a.connection.request({ type: 'create' });
  if (created.type !== 'meeting') throw new Error('no meeting');
  a.participantId = created.participantId;
  for (const r of [b, c]) {
    const joined = await r.connection.request({ type: 'join', meetingId: created.meetingId });
    if (joined.type !== 'meeting') throw new Error('no meeting');
    r.participantId = joined.participantId;
    await a.connection.request({ type: 'admit', participantId: r.participantId });
  }
}

describe('SFU forwarding', () => {
  it('forwards every publisher to every other participant, byte-exact, and never back to itself', async () => {
    await admitAll();
    const [a, b] = rooms as [Room, Room, Room];
    connectMedia(a.connection, a.peer);
    connectMedia(b.connection, b.peer);
    await expect.poll(() => fromSender(b, a, 'video').length, { timeout: 15_000 }).toBeGreaterThan(10);
    await expect.poll(() => fromSender(a, b, 'audio').length, { timeout: 15_000 }).toBeGreaterThan(10);
    const c = rooms[2] as Room;
    const requestsBefore = a.peer.keyframeRequests + b.peer.keyframeRequests;
    connectMedia(c.connection, c.peer);
    for (const [to, from] of [
      [c, a],
      [c, b],
      [a, c],
      [b, c],
    ] as const) {
      await expect.poll(() => fromSender(to, from, 'video').length, { timeout: 15_000 }).toBeGreaterThan(10);
    }
    // A new subscriber made the SFU ask the existing publishers for keyframes.
    expect(a.peer.keyframeRequests + b.peer.keyframeRequests).toBeGreaterThan(requestsBefore);
    for (const r of rooms) {
      expect(fromSender(r, r, 'video')).toHaveLength(0);
      expect(fromSender(r, r, 'audio')).toHaveLength(0);
      // The publisher's own header extensions never reach subscribers.
      expect(r.received.some((p) => p.extensionIds.includes(PRIVATE_EXTENSION_ID))).toBe(false);
    }
    // Payloads arrive exactly as sent (the relay never touches the frame).
    const sample = fromSender(c, a, 'video')[0];
    expect(sample?.payload.toString()).toMatch(/^A\|video\|\d+\|x{900}$/);
  });

  it('forwards a subscriber PLI to the publisher', async () => {
    const [a, b] = rooms as [Room, Room, Room];
    const before = a.peer.keyframeRequests;
    b.peer.requestKeyframes();
    await expect.poll(() => a.peer.keyframeRequests, { timeout: 10_000 }).toBeGreaterThan(before);
  });

  it('stops forwarding a participant who leaves; the others keep their media', async () => {
    const [a, b, c] = rooms as [Room, Room, Room];
    await c.connection.request({ type: 'leave' });
    await new Promise((r) => setTimeout(r, 300));
    const afterLeave = fromSender(a, c, 'video').length;
    const bFromA = fromSender(b, a, 'video').length;
    await expect
      .poll(() => fromSender(b, a, 'video').length, { timeout: 10_000 })
      .toBeGreaterThan(bFromA + 10);
    expect(fromSender(a, c, 'video').length).toBe(afterLeave);
    expect(relay.sfu.peerCount()).toBe(2);
  });
});
