// The room's resume after its relay (or a node of a clustered relay) goes away — the races and
// answers that used to END a meeting that was in fact back (test/relay-cluster-e2e.test.ts, the
// relay-cluster bench). Real relays (src/relay/server.ts) behind a scripted loopback proxy that plays
// the network: it can switch to a new relay (a restart / failover: a new relay id, so the rooms
// resume), write several relay frames in ONE TCP chunk, answer a request itself, or cut a connection.
//
// - The leader's `create` reply and the roster naming a member already back arrive in one chunk: the
//   member is re-admitted and is NOT removed when the resume grace runs out.
// - A member's `join` reply ('waiting') and its instant re-admit ('active') in one chunk: the wall says
//   'active', not 'waiting' forever.
// - `rate-limited` answers to resume requests are retried (≥ 1 s apart); the meeting goes on.
// - A connection that closes under a resume request: the next connection resumes; the meeting goes on.
// - An explicit refusal still ends the meeting, with an alert.
import type { Socket } from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { MeetingClient } from '../device/daemon/meeting-client.js';
import { type DeviceState, initialState, StateStore } from '../device/daemon/state.js';
import { type CertificateAuthority, TrustStore } from '../src/pki/index.js';
import { createDevelopmentCa, issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { type Relay, startRelay } from '../src/relay/server.js';
import { silentLogger } from '../src/util/log.js';
import { poll, sleep } from './adversary/rooms.js';
import { type Json, type ProxyPair, ScriptedRelayProxy } from './scripted-relay-proxy.js';

const GRACE_MS = 1500;

interface Pair extends ProxyPair {
  /** Relay frames held back to be written together with later ones in one TCP chunk. */
  coalescing?: { until: (m: Json) => boolean; frames: string[]; timer: NodeJS.Timeout };
  /** Set when the device sends a resume request: hold its reply until `until` matches a later frame. */
  coalesceReplyTo?: { id: number; until: (m: Json) => boolean };
}

/** The scripted proxy, which can also write several relay frames to a device in one TCP chunk. */
class Wire extends ScriptedRelayProxy<Pair> {
  /** Chunks written with more than one relay frame (the race the test is about happened). */
  coalesced = 0;

  /** Writes `frames` to the device in one TCP chunk (ws then hands them over synchronously). */
  #writeTogether(pair: Pair, frames: string[]): void {
    const socket = (pair.device as unknown as { _socket: Socket })._socket;
    socket.cork();
    for (const f of frames) pair.device.send(f);
    socket.uncork();
    if (frames.length > 1) this.coalesced++;
  }

  protected override fromRelay(pair: Pair, raw: string): void {
    if (pair.device.readyState !== WebSocket.OPEN) return;
    const m = JSON.parse(raw) as Json;
    const c = pair.coalescing;
    if (c) {
      c.frames.push(raw);
      if (!c.until(m)) return;
      clearTimeout(c.timer);
      pair.coalescing = undefined;
      this.#writeTogether(pair, c.frames);
      return;
    }
    const wanted = pair.coalesceReplyTo;
    if (wanted && m.id === wanted.id && m.type === 'meeting') {
      pair.coalesceReplyTo = undefined;
      pair.coalescing = {
        until: wanted.until,
        frames: [raw],
        // Never hold the room back for good if the awaited frame does not come.
        timer: setTimeout(() => {
          const held = pair.coalescing;
          pair.coalescing = undefined;
          if (held && pair.device.readyState === WebSocket.OPEN) this.#writeTogether(pair, held.frames);
        }, 8000),
      };
      return;
    }
    pair.device.send(raw);
  }

  protected override closed(pair: Pair): void {
    if (pair.coalescing) clearTimeout(pair.coalescing.timer);
  }
}

interface Room {
  name: string;
  state: StateStore;
  client: MeetingClient;
  /** Every meeting status the wall was given, in order. */
  statuses: string[];
}

const isLeaderResume = (m: Json) => m?.type === 'create' && typeof m.meetingId === 'string';
const isMemberResume = (m: Json) => m?.type === 'join' && typeof m.participantId === 'string';

