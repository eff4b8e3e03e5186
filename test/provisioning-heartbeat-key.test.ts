// Heartbeat keys (provisioning/heartbeat-key.ts) on SQLite and on a real PostgreSQL, attacker first:
// a key is issued only through a device-signed, nonce'd request to an active device; a MAC'd
// heartbeat is refused when made with another device's key, when its keyId names another device,
// when body, path or timestamp were changed, when its key expired (code heartbeat-key-expired), when
// the keyId's expiry was forged; a revoked device with a still-valid key gets 403 device-revoked; a
// replayed MAC'd heartbeat does not move last_seen_at; a second instance (its own store connection)
// verifies keys the first issued; the device client MACs its heartbeats, refetches the key near
// expiry and falls back to a signed heartbeat once when the MAC is refused.
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { scrubSecrets } from '../device/enrollment/log-bundle.js';
import { DeviceProvisioningClient } from '../provisioning/client/device-client.js';
import { signDeviceRequest } from '../provisioning/device-auth.js';
import { macHeartbeatRequest } from '../provisioning/heartbeat-key.js';
import type { ServiceOptions } from '../provisioning/service/app.js';
import { ensureServiceSecret } from '../provisioning/store/heartbeat-store.js';
import { openStore, type ProvisioningStore } from '../provisioning/store/open.js';
import { type CertificateAuthority, createCertificateAuthority } from '../src/pki/index.js';
import { type BackendName, backends, freshStore, PostgresCluster } from './provisioning-backends.js';
import {
  bearer,
  enrollAndClaim,
  enrollDevice,
  OPEN_LIMITS,
  seedToken,
  signedRequest,
  type TestDevice,
  testService,
} from './provisioning-helpers.js';

const cluster = new PostgresCluster();
beforeAll(() => cluster.start(), 60_000);
afterAll(() => cluster.stop());

const T0 = Date.parse('2026-03-01T10:00:00.000Z');
const iso = (t: number) => new Date(t).toISOString();
const NO_TIMER = 3_600_000;
const HOUR = 3600_000;

type HbKey = { keyId: string; key: Buffer; expiresAt: string };

let ca: CertificateAuthority;
beforeAll(async () => {
  ca = await createCertificateAuthority({ commonName: 'HK CA', org: 'Acme', validityDays: 3650 });
});

