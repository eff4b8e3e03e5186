// The fleet API on SQLite and PostgreSQL: list (filters, cursor), summary, sites, device detail
// (peripherals against the baseline, certificate, self-test), health history, site profiles merged
// under device overrides (config_version rises only where the result changed; an offline device
// gets it on its next heartbeat), remote actions end to end through heartbeats, log bundles — and
// the attacker: read-only tokens, no token, another device's action, forged bundles, prototype keys.
import { gzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProvisioningStore } from '../provisioning/store/open.js';
import { type CertificateAuthority, createCertificateAuthority } from '../src/pki/index.js';
import {
  type ConsoleSession,
  type ConsoleStack,
  placeholderConsoleDir,
  startConsoleStack,
} from './console/stack.js';
import { type BackendName, backends, freshStore, PostgresCluster } from './provisioning-backends.js';
import {
  bearer,
  enrollAndClaim,
  OPEN_LIMITS,
  seedToken,
  signedRequest,
  type TestDevice,
  testService,
} from './provisioning-helpers.js';

const cluster = new PostgresCluster();
beforeAll(() => cluster.start(), 60_000);
afterAll(() => cluster.stop());

const T0 = Date.parse('2026-05-04T09:00:00.000Z');
const MiB = 1024 * 1024;

describe.each(backends)('fleet API on %s', (backend: BackendName) => {
  let ca: CertificateAuthority;
  let app: FastifyInstance;
  let store: ProvisioningStore;
  let cleanup: () => Promise<void>;
  const clock = { t: T0 };
  let admin: string;
  let viewer: string;
  let alpha: TestDevice;
  let beta: TestDevice;
  let gamma: TestDevice;

  const get = (url: string, token = admin) => app.inject({ method: 'GET', url, headers: bearer(token) });
  const send = (method: 'POST' | 'PUT', url: string, payload: unknown, token = admin) =>
    app.inject({ method, url, headers: bearer(token), payload: payload as object });
  const signed = (dev: TestDevice, method: 'GET' | 'POST', path: string, payload?: unknown, body?: string) =>
    signedRequest(app, dev, clock.t, method, path, payload, body);

  async function heartbeat(dev: TestDevice, health: Record<string, unknown>, configVersion: number) {
    const r = await signed(dev, 'POST', `/v1/devices/${dev.deviceId}/heartbeat`, {
      softwareVersion: '2.1.0',
      configVersion,
      health,
    });
    expect(r.statusCode, r.body).toBe(200);
    await (app as unknown as { heartbeats: { flush(): Promise<void> } }).heartbeats.flush();
    return r.json() as {
      configVersion: number;
      config?: Record<string, unknown>;
      actions?: { id: string; kind: string }[];
      renewCertificate: boolean;
    };
  }

  const claimDevice = (
    roomName: string,
    site: string,
    config?: Record<string, unknown>,
  ): Promise<TestDevice> =>
    enrollAndClaim(app, admin, { roomName, site, softwareVersion: '2.0.0', ...(config ? { config } : {}) });

  const token = async (name: string, scope: 'read' | 'admin') =>
    (await seedToken(store, { name, scope, now: T0, expiresAt: T0 + 300 * 86_400_000 })).token;

  beforeAll(async () => {
    ca = await createCertificateAuthority({ commonName: 'Acme CA', org: 'Acme', validityDays: 3650 });
    const fresh = await freshStore(backend, cluster);
    store = fresh.store;
    cleanup = fresh.cleanup;
    app = await testService({
      store,
      ca,
      now: () => new Date(clock.t),
      rateLimits: OPEN_LIMITS,
      // Two heartbeats 60 s apart below must both leave a health sample (the default is 5 min).
      heartbeats: { sampleIntervalMs: 60_000 },
    });
    admin = await token('root', 'admin');
    viewer = await token('viewer', 'read');
    alpha = await claimDevice('Alpha', 'Berlin');
    beta = await claimDevice('Beta', 'Berlin', { volume: 40, ui: { theme: 'dark' } });
    gamma = await claimDevice('Gamma', 'Paris');
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await cleanup?.();
  });

  it('lists with status from heartbeats, filters, pages by cursor; summary and sites', async () => {
    await heartbeat(
      alpha,
      {
        loadPercent: 12.5,
        temperatureC: 51,
        memory: { usedBytes: 1e9, totalBytes: 4e9 },
        disk: { usedBytes: 2e9, totalBytes: 3.2e10 },
        meetingState: 'active',
        peripherals: {
          present: ['camera', 'microphone', 'speaker'],
          missing: [],
          names: { camera: 'Cam X', microphone: 'Mic 1', speaker: 'Spk' },
        },
        selfTest: { ok: false, failed: ['camera-open'], at: new Date(T0 - 60_000).toISOString() },
      },
      1,
    );
    const all = await get('/v1/devices');
    expect(all.statusCode, all.body).toBe(200);
    const body = all.json();
    expect(body.total).toBe(3);
    expect(body.nextCursor).toBeNull();
    expect(body.items.map((d: { roomName: string }) => d.roomName)).toEqual(['Alpha', 'Beta', 'Gamma']);
    expect(body.items[0]).toMatchObject({
      id: alpha.deviceId,
      online: true,
      inMeeting: true,
      meetingState: 'active',
      configVersion: 1,
      reportedConfigVersion: 1,
      configPending: false,
      softwareVersion: '2.1.0',
    });
    expect(body.items[1]).toMatchObject({
      online: false,
      inMeeting: false,
      reportedConfigVersion: null,
      configPending: true,
    });

    const ids = async (q: string) =>
      ((await get(`/v1/devices?${q}`)).json().items as { id: string }[]).map((d) => d.id);
    expect(await ids('online=true')).toEqual([alpha.deviceId]);
    expect(await ids('online=false')).toEqual([beta.deviceId, gamma.deviceId]);
    expect(await ids('inMeeting=true')).toEqual([alpha.deviceId]);
    expect(await ids('site=Berlin')).toEqual([alpha.deviceId, beta.deviceId]);
    expect(await ids('q=GAM')).toEqual([gamma.deviceId]);
    expect(await ids(`q=${alpha.deviceId.slice(3, 12)}`)).toEqual([alpha.deviceId]);
    // LIKE wildcards are literal characters in q.
    expect(await ids('q=%25')).toEqual([]);
    expect(await ids('q=_')).toEqual([]);
    expect(await ids('status=pending')).toEqual([]);

    // Cursor paging, one device per page.
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r = await get(`/v1/devices?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(r.json().total).toBe(3);
      seen.push(...r.json().items.map((d: { id: string }) => d.id));
      cursor = r.json().nextCursor;
    } while (cursor);
    expect(seen).toEqual([alpha.deviceId, beta.deviceId, gamma.deviceId]);
    // The old CLI's offset.
    expect(await ids('limit=1&offset=2')).toEqual([gamma.deviceId]);

    // Bad queries.
    for (const q of [
      'limit=201',
      'limit=0',
      'online=maybe',
      'status=gone',
      'cursor=%24%24',
      'sort=id',
      'offset=-1',
    ]) {
      expect((await get(`/v1/devices?${q}`)).statusCode, q).toBe(400);
    }
    const first = (await get('/v1/devices?limit=1')).json().nextCursor as string;
    const both = await get(`/v1/devices?limit=1&offset=1&cursor=${first}`);
    expect(both.statusCode).toBe(400);
    expect(both.json().error).toBe('bad-cursor');
    const forged = Buffer.from(JSON.stringify({ v: 1, r: "' OR 1=1 --", i: 'x', f: 'y' })).toString(
      'base64url',
    );
    expect((await get(`/v1/devices?cursor=${forged}`)).json()).toMatchObject({
      statusCode: 400,
      error: 'bad-cursor',
    });

    // Open incidents count on the list and in the summary (resolved ones do not). The alert engine
    // runs too (alpha's failed self-test may have opened one already): compare with the table.
    const openOf = async (id?: string) =>
      Number(
        (
          await store.db.get(
            `SELECT COUNT(*) AS n FROM incidents WHERE status <> 'resolved'${id ? ' AND device_id = ?' : ''}`,
            id ? [id] : [],
          )
        )?.n,
      );
    const before = await openOf(alpha.deviceId);
    expect(body.items[0].openIncidents).toBe(before);
    for (const [id, status] of [
      ['inc-1', 'open'],
      ['inc-2', 'resolved'],
    ] as const) {
      await store.db.run(
        `INSERT INTO incidents (id, rule_id, device_id, status, summary, details, opened_at, updated_at)
         VALUES (?, ?, ?, ?, 'x', '{}', ?, ?)`,
        [
          id,
          status === 'open' ? 'test-open' : 'test-resolved',
          alpha.deviceId,
          status,
          new Date(T0).toISOString(),
          new Date(T0).toISOString(),
        ],
      );
    }
    expect((await get('/v1/devices?online=true')).json().items[0].openIncidents).toBe(before + 1);

    const summary = await get('/v1/fleet/summary', viewer);
    expect(summary.statusCode).toBe(200);
    expect(summary.json()).toEqual({
      devices: 3,
      online: 1,
      offline: 2,
      inMeeting: 1,
      pending: 0,
      openIncidents: await openOf(),
      sites: ['Berlin', 'Paris'],
    });
    const sites = await get('/v1/sites', viewer);
    expect(sites.json().items).toEqual([
      { site: 'Berlin', devices: 2, online: 1, profileVersion: null },
      { site: 'Paris', devices: 1, online: 0, profileVersion: null },
    ]);
    // 90 s later without a heartbeat, the device is offline.
    clock.t += 91_000;
    expect((await get('/v1/fleet/summary')).json()).toMatchObject({ online: 0, offline: 3, inMeeting: 0 });
    expect(await ids('inMeeting=true')).toEqual([]);
  });

  it('device detail: peripherals against the first-reported baseline, certificate, self-test; health history', async () => {
    const d1 = await get(`/v1/devices/${alpha.deviceId}`, viewer);
    expect(d1.statusCode, d1.body).toBe(200);
    expect(d1.json()).toMatchObject({
      id: alpha.deviceId,
      selfTest: { ok: false, failed: ['camera-open'] },
      configOverride: {},
      profileVersion: null,
      peripherals: [
        { kind: 'camera', state: 'ok', name: 'Cam X', expected: 'Cam X' },
        { kind: 'microphone', state: 'ok', name: 'Mic 1', expected: 'Mic 1' },
        { kind: 'speaker', state: 'ok', name: 'Spk', expected: 'Spk' },
      ],
    });
    const cert = d1.json().certificate;
    expect(cert.serial).toBe(d1.json().certSerial);
    expect(cert.daysLeft).toBeGreaterThanOrEqual(364);
    expect(cert.daysLeft).toBeLessThanOrEqual(365);

    clock.t += 60_000;
    await heartbeat(
      alpha,
      {
        loadPercent: 80,
        temperatureC: 70,
        meetingState: 'idle',
        peripherals: {
          present: ['camera', 'speaker', 'hid'],
          missing: ['microphone'],
          names: { camera: 'Cam Y', speaker: 'Spk', hid: 'Pad' },
        },
      },
      1,
    );
    const d2 = (await get(`/v1/devices/${alpha.deviceId}`)).json();
    expect(d2.peripherals).toEqual([
      { kind: 'camera', state: 'changed', name: 'Cam Y', expected: 'Cam X' },
      { kind: 'microphone', state: 'missing', name: null, expected: 'Mic 1' },
      { kind: 'speaker', state: 'ok', name: 'Spk', expected: 'Spk' },
      { kind: 'hid', state: 'new', name: 'Pad', expected: null },
    ]);
    expect(d2).toMatchObject({ online: true, inMeeting: false, meetingState: 'idle', selfTest: null });

    const h = await get(`/v1/devices/${alpha.deviceId}/health?hours=1`, viewer);
    expect(h.statusCode).toBe(200);
    const samples = h.json().samples as { at: string; loadPercent: number; temperatureC: number }[];
    expect(samples.length).toBeGreaterThanOrEqual(1);
    expect(samples.at(-1)).toMatchObject({ loadPercent: 80, temperatureC: 70 });
    expect([...samples].sort((a, b) => (a.at < b.at ? -1 : 1))).toEqual(samples);
    expect((await get(`/v1/devices/${alpha.deviceId}/health?hours=169`)).statusCode).toBe(400);
    expect((await get(`/v1/devices/${gamma.deviceId}/health`)).json()).toEqual({ samples: [] });
    expect((await get('/v1/devices/sr-aaaaaaaaaaaaaaaaaaaa/health')).statusCode).toBe(404);
    expect((await get('/v1/devices/sr-aaaaaaaaaaaaaaaaaaaa')).statusCode).toBe(404);
    expect((await get('/v1/devices/..%2Fetc')).statusCode).toBe(400);

    // A health report with an unknown peripheral kind in names is refused at the door.
    const bad = await signed(alpha, 'POST', `/v1/devices/${alpha.deviceId}/heartbeat`, {
      softwareVersion: '2.1.0',
      configVersion: 1,
      health: { peripherals: { present: [], missing: [], names: { toaster: 'x' } } },
    });
    expect(bad.statusCode).toBe(400);
  });

  it('site profiles merge under device overrides; config_version rises only where the result changed', async () => {
    const version = async (d: TestDevice) =>
      (await get(`/v1/devices/${d.deviceId}`)).json().configVersion as number;
    const config = async (d: TestDevice) => (await get(`/v1/devices/${d.deviceId}`)).json().config;
    expect([await version(alpha), await version(beta), await version(gamma)]).toEqual([1, 1, 1]);

    // Changes need admin scope; reads do not; no token at all is 401.
    const profile = { volume: 50, ui: { theme: 'light', lang: 'de' }, list: [1, 2] };
    expect((await send('PUT', '/v1/sites/Berlin/profile', { config: profile }, viewer)).statusCode).toBe(403);
    expect(
      (await app.inject({ method: 'PUT', url: '/v1/sites/Berlin/profile', payload: { config: profile } }))
        .statusCode,
    ).toBe(401);
    expect((await get('/v1/sites/Berlin/profile')).statusCode).toBe(404);

    const put1 = await send('PUT', '/v1/sites/Berlin/profile', { config: profile });
    expect(put1.statusCode, put1.body).toBe(200);
    expect(put1.json()).toMatchObject({ site: 'Berlin', version: 1, updatedBy: 'root', config: profile });
    expect([await version(alpha), await version(beta), await version(gamma)]).toEqual([2, 2, 1]);
    expect(await config(alpha)).toEqual(profile);
    // Beta's claim config is its override: objects merge, its scalars win.
    expect(await config(beta)).toEqual({ volume: 40, ui: { theme: 'dark', lang: 'de' }, list: [1, 2] });

    // The same profile again: a new profile version, no device changes.
    const put2 = await send('PUT', '/v1/sites/Berlin/profile', { config: profile });
    expect(put2.json().version).toBe(2);
    expect([await version(alpha), await version(beta), await version(gamma)]).toEqual([2, 2, 1]);

    // Beta's override (arrays replace); Beta is offline and gets it on its next heartbeat.
    expect(
      (await send('PUT', `/v1/devices/${beta.deviceId}/config`, { config: { list: [9] } }, viewer))
        .statusCode,
    ).toBe(403);
    expect((await send('PUT', '/v1/devices/sr-aaaaaaaaaaaaaaaaaaaa/config', { config: {} })).statusCode).toBe(
      404,
    );
    const over = await send('PUT', `/v1/devices/${beta.deviceId}/config`, { config: { list: [9] } });
    expect(over.statusCode, over.body).toBe(200);
    expect(over.json().configVersion).toBe(3);
    const betaDetail = (await get(`/v1/devices/${beta.deviceId}`)).json();
    expect(betaDetail).toMatchObject({
      configOverride: { list: [9] },
      profileVersion: 2,
      config: { volume: 50, ui: { theme: 'light', lang: 'de' }, list: [9] },
      configPending: true,
    });
    const hb = await heartbeat(beta, {}, 1);
    expect(hb).toMatchObject({
      configVersion: 3,
      config: { volume: 50, ui: { theme: 'light', lang: 'de' }, list: [9] },
    });
    clock.t += 1000; // a heartbeat counts only with a newer signed time
    await heartbeat(beta, {}, 3);
    expect((await get(`/v1/devices/${beta.deviceId}`)).json().configPending).toBe(false);

    const read = await get('/v1/sites/Berlin/profile', viewer);
    expect(read.json()).toMatchObject({ site: 'Berlin', version: 2, config: profile, updatedBy: 'root' });
    expect((await get('/v1/sites', viewer)).json().items[0]).toMatchObject({
      site: 'Berlin',
      profileVersion: 2,
    });
    const audit = (await get('/v1/audit?action=site.profile')).json() as {
      actor: string;
      details: { devicesChanged: number };
    }[];
    expect(audit.map((a) => [a.actor, a.details.devicesChanged])).toEqual([
      ['root', 0],
      ['root', 2],
    ]);
    expect((await get(`/v1/audit?deviceId=${beta.deviceId}&action=device.config`)).json()).toHaveLength(1);

    // A device claimed later into the site gets the profile merged under its claim config.
    const delta = await claimDevice('Delta', 'Berlin', { volume: 10 });
    expect(await config(delta)).toEqual({ ...profile, volume: 10 });

    // Hostile documents: a "__proto__" key stays data, a non-object is refused, oversize names too.
    const proto = JSON.parse('{"config":{"__proto__":{"polluted":true},"ui":{"__proto__":{"x":1}}}}');
    const p = await app.inject({
      method: 'PUT',
      url: `/v1/devices/${gamma.deviceId}/config`,
      headers: { ...bearer(admin), 'content-type': 'application/json' },
      payload: JSON.stringify(proto),
    });
    expect(p.statusCode, p.body).toBe(200);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys((await get(`/v1/devices/${gamma.deviceId}`)).json().configOverride)).toContain(
      '__proto__',
    );
    expect((await send('PUT', '/v1/sites/Berlin/profile', { config: [1, 2] })).statusCode).toBe(400);
    // Nested deep enough to overflow a recursive merge (10 000 levels fit the 64 KiB body).
    const deep = `{"config":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`;
    for (const url of ['/v1/sites/Berlin/profile', `/v1/devices/${beta.deviceId}/config`]) {
      const r = await app.inject({
        method: 'PUT',
        url,
        headers: { ...bearer(admin), 'content-type': 'application/json' },
        payload: deep,
      });
      expect(r.statusCode, url).toBe(400);
      expect(r.json().error).toBe('config-too-deep');
    }
    expect((await send('PUT', '/v1/sites/Berlin/profile', { config: {}, extra: 1 })).statusCode).toBe(400);
    // Over the 120 characters a site name may have (fastify answers 414 past its path-parameter limit).
    const long = await send('PUT', `/v1/sites/${'x'.repeat(121)}/profile`, { config: {} });
    expect([400, 414]).toContain(long.statusCode);
    expect((await send('PUT', '/v1/sites/%0Aevil/profile', { config: {} })).statusCode).toBe(400);
  });

  it('actions: queued, sent once in a heartbeat, results with a log bundle; hostile results refused', async () => {
    const path = (d: TestDevice) => `/v1/devices/${d.deviceId}/actions`;
    expect((await send('POST', path(alpha), { kind: 'restart' }, viewer)).statusCode).toBe(403);
    expect((await send('POST', path(alpha), { kind: 'format-disk' })).statusCode).toBe(400);
    const logs = await send('POST', path(alpha), { kind: 'collect-logs' });
    expect(logs.statusCode, logs.body).toBe(202);
    expect(logs.json()).toMatchObject({
      deviceId: alpha.deviceId,
      kind: 'collect-logs',
      status: 'queued',
      createdBy: 'root',
      result: null,
    });
    expect((await send('POST', path(alpha), { kind: 'collect-logs' })).statusCode).toBe(409);
    const restart = (await send('POST', path(alpha), { kind: 'restart' })).json();

    clock.t += 30_000;
    const hb = await heartbeat(alpha, {}, 2);
    expect(hb.actions).toEqual([
      { id: logs.json().id, kind: 'collect-logs' },
      { id: restart.id, kind: 'restart' },
    ]);
    clock.t += 30_000;
    expect((await heartbeat(alpha, {}, 2)).actions).toBeUndefined();
    const listed = (await get(path(alpha), viewer)).json().items as { id: string; status: string }[];
    expect(listed.map((a) => a.status)).toEqual(['sent', 'sent']);

    const resultPath = (d: TestDevice, id: string) => `/v1/devices/${d.deviceId}/actions/${id}/result`;
    // Another device: with its own id in the path the action is not found; with alpha's, the signature is refused.
    const other = await signed(gamma, 'POST', resultPath(gamma, logs.json().id), { status: 'done' });
    expect(other.statusCode).toBe(404);
    expect(
      (await signed(gamma, 'POST', resultPath(alpha, logs.json().id), { status: 'done' })).statusCode,
    ).toBe(403);
    // Unsigned.
    expect(
      (
        await app.inject({
          method: 'POST',
          url: resultPath(alpha, logs.json().id),
          payload: { status: 'done' },
        })
      ).statusCode,
    ).toBe(401);

    const tryBundle = (bundle: string) =>
      signed(alpha, 'POST', resultPath(alpha, logs.json().id), { status: 'done', bundle });
    const notGzip = await tryBundle(Buffer.from('just some text, not gzip at all').toString('base64'));
    expect(notGzip.statusCode).toBe(400);
    expect(notGzip.json().error).toBe('bundle-not-gzip');
    const truncated = gzipSync(Buffer.alloc(10_000, 7)).subarray(0, 30);
    expect((await tryBundle(truncated.toString('base64'))).json().error).toBe('bundle-not-gzip');
    // A small file that inflates past 8 MiB (a gzip bomb).
    const bomb = gzipSync(Buffer.alloc(9 * MiB));
    expect(bomb.length).toBeLessThan(100_000);
    const b = await tryBundle(bomb.toString('base64'));
    expect(b.statusCode).toBe(413);
    expect(b.json().error).toBe('bundle-too-large');
    expect((await tryBundle('@@not base64@@')).statusCode).toBe(400);
    // Over the route's 12 MiB body limit.
    const huge = JSON.stringify({ status: 'done', bundle: 'A'.repeat(12 * MiB + 10) });
    expect((await signed(alpha, 'POST', resultPath(alpha, logs.json().id), undefined, huge)).statusCode).toBe(
      413,
    );
    // Nothing of that was recorded.
    expect((await get(path(alpha))).json().items.map((a: { status: string }) => a.status)).toEqual([
      'sent',
      'sent',
    ]);

    const content = Buffer.from(`log line\n`.repeat(5000));
    const bundle = gzipSync(content);
    const ok = await tryBundle(bundle.toString('base64'));
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json()).toMatchObject({ status: 'done', result: { bundleBytes: bundle.length } });
    expect((await tryBundle(bundle.toString('base64'))).statusCode).toBe(409);
    const dl = await get(`/v1/actions/${logs.json().id}/bundle`, viewer);
    expect(dl.statusCode).toBe(200);
    expect(dl.headers['content-type']).toBe('application/gzip');
    expect(String(dl.headers['content-disposition'])).toMatch(/^attachment; filename="sealroom-logs-/);
    expect(dl.rawPayload.equals(bundle)).toBe(true);
    expect((await get(`/v1/actions/${restart.id}/bundle`)).statusCode).toBe(404);
    expect((await get('/v1/actions/act_zz/bundle')).statusCode).toBe(400);

    // A restart carries no bundle; its result is a message.
    const withBundle = await signed(alpha, 'POST', resultPath(alpha, restart.id), {
      status: 'done',
      bundle: bundle.toString('base64'),
    });
    expect(withBundle.statusCode).toBe(409);
    const long = await signed(alpha, 'POST', resultPath(alpha, restart.id), {
      status: 'failed',
      message: 'x'.repeat(2001),
    });
    expect(long.statusCode).toBe(400);
    const failed = await signed(alpha, 'POST', resultPath(alpha, restart.id), {
      status: 'failed',
      message: 'systemd said no',
    });
    expect(failed.json()).toMatchObject({ status: 'failed', result: { message: 'systemd said no' } });

    // renew-certificate: the heartbeat asks for renewal while it is sent; unanswered for an hour → expired.
    const renew = (await send('POST', path(alpha), { kind: 'renew-certificate' })).json();
    clock.t += 30_000;
    const hbr = await heartbeat(alpha, {}, 2);
    expect(hbr.actions).toEqual([{ id: renew.id, kind: 'renew-certificate' }]);
    expect(hbr.renewCertificate).toBe(true);
    clock.t += 61 * 60_000;
    const after = (await get(path(alpha))).json().items as { id: string; status: string }[];
    expect(after.find((a) => a.id === renew.id)?.status).toBe('expired');
    const row = await store.db.get('SELECT pending_actions FROM devices WHERE id = ?', [alpha.deviceId]);
    expect(Number(row?.pending_actions)).toBe(0);
    expect((await signed(alpha, 'POST', resultPath(alpha, renew.id), { status: 'done' })).statusCode).toBe(
      409,
    );

    const audit = (await get(`/v1/audit?deviceId=${alpha.deviceId}`)).json() as {
      action: string;
      actor: string;
    }[];
    expect(audit.filter((a) => a.action === 'device.action')).toHaveLength(3);
    expect(audit.filter((a) => a.action === 'device.action-result').map((a) => a.actor)).toEqual([
      `device:${alpha.deviceId}`,
      `device:${alpha.deviceId}`,
    ]);

    // A revoked device takes no new actions.
    expect(
      (await send('POST', `/v1/devices/${gamma.deviceId}/revoke`, { reason: 'stolen' })).statusCode,
    ).toBe(200);
    expect((await send('POST', path(gamma), { kind: 'restart' })).statusCode).toBe(409);
    expect(
      (await send('POST', '/v1/devices/sr-aaaaaaaaaaaaaaaaaaaa/actions', { kind: 'restart' })).statusCode,
    ).toBe(404);
  });
});

describe.each(backends)('fleet API through console sessions on %s', (backend: BackendName) => {
  let stack: ConsoleStack;
  let fixture: { dir: string; remove(): void };
  let cleanup: () => Promise<void>;

  beforeAll(async () => {
    const fresh = await freshStore(backend, cluster);
    cleanup = fresh.cleanup;
    fixture = placeholderConsoleDir();
    stack = await startConsoleStack({ store: fresh.store, staticDir: fixture.dir });
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
    await cleanup?.();
    fixture?.remove();
  });

  it('helpdesk reads but cannot change; an admin change needs the CSRF header; the audit names the user', async () => {
    const call = (s: ConsoleSession, method: string, path: string, body?: unknown, csrf = true) =>
      fetch(`${stack.url}${path}`, {
        method,
        headers: {
          cookie: s.cookie,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(csrf ? { 'x-sealroom-csrf': s.csrf } : {}),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    const hal = await stack.signInHeadless('hal');
    const ivy = await stack.signInHeadless('ivy');
    expect((await call(hal, 'GET', '/v1/devices')).status).toBe(200);
    expect((await call(hal, 'GET', '/v1/fleet/summary')).status).toBe(200);
    expect((await call(hal, 'GET', '/v1/sites')).status).toBe(200);
    const profile = { config: { volume: 30 } };
    expect((await call(hal, 'PUT', '/v1/sites/Lab/profile', profile)).status).toBe(403);
    expect((await call(ivy, 'PUT', '/v1/sites/Lab/profile', profile, false)).status).toBe(403);
    const ok = await call(ivy, 'PUT', '/v1/sites/Lab/profile', profile);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ site: 'Lab', version: 1, updatedBy: 'console:ivy@example.org' });
    const audit = await stack.store.listAudit({ action: 'site.profile' });
    expect(audit.map((a) => [a.actor, a.tokenId])).toEqual([['console:ivy@example.org', null]]);
    // Without any session or token.
    expect((await fetch(`${stack.url}/v1/fleet/summary`)).status).toBe(401);
  });
});
