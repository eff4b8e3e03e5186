// The relay server as one node of a cluster (issue 15): three startRelay() nodes in this process share
// one private redis-server (LocalRedis); devices are raw RelayConnections, whose request() rejects with
// RelayRedirect on a redirect (following it is the clients' job, test/relay-cluster-clients.test.ts).
// Placement by load, redirects to the host, meetings hosted here served without Redis, the
// cluster-wide id reservation, drain, 'lost' — and what a hostile client or a forged Redis entry gains.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { RelayConnection } from '../device/daemon/relay-connection.js';
import type { ServerMessage } from '../src/core/protocol/relay.js';
import { RelayRedirect, RelayRequestError } from '../src/core/protocol/relay-requests.js';
import type { CertificateAuthority } from '../src/pki/index.js';
import { issuePersonCertificate } from '../src/pki/person.js';
import { LocalRedis } from '../src/relay/cluster/local-redis.js';
import { RedisCluster } from '../src/relay/cluster/redis-cluster.js';
import { createDevelopmentCa, type DevelopmentDevice, issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { newParticipantIdFor } from '../src/relay/id-binding.js';
import { CLOSE } from '../src/relay/limits.js';
import {
  isRelayNodeUrl,
  LOOKUP_BURST,
  PLACEMENT_BURST,
  type Relay,
  startRelay,
} from '../src/relay/server.js';
import { silentLogger } from '../src/util/log.js';

let ca: CertificateAuthority;
let caPem: string;
let dev: Record<'leader' | 'leader2' | 'leader3' | 'member' | 'member2' | 'squatter', DevelopmentDevice>;
let redis: LocalRedis;
let admin: Redis;
const relays: Relay[] = [];
const open: RelayConnection[] = [];

interface Node {
  id: string;
  relay: Relay;
  url: string;
}

// Short timers so liveness and reconciliation show within a second; TTL ≥ 2 × refresh (a slow tick
// on a loaded box must not kill a node).
const REFRESH_MS = 150;
const NODE_TTL_MS = 1500;

let prefix = '';

async function startNode(id: string): Promise<Node> {
  const relay = await startRelay({
    log: silentLogger,
    trust: { caPems: [caPem] },
    cluster: ({ url }) =>
      new RedisCluster({
        redisUrl: redis.url,
        nodeId: id,
        url,
        log: silentLogger,
        prefix,
        refreshMs: REFRESH_MS,
        nodeTtlMs: NODE_TTL_MS,
      }),
  });
  relays.push(relay);
  return { id, relay, url: relay.url };
}

async function startNodes(...ids: string[]): Promise<Node[]> {
  const nodes: Node[] = [];
  for (const id of ids) nodes.push(await startNode(id));
  return nodes;
}

async function connect(node: Node | string, device: DevelopmentDevice): Promise<RelayConnection> {
  const c = await RelayConnection.connect(typeof node === 'string' ? node : node.url, {
    certificatePem: device.certificatePem,
    identityKey: device.identityKey,
  });
  open.push(c);
  return c;
}

type MeetingReply = Extract<ServerMessage, { type: 'meeting' }>;

async function create(c: RelayConnection, meetingId?: string): Promise<MeetingReply> {
  const reply = await c.request({ type: 'create', ...(meetingId ? { meetingId } : {}) });
  if (reply.type !== 'meeting') throw new Error(`expected a meeting reply, got ${reply.type}`);
  return reply;
}

async function join(c: RelayConnection, meetingId: string): Promise<MeetingReply> {
  const reply = await c.request({ type: 'join', meetingId });
  if (reply.type !== 'meeting') throw new Error(`expected a meeting reply, got ${reply.type}`);
  return reply;
}

async function rejection(p: Promise<unknown>): Promise<RelayRequestError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof RelayRequestError) return err;
    throw err;
  }
  throw new Error('expected the request to be refused');
}

async function redirectOf(p: Promise<unknown>): Promise<RelayRedirect> {
  const err = await rejection(p);
  if (!(err instanceof RelayRedirect))
    throw new Error(`expected a redirect, got ${err.code}: ${err.message}`);
  return err;
}

function closeCode(c: RelayConnection): Promise<number> {
  return new Promise((resolve) => c.once('close', (code) => resolve(code)));
}

async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 8000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The waiting member shows in the leader's roster, then the leader admits it. */
async function admit(leader: RelayConnection, participantId: string): Promise<void> {
  await leader.request({ type: 'admit', participantId });
}