let ca: CertificateAuthority;
let relays: Relay[] = [];
let proxies: Wire[] = [];
let rooms: Room[] = [];

async function relay(): Promise<Relay> {
  const r = await startRelay({ log: silentLogger, trust: { caPems: [ca.certPem] } });
  relays.push(r);
  return r;
}

async function room(name: string, url: string): Promise<Room> {
  const device = await issueDevelopmentDevice(ca, { roomName: name });
  const state = new StateStore(initialState('test'));
  const client = new MeetingClient({
    relayUrl: url,
    credentials: { certificatePem: device.certificatePem, identityKey: device.identityKey },
    trust: new TrustStore({ orgCaPem: ca.certPem }),
    state,
    log: silentLogger,
    reconnectMinMs: 100,
    reconnectMaxMs: 400,
    resumeGraceMs: GRACE_MS,
    tickMs: 100,
    connectTimeoutMs: 3000,
  });
  const r: Room = { name, state, client, statuses: [] };
  state.on('change', (s: DeviceState) => {
    const status = s.meeting?.status;
    if (status && r.statuses.at(-1) !== status) r.statuses.push(status);
  });
  rooms.push(r);
  await client.start();
  return r;
}

const inMeeting = (leader: Room, member: Room) =>
  member.state.get().meeting?.status === 'active' &&
  leader.state.get().meeting?.status === 'active' &&
  member.client.securityCode !== undefined &&
  member.client.securityCode === leader.client.securityCode;

/** A leader and a member in a meeting on a relay behind a proxy. */
async function meeting(): Promise<{ proxy: Wire; leader: Room; member: Room }> {
  const first = await relay();
  const proxy = await Wire.start(first.url);
  proxies.push(proxy);
  const leader = await room('Leader', proxy.url);
  const member = await room('Member', proxy.url);
  const { meetingId } = await leader.client.startMeeting();
  await member.client.joinMeeting(meetingId);
  const pid = member.client.participantId ?? '';
  await poll(
    () => leader.state.get().meeting?.waiting.some((w) => w.participantId === pid),
    10_000,
    'the member waiting',
  );
  await leader.client.admit(pid);
  await poll(() => inMeeting(leader, member), 10_000, 'the member in the meeting');
  return { proxy, leader, member };
}

/** The relay "restarts": a new relay instance behind the same address; every connection is cut. */
async function failover(proxy: Wire): Promise<void> {
  const next = await relay();
  proxy.upstream = next.url;
  proxy.cutAll();
}

/** Both rooms back with the same participant ids and security code, and a fresh key for the member. */
async function resumed(leader: Room, member: Room, before: { pid?: string; code?: string; epoch: number }) {
  await poll(
    () => inMeeting(leader, member) && (member.state.get().meeting?.keyEpoch ?? 0) > before.epoch,
    20_000,
    'both rooms back in the meeting with a fresh key',
  );
  expect(member.client.participantId).toBe(before.pid);
  expect(leader.client.securityCode).toBe(before.code);
}

function snapshot(leader: Room, member: Room) {
  return {
    pid: member.client.participantId,
    code: leader.client.securityCode,
    epoch: member.state.get().meeting?.keyEpoch ?? 0,
  };
}

/** Still in the meeting after the leader's resume grace ran out (a member not back is removed then). */
async function stillThereAfterGrace(leader: Room, member: Room): Promise<void> {
  await sleep(GRACE_MS + 1000);
  expect(member.client.meetingId).toBeDefined();
  expect(member.state.get().meeting?.status).toBe('active');
  expect(inMeeting(leader, member)).toBe(true);
  const alerts = [...leader.state.get().alerts, ...member.state.get().alerts].map((a) => a.id);
  expect(alerts).not.toContain('resume');
}

beforeAll(async () => {
  ca = await createDevelopmentCa();
}, 30_000);

afterEach(async () => {
  for (const r of rooms) await r.client.stop();
  for (const p of proxies) await p.close().catch(() => undefined);
  for (const r of relays) await r.close();
  rooms = [];
  proxies = [];
  relays = [];
});

