// The service over real loopback HTTP, on SQLite and PostgreSQL: the happy path, and every bad input
// the issue names answered with a 4xx, a clear message, and no change in the store.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClient } from '../provisioning/client/admin-client.js';
import { DeviceProvisioningClient } from '../provisioning/client/device-client.js';
import { ProvisioningHttpError, requestJson } from '../provisioning/client/http.js';
import { signDeviceRequest } from '../provisioning/device-auth.js';
import { createPinnedFetch } from '../src/util/pinned-fetch.js';
import { type RunningService, startProvisioningService } from '../provisioning/service/serve.js';
import {
  createCsr,
  deviceIdForPublicKey,
  generateIdentityKey,
  RevocationFeed,
  verifyDeviceCertificate,
} from '../src/pki/index.js';
import { type BackendName, backends, PostgresCluster } from './provisioning-backends.js';

const cluster = new PostgresCluster();
beforeAll(() => cluster.start(), 60_000);
afterAll(() => cluster.stop());

const inventory = { model: 'SR-1', serial: 'X1', macs: ['00:11:22:33:44:55'], cameras: ['cam'], cores: 4 };

/** The service speaks HTTPS with its own CA: every call trusts exactly that CA (as devices do). */
let pf: typeof fetch;

async function newDevice(baseUrl: string) {
  const key = generateIdentityKey();
  const deviceId = deviceIdForPublicKey(key.publicKey);
  const csr = await createCsr(key, { deviceId });
  return {
    key,
    deviceId,
    csr,
    client: new DeviceProvisioningClient(baseUrl, deviceId, key.privateKey, Date.now, undefined, pf),
  };
}

async function status(p: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof ProvisioningHttpError) return { status: err.status, message: err.message };
    throw err;
  }
  throw new Error('expected an HTTP error');
}

