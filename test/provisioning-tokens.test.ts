// Admin tokens (expiry, revocation, unique names, listing, audit tokenId, no minting of more rights),
// the CRL at GET /v1/revocations (cached, signed, strictly increasing persisted CRL number, verified
// by the real openssl), the 403 'device-revoked' proof, purging, and the per-device rate limit — on
// SQLite and on a real PostgreSQL. The tests play the attacker: each would fail on the old service.
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startProvisioningService } from '../provisioning/service/serve.js';
import { migrate, migrations } from '../provisioning/store/migrations.js';
import { openStore, type ProvisioningStore } from '../provisioning/store/open.js';
import { hashAdminToken } from '../provisioning/tokens.js';
import { CRL_REISSUE_MS, CRL_VALIDITY_MS, verifyCrl } from '../src/pki/crl.js';
import {
  type CertificateAuthority,
  createCertificateAuthority,
  createCsr,
  deviceIdForPublicKey,
  generateIdentityKey,
  normalizeSerial,
} from '../src/pki/index.js';
import { type BackendName, backends, freshStore, PostgresCluster } from './provisioning-backends.js';
import {
  bearer,
  enrollAndClaim,
  OPEN_LIMITS,
  seedToken,
  signedRequest,
  testService,
} from './provisioning-helpers.js';

const cluster = new PostgresCluster();
beforeAll(() => cluster.start(), 60_000);
afterAll(() => cluster.stop());

const DAY = 86_400_000;
const T0 = Date.parse('2026-03-01T10:00:00.000Z');

/** A service on a store with a clock the test moves. */
function service(store: ProvisioningStore, ca: CertificateAuthority, clock: { t: number }, extra = {}) {
  return testService({ store, ca, now: () => new Date(clock.t), rateLimits: OPEN_LIMITS, ...extra });
}

/** An admin token named `name` (its id derived from the name) seeded into the store. */
const seedNamedToken = (
  store: ProvisioningStore,
  name: string,
  scope: 'read' | 'admin',
  now: number,
  expiresAt: number,
) => seedToken(store, { id: hashAdminToken(name).slice(0, 16), name, scope, now, expiresAt });

/** A device enrolled and claimed (room R, site S) through the API. */
const activeDevice = (app: FastifyInstance, adminToken: string) =>
  enrollAndClaim(app, adminToken, { roomName: 'R', site: 'S' });

const heartbeat = { softwareVersion: '1.0.0', configVersion: 1, health: {} };

