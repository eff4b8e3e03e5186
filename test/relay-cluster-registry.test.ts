// The cluster registry (src/relay/cluster/redis-cluster.ts) against a real, private redis-server
// (LocalRedis): placement by load and its atomicity across nodes, the meeting-id reservations,
// liveness by TTL, draining, 'lost' after a re-placement, a Redis restart and an outage, and hostile
// values written straight into Redis (what a node or anyone with Redis access could forge).
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalRedis } from '../src/relay/cluster/local-redis.js';
import type { HostedMeeting, Placement } from '../src/relay/cluster/port.js';
import { isNodeUrl, RedisCluster, type RedisClusterOptions } from '../src/relay/cluster/redis-cluster.js';
import { newMeetingId } from '../src/relay/meetings.js';
import { silentLogger } from '../src/util/log.js';

// Short TTLs keep the liveness cases fast; still 6 refreshes per TTL for a loaded box.
const FAST = { nodeTtlMs: 1500, refreshMs: 250 };

let redis: LocalRedis;
let raw: Redis;

beforeAll(async () => {
  redis = await LocalRedis.start();
  raw = new Redis(redis.url, { maxRetriesPerRequest: 1 });
});

afterAll(async () => {
  raw?.disconnect();
  await redis?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await sleep(25);
  }
}

/** A set of nodes under a private key prefix, each with a mutable list of hosted meetings. */
async function makeNodes(
  ids: string[],
  opts: Partial<RedisClusterOptions> & { redisUrl?: string } = {},
): Promise<{
  prefix: string;
  nodes: RedisCluster[];
  hosted: Map<string, HostedMeeting[]>;
  stopAll: () => Promise<void>;
}> {
  const prefix = opts.prefix ?? `t${randomBytes(4).toString('hex')}:`;
  const hosted = new Map<string, HostedMeeting[]>();
  const nodes = ids.map(
    (id, i) =>
      new RedisCluster({
        redisUrl: opts.redisUrl ?? redis.url,
        nodeId: id,
        url: `ws://127.0.0.1:${7000 + i}/v1/ws`,
        log: silentLogger,
        prefix,
        ...opts,
      }),
  );
  for (const n of nodes) hosted.set(n.nodeId, []);
  await Promise.all(nodes.map((n) => n.start(() => hosted.get(n.nodeId) ?? [])));
  return {
    prefix,
    nodes,
    hosted,
    stopAll: () => Promise.all(nodes.map((n) => n.stop(false))).then(() => {}),
  };
}

/** The node a placement asked from `from` ends on. */
function target(from: RedisCluster, p: Placement): string {
  if (p.kind === 'here') return from.nodeId;
  if (p.kind === 'elsewhere') return p.nodeId;
  throw new Error(`refused: ${p.code}`);
}

