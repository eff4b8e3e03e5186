// The heartbeat write-behind pipeline (provisioning/service/heartbeats.ts) on SQLite and on a real
// PostgreSQL: heartbeats are answered from memory and land in the store with the next flush; a
// replayed or older signed heartbeat never moves last_seen_at (not even through a second instance
// with a cold cache); revocation is honoured on the very next heartbeat on this instance and after
// one flush on another; close() writes what is buffered; health samples are rate-limited per device;
// the reply carries config when the device is behind, and queued actions; a full buffer answers 503.
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { signDeviceRequest } from '../provisioning/device-auth.js';
import type { ServiceOptions } from '../provisioning/service/app.js';
import type { FlushedHeartbeat } from '../provisioning/service/heartbeats.js';
import { purgeHealthSamples } from '../provisioning/store/heartbeat-store.js';
import type { ProvisioningStore } from '../provisioning/store/open.js';
import { type CertificateAuthority, createCertificateAuthority } from '../src/pki/index.js';
import { type BackendName, backends, freshStore, PostgresCluster } from './provisioning-backends.js';
import {
  bearer,
  enrollAndClaim,
  OPEN_LIMITS,
  seedToken,
  type TestDevice,
  testService,
} from './provisioning-helpers.js';

const cluster = new PostgresCluster();
beforeAll(() => cluster.start(), 60_000);
afterAll(() => cluster.stop());

const T0 = Date.parse('2026-03-01T10:00:00.000Z');
const iso = (t: number) => new Date(t).toISOString();
/** No timer flush during a test: every write below is caused by an explicit flush() or close(). */
const NO_TIMER = 3_600_000;

let ca: CertificateAuthority;
beforeAll(async () => {
  ca = await createCertificateAuthority({ commonName: 'HB CA', org: 'Acme', validityDays: 3650 });
});

