// GET /v1/devices over 100 000 seeded devices, on SQLite and PostgreSQL: walking the keyset cursor
// returns every matching device exactly once (named rooms, then devices without a room), filters
// hold on every page, the first-page queries walk the migration-4 indexes (no sort of the fleet),
// and the first page's time is printed (the figure the issue asks for; not asserted here).
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProvisioningStore } from '../provisioning/store/open.js';
import { type CertificateAuthority, createCertificateAuthority } from '../src/pki/index.js';
import { type BackendName, backends, freshStore, PostgresCluster } from './provisioning-backends.js';
import { bearer, seedToken, testService } from './provisioning-helpers.js';

const cluster = new PostgresCluster();
beforeAll(() => cluster.start(), 60_000);
afterAll(() => cluster.stop());

const FLEET = 100_000;
const NOW = Date.parse('2026-06-01T12:00:00.000Z');
const B32 = 'abcdefghijklmnopqrstuvwxyz234567';

/** A well-formed device id for seed row i (ids need not come from keys here). */
function seedId(i: number): string {
  let s = '';
  let n = i * 7919 + 13; // spread, so id order differs from insertion order
  for (let k = 0; k < 20; k++) {
    s += B32[n % 32];
    n = Math.floor(n / 32) + k * 3;
  }
  return `sr-${s}`;
}

interface Seeded {
  id: string;
  roomName: string | null;
  site: string;
  status: string;
  lastSeenAt: string | null;
  meetingState: string | null;
}

/** Rooms repeat (3 devices per name: the id breaks ties), 1 % have no room, a third are online. */
function plan(): Seeded[] {
  const out: Seeded[] = [];
  for (let i = 0; i < FLEET; i++) {
    const noRoom = i % 100 === 7;
    out.push({
      id: seedId(i),
      roomName: noRoom ? null : `Room ${String(i % 33_000).padStart(5, '0')}`,
      site: `Site ${i % 50}`,
      status: noRoom ? 'pending' : i % 97 === 3 ? 'revoked' : 'active',
      lastSeenAt:
        i % 3 === 0
          ? new Date(NOW - 30_000).toISOString()
          : i % 3 === 1
            ? new Date(NOW - 600_000).toISOString()
            : null,
      meetingState: i % 6 === 0 ? 'active' : i % 6 === 3 ? 'idle' : null,
    });
  }
  return out;
}

async function seed(store: ProvisioningStore, rows: Seeded[]) {
  await store.seedActiveDevices(
    rows.map((r, i) => ({
      id: r.id,
      publicKey: 'AAAA',
      roomName: r.roomName ?? 'x',
      site: r.site,
      serial: (0x5000_0000 + i).toString(16),
      certPem: 'seeded',
    })),
    new Date(NOW - 86_400_000).toISOString(),
  );
  // The fleet columns the heartbeat pipeline would have written, set per group in a few statements.
  await store.db.transaction(async (tx) => {
    const online = new Date(NOW - 30_000).toISOString();
    const stale = new Date(NOW - 600_000).toISOString();
    const groups = new Map<string, string[]>();
    for (const r of rows) {
      const key = JSON.stringify([r.roomName === null, r.status, r.lastSeenAt, r.meetingState]);
      const g = groups.get(key) ?? [];
      groups.set(key, g);
      g.push(r.id);
    }
    for (const [key, ids] of groups) {
      const [noRoom, status, seen, meeting] = JSON.parse(key) as [
        boolean,
        string,
        string | null,
        string | null,
      ];
      for (let i = 0; i < ids.length; i += 5000) {
        const chunk = ids.slice(i, i + 5000);
        await tx.run(
          `UPDATE devices SET status = ?, last_seen_at = ?, meeting_state = ?${noRoom ? ', room_name = NULL' : ''}
           WHERE id IN (${chunk.map(() => '?').join(', ')})`,
          [status, seen === null ? null : seen === online ? online : stale, meeting, ...chunk],
        );
      }
    }
  });
  // PostgreSQL plans from statistics and counts from the visibility map, which autovacuum keeps
  // on a live system; here, now.
  if (store.kind === 'postgres') await store.db.exec('VACUUM ANALYZE devices');
}