describe.each(backends)('provisioning tokens, CRL and limits on %s', (backend: BackendName) => {
  let ca: CertificateAuthority;
  const cleanups: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    ca = await createCertificateAuthority({ commonName: 'Acme CA', org: 'Acme', validityDays: 3650 });
  });
  afterAll(async () => {
    for (const c of cleanups) await c();
  });

  async function setUp(extra = {}) {
    const fresh = await freshStore(backend, cluster);
    cleanups.push(fresh.cleanup);
    const clock = { t: T0 };
    const app = await service(fresh.store, ca, clock, extra);
    cleanups.push(() => app.close());
    const root = await seedNamedToken(fresh.store, 'root', 'admin', T0, T0 + 300 * DAY);
    return { ...fresh, clock, app, root };
  }

  it('expires, revokes, lists and names tokens uniquely; audit rows carry the token id', async () => {
    const { app, store, clock, root } = await setUp();
    const create = (token: string, payload: Record<string, unknown>) =>
      app.inject({ method: 'POST', url: '/v1/tokens', headers: bearer(token), payload });

    // Default expiry: 90 days (under the creator's 300).
    const ops = await create(root.token, { name: 'ops', scope: 'admin' });
    expect(ops.statusCode).toBe(201);
    expect(ops.json()).toMatchObject({
      name: 'ops',
      scope: 'admin',
      expiresAt: new Date(T0 + 90 * DAY).toISOString(),
    });
    const opsToken = ops.json().token as string;
    const opsId = ops.json().id as string;

    // Unique names.
    const dup = await create(root.token, { name: 'ops', scope: 'read' });
    expect(dup.statusCode).toBe(409);
    expect(dup.json().message).toMatch(/exists already/);

    // Listing never shows secrets or hashes.
    const list = await app.inject({ method: 'GET', url: '/v1/tokens', headers: bearer(opsToken) });
    expect(list.statusCode).toBe(200);
    expect(
      list
        .json()
        .map((t: { name: string }) => t.name)
        .sort(),
    ).toEqual(['ops', 'root']);
    expect(list.body).not.toMatch(/srt_|hash|[0-9a-f]{64}/);

    // The audit log records which token made each change.
    const dev = await activeDevice(app, opsToken);
    const audit = await app.inject({
      method: 'GET',
      url: `/v1/audit?tokenId=${opsId}`,
      headers: bearer(root.token),
    });
    expect(audit.json().map((a: { action: string }) => a.action)).toEqual(['device.claim']);
    expect(audit.json()[0]).toMatchObject({ actor: 'ops', tokenId: opsId, deviceId: dev.deviceId });
    const created = await store.listAudit({ action: 'token.create' });
    expect(created[0]).toMatchObject({ actor: 'root', tokenId: root.id, details: { newTokenId: opsId } });

    // Expiry: refused with a clear message the moment it passes.
    clock.t = T0 + 90 * DAY - 1;
    expect(
      (await app.inject({ method: 'GET', url: '/v1/devices', headers: bearer(opsToken) })).statusCode,
    ).toBe(200);
    clock.t = T0 + 90 * DAY;
    const expired = await app.inject({ method: 'GET', url: '/v1/devices', headers: bearer(opsToken) });
    expect(expired.statusCode).toBe(401);
    expect(expired.json().message).toMatch(/token expired/);
    clock.t = T0;

    // Revocation, by name; then refused everywhere; twice → 409; unknown → 404.
    const viewer = await create(root.token, { name: 'viewer', scope: 'read' });
    const viewerToken = viewer.json().token as string;
    const revoked = await app.inject({
      method: 'DELETE',
      url: '/v1/tokens/viewer',
      headers: bearer(root.token),
    });
    expect(revoked.statusCode).toBe(200);
    expect(revoked.json()).toMatchObject({ name: 'viewer', revokedAt: new Date(T0).toISOString() });
    const refused = await app.inject({ method: 'GET', url: '/v1/devices', headers: bearer(viewerToken) });
    expect(refused.statusCode).toBe(401);
    expect(refused.json().message).toMatch(/revoked/);
    expect(
      (
        await app.inject({
          method: 'DELETE',
          url: `/v1/tokens/${viewer.json().id}`,
          headers: bearer(root.token),
        })
      ).statusCode,
    ).toBe(409);
    expect(
      (await app.inject({ method: 'DELETE', url: '/v1/tokens/nobody', headers: bearer(root.token) }))
        .statusCode,
    ).toBe(404);
    // Revoking needs admin scope; a revoked token cannot revoke anything.
    expect(
      (await app.inject({ method: 'DELETE', url: '/v1/tokens/root', headers: bearer(viewerToken) }))
        .statusCode,
    ).toBe(401);
    const rev = await store.listAudit({ action: 'token.revoke' });
    expect(rev[0]).toMatchObject({ actor: 'root', tokenId: root.id, details: { name: 'viewer' } });
  });

  it('never mints a token with a wider scope or a later expiry than its own', async () => {
    const { app, store, root } = await setUp();
    const create = (token: string, payload: Record<string, unknown>) =>
      app.inject({ method: 'POST', url: '/v1/tokens', headers: bearer(token), payload });
    const short = await create(root.token, {
      name: 'short',
      scope: 'admin',
      expiresAt: new Date(T0 + 10 * DAY).toISOString(),
    });
    expect(short.statusCode).toBe(201);
    const shortToken = short.json().token as string;
    // Later expiry than the creator: refused; the default is capped at the creator's own expiry.
    const longer = await create(shortToken, {
      name: 'longer',
      scope: 'admin',
      expiresAt: new Date(T0 + 11 * DAY).toISOString(),
    });
    expect(longer.statusCode).toBe(403);
    expect(longer.json().message).toMatch(/outlive/);
    const capped = await create(shortToken, { name: 'capped', scope: 'read' });
    expect(capped.statusCode).toBe(201);
    expect(capped.json().expiresAt).toBe(new Date(T0 + 10 * DAY).toISOString());
    // More than 365 days, or in the past: refused.
    expect(
      (
        await create(root.token, {
          name: 'forever',
          scope: 'read',
          expiresAt: new Date(T0 + 366 * DAY).toISOString(),
        })
      ).statusCode,
    ).toBe(403);
    expect(
      (
        await create(root.token, {
          name: 'past',
          scope: 'read',
          expiresAt: new Date(T0 - 1000).toISOString(),
        })
      ).statusCode,
    ).toBe(403);
    // Wider scope: a read token cannot mint an admin (nor any) token.
    const reader = await seedNamedToken(store, 'reader', 'read', T0, T0 + 30 * DAY);
    expect((await create(reader.token, { name: 'escalate', scope: 'admin' })).statusCode).toBe(403);
    expect((await create(reader.token, { name: 'escalate2', scope: 'read' })).statusCode).toBe(403);
    const names = (await store.listTokens()).map((t) => t.name);
    expect(names).not.toContain('longer');
    expect(names).not.toContain('forever');
    expect(names).not.toContain('escalate');
  });

  it('serves the CRL as DER from a cached signed document; the CRL number only grows and survives a restart', async () => {
    const { app, store, clock, root, dataDir, databaseUrl } = await setUp();
    const get = async () => {
      const r = await app.inject({ method: 'GET', url: '/v1/revocations' });
      expect(r.statusCode).toBe(200);
      expect(r.headers['content-type']).toBe('application/pkix-crl');
      return verifyCrl(r.rawPayload, ca.certPem);
    };
    const first = await get();
    expect(first.crlNumber).toBe(1n);
    expect(first.serials.size).toBe(0);
    expect(first.nextUpdate.getTime() - first.thisUpdate.getTime()).toBe(CRL_VALIDITY_MS);
    // The real openssl verifies it with the CA certificate.
    const dir = mkdtempSync(join(tmpdir(), 'sealroom-crl-'));
    try {
      writeFileSync(join(dir, 'ca.pem'), ca.certPem);
      writeFileSync(join(dir, 'x.crl'), first.der);
      // openssl prints "verify OK" (on stderr) and exits 0 only when the signature verifies.
      const r = spawnSync(
        'openssl',
        ['crl', '-inform', 'DER', '-in', join(dir, 'x.crl'), '-CAfile', join(dir, 'ca.pem'), '-noout'],
        { encoding: 'utf8' },
      );
      expect(r.status).toBe(0);
      expect(`${r.stdout}${r.stderr}`).toMatch(/verify OK/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // Cached: the same bytes while nothing changed (not re-signed per request).
    clock.t += 5000;
    expect((await get()).der.equals(first.der)).toBe(true);

    const dev = await activeDevice(app, root.token);
    const rv = await app.inject({
      method: 'POST',
      url: `/v1/devices/${dev.deviceId}/revoke`,
      headers: bearer(root.token),
      payload: {},
    });
    expect(rv.statusCode).toBe(200);
    const second = await get();
    expect(second.crlNumber).toBe(2n);
    expect(second.serials.has(normalizeSerial(dev.certSerial))).toBe(true);
    // Re-signed when it ages past CRL_REISSUE_MS even with no change.
    clock.t += CRL_REISSUE_MS + 1000;
    const third = await get();
    expect(third.crlNumber).toBe(3n);
    expect(third.thisUpdate.getTime()).toBeGreaterThan(second.thisUpdate.getTime());
    // PEM twin.
    const pem = await app.inject({ method: 'GET', url: '/v1/revocations.pem' });
    expect(pem.body).toMatch(/^-----BEGIN X509 CRL-----/);
    expect((await verifyCrl(pem.body, ca.certPem)).crlNumber).toBe(3n);

    // Restart: a new process on the same store continues the numbering (never reuses a number).
    await app.close();
    await store.close();
    const reopened = await openStore({ dataDir, databaseUrl });
    cleanups.push(() => reopened.close());
    const app2 = await service(reopened, ca, clock);
    cleanups.push(() => app2.close());
    const same = await verifyCrl(
      (await app2.inject({ method: 'GET', url: '/v1/revocations' })).rawPayload,
      ca.certPem,
    );
    expect(same.crlNumber).toBe(3n);
    clock.t += CRL_REISSUE_MS + 1000;
    const after = await verifyCrl(
      (await app2.inject({ method: 'GET', url: '/v1/revocations' })).rawPayload,
      ca.certPem,
    );
    expect(after.crlNumber).toBe(4n);
    expect(after.serials.has(normalizeSerial(dev.certSerial))).toBe(true);
  });

  it('two instances on one database never sign two different CRLs with one number', async () => {
    const { store, dataDir, databaseUrl } = await setUp();
    const other = await openStore({ dataDir, databaseUrl });
    cleanups.push(() => other.close());
    let n = 0;
    const sign = async (_entries: unknown[], crlNumber: bigint) => {
      await new Promise((r) => setTimeout(r, 20 + (n++ % 3) * 15)); // a slow signer
      const thisUpdate = new Date(T0);
      return {
        der: Buffer.from(`crl ${crlNumber} by call ${n}`),
        thisUpdate,
        nextUpdate: new Date(T0 + DAY),
      };
    };
    const docs = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        (i % 2 ? store : other).currentCrl(new Date(T0), CRL_REISSUE_MS, sign),
      ),
    );
    const byNumber = new Map<bigint, string>();
    for (const d of docs) {
      const seen = byNumber.get(d.crlNumber);
      if (seen !== undefined) expect(d.der.toString()).toBe(seen);
      byNumber.set(d.crlNumber, d.der.toString());
    }
    const rows = await store.db.all('SELECT crl_number, der FROM crl_documents ORDER BY crl_number');
    expect(rows.length).toBe(new Set(rows.map((r) => String(r.crl_number))).size);
    for (const d of docs) {
      const row = rows.find((r) => BigInt(String(r.crl_number)) === d.crlNumber);
      expect(Buffer.from(String(row?.der), 'base64').toString()).toBe(d.der.toString());
    }
  });

  it("answers a revoked device 403 'device-revoked' with the CRL that proves it", async () => {
    const { app, clock, root } = await setUp();
    const dev = await activeDevice(app, root.token);
    expect(
      (await signedRequest(app, dev, clock.t, 'POST', `/v1/devices/${dev.deviceId}/heartbeat`, heartbeat))
        .statusCode,
    ).toBe(200);
    await app.inject({
      method: 'POST',
      url: `/v1/devices/${dev.deviceId}/revoke`,
      headers: bearer(root.token),
      payload: {},
    });
    for (const [method, path, body] of [
      ['POST', `/v1/devices/${dev.deviceId}/heartbeat`, heartbeat],
      ['GET', `/v1/devices/${dev.deviceId}/certificate`, undefined],
      ['POST', `/v1/devices/${dev.deviceId}/certificate/renewal`, { csr: dev.csr }],
    ] as const) {
      const r = await signedRequest(app, dev, clock.t, method, path, body);
      expect(r.statusCode, path).toBe(403);
      const reply = r.json();
      expect(reply).toMatchObject({
        statusCode: 403,
        error: 'device-revoked',
        message: 'this device is revoked',
      });
      const crl = await verifyCrl(reply.crl, ca.certPem);
      expect(crl.serials.has(normalizeSerial(dev.certSerial))).toBe(true);
    }
  });

  it('purges expired activation codes, their pending devices and used nonces', async () => {
    const { app, store, clock, root } = await setUp({ codeTtlSeconds: 600 });
    const key = generateIdentityKey();
    const deviceId = deviceIdForPublicKey(key.publicKey);
    const csr = await createCsr(key, { deviceId });
    for (let i = 0; i < 3; i++) {
      const r = await app.inject({
        method: 'POST',
        url: '/v1/enrollments',
        payload: { csr, softwareVersion: '1', inventory: {} },
      });
      expect(r.statusCode).toBe(201);
    }
    const active = await activeDevice(app, root.token);
    // A nonce-checked signed call (heartbeats are dated by their signature and store no nonce).
    expect(
      (await signedRequest(app, active, clock.t, 'GET', `/v1/devices/${active.deviceId}/certificate`))
        .statusCode,
    ).toBe(200);
    const count = async (table: string) =>
      Number((await store.db.get(`SELECT COUNT(*) AS n FROM ${table}`))?.n);
    expect(await count('enrollments')).toBe(4);
    expect(await count('device_nonces')).toBeGreaterThanOrEqual(1);
    // Before expiry nothing goes.
    expect(await store.purgeExpired(new Date(clock.t).toISOString())).toEqual({
      nonces: 0,
      enrollments: 0,
      devices: 0,
    });
    const later = new Date(clock.t + 3600_000).toISOString();
    const purged = await store.purgeExpired(later, later);
    expect(purged).toEqual({ nonces: 1, enrollments: 3, devices: 1 });
    expect(await store.getDevice(deviceId)).toBeUndefined();
    expect(await store.getDevice(active.deviceId)).toMatchObject({ status: 'active' });
    expect(await count('enrollments')).toBe(1); // the used one stays
    // The purged pending device is told it is unknown (so it enrolls again), not 404.
    clock.t += 3600_000;
    const again = await signedRequest(
      app,
      { key, deviceId },
      clock.t,
      'GET',
      `/v1/devices/${deviceId}/certificate`,
    );
    expect(again.statusCode).toBe(401);
    expect(again.json().message).toMatch(/unknown device/);
  });

  it('purges on its own timer', async () => {
    const { app, store, clock, root } = await setUp({ purgeIntervalMs: 100, enrollmentRetentionMs: 60_000 });
    const dev = await activeDevice(app, root.token);
    expect(
      (await signedRequest(app, dev, clock.t, 'GET', `/v1/devices/${dev.deviceId}/certificate`)).statusCode,
    ).toBe(200);
    const key = generateIdentityKey();
    const csr = await createCsr(key, { deviceId: deviceIdForPublicKey(key.publicKey) });
    await app.inject({
      method: 'POST',
      url: '/v1/enrollments',
      payload: { csr, softwareVersion: '1', inventory: {} },
    });
    const count = async (table: string) =>
      Number((await store.db.get(`SELECT COUNT(*) AS n FROM ${table}`))?.n);
    expect(await count('device_nonces')).toBe(1);
    expect(await count('enrollments')).toBe(2);
    clock.t += 3600_000;
    await expect
      .poll(async () => [await count('device_nonces'), await count('enrollments')], { timeout: 20_000 })
      .toEqual([0, 1]);
  });

  it('rate-limits device calls per device (by the signed id, not the address)', async () => {
    const { app, clock, root } = await setUp({
      rateLimits: { ...OPEN_LIMITS, deviceRequestsPerMinute: 60, deviceBurst: 5 },
    });
    const a = await activeDevice(app, root.token);
    const b = await activeDevice(app, root.token);
    const hb = (d: typeof a) =>
      signedRequest(app, d, clock.t, 'POST', `/v1/devices/${d.deviceId}/heartbeat`, heartbeat);
    // Forged requests in A's name (bad signature) do not spend A's budget.
    for (let i = 0; i < 20; i++) {
      const forged = await signedRequest(
        app,
        { key: b.key, deviceId: a.deviceId },
        clock.t,
        'POST',
        `/v1/devices/${a.deviceId}/heartbeat`,
        heartbeat,
      );
      expect(forged.statusCode).toBe(401);
    }
    const codes: number[] = [];
    for (let i = 0; i < 8; i++) codes.push((await hb(a)).statusCode);
    expect(codes).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    const limited = await hb(a);
    expect(limited.json().message).toMatch(/too many requests from this device/);
    expect(limited.headers['retry-after']).toBeDefined();
    // Another device from the same address is not affected.
    expect((await hb(b)).statusCode).toBe(200);
    // The budget refills with time (one per second at 60/min).
    clock.t += 2000;
    expect((await hb(a)).statusCode).toBe(200);
  });

  it('migrates a version-1 store with duplicate token names to unique names', async () => {
    const databaseUrl = backend === 'postgres' ? await cluster.createDatabase() : undefined;
    const dataDir = mkdtempSync(join(tmpdir(), 'sealroom-mig-'));
    const { openPostgres } = await import('../provisioning/store/postgres.js');
    const { SqliteDb } = await import('../provisioning/store/sqlite.js');
    const db = databaseUrl ? openPostgres(databaseUrl) : new SqliteDb(join(dataDir, 'provisioning.sqlite'));
    try {
      expect(await migrate(db, migrations.slice(0, 1))).toEqual([1]);
      for (const id of ['a1', 'b2']) {
        await db.run(
          "INSERT INTO admin_tokens (id, name, token_hash, scope, created_at) VALUES (?, 'ci', ?, 'admin', ?)",
          [id, `hash-${id}`, new Date(T0).toISOString()],
        );
      }
      expect(await migrate(db)).toEqual(migrations.slice(1).map((m) => m.version));
      const names = (await db.all('SELECT name FROM admin_tokens ORDER BY id')).map((r) => r.name);
      expect(names).toEqual(['ci', 'ci-b2']);
      await expect(
        db.run(
          "INSERT INTO admin_tokens (id, name, token_hash, scope, created_at) VALUES ('c3', 'ci', 'h3', 'read', 'x')",
        ),
      ).rejects.toThrow();
    } finally {
      await db.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('sealroom admin token create|list|revoke over HTTPS with --tls-ca', () => {
  const repo = join(import.meta.dirname, '..');
  const run = (args: string[], env: Record<string, string> = {}) =>
    new Promise<{ code: number; out: string; err: string }>((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', join(repo, 'src/cli/sealroom.ts'), ...args],
        { cwd: repo, env: { ...process.env, ...env }, timeout: 60_000 },
        (error, stdout, stderr) =>
          resolve({
            code: error ? Number((error as { code?: unknown }).code ?? 1) || 1 : 0,
            out: stdout,
            err: stderr,
          }),
      );
    });

  it('creates, lists and revokes tokens; refuses a service it cannot authenticate', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'sealroom-admin-cli-'));
    const svc = await startProvisioningService({ dataDir, port: 0, org: 'Acme', logger: false });
    try {
      const base = ['admin', '--url', svc.url, '--token-file', svc.bootstrapTokenPath!];
      const pinned = [...base, '--tls-ca', join(dataDir, 'tls', 'ca.pem')];
      const created = await run([
        ...pinned,
        'token',
        'create',
        '--name',
        'ci',
        '--scope',
        'read',
        '--days',
        '10',
      ]);
      expect(created.err).toBe('');
      expect(created.out.trim()).toMatch(/^srt_[A-Za-z0-9_-]{43}$/);
      // The older form (options on `token`) still creates.
      const legacy = await run([...pinned, 'token', '--name', 'ci2', '--json']);
      expect(JSON.parse(legacy.out)).toMatchObject({ name: 'ci2', scope: 'read' });
      const listed = await run([...pinned, 'token', 'list', '--json']);
      const list = JSON.parse(listed.out) as { name: string; expiresAt: string }[];
      expect(list.map((t) => t.name).sort()).toEqual(['bootstrap', 'ci', 'ci2']);
      expect(listed.out).not.toMatch(/srt_/);
      const ci = list.find((t) => t.name === 'ci')!;
      expect(Date.parse(ci.expiresAt) - Date.now()).toBeGreaterThan(9.9 * DAY);
      expect(Date.parse(ci.expiresAt) - Date.now()).toBeLessThanOrEqual(10 * DAY);
      const bootstrapId = (list as unknown as { id: string; name: string }[]).find(
        (t) => t.name === 'bootstrap',
      )!.id;
      const audit = JSON.parse((await run([...pinned, 'audit', '--token-id', bootstrapId, '--json'])).out);
      expect(audit.map((a: { action: string }) => a.action)).toEqual(['token.create', 'token.create']);
      expect(audit[0]).toMatchObject({ actor: 'bootstrap', tokenId: bootstrapId });
      const revoked = await run([...pinned, 'token', 'revoke', 'ci']);
      expect(revoked.out).toMatch(/revoked token [0-9a-f]+ \("ci"\)/);
      const again = await run([...pinned, 'token', 'revoke', 'ci']);
      expect(again.code).not.toBe(0);
      expect(again.err).toMatch(/already revoked/);
      // The service's own CA is not in the system store: without --tls-ca the call is refused…
      const unpinned = await run([...base, 'token', 'list']);
      expect(unpinned.code).not.toBe(0);
      // …and $SEALROOM_PROVISIONING_CA does what --tls-ca does.
      const viaEnv = await run([...base, 'token', 'list', '--json'], {
        SEALROOM_PROVISIONING_CA: join(dataDir, 'tls', 'ca.pem'),
      });
      expect(JSON.parse(viaEnv.out).find((t: { name: string }) => t.name === 'ci').revokedAt).not.toBeNull();
    } finally {
      await svc.close();
      rmSync(dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});