describe.each(backends)('heartbeat pipeline on %s', (backend: BackendName) => {
  let store: ProvisioningStore;
  let cleanup: () => Promise<void>;
  let token: string;
  const clock = { t: T0 };
  const apps: FastifyInstance[] = [];

  beforeAll(async () => {
    ({ store, cleanup } = await freshStore(backend, cluster));
    ({ token } = await seedToken(store, {
      id: 'hbadmin',
      name: 'hb-admin',
      scope: 'admin',
      now: T0,
      expiresAt: T0 + 30 * 86_400_000,
    }));
  }, 60_000);
  afterEach(async () => {
    for (const a of apps.splice(0)) await a.close();
  });
  afterAll(() => cleanup());

  async function service(heartbeats: ServiceOptions['heartbeats'] = {}, extra: Partial<ServiceOptions> = {}) {
    const app = await testService({
      store,
      ca,
      now: () => new Date(clock.t),
      rateLimits: { ...OPEN_LIMITS, deviceRequestsPerMinute: 1e6, deviceBurst: 1e6 },
      heartbeats: { flushIntervalMs: NO_TIMER, ...heartbeats },
      ...extra,
    });
    apps.push(app);
    return app;
  }

  const admin = (app: FastifyInstance, method: 'POST' | 'PUT', url: string, payload: unknown) =>
    app.inject({ method, url, headers: bearer(token), payload: payload as object });

  async function activeDevice(app: FastifyInstance): Promise<TestDevice> {
    const { key, deviceId } = await enrollAndClaim(app, token, { roomName: 'Room', site: 'Site' });
    return { key, deviceId };
  }

  /** A signed heartbeat (headers + body), sent with `send`; the same object can be replayed. */
  function heartbeat(dev: TestDevice, signedAt: number, body: Record<string, unknown> = {}) {
    const payload = JSON.stringify({ softwareVersion: '2.0.0', configVersion: 1, health: {}, ...body });
    const path = `/v1/devices/${dev.deviceId}/heartbeat`;
    const headers = signDeviceRequest({
      privateKey: dev.key.privateKey,
      deviceId: dev.deviceId,
      method: 'POST',
      path,
      body: payload,
      now: signedAt,
    });
    return (app: FastifyInstance) =>
      app.inject({
        method: 'POST',
        url: path,
        headers: { ...headers, 'content-type': 'application/json' },
        payload,
      });
  }

  const row = (id: string) =>
    store.db.get<{
      last_seen_at: string | null;
      health: string | null;
      software_version: string;
      reported_config_version: number | null;
      meeting_state: string | null;
    }>(
      'SELECT last_seen_at, health, software_version, reported_config_version, meeting_state FROM devices WHERE id = ?',
      [id],
    );
  const samples = async (id: string) =>
    (
      await store.db.all<{ at: string }>('SELECT at FROM health_samples WHERE device_id = ? ORDER BY at', [
        id,
      ])
    ).map((r) => r.at);

  it('answers from memory and writes the heartbeat (signed time, health, version, meeting) on flush', async () => {
    clock.t = T0;
    const app = await service();
    const seen: FlushedHeartbeat[][] = [];
    app.heartbeats.onFlush((batch) => {
      seen.push(batch);
    });
    const dev = await activeDevice(app);
    const signedAt = T0 - 20_000; // the device's clock is 20 s behind: its signed time counts
    const res = await heartbeat(dev, signedAt, {
      configVersion: 1,
      health: { loadPercent: 5, meetingState: 'in-meeting', memory: { usedBytes: 1, totalBytes: 2 } },
    })(app);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'active', configVersion: 1, renewCertificate: false });
    expect(res.json().config).toBeUndefined();
    expect((await row(dev.deviceId))?.last_seen_at).toBeNull(); // buffered, not yet written
    expect(app.heartbeats.buffered).toBe(1);

    await app.heartbeats.flush();
    expect(await row(dev.deviceId)).toMatchObject({
      last_seen_at: iso(signedAt),
      software_version: '2.0.0',
      reported_config_version: 1,
      meeting_state: 'in-meeting',
    });
    expect(JSON.parse((await row(dev.deviceId))!.health!)).toEqual({
      loadPercent: 5,
      meetingState: 'in-meeting',
      memory: { usedBytes: 1, totalBytes: 2 },
    });
    expect(seen).toEqual([
      [
        {
          deviceId: dev.deviceId,
          signedAt: iso(signedAt),
          health: { loadPercent: 5, meetingState: 'in-meeting', memory: { usedBytes: 1, totalBytes: 2 } },
          softwareVersion: '2.0.0',
          reportedConfigVersion: 1,
        },
      ],
    ]);
    expect(app.heartbeats.buffered).toBe(0);
  });

  it('writes the common reply (no config, no actions) as JSON with exactly the schema fields', async () => {
    clock.t = T0;
    const app = await service({}, { renewBeforeDays: 30 });
    const dev = await activeDevice(app);
    const res = await heartbeat(dev, T0)(app);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.json()).toEqual({
      status: 'active',
      configVersion: 1,
      renewCertificate: false,
      serverTime: iso(T0),
    });
    // Within renewBeforeDays of the certificate's notAfter the same reply asks for renewal.
    const notAfter = Date.parse((await store.getDevice(dev.deviceId))!.certNotAfter!);
    expect(Number.isFinite(notAfter)).toBe(true);
    clock.t = notAfter - 29 * 86_400_000;
    const late = await heartbeat(dev, clock.t)(app);
    expect(late.statusCode).toBe(200);
    expect(late.json()).toEqual({
      status: 'active',
      configVersion: 1,
      renewCertificate: true,
      serverTime: iso(clock.t),
    });
  });

  it('never moves last_seen_at back or forward for a replayed or older signed heartbeat', async () => {
    clock.t = T0 + 60_000;
    const app = await service();
    const dev = await activeDevice(app);
    const current = heartbeat(dev, T0 + 50_000, { health: { temperatureC: 40 } });
    expect((await current(app)).statusCode).toBe(200);
    await app.heartbeats.flush();
    expect((await row(dev.deviceId))?.last_seen_at).toBe(iso(T0 + 50_000));

    // The attacker replays the captured request later, and a copy of an older one.
    clock.t = T0 + 120_000;
    const older = heartbeat(dev, T0 + 30_000, { softwareVersion: '0.0.1', health: { temperatureC: 99 } });
    expect((await current(app)).statusCode).toBe(200);
    expect((await older(app)).statusCode).toBe(200);
    await app.heartbeats.flush();
    // A second instance with a cold cache: only the store's own check stands in the way.
    const other = await service();
    expect((await current(other)).statusCode).toBe(200);
    expect((await older(other)).statusCode).toBe(200);
    await other.heartbeats.flush();
    const r = await row(dev.deviceId);
    expect(r?.last_seen_at).toBe(iso(T0 + 50_000));
    expect(r?.software_version).toBe('2.0.0');
    expect(JSON.parse(r!.health!)).toEqual({ temperatureC: 40 });

    // A newer signed heartbeat does move it.
    expect((await heartbeat(dev, T0 + 110_000)(other)).statusCode).toBe(200);
    await other.heartbeats.flush();
    expect((await row(dev.deviceId))?.last_seen_at).toBe(iso(T0 + 110_000));
  });

  it('refuses a device revoked on this instance on its very next heartbeat, and on another after a flush', async () => {
    clock.t = T0;
    const app = await service();
    const other = await service();
    const dev = await activeDevice(app);
    expect((await heartbeat(dev, T0 - 1000)(app)).statusCode).toBe(200); // cached as active here
    expect((await heartbeat(dev, T0 - 900)(other)).statusCode).toBe(200); // ... and there
    await app.heartbeats.flush();
    await other.heartbeats.flush();
    expect(
      (await admin(app, 'POST', `/v1/devices/${dev.deviceId}/revoke`, { reason: 'stolen' })).statusCode,
    ).toBe(200);
    const refused = await heartbeat(dev, T0 - 800)(app);
    expect(refused.statusCode).toBe(403);
    expect(refused.json()).toMatchObject({ error: 'device-revoked', message: 'this device is revoked' });
    expect(refused.json().crl).toContain('BEGIN X509 CRL');
    expect(app.heartbeats.buffered).toBe(0); // nothing of a refused device is written

    // The other instance still believes its cache once; its flush reads the status and refuses after.
    expect((await heartbeat(dev, T0 - 700)(other)).statusCode).toBe(200);
    await other.heartbeats.flush();
    expect((await heartbeat(dev, T0 - 600)(other)).statusCode).toBe(403);
    // The heartbeat accepted from stale cache was not written: the device is no longer active.
    expect((await row(dev.deviceId))?.last_seen_at).toBe(iso(T0 - 900));
    await other.heartbeats.flush();

    // A device whose row is gone (purged) is told to enroll again.
    const gone = await activeDevice(app);
    expect((await heartbeat(gone, T0 - 500)(app)).statusCode).toBe(200);
    await store.db.run('DELETE FROM certificates WHERE device_id = ?', [gone.deviceId]);
    await store.db.run('DELETE FROM enrollments WHERE device_id = ?', [gone.deviceId]);
    await store.db.run('DELETE FROM devices WHERE id = ?', [gone.deviceId]);
    await app.heartbeats.flush();
    const unknown = await heartbeat(gone, T0 - 400)(app);
    expect(unknown.statusCode).toBe(401);
    expect(unknown.json().message).toMatch(/unknown device/);
  });

  it('writes buffered heartbeats when the service closes', async () => {
    clock.t = T0;
    const app = await service();
    const devs = [await activeDevice(app), await activeDevice(app), await activeDevice(app)];
    for (const [i, d] of devs.entries())
      expect((await heartbeat(d, T0 - 3000 + i)(app)).statusCode).toBe(200);
    expect(app.heartbeats.buffered).toBe(3);
    apps.splice(apps.indexOf(app), 1);
    await app.close();
    for (const [i, d] of devs.entries())
      expect((await row(d.deviceId))?.last_seen_at).toBe(iso(T0 - 3000 + i));
  });

  it('keeps at most one health sample per device per sampleIntervalMs', async () => {
    clock.t = T0 + 120_000;
    const app = await service({ sampleIntervalMs: 60_000 });
    const a = await activeDevice(app);
    const b = await activeDevice(app);
    const health = { health: { loadPercent: 10, temperatureC: 50, disk: { usedBytes: 5, totalBytes: 9 } } };
    for (const t of [0, 10_000, 59_000, 61_000, 90_000, 125_000]) {
      expect((await heartbeat(a, T0 + t, health)(app)).statusCode).toBe(200);
      await app.heartbeats.flush();
    }
    // Several heartbeats of b in one flush interval: only the latest is written, one sample.
    for (const t of [1000, 2000, 3000])
      expect((await heartbeat(b, T0 + t, health)(app)).statusCode).toBe(200);
    await app.heartbeats.flush();
    // No numbers in the health report: nothing to chart, no sample.
    expect((await heartbeat(b, T0 + 200_000)(app)).statusCode).toBe(200);
    await app.heartbeats.flush();
    expect(await samples(a.deviceId)).toEqual([iso(T0), iso(T0 + 61_000), iso(T0 + 125_000)]);
    expect(await samples(b.deviceId)).toEqual([iso(T0 + 3000)]);
    const s = await store.db.get<Record<string, unknown>>(
      'SELECT load_percent, temperature_c, memory_used, disk_used, disk_total FROM health_samples WHERE device_id = ?',
      [b.deviceId],
    );
    expect(s).toEqual({
      load_percent: 10,
      temperature_c: 50,
      memory_used: null,
      disk_used: 5,
      disk_total: 9,
    });
  });

  it('samples every 5 minutes by default and purges samples older than sampleRetentionMs', async () => {
    clock.t = T0 + 10 * 86_400_000;
    const app = await service();
    const a = await activeDevice(app);
    const health = { health: { loadPercent: 10 } };
    for (const t of [0, 60_000, 299_000, 300_000]) {
      expect((await heartbeat(a, clock.t + t, health)(app)).statusCode).toBe(200);
      await app.heartbeats.flush();
    }
    expect(await samples(a.deviceId)).toEqual([iso(clock.t), iso(clock.t + 300_000)]);

    // Old samples (as left by a service without retention): 8 and 7.5 days old go, 6 days stays.
    const day = 86_400_000;
    const old = [8 * day, 7.5 * day, 7 * day + 1, 6 * day].map((age) => iso(clock.t - age));
    for (const at of old)
      await store.db.run('INSERT INTO health_samples (device_id, at, load_percent) VALUES (?, ?, ?)', [
        a.deviceId,
        at,
        1,
      ]);
    // (The earlier tests' samples, dated around T0, are older still and go too.)
    expect(await app.heartbeats.purgeSamples()).toBeGreaterThanOrEqual(3);
    expect(await samples(a.deviceId)).toEqual([old[3], iso(clock.t), iso(clock.t + 300_000)]);

    // In bounded batches: a batch of 2 rows still deletes all 5 old ones, in 3 statements.
    for (let i = 0; i < 5; i++)
      await store.db.run('INSERT INTO health_samples (device_id, at) VALUES (?, ?)', [
        a.deviceId,
        iso(clock.t - 9 * day + i),
      ]);
    expect(await purgeHealthSamples(store.db, iso(clock.t - 7 * day), 2)).toBe(5);
    expect(await samples(a.deviceId)).toEqual([old[3], iso(clock.t), iso(clock.t + 300_000)]);

    // The service's purge timer runs it (retention shortened to 1 day here).
    const app2 = await service({ sampleRetentionMs: day }, { purgeIntervalMs: 20 });
    await expect
      .poll(() => samples(a.deviceId), { timeout: 5000 })
      .toEqual([iso(clock.t), iso(clock.t + 300_000)]);
    await app2.close();
  });

  it('sends the config when the device is behind, and queued actions once', async () => {
    clock.t = T0;
    const app = await service();
    const dev = await activeDevice(app);
    expect((await heartbeat(dev, T0 - 5000)(app)).json().config).toBeUndefined();
    const put = await admin(app, 'PUT', `/v1/devices/${dev.deviceId}/config`, { config: { volume: 70 } });
    expect(put.statusCode).toBe(200);
    const behind = await heartbeat(dev, T0 - 4000, { configVersion: 1 })(app);
    expect(behind.json()).toMatchObject({ configVersion: 2, config: { volume: 70 } });
    const current = await heartbeat(dev, T0 - 3000, { configVersion: 2 })(app);
    expect(current.json().configVersion).toBe(2);
    expect(current.json().config).toBeUndefined();

    // A queued renew-certificate action (as IT's POST …/actions leaves it): sent once, then the
    // renewal advice stays on until the device reports the result.
    await store.db.run(
      "INSERT INTO device_actions (id, device_id, kind, status, created_at, created_by) VALUES ('act1', ?, 'renew-certificate', 'queued', ?, 'test')",
      [dev.deviceId, iso(T0)],
    );
    await store.db.run('UPDATE devices SET pending_actions = 1 WHERE id = ?', [dev.deviceId]);
    app.heartbeats.invalidate(dev.deviceId);
    const first = await heartbeat(dev, T0 - 2000, { configVersion: 2 })(app);
    expect(first.json()).toMatchObject({
      actions: [{ id: 'act1', kind: 'renew-certificate' }],
      renewCertificate: true,
    });
    const second = await heartbeat(dev, T0 - 1000, { configVersion: 2 })(app);
    expect(second.json().actions).toBeUndefined();
    expect(second.json().renewCertificate).toBe(true);
  });

  it('keeps the heartbeats of a failed flush and writes them with the next one', async () => {
    clock.t = T0;
    const app = await service();
    const dev = await activeDevice(app);
    expect((await heartbeat(dev, T0 - 2000, { health: { meetingState: 'idle' } })(app)).statusCode).toBe(200);
    // The database refuses the write (a column it needs is gone for a moment).
    await store.db.exec('ALTER TABLE devices RENAME COLUMN meeting_state TO meeting_state_gone');
    await expect(app.heartbeats.flush()).rejects.toThrow();
    expect(app.heartbeats.buffered).toBe(1);
    // Meanwhile a newer report replaces the kept one; nothing is written twice or lost.
    expect(
      (await heartbeat(dev, T0 - 1000, { health: { meetingState: 'in-meeting' } })(app)).statusCode,
    ).toBe(200);
    await store.db.exec('ALTER TABLE devices RENAME COLUMN meeting_state_gone TO meeting_state');
    await app.heartbeats.flush();
    expect(await row(dev.deviceId)).toMatchObject({
      last_seen_at: iso(T0 - 1000),
      meeting_state: 'in-meeting',
    });
  });

  it('answers 503 when the buffer is full instead of growing without bound', async () => {
    clock.t = T0;
    const app = await service({ maxBuffered: 2 });
    const devs = [await activeDevice(app), await activeDevice(app), await activeDevice(app)];
    expect((await heartbeat(devs[0]!, T0 - 900)(app)).statusCode).toBe(200);
    expect((await heartbeat(devs[1]!, T0 - 800)(app)).statusCode).toBe(200);
    // A device already waiting replaces its own report (latest per device) ...
    expect((await heartbeat(devs[1]!, T0 - 700)(app)).statusCode).toBe(200);
    // ... a new one is told to come back.
    const full = await heartbeat(devs[2]!, T0 - 600)(app);
    expect(full.statusCode).toBe(503);
    expect(full.headers['retry-after']).toBeDefined();
    await app.heartbeats.flush();
    expect((await heartbeat(devs[2]!, T0 - 500)(app)).statusCode).toBe(200);
    await app.heartbeats.flush();
    expect((await row(devs[1]!.deviceId))?.last_seen_at).toBe(iso(T0 - 700));
    expect((await row(devs[2]!.deviceId))?.last_seen_at).toBe(iso(T0 - 500));
  });
});