beforeAll(async () => {
  ca = await createDevelopmentCa();
  caPem = ca.certPem;
  dev = {
    leader: await issueDevelopmentDevice(ca, { roomName: 'Boardroom' }),
    leader2: await issueDevelopmentDevice(ca, { roomName: 'Annex' }),
    leader3: await issueDevelopmentDevice(ca, { roomName: 'Loft' }),
    member: await issueDevelopmentDevice(ca, { roomName: 'Huddle' }),
    member2: await issueDevelopmentDevice(ca, { roomName: 'Nook' }),
    squatter: await issueDevelopmentDevice(ca, { roomName: 'Squat' }),
  };
  redis = await LocalRedis.start();
  admin = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 200 });
  admin.on('error', () => undefined);
});

// Each test its own key prefix and nodes: nothing leaks from one to the next.
afterEach(async () => {
  for (const c of open.splice(0)) c.terminate();
  await Promise.all(relays.splice(0).map((r) => r.close()));
  prefix = `test:${randomBytes(4).toString('hex')}:`;
});
prefix = `test:${randomBytes(4).toString('hex')}:`;

afterAll(async () => {
  admin?.disconnect();
  await redis?.stop();
});

describe('placement and redirects', () => {
  it('places a new meeting on the least-loaded node: a redirect there, then the create succeeds there', async () => {
    const [a, b, c] = await startNodes('a', 'b', 'c');
    if (!a || !b || !c) throw new Error('nodes');
    // All idle: the node asked keeps it (no redirect).
    const m1 = await create(await connect(a, dev.leader));
    expect(a.relay.registry.has(m1.meetingId)).toBe(true);
    const m2 = await create(await connect(b, dev.leader2));
    expect(b.relay.registry.has(m2.meetingId)).toBe(true);
    // a and b hold one each: c is the least loaded. The drawn id comes with the redirect.
    const viaA = await connect(a, dev.leader3);
    const redirect = await redirectOf(viaA.request({ type: 'create' }));
    expect(redirect.url).toBe(c.url);
    expect(a.relay.registry.has(redirect.meetingId)).toBe(false);
    const m3 = await create(await connect(redirect.url, dev.leader3), redirect.meetingId);
    expect(m3).toMatchObject({ meetingId: redirect.meetingId, role: 'leader', status: 'active' });
    expect(c.relay.registry.has(m3.meetingId)).toBe(true);
    // The drawn id is reserved for that device at once, cluster-wide (before it even got there).
    const squat = await rejection(
      (await connect(b, dev.squatter)).request({ type: 'create', meetingId: m3.meetingId }),
    );
    expect(squat.code).toBe('id-bound');
    // /healthz shows the cluster as this node last read it.
    const health = (await a.relay.app.inject({ method: 'GET', url: '/healthz' })).json() as {
      cluster: { nodeId: string; connected: boolean; draining: boolean; nodes: { id: string }[] };
    };
    expect(health.cluster).toMatchObject({ nodeId: 'a', connected: true, draining: false });
    await until('all three nodes in /healthz', async () => {
      const h = (await a.relay.app.inject({ method: 'GET', url: '/healthz' })).json() as typeof health;
      return h.cluster.nodes.map((n) => n.id).join() === 'a,b,c';
    });
    const metrics = (await a.relay.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/sealroom_relay_redirects_total\{request="create"\} 1/);
    expect(metrics).toMatch(/sealroom_relay_cluster_nodes 3/);
    expect(metrics).toMatch(/sealroom_relay_cluster_connected 1/);
  });

  it('redirects a join through another node to the host, where the member is admitted', async () => {
    const [a, b] = await startNodes('a', 'b', 'c');
    if (!a || !b) throw new Error('nodes');
    const leader = await connect(a, dev.leader);
    const m = await create(leader);
    const redirect = await redirectOf(
      (await connect(b, dev.member)).request({ type: 'join', meetingId: m.meetingId }),
    );
    expect(redirect).toMatchObject({ url: a.url, meetingId: m.meetingId });
    const member = await connect(redirect.url, dev.member);
    const waiting = await join(member, m.meetingId);
    expect(waiting.status).toBe('waiting');
    await admit(leader, waiting.participantId);
    expect(a.relay.registry.activeConnections(m.meetingId)).toHaveLength(2);
    // The leader resuming through another node (same device, same id) is sent to the host as well.
    const again = await redirectOf(
      (await connect(b, dev.leader)).request({ type: 'create', meetingId: m.meetingId }),
    );
    expect(again.url).toBe(a.url);
    // A join for a meeting that lives nowhere: answered where asked, like a single relay.
    const none = await rejection(
      (await connect(b, dev.member2)).request({ type: 'join', meetingId: 'zzzz-zzzz-zzzz' }),
    );
    expect(none.code).toBe('no-meeting');
  });

  it('refuses a meeting id bound to another device on every node, live or orphaned, until its leader frees it', async () => {
    const [a, b, c] = await startNodes('a', 'b', 'c');
    if (!a || !b || !c) throw new Error('nodes');
    const leader = await connect(a, dev.leader);
    const m = await create(leader);
    for (const node of [a, b, c]) {
      const err = await rejection(
        (await connect(node, dev.squatter)).request({ type: 'create', meetingId: m.meetingId }),
      );
      expect(err.code).toBe('id-bound');
    }
    // The leader's connection drops: the meeting ends here but its id stays bound (for its resume).
    leader.terminate();
    await until('the meeting to end on a', () => !a.relay.registry.has(m.meetingId));
    for (const node of [a, b, c]) {
      const err = await rejection(
        (await connect(node, dev.squatter)).request({ type: 'create', meetingId: m.meetingId }),
      );
      expect(err.code).toBe('id-bound');
    }
    // Its leader resumes it through c: placed anew (the entry on a was released), kept on c.
    const resumedLeader = await connect(c, dev.leader);
    const resumed = await create(resumedLeader, m.meetingId);
    expect(c.relay.registry.has(resumed.meetingId)).toBe(true);
    // The leader ends it on purpose: the id is free for anyone, anywhere.
    await resumedLeader.request({ type: 'end' });
    await until('the id to be free', async () => (await admin.exists(`${prefix}resv:${m.meetingId}`)) === 0);
    const taken = await create(await connect(b, dev.squatter), m.meetingId);
    expect(taken.role).toBe('leader');
  });
});