describe.each(backends)('provisioning service on %s', (backend: BackendName) => {
  let svc: RunningService;
  let admin: AdminClient;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'sealroom-svc-'));
    svc = await startProvisioningService({
      dataDir,
      databaseUrl: backend === 'postgres' ? await cluster.createDatabase() : undefined,
      port: 0,
      org: 'Acme',
      logger: false,
      rateLimits: { enrollmentsPerMinute: 1000, claimsPerMinute: 1000 },
    });
    pf = createPinnedFetch(svc.tls.caPem!);
    admin = new AdminClient(svc.url, readFileSync(svc.bootstrapTokenPath!, 'utf8').trim(), pf);
  });
  afterAll(async () => {
    await svc?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('enrolls, claims, issues an openssl-verifiable certificate, heartbeats, pushes config, revokes', async () => {
    const dev = await newDevice(svc.url);
    const enrolled = await dev.client.enroll({ csr: dev.csr, softwareVersion: '1.0.0', inventory });
    expect(enrolled.deviceId).toBe(dev.deviceId);
    expect(enrolled.activationCode).toMatch(/^[A-Z0-9]{4}-[A-Z0-9]{4}$/);
    expect(await dev.client.fetchCertificate()).toMatchObject({ status: 'pending' });

    const claimed = await admin.claim({
      activationCode: enrolled.activationCode.toLowerCase().replace('-', ' '),
      roomName: 'Boardroom',
      site: 'Berlin',
      config: { volume: 40 },
    });
    expect(claimed).toMatchObject({
      status: 'active',
      roomName: 'Boardroom',
      site: 'Berlin',
      claimedBy: 'bootstrap',
    });

    const cert = await dev.client.fetchCertificate();
    expect(cert.status).toBe('active');
    const v = await verifyDeviceCertificate(cert.certPem!, cert.caCertPem!);
    expect(v).toMatchObject({ deviceId: dev.deviceId, roomName: 'Boardroom', site: 'Berlin', org: 'Acme' });
    const dir = mkdtempSync(join(tmpdir(), 'sealroom-ossl-'));
    writeFileSync(join(dir, 'ca.pem'), cert.caCertPem!);
    writeFileSync(join(dir, 'dev.pem'), cert.certPem!);
    expect(
      execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), join(dir, 'dev.pem')]).toString(),
    ).toMatch(/: OK/);
    rmSync(dir, { recursive: true });

    const hb = await dev.client.heartbeat({
      softwareVersion: '1.0.1',
      configVersion: 0,
      health: { loadPercent: 12.5, temperatureC: null, peripherals: { present: ['cam'], missing: ['mic'] } },
    });
    expect(hb).toMatchObject({
      status: 'active',
      configVersion: 1,
      config: { volume: 40 },
      renewCertificate: false,
    });
    await admin.setConfig(dev.deviceId, { volume: 70 });
    const hb2 = await dev.client.heartbeat({ softwareVersion: '1.0.1', configVersion: 1, health: {} });
    expect(hb2).toMatchObject({ configVersion: 2, config: { volume: 70 } });
    const hb3 = await dev.client.heartbeat({ softwareVersion: '1.0.1', configVersion: 2, health: {} });
    expect(hb3.config).toBeUndefined();

    await svc.app.heartbeats.flush(); // heartbeats are written behind, in batches
    const shown = await admin.showDevice(dev.deviceId);
    expect(shown).toMatchObject({ softwareVersion: '1.0.1', inventory: { model: 'SR-1' } });
    expect((await admin.listDevices({ site: 'Berlin' })).items.map((d) => d.id)).toContain(dev.deviceId);

    const renewed = await dev.client.renew(dev.csr);
    expect(renewed.serial).not.toBe(cert.serial);

    const feed = new RevocationFeed({ baseUrl: svc.url, caCertPem: svc.ca.certPem, fetch: pf });
    await feed.refresh();
    expect(feed.isRevoked(cert.serial!)).toBe(false);
    await admin.revoke(dev.deviceId, 'stolen');
    await feed.refresh();
    expect(feed.isRevoked(cert.serial!)).toBe(true);
    expect(feed.isRevoked(renewed.serial!)).toBe(true);
    expect(
      await status(dev.client.heartbeat({ softwareVersion: '1', configVersion: 2, health: {} })),
    ).toMatchObject({
      status: 403,
    });
    const audit = await admin.audit({ deviceId: dev.deviceId });
    expect(audit.map((a) => a.action)).toEqual([
      'device.revoke',
      'device.renew',
      'device.config',
      'device.claim',
    ]);
    await admin.decommission(dev.deviceId, 'recycled');
    expect(await admin.showDevice(dev.deviceId)).toMatchObject({ status: 'decommissioned' });
    expect(await status(admin.decommission(dev.deviceId))).toMatchObject({ status: 409 });
    expect((await admin.audit({ action: 'device.decommission' })).map((a) => a.deviceId)).toEqual([
      dev.deviceId,
    ]);
  });

  it('serves the claim page the QR code points to, refusing markup in the code', async () => {
    const page = await pf(`${svc.url}/claim?code=ABCD-EFGH`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('claim ABCD-EFGH');
    expect((await pf(`${svc.url}/claim?code=%3Cscript%3E`)).status).toBe(400);
  });

  it('answers bad input with a 4xx and a clear message, changing nothing', async () => {
    const good = await newDevice(svc.url);
    const enrolled = await good.client.enroll({ csr: good.csr, softwareVersion: '1', inventory: {} });
    await admin.claim({ activationCode: enrolled.activationCode, roomName: 'R', site: 'S' });
    const used = enrolled.activationCode;
    const pending = await newDevice(svc.url);
    const pendingEnroll = await pending.client.enroll({
      csr: pending.csr,
      softwareVersion: '1',
      inventory: {},
    });
    const before = await svc.store.snapshot();

    const other = await newDevice(svc.url);
    const thief = generateIdentityKey();
    // A CSR naming one device but signed by another key: the derived id does not match.
    const csrByOtherKey = await createCsr(thief, { deviceId: other.deviceId });
    const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
      requestJson(`${svc.url}${path}`, { fetch: pf, method: 'POST', body: JSON.stringify(body), headers });
    const cases: [string, Promise<unknown>, number, RegExp][] = [
      [
        'malformed CSR',
        post('/v1/enrollments', { csr: 'hello', softwareVersion: '1', inventory: {} }),
        400,
        /malformed CSR/,
      ],
      [
        'CSR by another key',
        post('/v1/enrollments', { csr: csrByOtherKey, softwareVersion: '1', inventory: {} }),
        400,
        /common name/,
      ],
      [
        'oversized body',
        post('/v1/enrollments', {
          csr: good.csr,
          softwareVersion: '1',
          inventory: { model: 'x'.repeat(70_000) },
        }),
        413,
        /too large/i,
      ],
      [
        'control characters',
        admin.claim({
          activationCode: pendingEnroll.activationCode,
          roomName: 'Room\u0000\u001b[31m',
          site: 'S',
        }),
        400,
        /roomName/,
      ],
      [
        'unknown code',
        admin.claim({ activationCode: 'AAAA-AAAA', roomName: 'R', site: 'S' }),
        404,
        /unknown activation code/,
      ],
      [
        'guessed code (bad alphabet)',
        admin.claim({ activationCode: "1' OR '1'='1", roomName: 'R', site: 'S' }),
        400,
        /8 characters/,
      ],
      ['used code', admin.claim({ activationCode: used, roomName: 'R', site: 'S' }), 409, /already used/],
      ['no token', requestJson(`${svc.url}/v1/devices`, { fetch: pf, method: 'GET' }), 401, /admin token/],
      [
        'unsigned device call',
        requestJson(`${svc.url}/v1/devices/${good.deviceId}/certificate`, { fetch: pf, method: 'GET' }),
        401,
        /missing-headers/,
      ],
      [
        'extra field',
        post('/v1/enrollments', { csr: good.csr, softwareVersion: '1', inventory: {}, admin: true }),
        400,
        /additional/,
      ],
    ];
    // They run concurrently; mark them handled until each is awaited below.
    for (const c of cases) c[1].catch(() => {});
    for (const [name, p, code, message] of cases) {
      const r = await status(p);
      expect({ name, ...r }).toMatchObject({ name, status: code });
      expect(r.message, name).toMatch(message);
    }

    // A replayed signed request: the first one counts, the copy is refused (nonce).
    const certPath = `/v1/devices/${good.deviceId}/certificate`;
    const certHeaders = signDeviceRequest({
      privateKey: good.key.privateKey,
      deviceId: good.deviceId,
      method: 'GET',
      path: certPath,
      body: '',
      now: Date.now(),
    });
    await requestJson(`${svc.url}${certPath}`, { fetch: pf, method: 'GET', headers: certHeaders });
    expect(
      await status(requestJson(`${svc.url}${certPath}`, { fetch: pf, method: 'GET', headers: certHeaders })),
    ).toMatchObject({ status: 401, message: expect.stringMatching(/replayed/) });
    // A heartbeat is a state report dated by its signature (no nonce): its replay is answered but
    // changes nothing, as the store's snapshot after both flushes shows.
    const body = JSON.stringify({ softwareVersion: '1', configVersion: 0, health: {} });
    const path = `/v1/devices/${good.deviceId}/heartbeat`;
    const headers = signDeviceRequest({
      privateKey: good.key.privateKey,
      deviceId: good.deviceId,
      method: 'POST',
      path,
      body,
      now: Date.now(),
    });
    await requestJson(`${svc.url}${path}`, { fetch: pf, method: 'POST', body, headers });
    await svc.app.heartbeats.flush();
    const afterFirst = await svc.store.snapshot();
    await svc.store.db.run('UPDATE devices SET health = \'{"edited":true}\' WHERE id = ?', [good.deviceId]);
    const edited = await svc.store.snapshot();
    await requestJson(`${svc.url}${path}`, { fetch: pf, method: 'POST', body, headers });
    await svc.app.heartbeats.flush();
    expect(await svc.store.snapshot()).toEqual(edited);
    await svc.store.db.run('UPDATE devices SET health = ? WHERE id = ?', ['{}', good.deviceId]);
    // Same signature on another body, or by another device's key, or stale.
    const tampered = await status(
      requestJson(`${svc.url}${path}`, {
        fetch: pf,
        method: 'POST',
        body: body.replace('"1"', '"2"'),
        headers,
      }),
    );
    expect(tampered).toMatchObject({ status: 401, message: expect.stringMatching(/bad-signature/) });
    const stale = signDeviceRequest({
      privateKey: good.key.privateKey,
      deviceId: good.deviceId,
      method: 'POST',
      path,
      body,
      now: Date.now() - 3_600_000,
    });
    expect(
      await status(requestJson(`${svc.url}${path}`, { fetch: pf, method: 'POST', body, headers: stale })),
    ).toMatchObject({ status: 401 });
    await svc.app.heartbeats.flush();
    expect(await svc.store.snapshot()).toEqual(afterFirst);
    // Only the accepted heartbeat changed the store (last_seen_at/health of that device).
    expect({ ...afterFirst, devices: [] }).toEqual({ ...before, devices: [] });
  });

  it('refuses an expired code with 410 and read-only tokens with 403', async () => {
    const dev = await newDevice(svc.url);
    const e = await dev.client.enroll({ csr: dev.csr, softwareVersion: '1', inventory: {} });
    await svc.store.db.run('UPDATE enrollments SET expires_at = ? WHERE device_id = ?', [
      '2000-01-01T00:00:00.000Z',
      dev.deviceId,
    ]);
    const before = await svc.store.snapshot();
    expect(
      await status(admin.claim({ activationCode: e.activationCode, roomName: 'R', site: 'S' })),
    ).toMatchObject({
      status: 410,
      message: expect.stringMatching(/expired/),
    });
    const { token } = await admin.createToken('viewer', 'read');
    const viewer = new AdminClient(svc.url, token, pf);
    expect((await viewer.listDevices()).total).toBeGreaterThan(0);
    const afterToken = await svc.store.snapshot();
    expect(await status(viewer.revoke(dev.deviceId))).toMatchObject({ status: 403 });
    expect(await svc.store.snapshot()).toEqual(afterToken);
    expect({ ...afterToken, admin_tokens: [], audit_log: [] }).toEqual({
      ...before,
      admin_tokens: [],
      audit_log: [],
    });
  });

  it('serves an OpenAPI document with every /v1 route', async () => {
    const doc = (
      await requestJson<{ paths: Record<string, unknown> }>(`${svc.url}/openapi.json`, {
        fetch: pf,
        method: 'GET',
      })
    ).body;
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        '/v1/enrollments',
        '/v1/claims',
        '/v1/devices/{id}/heartbeat',
        '/v1/revocations',
        '/v1/audit',
      ]),
    );
  });
});
