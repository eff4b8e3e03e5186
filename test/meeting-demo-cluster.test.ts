// `npm start -- --relays 3`: the demo on three relay nodes sharing a private redis-server (issue 15,
// docs/relay.md "Several nodes (Redis)"). Real processes: LocalRedis, three `sealroom relay --redis`
// nodes and two room daemons (synthetic media, development CA: enrollment and the CRL are the
// single-relay demo test's) entering through different nodes. While it runs, the test asks every node itself: all three are up and see each other alive
// in Redis, exactly one hosts the meeting (the one the demo printed) and forwards its media, the
// others host nothing. Then it stops by itself and leaves no node and no redis-server behind.
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { describe, expect, it } from 'vitest';

interface Health {
  ok: boolean;
  meetings: number;
  mediaPeers: number;
  packetsForwarded: number;
  cluster?: { nodeId: string; nodes: { id: string; url: string }[] };
}

const healthUrl = (ws: string) => ws.replace(/^ws/, 'http').replace(/\/v1\/ws$/, '/healthz');

/** True when something accepts TCP connections on 127.0.0.1:port. */
const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });

describe('sealroom demo --relays 3 (npm start -- --relays 3)', () => {
  it('runs three nodes on one Redis, hosts the meeting on one of them with media, and stops cleanly', async () => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        'src/cli/sealroom.ts',
        'demo',
        '--relays',
        '3',
        '--media',
        'synthetic',
        '--duration',
        '5',
        // The provisioning path is the single-relay demo test's; here only what the nodes add.
        '--no-provisioning',
      ],
      { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, SEALROOM_LOG_LEVEL: 'warn' } },
    );
    child.stdin.end();
    let out = '';
    let err = '';
    let probed: Promise<Record<string, Health>> | undefined;
    const nodesIn = (text: string) =>
      [...text.matchAll(/^ {2}(relay-\d)\s+(ws:\/\/127\.0\.0\.1:\d+\/v1\/ws)\s/gm)].map((m) => ({
        id: m[1] as string,
        url: m[2] as string,
      }));
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      // While the demo runs (it says so once everything is up), ask each node directly.
      if (!probed && /Running for 5 s/.test(out))
        probed = (async () => {
          const health: Record<string, Health> = {};
          for (const n of nodesIn(out))
            health[n.id] = (await (await fetch(healthUrl(n.url))).json()) as Health;
          return health;
        })();
      probed?.catch(() => undefined); // awaited (and reported) below
    });
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    expect(err).not.toMatch(/sealroom demo:/);
    expect(code).toBe(0);

    const nodes = nodesIn(out);
    expect(nodes.map((n) => n.id)).toEqual(['relay-1', 'relay-2', 'relay-3']);
    expect(new Set(nodes.map((n) => n.url)).size).toBe(3);
    expect(out).toMatch(/redis\s+redis:\/\/127\.0\.0\.1:\d+/);
    expect(out).toMatch(/cluster\s+3 nodes alive in Redis: relay-1, relay-2, relay-3/);
    const [, hostId, hostUrl] = /meeting host\s+(relay-\d) \((ws:\S+)\)/.exec(out) ?? [];
    expect(hostId).toBeDefined();
    expect(nodes.find((n) => n.id === hostId)?.url).toBe(hostUrl);
    // Both rooms ended up on the hosting node, whichever node they entered at.
    expect(out).toMatch(
      new RegExp(`rooms\\s+Boardroom on ${hostId}(?: \\([^)]*\\))?; Huddle Room on ${hostId}`),
    );
    expect(out).toMatch(
      new RegExp(`media\\s+flowing: node ${hostId} has forwarded \\d+ encrypted RTP packets`),
    );
    const codes = [...out.matchAll(/((?:\d{5} ){7}\d{5})/g)].map((m) => m[1]);
    expect(codes).toHaveLength(2);
    expect(codes[0]).toBe(codes[1]);

    // What the nodes said themselves while the demo ran.
    expect(probed).toBeDefined();
    const health = await (probed as Promise<Record<string, Health>>);
    for (const n of nodes) {
      const h = health[n.id] as Health;
      expect(h.ok).toBe(true);
      expect(h.cluster?.nodeId).toBe(n.id);
      expect((h.cluster?.nodes ?? []).map((x) => x.id).sort()).toEqual(['relay-1', 'relay-2', 'relay-3']);
      // One meeting in the cluster, on the printed host only, with both rooms' media there.
      if (n.id === hostId) {
        expect(h.meetings).toBe(1);
        expect(h.mediaPeers).toBe(2);
        expect(h.packetsForwarded).toBeGreaterThan(100);
      } else {
        expect(h.meetings).toBe(0);
        expect(h.mediaPeers).toBe(0);
      }
    }

    // Stopped: no node and no redis-server left listening.
    const redisPort = Number(/redis\s+redis:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
    const ports = [...nodes.map((n) => Number(new URL(n.url).port)), redisPort];
    expect(await Promise.all(ports.map(listening))).toEqual(ports.map(() => false));
  }, 180_000);
});