describe('Redis outage', () => {
  it('serves a meeting hosted here with Redis down, refuses only placements, and republishes after a restart', async () => {
    const [a, b] = await startNodes('a', 'b');
    if (!a || !b) throw new Error('nodes');
    const leader = await connect(a, dev.leader);
    const m = await create(leader);
    await redis.kill9();
    await until('a to see redis gone', () => a.relay.cluster?.status().connected === false);
    // Joins, admission and the bulletin board of a meeting hosted here need no Redis.
    const member = await connect(a, dev.member);
    const waiting = await join(member, m.meetingId);
    await admit(leader, waiting.participantId);
    expect(a.relay.registry.activeConnections(m.meetingId)).toHaveLength(2);
    // A new meeting cannot be placed, and a meeting not hosted here cannot be located: retriable refusals, fast.
    const t0 = Date.now();
    const refused = await rejection((await connect(a, dev.leader2)).request({ type: 'create' }));
    expect(refused.code).toBe('cluster-unavailable');
    expect(Date.now() - t0).toBeLessThan(3000);
    const lost = await rejection(
      (await connect(b, dev.member2)).request({ type: 'join', meetingId: m.meetingId }),
    );
    expect(lost.code).toBe('cluster-unavailable');
    // Redis comes back empty: a's meeting reappears within a refresh, so b redirects to it again.
    await redis.restart();
    await until(
      'b to redirect to a again',
      async () => {
        const c = await connect(b, dev.member2);
        try {
          await c.request({ type: 'join', meetingId: m.meetingId });
        } catch (err) {
          return err instanceof RelayRedirect && err.url === a.url;
        } finally {
          c.terminate();
        }
        return false;
      },
      10_000,
    );
    // Its reservation came back with it.
    const squat = await rejection(
      (await connect(b, dev.squatter)).request({ type: 'create', meetingId: m.meetingId }),
    );
    expect(squat.code).toBe('id-bound');
  });
});