describe('RedisCluster placement', () => {
  it('spreads 60 concurrent creates from 3 nodes evenly, each placed exactly once', async () => {
    const { prefix, nodes, stopAll } = await makeNodes(['n1', 'n2', 'n3']);
    try {
      const results = await Promise.all(
        Array.from({ length: 60 }, async (_, i) => {
          const from = nodes[i % 3]!;
          const p = await from.placeCreate(undefined, `dev-${i}`, () => newMeetingId());
          return { p, node: target(from, p) };
        }),
      );
      const ids = results.map((r) => r.p.kind !== 'refused' && r.p.meetingId);
      expect(new Set(ids).size).toBe(60);
      const perNode = new Map<string, number>();
      for (const r of results) perNode.set(r.node, (perNode.get(r.node) ?? 0) + 1);
      const counts = [...perNode.values()];
      expect(counts.length).toBe(3);
      expect(Math.max(...counts) / (60 / 3)).toBeLessThanOrEqual(1.5);
      // Redis agrees with every answer: one entry per meeting, on the node the caller was told.
      for (const r of results) {
        if (r.p.kind === 'refused') throw new Error('refused');
        expect(await raw.get(`${prefix}meeting:${r.p.meetingId}`)).toBe(r.node);
        expect(await raw.get(`${prefix}resv:${r.p.meetingId}`)).toMatch(/^dev-\d+$/);
      }
      // Redirects carry the target's published URL (with even loads every caller may keep its own).
      for (const r of results) if (r.p.kind === 'elsewhere') expect(isNodeUrl(r.p.url)).toBe(true);
    } finally {
      await stopAll();
    }
  });

  it('prefers the least loaded node, then the calling node', async () => {
    const { nodes, hosted, stopAll } = await makeNodes(['a', 'b']);
    const [a, b] = nodes as [RedisCluster, RedisCluster];
    try {
      // Equal load: the caller keeps it (no redirect).
      expect((await b.placeCreate(undefined, 'd0', () => newMeetingId())).kind).toBe('here');
      // b now has 1 pending placement: the next one from b goes to a.
      const p = await b.placeCreate(undefined, 'd1', () => newMeetingId());
      expect(target(b, p)).toBe('a');
      // a hosts 5 meetings (as published by its refresh): the next 3 creates all go to b.
      hosted.set(
        'a',
        Array.from({ length: 5 }, (_, i) => ({ meetingId: `host-a-${i}`, leaderDeviceId: `l${i}` })),
      );
      await a.hosted({ meetingId: 'host-a-0', leaderDeviceId: 'l0' });
      for (let i = 0; i < 3; i++)
        expect(target(a, await a.placeCreate(undefined, `e${i}`, () => newMeetingId()))).toBe('b');
    } finally {
      await stopAll();
    }
  });

  it('never draws a fresh id that is placed or reserved', async () => {
    const { prefix, nodes, stopAll } = await makeNodes(['a']);
    const a = nodes[0]!;
    try {
      await raw.set(`${prefix}resv:aaaa-aaaa-aaaa`, 'someone', 'PX', 60_000);
      await raw.set(`${prefix}meeting:bbbb-bbbb-bbbb`, 'dead-node', 'PX', 60_000);
      await raw.hset(`${prefix}resv:cccc-cccc-cccc`, 'x', 'y'); // garbage counts as taken too
      const seq = ['aaaa-aaaa-aaaa', 'bbbb-bbbb-bbbb', 'cccc-cccc-cccc'];
      let i = 0;
      // Every candidate of the first draw is taken: the script says retry, the second draw has a free one.
      const draw = () => (i++ < 8 ? seq[i % 3]! : 'dddd-dddd-dddd');
      const p = await a.placeCreate(undefined, 'dev', draw);
      expect(p).toEqual({ kind: 'here', meetingId: 'dddd-dddd-dddd' });
      expect(await raw.get(`${prefix}resv:aaaa-aaaa-aaaa`)).toBe('someone');
      expect(await raw.get(`${prefix}meeting:bbbb-bbbb-bbbb`)).toBe('dead-node');
    } finally {
      await stopAll();
    }
  });

  it('refuses a meeting id reserved for another device, and sends its holder to the host', async () => {
    const { nodes, stopAll } = await makeNodes(['a', 'b']);
    const [a, b] = nodes as [RedisCluster, RedisCluster];
    try {
      const first = await a.placeCreate('wxyz-wxyz-wxyz', 'leader', () => newMeetingId());
      const host = target(a, first);
      const other = await b.placeCreate('wxyz-wxyz-wxyz', 'squatter', () => newMeetingId());
      expect(other).toMatchObject({ kind: 'refused', code: 'id-bound' });
      // The holder asking again (e.g. after a drop) lands on the same node, from either entry.
      expect(target(b, await b.placeCreate('wxyz-wxyz-wxyz', 'leader', () => newMeetingId()))).toBe(host);
      expect(target(a, await a.placeCreate('wxyz-wxyz-wxyz', 'leader', () => newMeetingId()))).toBe(host);
    } finally {
      await stopAll();
    }
  });

  it('released(freeId) drops the reservation only when the leader ended it', async () => {
    const { prefix, nodes, hosted, stopAll } = await makeNodes(['a']);
    const a = nodes[0]!;
    try {
      for (const id of ['keep-keep-keep', 'free-free-free']) {
        expect((await a.placeCreate(id, 'L', () => newMeetingId())).kind).toBe('here');
        hosted.get('a')!.push({ meetingId: id, leaderDeviceId: 'L' });
        await a.hosted({ meetingId: id, leaderDeviceId: 'L' });
      }
      hosted.set('a', []);
      await a.released('keep-keep-keep', false);
      await a.released('free-free-free', true);
      expect(await raw.get(`${prefix}meeting:keep-keep-keep`)).toBeNull();
      expect(await raw.get(`${prefix}meeting:free-free-free`)).toBeNull();
      expect(await raw.get(`${prefix}resv:keep-keep-keep`)).toBe('L');
      expect(await raw.get(`${prefix}resv:free-free-free`)).toBeNull();
      expect(await a.placeCreate('keep-keep-keep', 'M', () => newMeetingId())).toMatchObject({
        code: 'id-bound',
      });
      expect((await a.placeCreate('free-free-free', 'M', () => newMeetingId())).kind).toBe('here');
    } finally {
      await stopAll();
    }
  });
});