describe.each(backends)('heartbeat keys on %s', (backend: BackendName) => {
  let store: ProvisioningStore;
  let dataDir: string;
  let databaseUrl: string | undefined;
  let cleanup: () => Promise<void>;
  let token: string;
  const clock = { t: T0 };
  const apps: FastifyInstance[] = [];
  const extraStores: ProvisioningStore[] = [];

  beforeAll(async () => {
    ({ store, dataDir, databaseUrl, cleanup } = await freshStore(backend, cluster));
    ({ token } = await seedToken(store, {
      id: 'hkadmin',
      name: 'hk-admin',
      scope: 'admin',
      now: T0,
      expiresAt: T0 + 365 * 86_400_000,
    }));
  }, 60_000);
  afterEach(async () => {
    for (const a of apps.splice(0)) await a.close();
  });
  afterAll(async () => {
    for (const s of extraStores) await s.close();
    await cleanup();
  });

  async function service(extra: Partial<ServiceOptions> = {}, on: ProvisioningStore = store) {
    const app = await testService({
      store: on,
      ca,
      now: () => new Date(clock.t),
      rateLimits: { ...OPEN_LIMITS, deviceRequestsPerMinute: 1e6, deviceBurst: 1e6 },
      heartbeats: { flushIntervalMs: NO_TIMER },
      ...extra,
    });
    apps.push(app);
    return app;
  }

  const admin = (app: FastifyInstance, url: string, payload: unknown) =>
    app.inject({
      method: 'POST',
      url,
      headers: bearer(token),
      payload: payload as object,
    });

  async function enrolled(app: FastifyInstance, claim = true): Promise<TestDevice> {
    const { key, deviceId } = claim
      ? await enrollAndClaim(app, token, { roomName: 'Room', site: 'Site' })
      : await enrollDevice(app);
    return { key, deviceId };
  }

  /** Records each request's method, path below the device and how it was authenticated into `seen`. */
  function traceAuth(app: FastifyInstance, seen: string[]) {
    app.addHook('onRequest', async (req) => {
      const kind = req.headers['x-sealroom-mac']
        ? 'mac'
        : req.headers['x-sealroom-signature']
          ? 'signed'
          : 'none';
      seen.push(`${req.method} ${req.url.replace(/^\/v1\/devices\/[^/]+\//, '')} ${kind}`);
    });
  }

  /** The signed key request (the same object can be replayed). */
  function keyRequest(dev: TestDevice, at = clock.t) {
    const url = `/v1/devices/${dev.deviceId}/heartbeat-key`;
    const headers = signDeviceRequest({
      privateKey: dev.key.privateKey,
      deviceId: dev.deviceId,
      method: 'POST',
      path: url,
      body: '',
      now: at,
    });
    return (app: FastifyInstance) => app.inject({ method: 'POST', url, headers });
  }

  async function heartbeatKey(app: FastifyInstance, dev: TestDevice): Promise<HbKey> {
    const res = await keyRequest(dev)(app);
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const b = res.json() as { keyId: string; key: string; expiresAt: string };
    return { keyId: b.keyId, key: Buffer.from(b.key, 'base64'), expiresAt: b.expiresAt };
  }

  const body = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({ softwareVersion: '2.0.0', configVersion: 1, health: {}, ...extra });

  /** A MAC'd heartbeat to `dev`'s path; `macOver` changes what the MAC covers (tampering). */
  function macHeartbeat(
    dev: TestDevice,
    k: { keyId: string; key: Buffer },
    at: number,
    opts: { payload?: string; macOver?: { path?: string; body?: string; timestamp?: number } } = {},
  ) {
    const url = `/v1/devices/${dev.deviceId}/heartbeat`;
    const payload = opts.payload ?? body();
    const headers = macHeartbeatRequest({
      keyId: k.keyId,
      key: k.key,
      method: 'POST',
      path: opts.macOver?.path ?? url,
      body: opts.macOver?.body ?? payload,
      now: opts.macOver?.timestamp ?? at,
    });
    headers['x-sealroom-timestamp'] = String(at);
    return (app: FastifyInstance) =>
      app.inject({
        method: 'POST',
        url,
        headers: { ...headers, 'content-type': 'application/json' },
        payload,
      });
  }

  const lastSeen = async (id: string) =>
    (
      await store.db.get<{ last_seen_at: string | null }>('SELECT last_seen_at FROM devices WHERE id = ?', [
        id,
      ])
    )?.last_seen_at;

  it('issues a key only through a signed, fresh request to an active device; a MAC’d heartbeat is written at its time', async () => {
    clock.t = T0;
    const app = await service();
    const dev = await enrolled(app);
    const req = keyRequest(dev);
    const first = await req(app);
    expect(first.statusCode).toBe(200);
    const k = first.json() as { keyId: string; key: string; expiresAt: string };
    expect(k.keyId).toBe(`${dev.deviceId}.${(T0 + 6 * HOUR) / 1000}.1`);
    expect(k.expiresAt).toBe(iso(T0 + 6 * HOUR));
    expect(Buffer.from(k.key, 'base64')).toHaveLength(32);
    // The same signed request again: the nonce is spent.
    const replay = await req(app);
    expect(replay.statusCode).toBe(401);
    expect(replay.json().message).toMatch(/nonce already used/);
    // Unsigned, or signed by another device for this path.
    expect(
      (await app.inject({ method: 'POST', url: `/v1/devices/${dev.deviceId}/heartbeat-key` })).statusCode,
    ).toBe(401);
    const other = await enrolled(app);
    const forged = await signedRequest(
      app,
      other,
      clock.t,
      'POST',
      `/v1/devices/${dev.deviceId}/heartbeat-key`,
    );
    expect(forged.statusCode).toBe(403);
    // A device not claimed yet gets no key.
    const pending = await enrolled(app, false);
    const refused = await keyRequest(pending)(app);
    expect(refused.statusCode).toBe(403);
    expect(refused.json().message).toMatch(/only active devices/);

    const key = { keyId: k.keyId, key: Buffer.from(k.key, 'base64') };
    const res = await macHeartbeat(dev, key, T0 - 5000)(app);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'active', configVersion: 1 });
    await app.heartbeats.flush();
    expect(await lastSeen(dev.deviceId)).toBe(iso(T0 - 5000));
  });

  it('refuses a MAC made with another device’s key, and a keyId naming another device', async () => {
    clock.t = T0 + HOUR;
    const app = await service();
    const a = await enrolled(app);
    const b = await enrolled(app);
    const kb = await heartbeatKey(app, b);
    // B's key, but a keyId that names A: the key A's keyId derives is not B's.
    const stolen = await macHeartbeat(
      a,
      { keyId: kb.keyId.replace(b.deviceId, a.deviceId), key: kb.key },
      clock.t,
    )(app);
    expect(stolen.statusCode).toBe(401);
    expect(stolen.json().message).toMatch(/bad-mac/);
    // B's genuine keyId and key on A's path.
    const crossed = await macHeartbeat(a, kb, clock.t)(app);
    expect(crossed.statusCode).toBe(403);
    expect(crossed.json().message).toMatch(/not the device in the path/);
    await app.heartbeats.flush();
    expect(await lastSeen(a.deviceId)).toBeNull();
  });

  it('refuses a tampered body, path or timestamp, and a made-up MAC', async () => {
    clock.t = T0 + 2 * HOUR;
    const app = await service();
    const dev = await enrolled(app);
    const k = await heartbeatKey(app, dev);
    const path = `/v1/devices/${dev.deviceId}/heartbeat`;
    const cases = [
      macHeartbeat(dev, k, clock.t, {
        payload: body({ softwareVersion: '6.6.6' }),
        macOver: { body: body() },
      }),
      macHeartbeat(dev, k, clock.t, { macOver: { path: `${path}?x=1` } }),
      macHeartbeat(dev, k, clock.t, { macOver: { timestamp: clock.t - 1000 } }),
    ];
    for (const send of cases) {
      const res = await send(app);
      expect(res.statusCode).toBe(401);
      expect(res.json().message).toMatch(/bad-mac/);
    }
    const junk = await app.inject({
      method: 'POST',
      url: path,
      headers: {
        'content-type': 'application/json',
        'x-sealroom-heartbeat-key': k.keyId,
        'x-sealroom-timestamp': String(clock.t),
        'x-sealroom-mac': randomBytes(32).toString('base64url'),
      },
      payload: body(),
    });
    expect(junk.statusCode).toBe(401);
    // Outside the skew window, with a correct MAC.
    const stale = await macHeartbeat(dev, k, clock.t - 6 * 60_000)(app);
    expect(stale.statusCode).toBe(401);
    expect(stale.json().message).toMatch(/stale-timestamp/);
    // A keyId that does not parse.
    const badId = await macHeartbeat(dev, { keyId: `${dev.deviceId}.x.1`, key: k.key }, clock.t)(app);
    expect(badId.json().message).toMatch(/bad-key-id/);
    await app.heartbeats.flush();
    expect(await lastSeen(dev.deviceId)).toBeNull();
  });

  it('refuses an expired key (heartbeat-key-expired) and a keyId whose expiry was moved later', async () => {
    clock.t = T0 + 10 * HOUR;
    const app = await service();
    const dev = await enrolled(app);
    const k = await heartbeatKey(app, dev);
    const expires = Number(k.keyId.split('.')[1]);
    // The forged keyId with a later expiry, MAC'd with the real key: the derived key differs.
    const later = `${dev.deviceId}.${expires + 60}.1`;
    const forged = await macHeartbeat(dev, { keyId: later, key: k.key }, clock.t)(app);
    expect(forged.statusCode).toBe(401);
    expect(forged.json().message).toMatch(/bad-mac/);
    // Far later than any key is issued for.
    const far = await macHeartbeat(
      dev,
      { keyId: `${dev.deviceId}.${expires + 86_400}.1`, key: k.key },
      clock.t,
    )(app);
    expect(far.statusCode).toBe(401);
    // Another secret generation: refused with the code that makes the device fetch a new key.
    const gen = await macHeartbeat(dev, { keyId: `${dev.deviceId}.${expires}.2`, key: k.key }, clock.t)(app);
    expect(gen.json()).toMatchObject({ statusCode: 401, error: 'heartbeat-key-expired' });

    clock.t = expires * 1000; // the key's last second is over
    const expired = await macHeartbeat(dev, k, clock.t)(app);
    expect(expired.statusCode).toBe(401);
    expect(expired.json()).toMatchObject({ error: 'heartbeat-key-expired' });
    // The signed heartbeat is still accepted (the device's fallback), and a new key works.
    const url = `/v1/devices/${dev.deviceId}/heartbeat`;
    const payload = body();
    const signed = await signedRequest(app, dev, clock.t, 'POST', url, undefined, payload);
    expect(signed.statusCode).toBe(200);
    const fresh = await heartbeatKey(app, dev);
    expect(fresh.keyId).not.toBe(k.keyId);
    expect((await macHeartbeat(dev, fresh, clock.t + 1)(app)).statusCode).toBe(200);
  });

  it('refuses a revoked device that still holds a valid key (403 device-revoked)', async () => {
    clock.t = T0 + 20 * HOUR;
    const app = await service();
    const dev = await enrolled(app);
    const k = await heartbeatKey(app, dev);
    expect((await macHeartbeat(dev, k, clock.t)(app)).statusCode).toBe(200);
    expect((await admin(app, `/v1/devices/${dev.deviceId}/revoke`, { reason: 'stolen' })).statusCode).toBe(
      200,
    );
    const res = await macHeartbeat(dev, k, clock.t + 1000)(app);
    expect(res.statusCode).toBe(403);
    expect(res.json()).toMatchObject({ error: 'device-revoked' });
    expect(res.json().crl).toMatch(/BEGIN X509 CRL/);
    // And no new key for it.
    expect((await keyRequest(dev, clock.t + 2000)(app)).statusCode).toBe(403);
  });

  it('answers a replayed MAC’d heartbeat without moving last_seen_at', async () => {
    clock.t = T0 + 30 * HOUR;
    const app = await service();
    const dev = await enrolled(app);
    const k = await heartbeatKey(app, dev);
    const current = macHeartbeat(dev, k, clock.t, { payload: body({ health: { temperatureC: 40 } }) });
    const older = macHeartbeat(dev, k, clock.t - 30_000, { payload: body({ health: { temperatureC: 99 } }) });
    expect((await current(app)).statusCode).toBe(200);
    await app.heartbeats.flush();
    expect(await lastSeen(dev.deviceId)).toBe(iso(clock.t));
    clock.t += 60_000;
    expect((await current(app)).statusCode).toBe(200); // a state report: answered
    expect((await older(app)).statusCode).toBe(200);
    await app.heartbeats.flush();
    expect(await lastSeen(dev.deviceId)).toBe(iso(clock.t - 60_000));
    const health = await store.db.get<{ health: string }>('SELECT health FROM devices WHERE id = ?', [
      dev.deviceId,
    ]);
    expect(JSON.parse(health!.health)).toEqual({ temperatureC: 40 });
  });

  it('a second instance with its own store connection verifies keys the first issued; racing secret creation agrees', async () => {
    clock.t = T0 + 40 * HOUR;
    const app = await service();
    const dev = await enrolled(app);
    const k = await heartbeatKey(app, dev);
    const otherStore = await openStore({ dataDir, databaseUrl });
    extraStores.push(otherStore);
    const other = await service({}, otherStore);
    const res = await macHeartbeat(dev, k, clock.t)(other);
    expect(res.statusCode).toBe(200);
    await other.heartbeats.flush();
    expect(await lastSeen(dev.deviceId)).toBe(iso(clock.t));

    const name = `race-${randomBytes(4).toString('hex')}`;
    const [x, y] = await Promise.all([
      ensureServiceSecret(store.db, name, randomBytes(32), iso(clock.t)),
      ensureServiceSecret(otherStore.db, name, randomBytes(32), iso(clock.t)),
    ]);
    expect(x.equals(y)).toBe(true);
  });

  it('the device client MACs heartbeats, refetches near expiry, and falls back to a signed heartbeat once', async () => {
    clock.t = T0 + 50 * HOUR;
    const app = await service({ heartbeats: { flushIntervalMs: NO_TIMER, keyTtlMs: HOUR } });
    const seen: string[] = [];
    traceAuth(app, seen);
    await app.listen({ host: '127.0.0.1', port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const dev = await enrolled(app);
    // The device's fetch goes to whichever instance `target` names (the second one further down).
    const target = { base };
    const viaTarget: typeof fetch = (url, init) => fetch(String(url).replace(base, target.base), init);
    const client = new DeviceProvisioningClient(
      base,
      dev.deviceId,
      dev.key.privateKey,
      () => clock.t,
      undefined,
      viaTarget,
    );
    seen.length = 0;
    const hb = { softwareVersion: '2.0.0', configVersion: 1, health: {} };
    expect((await client.heartbeat(hb)).status).toBe('active');
    clock.t += 30_000;
    await client.heartbeat(hb);
    expect(seen).toEqual(['POST heartbeat-key signed', 'POST heartbeat mac', 'POST heartbeat mac']);
    // The key in memory is scrubbed from a log bundle's text.
    const [b64] = client.heartbeatKeySecrets();
    expect(b64).toBeTruthy();
    expect(scrubSecrets(`oops ${b64} leaked`, client.heartbeatKeySecrets())).toBe('oops [redacted] leaked');

    // 51 minutes later the 1 h key expires within 10 min: a new one first.
    seen.length = 0;
    clock.t += 51 * 60_000;
    await client.heartbeat(hb);
    expect(seen).toEqual(['POST heartbeat-key signed', 'POST heartbeat mac']);

    // The secret changes (a restored database, a rotation): the MAC is refused, one signed retry.
    await store.db.run('DELETE FROM service_secrets');
    const next = await service();
    traceAuth(next, seen);
    await next.listen({ host: '127.0.0.1', port: 0 });
    target.base = `http://127.0.0.1:${(next.server.address() as { port: number }).port}`;
    seen.length = 0;
    clock.t += 30_000;
    expect((await client.heartbeat(hb)).status).toBe('active');
    expect(seen).toEqual(['POST heartbeat mac', 'POST heartbeat signed']);
    seen.length = 0;
    clock.t += 30_000;
    await client.heartbeat(hb);
    expect(seen).toEqual(['POST heartbeat-key signed', 'POST heartbeat mac']);
  });
});