describe('drain and loss', () => {
  it('drain: no new meetings, the meetings here go on until the deadline, then move (4012) and resume elsewhere', async () => {
    // Both meetings on a before the others exist.
    const a = await startNode('a');
    const leader = await connect(a, dev.leader);
    const m1 = await create(leader);
    const member = await connect(a, dev.member);
    await admit(leader, (await join(member, m1.meetingId)).participantId);
    const leader2 = await connect(a, dev.leader2);
    const m2 = await create(leader2);
    const [b, c] = await startNodes('b', 'c');
    if (!b || !c) throw new Error('nodes');
    const leaderClosed = closeCode(leader);
    const memberClosed = closeCode(member);
    const drained = a.relay.drain({ timeoutMs: 2500 });
    await until('a to be draining', () => a.relay.cluster?.status().draining === true);
    // Nothing it hosts is refused before the deadline: a join is served here.
    const member2 = await connect(a, dev.member2);
    const late = await join(member2, m1.meetingId);
    expect(late.status).toBe('waiting');
    const member2Closed = closeCode(member2);
    // A new meeting goes elsewhere.
    const fresh = await redirectOf((await connect(a, dev.leader3)).request({ type: 'create' }));
    expect([b.url, c.url]).toContain(fresh.url);
    // A meeting ending meanwhile just ends.
    await leader2.request({ type: 'end' });
    expect(a.relay.registry.has(m2.meetingId)).toBe(false);
    const result = await drained;
    expect(result).toEqual({ ended: 1, moved: 1 });
    expect(await leaderClosed).toBe(CLOSE.moved);
    expect(await memberClosed).toBe(CLOSE.moved);
    expect(await member2Closed).toBe(CLOSE.moved);
    expect(a.relay.registry.meetingCount()).toBe(0);
    // The leader comes back through a: sent to another node, where it re-creates the same meeting.
    const back = await redirectOf(
      (await connect(a, dev.leader)).request({ type: 'create', meetingId: m1.meetingId }),
    );
    expect([b.url, c.url]).toContain(back.url);
    const recreated = await create(await connect(back.url, dev.leader), m1.meetingId);
    expect(recreated.meetingId).toBe(m1.meetingId);
    // The member follows it there.
    const memberBack = await redirectOf(
      (await connect(a, dev.member)).request({ type: 'join', meetingId: m1.meetingId }),
    );
    expect(memberBack.url).toBe(back.url);
    const metrics = (await a.relay.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(/sealroom_relay_meetings_moved_total\{reason="drain"\} 1/);
    expect(metrics).toMatch(/sealroom_relay_cluster_draining 1/);
  });

  it('close() does not wait for a device that connects while the node is closing', async () => {
    // Its cluster takes a while to deregister (a slow Redis): the window in which a room whose
    // meeting just moved reconnects through its entry list, which still names this node.
    let deregistering!: () => void;
    const stopping = new Promise<void>((r) => {
      deregistering = r;
    });
    class SlowStop extends RedisCluster {
      override async stop(deregister: boolean): Promise<void> {
        deregistering();
        await new Promise((r) => setTimeout(r, 500));
        return super.stop(deregister);
      }
    }
    const relay = await startRelay({
      log: silentLogger,
      trust: { caPems: [caPem] },
      cluster: ({ url }) =>
        new SlowStop({
          redisUrl: redis.url,
          nodeId: 'a',
          url,
          log: silentLogger,
          prefix,
          refreshMs: REFRESH_MS,
        }),
    });
    const closed = relay.close().then(() => 'closed');
    await stopping;
    // A peer that never answers the close handshake (its network went quiet): only a cut ends it.
    const late = new WebSocket(relay.url);
    late.on('error', () => undefined);
    const outcome = await new Promise<string>((resolve) => {
      late.once('message', () => resolve('served'));
      late.once('close', () => resolve('cut'));
    });
    (late as unknown as { _socket?: { pause(): void } })._socket?.pause();
    const result = await Promise.race([
      closed,
      new Promise<string>((r) => setTimeout(() => r('still closing after 5 s'), 5000)),
    ]);
    late.terminate();
    expect(result).toBe('closed');
    expect(outcome).toBe('cut');
  });

  it("'lost': a meeting re-placed on another live node is ended here with 4012 and resumes there", async () => {
    const [a, b] = await startNodes('a', 'b');
    if (!a || !b) throw new Error('nodes');
    const leader = await connect(a, dev.leader);
    const m = await create(leader);
    const member = await connect(a, dev.member);
    await admit(leader, (await join(member, m.meetingId)).participantId);
    const leaderClosed = closeCode(leader);
    const memberClosed = closeCode(member);
    // What b's placement writes when a was unreachable long enough to be declared dead.
    await admin.set(`${prefix}meeting:${m.meetingId}`, 'b', 'PX', 30_000);
    expect(await leaderClosed).toBe(CLOSE.moved);
    expect(await memberClosed).toBe(CLOSE.moved);
    expect(a.relay.registry.has(m.meetingId)).toBe(false);
    // a does not take it back: the next reconciliations leave b's entry alone.
    await new Promise((r) => setTimeout(r, REFRESH_MS * 3));
    expect(await admin.get(`${prefix}meeting:${m.meetingId}`)).toBe('b');
    const back = await redirectOf(
      (await connect(a, dev.leader)).request({ type: 'create', meetingId: m.meetingId }),
    );
    expect(back.url).toBe(b.url);
    await create(await connect(b, dev.leader), m.meetingId);
    expect(b.relay.registry.has(m.meetingId)).toBe(true);
  });
});

describe('hostile', () => {
  it('never redirects to a node that is not alive with a well-formed registration', async () => {
    const [a, b] = await startNodes('a', 'b');
    if (!a || !b) throw new Error('nodes');
    // An entry naming a node that never registered (or whose key expired): no redirect.
    await admin.set(`${prefix}meeting:ghost-meeting`, 'ghost', 'PX', 30_000);
    const none = await rejection(
      (await connect(a, dev.member)).request({ type: 'join', meetingId: 'ghost-meeting' }),
    );
    expect(none).not.toBeInstanceOf(RelayRedirect);
    expect(none.code).toBe('no-meeting');
    // A "node" registered with a URL that is no relay URL (a web page, credentials, a query): never
    // used for a redirect, nor chosen by placement however idle it claims to be.
    for (const [i, url] of [
      'https://evil.example/',
      'ws://user:pw@evil.example/v1/ws',
      'ws://evil.example/v1/ws?x=1',
    ].entries()) {
      const id = `evil${i}`;
      await admin.hset(`${prefix}node:${id}`, { url, draining: '0', meetings: '0' });
      await admin.pexpire(`${prefix}node:${id}`, 30_000);
      await admin.sadd(`${prefix}nodes`, id);
      await admin.set(`${prefix}meeting:evil-meeting-${i}`, id, 'PX', 30_000);
      const err = await rejection(
        (await connect(a, dev.member)).request({ type: 'join', meetingId: `evil-meeting-${i}` }),
      );
      expect(err).not.toBeInstanceOf(RelayRedirect);
    }
    // Placement ignores them: with a and b idle the create stays on a (the caller).
    const m = await create(await connect(a, dev.leader));
    expect(a.relay.registry.has(m.meetingId)).toBe(true);
    // A meeting id pointed by a forged entry at an absent node: placed on a live one (b, idle).
    await admin.set(`${prefix}meeting:forged-id-1`, 'nowhere', 'PX', 30_000);
    const placed = await redirectOf(
      (await connect(a, dev.leader2)).request({ type: 'create', meetingId: 'forged-id-1' }),
    );
    expect(placed).toMatchObject({ url: b.url, meetingId: 'forged-id-1' });
  });

  it('writes no reservation for what the registry would refuse: a person creating, a participant id of another device', async () => {
    const [a, b] = await startNodes('a', 'b');
    if (!a || !b) throw new Error('nodes');
    await create(await connect(a, dev.leader2)); // b is now the least loaded: a create from a would be placed there
    const { publicKey, privateKey } = generateKeyPairSync('ed25519');
    const issued = await issuePersonCertificate({
      ca,
      publicKeyRaw: new Uint8Array(publicKey.export({ format: 'der', type: 'spki' }).subarray(12)),
      person: { name: 'Mallory', email: 'mallory@example.org', org: 'Sealroom Demo Org' },
    });
    const mallory = await RelayConnection.connect(a.url, {
      certificatePem: issued.certPem,
      identityKey: privateKey,
    });
    open.push(mallory);
    const personCreate = await rejection(mallory.request({ type: 'create', meetingId: 'taken-by-person' }));
    expect(personCreate.code).toBe('rooms-only');
    const stolen = newParticipantIdFor(dev.leader.deviceId);
    const squat = await rejection(
      (await connect(a, dev.squatter)).request({
        type: 'create',
        meetingId: 'taken-by-squat',
        participantId: stolen,
      }),
    );
    expect(squat.code).toBe('id-bound');
    expect(await admin.exists(`${prefix}resv:taken-by-person`, `${prefix}resv:taken-by-squat`)).toBe(0);
    expect(await admin.exists(`${prefix}meeting:taken-by-person`, `${prefix}meeting:taken-by-squat`)).toBe(0);
    // Both ids stay free for their rightful devices.
    const ok = await redirectOf(
      (await connect(a, dev.leader)).request({ type: 'create', meetingId: 'taken-by-squat' }),
    );
    expect(ok.url).toBe(b.url);
  });

  it('two devices racing for the same new meeting id on two nodes: exactly one gets it', async () => {
    const [a, b] = await startNodes('a', 'b');
    if (!a || !b) throw new Error('nodes');
    const [x, y] = await Promise.all([connect(a, dev.leader), connect(b, dev.squatter)]);
    const results = await Promise.allSettled([
      x.request({ type: 'create', meetingId: 'race-race-race' }),
      y.request({ type: 'create', meetingId: 'race-race-race' }),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost.map((r) => (r.reason as RelayRequestError).code)).toEqual(['id-bound']);
    expect(
      Number(a.relay.registry.has('race-race-race')) + Number(b.relay.registry.has('race-race-race')),
    ).toBe(1);
  });

  it('a redirect URL is a relay WebSocket URL and nothing else', () => {
    for (const ok of [
      'ws://127.0.0.1:7443/v1/ws',
      'wss://relay-2.example/v1/ws',
      'wss://proxy.example/sealroom/v1/ws',
    ])
      expect(isRelayNodeUrl(ok)).toBe(true);
    for (const bad of [
      'https://relay.example/v1/ws',
      'javascript:alert(1)//v1/ws',
      'wss://user:pw@relay.example/v1/ws',
      'wss://relay.example/v1/ws?next=https://evil.example',
      'wss://relay.example/v1/ws#x',
      'wss://relay.example/',
      `wss://${'a'.repeat(520)}.example/v1/ws`,
      'not a url',
    ])
      expect(isRelayNodeUrl(bad)).toBe(false);
  });

  it("a member's resume loop (a join every 250 ms on one connection) is never rate-limited; a prober is", async () => {
    const [a, b] = await startNodes('a', 'b');
    if (!a || !b) throw new Error('nodes');
    const meetingId = 'back-back-back';
    // The leader has not re-created the meeting yet: 'no-meeting', again and again, for 3.5 s.
    const member = await connect(b, dev.member);
    for (let i = 0; i < 14; i++) {
      const err = await rejection(member.request({ type: 'join', meetingId }));
      expect(err.code, `try ${i + 1}`).toBe('no-meeting');
      await new Promise((r) => setTimeout(r, 250));
    }
    // Re-created on a: the same connection is redirected there.
    await create(await connect(a, dev.leader), meetingId);
    const redirect = await redirectOf(member.request({ type: 'join', meetingId }));
    expect(redirect.url).toBe(a.url);
    // Asking as fast as it can for meetings that live nowhere: past the burst, refused without Redis.
    const prober = await connect(b, dev.member2);
    const replies = await Promise.allSettled(
      Array.from({ length: LOOKUP_BURST + 10 }, (_, i) =>
        prober.request({ type: 'join', meetingId: `none-none-${String(i).padStart(4, '0')}` }),
      ),
    );
    const codes = replies.map((r) =>
      r.status === 'rejected' && r.reason instanceof RelayRequestError ? r.reason.code : 'other',
    );
    expect(codes.slice(0, LOOKUP_BURST)).toEqual(Array(LOOKUP_BURST).fill('no-meeting'));
    expect(codes.filter((c) => c === 'rate-limited').length).toBeGreaterThanOrEqual(8);
  });

  it('bounds what one connection costs by asking again and again for a meeting hosted elsewhere', async () => {
    const [a, b] = await startNodes('a', 'b');
    if (!a || !b) throw new Error('nodes');
    const m = await create(await connect(a, dev.leader));
    const prober = await connect(b, dev.member);
    const replies = await Promise.allSettled(
      Array.from({ length: PLACEMENT_BURST + 10 }, () =>
        prober.request({ type: 'join', meetingId: m.meetingId }),
      ),
    );
    const codes = replies.map((r) =>
      r.status === 'rejected' && r.reason instanceof RelayRequestError ? r.reason.code : 'other',
    );
    // The burst is answered (redirects), the rest refused without a Redis lookup.
    expect(codes.slice(0, PLACEMENT_BURST)).toEqual(Array(PLACEMENT_BURST).fill('redirect'));
    expect(codes.slice(PLACEMENT_BURST)).toEqual(Array(10).fill('rate-limited'));
    const metrics = (await b.relay.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(metrics).toMatch(
      new RegExp(`sealroom_relay_redirects_total\\{request="join"\\} ${PLACEMENT_BURST}\\b`),
    );
  });
});