const cmp = (a: Seeded, b: Seeded) => {
  // Named rooms first (by name, then id), then devices without a room by id: the API's order.
  if ((a.roomName === null) !== (b.roomName === null)) return a.roomName === null ? 1 : -1;
  if (a.roomName !== b.roomName) return (a.roomName ?? '') < (b.roomName ?? '') ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
};

describe.each(backends)('fleet paging over 100 000 devices on %s', (backend: BackendName) => {
  let app: FastifyInstance;
  let store: ProvisioningStore;
  let token: string;
  let rows: Seeded[];
  let ca: CertificateAuthority;
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    ca = await createCertificateAuthority({ commonName: 'Acme CA', org: 'Acme', validityDays: 3650 });
    const fresh = await freshStore(backend, cluster);
    store = fresh.store;
    cleanup = fresh.cleanup;
    rows = plan();
    const t = Date.now();
    await seed(store, rows);
    console.log(`[fleet-paging] ${backend}: seeded ${FLEET} devices in ${Date.now() - t} ms`);
    ({ token } = await seedToken(store, { name: 'pager', scope: 'read', now: NOW }));
    app = await testService({ store, ca, now: () => new Date(NOW) });
  }, 120_000);
  afterAll(async () => {
    await app?.close();
    await cleanup?.();
  });

  async function page(query: string) {
    const r = await app.inject({
      method: 'GET',
      url: `/v1/devices?${query}`,
      headers: bearer(token),
    });
    expect(r.statusCode, r.body).toBe(200);
    return r.json() as {
      total: number;
      items: {
        id: string;
        roomName: string | null;
        site: string;
        online: boolean;
        inMeeting: boolean;
        status: string;
      }[];
      nextCursor: string | null;
    };
  }

  /** Follows nextCursor to the end; returns the ids in order and the page count. */
  async function walk(filter: string, limit: number) {
    const ids: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    let total = -1;
    do {
      const p = await page(`${filter}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`);
      total = p.total;
      ids.push(...p.items.map((d) => d.id));
      cursor = p.nextCursor;
      pages++;
      if (pages > FLEET) throw new Error('the cursor does not advance');
    } while (cursor);
    return { ids, pages, total };
  }

  it('walks a site in order, every device once, across into the devices without a room', async () => {
    // Site 7 holds all the room-less devices (i % 100 = 7): half of its 2 000 devices.
    const expected = rows
      .filter((r) => r.site === 'Site 7')
      .sort(cmp)
      .map((r) => r.id);
    const roomless = new Set(rows.filter((r) => r.roomName === null).map((r) => r.id));
    expect(expected.filter((id) => roomless.has(id)).length).toBe(1000);
    const t = Date.now();
    const { ids, pages, total } = await walk('site=Site%207', 37);
    console.log(
      `[fleet-paging] ${backend}: walk of 2 000 devices, ${pages} pages of 37 in ${Date.now() - t} ms`,
    );
    expect(total).toBe(2000);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(expected);
  }, 60_000);

  it('filtered walks (site + online, status + q, in a meeting) have no duplicates or gaps', async () => {
    const cutoff = new Date(NOW - 90_000).toISOString();
    const online = (r: Seeded) => r.lastSeenAt !== null && r.lastSeenAt >= cutoff;
    const cases: [string, (r: Seeded) => boolean][] = [
      ['site=Site%207&online=true', (r) => r.site === 'Site 7' && online(r)],
      [
        'status=active&q=room%200012',
        (r) => r.status === 'active' && (r.roomName ?? '').toLowerCase().includes('room 0012'),
      ],
      [
        'inMeeting=true&site=Site%2012',
        (r) => r.site === 'Site 12' && online(r) && r.meetingState === 'active',
      ],
      ['online=false&status=pending', (r) => r.status === 'pending' && !online(r)],
    ];
    for (const [query, pred] of cases) {
      const expected = rows
        .filter(pred)
        .sort(cmp)
        .map((r) => r.id);
      expect(expected.length, query).toBeGreaterThan(10);
      const { ids, total } = await walk(query, 37);
      expect(total, query).toBe(expected.length);
      expect(ids, query).toEqual(expected);
    }
  }, 120_000);

  it('keeps the old offset paging (CLI) in the same order; its cursor continues past the named rooms', async () => {
    const expected = [...rows].sort(cmp).map((r) => r.id);
    const p = await page('limit=100&offset=98950');
    expect(p.items.map((d) => d.id)).toEqual(expected.slice(98_950, 99_050));
    // The cursor it returns continues right after it (in the room-less segment, by id).
    const next = await page(`limit=5&cursor=${p.nextCursor}`);
    expect(next.items.map((d) => d.id)).toEqual(expected.slice(99_050, 99_055));
    expect(next.items.every((d) => d.roomName === null)).toBe(true);
    const end = await page('limit=10&offset=99995');
    expect(end.items.map((d) => d.id)).toEqual(expected.slice(99_995));
    expect(end.nextCursor).toBeNull();
  });

  it('plans the first page on the migration-4 indexes (no sort of the fleet) and prints its time', async () => {
    const db = store.db;
    const first = 'SELECT id FROM devices WHERE room_name IS NOT NULL ORDER BY room_name, id LIMIT 51';
    const bySite =
      "SELECT id FROM devices WHERE site = 'Site 3' AND room_name IS NOT NULL ORDER BY room_name, id LIMIT 51";
    const after =
      "SELECT id FROM devices WHERE room_name >= 'Room 1' AND (room_name > 'Room 1' OR id > 'sr-a') ORDER BY room_name, id LIMIT 51";
    if (backend === 'sqlite') {
      const plan = async (sql: string) =>
        (await db.all(`EXPLAIN QUERY PLAN ${sql}`)).map((r) => String(r.detail)).join(' | ');
      for (const [sql, index] of [
        [first, 'devices_room'],
        [bySite, 'devices_site_room'],
        [after, 'devices_room'],
        [first.replace('WHERE', "WHERE +status = 'active' AND"), 'devices_room'],
      ] as const) {
        const p = await plan(sql);
        expect(p, sql).toContain(index);
        expect(p, sql).not.toMatch(/TEMP B-TREE/);
      }
    } else {
      const plan = async (sql: string) =>
        (await db.all(`EXPLAIN ${sql}`)).map((r) => String(r['QUERY PLAN'])).join('\n');
      for (const [sql, index] of [
        [first, 'devices_room'],
        [bySite, 'devices_site_room'],
        [after, 'devices_room'],
        [first.replace('WHERE', "WHERE status = 'active' AND"), 'devices_room'],
      ] as const) {
        const p = await plan(sql);
        expect(p, sql).toContain(index);
        expect(p, sql).not.toMatch(/\bSort\b/);
      }
    }

    const timings: Record<string, number> = {};
    for (const q of [
      'limit=50',
      'limit=50&status=active',
      'limit=50&site=Site%203&online=true',
      'limit=50&q=room%2001',
    ]) {
      const ms: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t = performance.now();
        await page(q);
        ms.push(performance.now() - t);
      }
      ms.sort((a, b) => a - b);
      timings[q] = Math.round(ms[Math.ceil(ms.length * 0.95) - 1]! * 10) / 10;
    }
    console.log(`[fleet-paging] ${backend}: first page p95 ms over 20 requests ${JSON.stringify(timings)}`);
  }, 60_000);

  it('refuses a tampered or foreign cursor with 400', async () => {
    const p = await page('limit=5&site=Site%201');
    const c = p.nextCursor!;
    const bad = [
      `${c.slice(0, -2)}zz`, // bytes flipped
      Buffer.from('{"v":1,"r":"Room","i":"sr-x"}').toString('base64url'), // forged, no filter key
      Buffer.from('[1,2,3]').toString('base64url'),
      'not*base64',
    ];
    for (const cursor of bad) {
      const r = await app.inject({
        method: 'GET',
        url: `/v1/devices?site=Site%201&cursor=${encodeURIComponent(cursor)}`,
        headers: bearer(token),
      });
      expect(r.statusCode, cursor).toBe(400);
    }
    // A cursor from one filter does not continue another listing.
    const other = await app.inject({
      method: 'GET',
      url: `/v1/devices?site=Site%202&cursor=${c}`,
      headers: bearer(token),
    });
    expect(other.statusCode).toBe(400);
    expect(other.json()).toMatchObject({ error: 'bad-cursor' });
  });
});