describe('RedisCluster liveness', () => {
  it('locates meetings on live nodes, and answers here for dead or absent hosts', async () => {
    const { nodes, hosted, stopAll } = await makeNodes(['a', 'b', 'c'], FAST);
    const [a, b, c] = nodes as [RedisCluster, RedisCluster, RedisCluster];
    try {
      hosted.set('b', [{ meetingId: 'on-b', leaderDeviceId: 'L' }]);
      hosted.set('c', [{ meetingId: 'on-c', leaderDeviceId: 'L2' }]);
      await b.hosted({ meetingId: 'on-b', leaderDeviceId: 'L' });
      await c.hosted({ meetingId: 'on-c', leaderDeviceId: 'L2' });
      expect(await a.locate('on-b')).toEqual({
        kind: 'elsewhere',
        meetingId: 'on-b',
        nodeId: 'b',
        url: b.url,
      });
      expect(await b.locate('on-b')).toEqual({ kind: 'here', meetingId: 'on-b' });
      expect(await a.locate('nowhere')).toEqual({ kind: 'here', meetingId: 'nowhere' });
      // c dies without deregistering (a crash): once its key expires its meetings are nowhere alive.
      await c.stop(false);
      await waitFor(async () => (await a.locate('on-c')).kind === 'here');
      await waitFor(() => !a.status().nodes.some((n) => n.id === 'c'));
    } finally {
      await stopAll();
    }
  });

  it('never places on an expired node, and re-places its meetings on the next create', async () => {
    const { prefix, nodes, hosted, stopAll } = await makeNodes(['a', 'b', 'c'], FAST);
    const [a, , c] = nodes as [RedisCluster, RedisCluster, RedisCluster];
    try {
      hosted.set('c', [{ meetingId: 'was-on-c', leaderDeviceId: 'L' }]);
      await c.hosted({ meetingId: 'was-on-c', leaderDeviceId: 'L' });
      await c.stop(false);
      await waitFor(async () => (await raw.exists(`${prefix}node:c`)) === 0);
      for (let i = 0; i < 10; i++) {
        const p = await a.placeCreate(undefined, `d${i}`, () => newMeetingId());
        expect(target(a, p)).not.toBe('c');
      }
      // The leader comes back (its reservation survived the node): re-placed on a live node.
      const again = await a.placeCreate('was-on-c', 'L', () => newMeetingId());
      expect(['a', 'b']).toContain(target(a, again));
      expect(await raw.get(`${prefix}meeting:was-on-c`)).toBe(target(a, again));
      // Someone else still cannot take it.
      expect(await a.placeCreate('was-on-c', 'X', () => newMeetingId())).toMatchObject({ code: 'id-bound' });
    } finally {
      await stopAll();
    }
  });

  it('gives a draining node no new meetings but keeps its own there', async () => {
    const { nodes, hosted, stopAll } = await makeNodes(['a', 'b'], FAST);
    const [a, b] = nodes as [RedisCluster, RedisCluster];
    try {
      hosted.set('a', [{ meetingId: 'stay-on-a', leaderDeviceId: 'L' }]);
      await a.hosted({ meetingId: 'stay-on-a', leaderDeviceId: 'L' });
      await a.setDraining();
      expect(a.status().draining).toBe(true);
      for (let i = 0; i < 6; i++)
        expect(target(a, await a.placeCreate(undefined, `d${i}`, () => newMeetingId()))).toBe('b');
      // Its existing meeting is still served there (create by the leader, join by anyone).
      expect(target(b, await b.placeCreate('stay-on-a', 'L', () => newMeetingId()))).toBe('a');
      expect(await b.locate('stay-on-a')).toMatchObject({ kind: 'elsewhere', nodeId: 'a' });
      await b.setDraining();
      expect(await a.placeCreate(undefined, 'z', () => newMeetingId())).toMatchObject({
        kind: 'refused',
        code: 'no-node',
      });
      await waitFor(() => b.status().nodes.every((n) => n.draining));
    } finally {
      await stopAll();
    }
  });

  it("emits 'lost' when a meeting it hosts was re-placed on another live node", async () => {
    const { prefix, nodes, hosted, stopAll } = await makeNodes(['a', 'b'], FAST);
    const [a, b] = nodes as [RedisCluster, RedisCluster];
    let stale: RedisCluster | undefined;
    try {
      hosted.set('a', [{ meetingId: 'contested', leaderDeviceId: 'L' }]);
      await a.hosted({ meetingId: 'contested', leaderDeviceId: 'L' });
      // a stalls long enough to be declared dead (its refresh stops, its process lives on).
      await a.stop(false);
      await waitFor(async () => (await raw.exists(`${prefix}node:a`)) === 0);
      expect(target(b, await b.placeCreate('contested', 'L', () => newMeetingId()))).toBe('b');
      // a comes back still holding its copy: the re-placed one wins, a is told to end its own.
      stale = new RedisCluster({
        redisUrl: redis.url,
        nodeId: 'a',
        url: a.url,
        log: silentLogger,
        prefix,
        ...FAST,
      });
      const lost: string[] = [];
      stale.on('lost', (id) => lost.push(id));
      await stale.start(() => hosted.get('a') ?? []);
      await waitFor(() => lost.length > 0);
      expect(lost).toEqual(['contested']);
      await sleep(FAST.refreshMs * 3);
      expect(lost).toEqual(['contested']); // once, not every refresh
      expect(await raw.get(`${prefix}meeting:contested`)).toBe('b');
      // The relay ends its copy: the entry of b is left alone, so is the reservation.
      hosted.set('a', []);
      await stale.released('contested', true);
      expect(await raw.get(`${prefix}meeting:contested`)).toBe('b');
      expect(await raw.get(`${prefix}resv:contested`)).toBe('L');
    } finally {
      await stale?.stop(false);
      await stopAll();
    }
  });
});