describe('a room resuming its meeting after the relay went away', () => {
  it("the leader's create reply and a roster naming a member already back, in one chunk: the member stays", async () => {
    const { proxy, leader, member } = await meeting();
    const before = snapshot(leader, member);
    // The leader's re-create reply is held until the relay lists the member as waiting (it came back
    // within the same instant), then both go out in one write.
    proxy.onDevice = (m, pair) => {
      if (isLeaderResume(m))
        pair.coalesceReplyTo = {
          id: m.id,
          until: (f) => f.type === 'roster' && f.waiting.some((w: Json) => w.participantId === before.pid),
        };
      return 'pass';
    };
    await failover(proxy);
    await resumed(leader, member, before);
    expect(proxy.coalesced).toBeGreaterThan(0);
    await stillThereAfterGrace(leader, member);
  }, 40_000);

  it("a member's join reply ('waiting') and its instant re-admit ('active') in one chunk: the wall says active", async () => {
    const { proxy, leader, member } = await meeting();
    const before = snapshot(leader, member);
    proxy.onDevice = (m, pair) => {
      if (isMemberResume(m))
        pair.coalesceReplyTo = { id: m.id, until: (f) => f.type === 'meeting' && f.status === 'active' };
      return 'pass';
    };
    await failover(proxy);
    await resumed(leader, member, before);
    expect(proxy.coalesced).toBeGreaterThan(0);
    await sleep(500);
    expect(member.state.get().meeting?.status).toBe('active');
    expect(member.statuses.at(-1)).toBe('active');
  }, 40_000);

  it("'rate-limited' answers to the resume requests are retried at least 1 s apart; the meeting goes on", async () => {
    const { proxy, leader, member } = await meeting();
    const before = snapshot(leader, member);
    const asked: Record<'create' | 'join', number[]> = { create: [], join: [] };
    proxy.onDevice = (m) => {
      if (!isLeaderResume(m) && !isMemberResume(m)) return 'pass';
      const times = asked[m.type as 'create' | 'join'];
      times.push(Date.now());
      if (times.length > 2) return 'pass';
      return {
        reply: { type: 'error', id: m.id, code: 'rate-limited', message: 'too many create/join requests' },
      };
    };
    await failover(proxy);
    await resumed(leader, member, before);
    for (const times of Object.values(asked)) {
      expect(times.length).toBeGreaterThanOrEqual(3);
      // The 2 rate-limited answers are each followed by a wait of at least 1 s.
      const gaps = times.slice(1, 3).map((t, i) => t - (times[i] ?? t));
      expect(Math.min(...gaps)).toBeGreaterThanOrEqual(950);
    }
    await stillThereAfterGrace(leader, member);
  }, 40_000);

  it('a connection that closes under a resume request: the next connection resumes; the meeting goes on', async () => {
    const { proxy, leader, member } = await meeting();
    const before = snapshot(leader, member);
    const cut = { create: 0, join: 0 };
    proxy.onDevice = (m) => {
      if (isLeaderResume(m) && cut.create++ === 0) return 'cut';
      if (isMemberResume(m) && cut.join++ === 0) return 'cut';
      return 'pass';
    };
    await failover(proxy);
    await resumed(leader, member, before);
    expect(cut.create).toBeGreaterThanOrEqual(2);
    expect(cut.join).toBeGreaterThanOrEqual(2);
    await stillThereAfterGrace(leader, member);
  }, 40_000);

  it('an explicit refusal of the resume still ends the meeting, with an alert', async () => {
    const { proxy, leader, member } = await meeting();
    proxy.onDevice = (m) =>
      isMemberResume(m)
        ? {
            reply: {
              type: 'error',
              id: m.id,
              code: 'id-bound',
              message: 'that id is bound to another device',
            },
          }
        : 'pass';
    await failover(proxy);
    await poll(() => member.client.meetingId === undefined, 15_000, 'the member out of the meeting');
    expect(member.state.get().meeting?.status).toBe('ended');
    expect(member.state.get().alerts.map((a) => a.id)).toContain('resume');
    expect(leader.client.meetingId).toBeDefined();
  }, 40_000);
});
