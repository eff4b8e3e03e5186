// The Redis side of the relay cluster (docs/relay.md "100 000 rooms, on paper"): what the cluster's
// scripts cost Redis as the number of nodes grows. A private redis-server
// (LocalRedis) holds N fake live nodes (valid node hashes, each hosting M meetings); the real
// RECONCILE_SCRIPT (run by every node every refreshMs; with the live-node list every
// NODE_LIST_REFRESH_MS) and PLACE_SCRIPT (every create) are run for one of them, and Redis's own INFO commandstats gives the server time per call (what limits a
// single-threaded Redis), independent of the client's round trip.
// Run: node --import tsx scripts/bench/relay-cluster-redis.ts [N...]   (default 10 100 1000)
import { Redis } from 'ioredis';
import { LocalRedis } from '../../src/relay/cluster/local-redis.js';
import { DEFAULT_REFRESH_MS, NODE_LIST_REFRESH_MS } from '../../src/relay/cluster/redis-cluster.js';
import { PLACE_SCRIPT, RECONCILE_SCRIPT } from '../../src/relay/cluster/scripts.js';

const P = 'bench:relay:';
/** Meetings hosted per node (about what one core forwards: docs/relay.md "Capacity per node"). */
const M = Number(process.env.MEETINGS_PER_NODE ?? 10);
const sizes = process.argv.slice(2).map(Number);
const NODES = sizes.length ? sizes : [10, 100, 1000];

async function usecPerCall(redis: Redis, run: () => Promise<unknown>, calls: number): Promise<number> {
  await redis.call('CONFIG', 'RESETSTAT');
  for (let i = 0; i < calls; i++) await run();
  const info = (await redis.call('INFO', 'commandstats')) as string;
  const m = /cmdstat_evalsha:calls=(\d+),usec=(\d+)/.exec(info);
  if (!m) throw new Error(`no evalsha stats: ${info}`);
  return Number(m[2]) / Number(m[1]);
}

const local = await LocalRedis.start();
const redis = new Redis(local.url);
try {
  redis.defineCommand('reconcile', { numberOfKeys: 0, lua: RECONCILE_SCRIPT });
  redis.defineCommand('place', { numberOfKeys: 0, lua: PLACE_SCRIPT });
  const r = redis as unknown as Record<
    'reconcile' | 'place',
    (...a: (string | number)[]) => Promise<unknown>
  >;
  const rows: {
    nodes: number;
    reconcileUs: number;
    reconcileWithNodesUs: number;
    placeUs: number;
    redisBusy: number;
  }[] = [];
  for (const n of NODES) {
    await redis.flushall();
    const pipe = redis.pipeline();
    for (let i = 0; i < n; i++) {
      pipe.hset(
        `${P}node:n${i}`,
        'url',
        `ws://10.0.${i >> 8}.${i & 255}:7443/v1/ws`,
        'draining',
        '0',
        'meetings',
        String(M),
      );
      pipe.pexpire(`${P}node:n${i}`, 600_000);
      pipe.sadd(`${P}nodes`, `n${i}`);
    }
    await pipe.exec();
    const hosted = Array.from({ length: M }, (_, k) => [`m-n0-${k}`, `device-${k}`]).flat();
    // As RedisCluster calls it: the live-node list (O(nodes)) only every NODE_LIST_REFRESH_MS.
    const reconcile = (withNodes: boolean) => () =>
      r.reconcile(
        P,
        'n0',
        'ws://10.0.0.0:7443/v1/ws',
        '0',
        M,
        600_000,
        30_000,
        600_000,
        15_000,
        M,
        withNodes ? '1' : '0',
        ...hosted,
      );
    let k = 0;
    const place = () => r.place(P, 'n1', `dev-${k}`, 30_000, 600_000, 15_000, '0', `fresh-${k++}`);
    const calls = n >= 1000 ? 50 : 300;
    const reconcileUs = await usecPerCall(redis, reconcile(false), calls);
    const reconcileWithNodesUs = await usecPerCall(redis, reconcile(true), calls);
    const placeUs = await usecPerCall(redis, place, calls);
    // Per node and second: 1000/refreshMs reconciliations, 1000/NODE_LIST_REFRESH_MS of them with the list.
    const perSecond = 1000 / DEFAULT_REFRESH_MS;
    const withList = 1000 / NODE_LIST_REFRESH_MS;
    const busy = (n * ((perSecond - withList) * reconcileUs + withList * reconcileWithNodesUs)) / 1e6;
    rows.push({
      nodes: n,
      reconcileUs: Math.round(reconcileUs),
      reconcileWithNodesUs: Math.round(reconcileWithNodesUs),
      placeUs: Math.round(placeUs),
      redisBusy: Math.round(busy * 1000) / 1000,
    });
    console.log(
      `${n} nodes × ${M} meetings: reconcile ${Math.round(reconcileUs)} µs (${Math.round(reconcileWithNodesUs)} µs with the node list), place ${Math.round(placeUs)} µs of Redis time per call; the refresh alone keeps one Redis ${Math.round(busy * 100)} % busy`,
    );
  }
  console.log(JSON.stringify({ bench: 'relay-cluster-redis', meetingsPerNode: M, rows }));
} finally {
  redis.disconnect();
  await local.stop();
}