describe('RedisCluster and Redis going away', () => {
  it('resynchronises everything after Redis restarts empty', async () => {
    const own = await LocalRedis.start();
    const ownRaw = new Redis(own.url, {
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => 100,
    });
    ownRaw.on('error', () => {});
    const { prefix, nodes, hosted, stopAll } = await makeNodes(['a', 'b'], { ...FAST, redisUrl: own.url });
    const [a, b] = nodes as [RedisCluster, RedisCluster];
    try {
      hosted.set('a', [{ meetingId: 'survivor', leaderDeviceId: 'L' }]);
      await a.hosted({ meetingId: 'survivor', leaderDeviceId: 'L' });
      let resynced = 0;
      a.on('resynced', () => resynced++);
      b.on('resynced', () => resynced++);
      await own.restart();
      await waitFor(() => resynced >= 2);
      await waitFor(() => ownRaw.status === 'ready');
      expect(await ownRaw.get(`${prefix}meeting:survivor`)).toBe('a');
      expect(await ownRaw.get(`${prefix}resv:survivor`)).toBe('L');
      expect(await ownRaw.exists(`${prefix}node:a`, `${prefix}node:b`)).toBe(2);
      expect(await b.locate('survivor')).toMatchObject({ kind: 'elsewhere', nodeId: 'a' });
      expect(await b.placeCreate('survivor', 'X', () => newMeetingId())).toMatchObject({ code: 'id-bound' });
    } finally {
      await stopAll();
      ownRaw.disconnect();
      await own.stop();
    }
  });

  it('after Redis came back empty, no live meeting id is placed anew before its host re-published it', async () => {
    const prefix = `t${randomBytes(4).toString('hex')}:`;
    const opts = { redisUrl: redis.url, log: silentLogger, prefix, ...FAST };
    // a hosts a meeting; `frozen` holds a's reconciliation back (hostedMeetings() throws, so the pass
    // never reaches Redis): the window in which b has re-registered and a has not yet.
    let frozen = false;
    const live: HostedMeeting = { meetingId: 'live-live-live', leaderDeviceId: 'leader' };
    const a = new RedisCluster({ ...opts, nodeId: 'a', url: 'ws://127.0.0.1:7001/v1/ws' });
    const b = new RedisCluster({ ...opts, nodeId: 'b', url: 'ws://127.0.0.1:7002/v1/ws' });
    const lost: string[] = [];
    a.on('lost', (id) => lost.push(id));
    try {
      await a.start(() => {
        if (frozen) throw new Error('frozen');
        return [live];
      });
      await b.start(() => []);
      // A brand-new cluster has no grace: an explicit id is placed at once.
      expect(target(b, await b.placeCreate('fresh-cluster-id', 'x', () => newMeetingId()))).toBe('b');
      await a.hosted(live);
      expect(await raw.get(`${prefix}resv:${live.meetingId}`)).toBe('leader');
      // Redis loses everything (a restart without persistence, as FLUSHALL does to this prefix).
      frozen = true;
      const wipe = async () => {
        const keys = await raw.keys(`${prefix}*`);
        if (keys.length > 0) await raw.del(...keys);
      };
      await wipe();
      const squat = () => b.placeCreate(live.meetingId, 'squatter', () => newMeetingId());
      // Before any node re-registered (no boot marker), and after b did (the resync grace): refused,
      // retriable, and nothing written for the squatter.
      expect(await squat()).toMatchObject({ kind: 'refused', code: 'cluster-unavailable' });
      await waitFor(async () => (await raw.exists(`${prefix}node:b`)) === 1);
      expect(await raw.exists(`${prefix}node:a`)).toBe(0);
      expect(await squat()).toMatchObject({ kind: 'refused', code: 'cluster-unavailable' });
      expect(await raw.exists(`${prefix}resv:${live.meetingId}`, `${prefix}meeting:${live.meetingId}`)).toBe(
        0,
      );
      // Fresh creates and joins go on meanwhile.
      expect(target(b, await b.placeCreate(undefined, 'y', () => newMeetingId()))).toBe('b');
      expect(await b.locate(live.meetingId)).toEqual({ kind: 'here', meetingId: live.meetingId });
      // The host re-publishes: the squatter is refused for good, the leader is sent to the host.
      frozen = false;
      await waitFor(async () => (await raw.get(`${prefix}meeting:${live.meetingId}`)) === 'a');
      expect(await squat()).toMatchObject({ code: 'id-bound' });
      expect(await b.placeCreate(live.meetingId, 'leader', () => newMeetingId())).toMatchObject({
        kind: 'elsewhere',
        nodeId: 'a',
      });
      // The grace ends: an explicit id that lives nowhere is placed again.
      await waitFor(
        async () => (await b.placeCreate('after-the-grace', 'z', () => newMeetingId())).kind !== 'refused',
      );
      expect(lost).toEqual([]);
    } finally {
      await a.stop(false);
      await b.stop(false);
    }
  });

  it('fails fast with cluster-unavailable during an outage, then recovers', async () => {
    const own = await LocalRedis.start();
    const { nodes, hosted, stopAll } = await makeNodes(['a'], { ...FAST, redisUrl: own.url });
    const a = nodes[0]!;
    try {
      hosted.set('a', [{ meetingId: 'goes-on', leaderDeviceId: 'L' }]);
      await own.kill9();
      await waitFor(() => !a.status().connected);
      for (const call of [
        () => a.placeCreate(undefined, 'd', () => newMeetingId()),
        () => a.placeCreate('some-some-some', 'd', () => newMeetingId()),
        () => a.locate('goes-on'),
      ]) {
        const t0 = Date.now();
        expect(await call()).toMatchObject({ kind: 'refused', code: 'cluster-unavailable' });
        expect(Date.now() - t0).toBeLessThan(1500);
      }
      // The bookkeeping calls never throw; reconciliation repairs later.
      await a.hosted({ meetingId: 'goes-on', leaderDeviceId: 'L' });
      await a.released('other', true);
      await a.setDraining();
      let resynced = false;
      a.on('resynced', () => {
        resynced = true;
      });
      await own.restart();
      await waitFor(() => resynced);
      expect(a.status().connected).toBe(true);
      expect(await a.locate('goes-on')).toEqual({ kind: 'here', meetingId: 'goes-on' });
      expect(a.status().nodes).toEqual([{ id: 'a', url: a.url, draining: true, meetings: 1 }]);
    } finally {
      await stopAll();
      await own.stop();
    }
  });

  it('start() does not wait forever when Redis is down', async () => {
    const own = await LocalRedis.start();
    await own.kill9();
    const c = new RedisCluster({
      redisUrl: own.url,
      nodeId: 'lonely',
      url: 'ws://127.0.0.1:1/v1/ws',
      log: silentLogger,
    });
    try {
      const t0 = Date.now();
      await c.start(() => []);
      expect(Date.now() - t0).toBeLessThan(3000);
      expect(c.status().connected).toBe(false);
      expect(await c.placeCreate(undefined, 'd', () => newMeetingId())).toMatchObject({
        code: 'cluster-unavailable',
      });
    } finally {
      await c.stop(true);
      await own.stop();
    }
  });
});

describe('RedisCluster with hostile values in Redis', () => {
  it('checks node URLs before any redirect', () => {
    for (const ok of ['ws://127.0.0.1:7000/v1/ws', 'wss://relay.example.org/v1/ws', 'ws://[::1]:80/v1/ws'])
      expect(isNodeUrl(ok)).toBe(true);
    for (const bad of [
      'http://relay.example.org/v1/ws',
      'javascript:alert(1)',
      'ws://user:pw@relay.example.org/v1/ws',
      'ws://relay.example.org/v1/ws?x=1',
      'ws://relay.example.org/v1/ws#frag',
      'ws://relay example.org/',
      'ws://',
      `ws://${'a'.repeat(600)}/`,
      '{"url":"ws://x"}',
      42,
      null,
    ])
      expect(isNodeUrl(bad)).toBe(false);
    expect(
      () => new RedisCluster({ redisUrl: redis.url, nodeId: 'x', url: 'http://nope/', log: silentLogger }),
    ).toThrow();
    expect(
      () => new RedisCluster({ redisUrl: redis.url, nodeId: 'a b', url: 'ws://h/', log: silentLogger }),
    ).toThrow();
  });

  it('never crashes on garbage and never redirects to a malformed node', async () => {
    const { prefix, nodes, stopAll } = await makeNodes(['a', 'b'], FAST);
    const [a, b] = nodes as [RedisCluster, RedisCluster];
    const errors: unknown[] = [];
    const onError = (e: unknown) => errors.push(e);
    process.on('unhandledRejection', onError);
    try {
      const huge = 'x'.repeat(2_000_000);
      const bad: Record<string, Record<string, string>> = {
        'evil-http': { url: 'http://evil.example/v1/ws', draining: '0', meetings: '0' },
        'evil-js': { url: 'javascript:alert(1)', draining: '0', meetings: '0' },
        'evil-cred': { url: 'ws://me:pw@evil.example/v1/ws', draining: '0', meetings: '0' },
        'evil-huge': { url: `ws://${huge}/`, draining: '0', meetings: '0' },
        'evil-json': { url: '{"url": "ws://evil.example"}', draining: '0', meetings: '0' },
        'evil-load': { url: 'ws://evil.example/v1/ws', draining: '0', meetings: '-5' },
        'evil-nan': { url: 'ws://evil.example/v1/ws', draining: '0', meetings: 'lots' },
        'evil-nourl': { draining: '0', meetings: '0' },
      };
      for (const [id, h] of Object.entries(bad)) {
        await raw.hset(`${prefix}node:${id}`, h);
        await raw.pexpire(`${prefix}node:${id}`, 60_000);
        await raw.sadd(`${prefix}nodes`, id);
      }
      await raw.set(`${prefix}node:evil-string`, 'not a hash', 'PX', 60_000);
      await raw.sadd(`${prefix}nodes`, 'evil-string', huge, '');
      // Meetings pointing at each malformed node, at an unknown node, and values of every wrong type.
      for (const id of [...Object.keys(bad), 'evil-string']) await raw.set(`${prefix}meeting:m-${id}`, id);
      await raw.set(`${prefix}meeting:m-huge`, huge);
      await raw.hset(`${prefix}meeting:m-hash`, 'node', 'b');
      await raw.rpush(`${prefix}meeting:m-list`, 'b');
      await raw.hset(`${prefix}pending:b`, 'x', 'y');

      const placements: Placement[] = [];
      for (let i = 0; i < 10; i++)
        placements.push(await a.placeCreate(undefined, `d${i}`, () => newMeetingId()));
      for (const id of [...Object.keys(bad), 'evil-string', 'huge', 'hash', 'list']) {
        placements.push(await b.locate(`m-${id}`));
        placements.push(await a.placeCreate(`m-${id}`, 'owner', () => newMeetingId()));
      }
      for (const p of placements) {
        expect(p.kind).not.toBe('refused');
        if (p.kind === 'elsewhere') {
          expect(['a', 'b']).toContain(p.nodeId);
          expect(isNodeUrl(p.url)).toBe(true);
        }
      }
      // Reconciliation keeps running and lists only the well-formed nodes.
      await waitFor(() => a.status().nodes.length === 2);
      expect(a.status().connected).toBe(true);
      expect(a.status().nodes.map((n) => n.id)).toEqual(['a', 'b']);

      // The node set itself replaced by garbage: the next refreshes repair it.
      await raw.del(`${prefix}nodes`);
      await raw.set(`${prefix}nodes`, 'garbage');
      await waitFor(async () => (await raw.type(`${prefix}nodes`)) === 'set');
      await waitFor(async () => (await raw.scard(`${prefix}nodes`)) === 2);
      // Its own node hash overwritten by garbage: rewritten within a refresh.
      await raw.set(`${prefix}node:a`, 'garbage');
      await waitFor(async () => (await raw.hget(`${prefix}node:a`, 'url').catch(() => null)) === a.url);
      expect(target(b, await b.placeCreate(undefined, 'again', () => newMeetingId()))).toMatch(/^[ab]$/);
      expect(errors).toEqual([]);
    } finally {
      process.off('unhandledRejection', onError);
      await stopAll();
    }
  });
});
