// Software updates in the fleet (issue 14, docs/updates.md "In the fleet"), on SQLite and PostgreSQL:
// devices report their update state (device-signed; newest `at` wins), IT assigns channels, windows
// and pauses per site or device (configuration delivered in heartbeat replies), the rollout per
// channel, the device card — and the attacker: another device's state, replayed and older states,
// oversized and malformed bodies, a read-only token or a helpdesk console user changing channels.
// Then the service hosting a real TUF repository (part 1's publisher) that the real tuf-js client
// (src/update/tuf-client.ts) checks and downloads from over loopback HTTP, with Range requests, and
// refuses path traversal, symlinks out of the repository and directory listings.
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRange, safeSegments } from '../provisioning/service/routes-updates.js';
import type { ProvisioningStore } from '../provisioning/store/open.js';
import { updatePolicyOf, withUpdatePolicy } from '../provisioning/store/update-store.js';
import { type CertificateAuthority, createCertificateAuthority } from '../src/pki/index.js';
import { buildBundle } from '../src/update/bundle.js';
import { sha256OfFile, UpdateClient } from '../src/update/tuf-client.js';
import { addRelease, generateKey, initRepository } from '../src/update/tuf-repo.js';
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

const T0 = Date.parse('2026-12-04T09:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

interface Stored {
  at: string;
  state: string;
  current: string;
  target: string | null;
  channel: string;
  progress: number | null;
  error: string | null;
}

describe.each(backends)('update state, channels and rollout on %s', (backend: BackendName) => {
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
  let delta: TestDevice;

  const get = (url: string, token = admin) => app.inject({ method: 'GET', url, headers: bearer(token) });
  const put = (url: string, payload: unknown, token = admin) =>
    app.inject({ method: 'PUT', url, headers: bearer(token), payload: payload as object });
  const path = (d: TestDevice) => `/v1/devices/${d.deviceId}/update-state`;
  const report = (d: TestDevice, body: unknown, raw?: string) =>
    signedRequest(app, d, clock.t, 'POST', path(d), body, raw);
  const state = (over: Record<string, unknown> = {}) => ({
    at: iso(clock.t),
    state: 'idle',
    current: '2.0.0',
    channel: 'stable',
    ...over,
  });
  const detailUpdate = async (d: TestDevice) => {
    const r = await get(`/v1/devices/${d.deviceId}`);
    expect(r.statusCode, r.body).toBe(200);
    return r.json().update as {
      channel: string;
      window: { start: string; end: string } | null;
      paused: boolean;
      channelPending: boolean;
      reported: Stored | null;
    };
  };
  async function heartbeat(dev: TestDevice, configVersion: number) {
    const r = await signedRequest(app, dev, clock.t, 'POST', `/v1/devices/${dev.deviceId}/heartbeat`, {
      softwareVersion: '2.0.0',
      configVersion,
      health: {},
    });
    expect(r.statusCode, r.body).toBe(200);
    return r.json() as { configVersion: number; config?: Record<string, unknown> };
  }

  beforeAll(async () => {
    ca = await createCertificateAuthority({ commonName: 'Acme CA', org: 'Acme', validityDays: 3650 });
    const fresh = await freshStore(backend, cluster);
    store = fresh.store;
    cleanup = fresh.cleanup;
    app = await testService({ store, ca, now: () => new Date(clock.t), rateLimits: OPEN_LIMITS });
    admin = (
      await seedToken(store, { name: 'it', scope: 'admin', now: T0, expiresAt: T0 + 300 * 86_400_000 })
    ).token;
    viewer = (
      await seedToken(store, { name: 'viewer', scope: 'read', now: T0, expiresAt: T0 + 300 * 86_400_000 })
    ).token;
    const claim = (roomName: string, site: string) =>
      enrollAndClaim(app, admin, { roomName, site, softwareVersion: '2.0.0' });
    alpha = await claim('Alpha', 'HQ');
    beta = await claim('Beta', 'HQ');
    gamma = await claim('Gamma', 'Lab');
    delta = await claim('Delta', 'Lab');
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await cleanup?.();
  });

  it('stores the newest report; an older or equal `at` is ignored, never moves the state back', async () => {
    clock.t += 1000;
    const t1 = clock.t;
    let r = await report(alpha, state({ state: 'downloading', target: '2.1.0', progress: 0.25 }));
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toMatchObject({
      applied: true,
      stored: { state: 'downloading', current: '2.0.0', target: '2.1.0', progress: 0.25, channel: 'stable' },
    });
    clock.t += 5000;
    r = await report(alpha, state({ state: 'downloading', target: '2.1.0', progress: 0.75 }));
    expect(r.json().applied).toBe(true);
    // A late report dated before the stored one (freshly signed, so not a byte replay): ignored.
    clock.t += 1000;
    r = await report(alpha, state({ at: iso(t1 - 1), state: 'failed', error: 'old news' }));
    expect(r.statusCode, r.body).toBe(200);
    expect(r.json()).toMatchObject({ applied: false, stored: { state: 'downloading', progress: 0.75 } });
    // The same `at` again (a retry of a report already taken): ignored too.
    r = await report(alpha, state({ at: iso(t1 + 5000), state: 'idle' }));
    expect(r.json().applied).toBe(false);
    // Time zones are normalised before comparing: 10:00+01:00 is 09:00Z.
    r = await report(alpha, state({ at: '2026-12-04T10:00:00.000+01:00', state: 'idle' }));
    expect(r.json().applied).toBe(false);
    const u = await detailUpdate(alpha);
    expect(u).toMatchObject({
      channel: 'stable',
      window: null,
      paused: false,
      channelPending: false,
      reported: { state: 'downloading', progress: 0.75, target: '2.1.0', at: iso(t1 + 5000) },
    });
    // A device that never reported.
    expect((await detailUpdate(beta)).reported).toBeNull();
  });

  it('refuses a device reporting for another device, replays, and reports from the future', async () => {
    clock.t += 1000;
    // beta signs a request for alpha's path: the signature proves beta, the path names alpha.
    const forged = await signedRequest(app, beta, clock.t, 'POST', path(alpha), state({ state: 'failed' }));
    expect(forged.statusCode).toBe(403);
    // beta's key, alpha's id in the headers: the signature does not verify.
    const body = JSON.stringify(state({ state: 'failed' }));
    const impostor = await signedRequest(
      app,
      { key: beta.key, deviceId: alpha.deviceId },
      clock.t,
      'POST',
      path(alpha),
      undefined,
      body,
    );
    expect(impostor.statusCode).toBe(401);
    // No signature at all.
    const unsigned = await app.inject({
      method: 'POST',
      url: path(alpha),
      headers: { 'content-type': 'application/json' },
      payload: body,
    });
    expect(unsigned.statusCode).toBe(401);
    // A byte-for-byte replay of a signed report: the nonce was used.
    const { signDeviceRequest } = await import('../provisioning/device-auth.js');
    clock.t += 1000;
    const fresh = JSON.stringify(state({ state: 'waiting', target: '2.1.0' }));
    const headers = {
      ...signDeviceRequest({
        privateKey: alpha.key.privateKey,
        deviceId: alpha.deviceId,
        method: 'POST',
        path: path(alpha),
        body: fresh,
        now: clock.t,
      }),
      'content-type': 'application/json',
    };
    const once = await app.inject({ method: 'POST', url: path(alpha), headers, payload: fresh });
    expect(once.statusCode, once.body).toBe(200);
    const again = await app.inject({ method: 'POST', url: path(alpha), headers, payload: fresh });
    expect(again.statusCode).toBe(401);
    expect(again.json().message).toMatch(/replayed/);
    // Signed an hour ago (outside the signature window): refused.
    const stale = await signedRequest(app, alpha, clock.t - 3600_000, 'POST', path(alpha), state());
    expect(stale.statusCode).toBe(401);
    // `at` far ahead would freeze the state against every later report: refused.
    const future = await report(alpha, state({ at: iso(clock.t + 3600_000), state: 'committed' }));
    expect(future.statusCode).toBe(400);
    expect(future.json().error).toBe('time-in-future');
    // Nothing of that reached the store.
    expect((await detailUpdate(alpha)).reported).toMatchObject({ state: 'waiting', target: '2.1.0' });
    // Unknown device id in the path.
    const ghost = await signedRequest(
      app,
      alpha,
      clock.t,
      'POST',
      '/v1/devices/sr-aaaaaaaaaaaaaaaaaaaa/update-state',
      state(),
    );
    expect(ghost.statusCode).toBe(403);
  });

  it('refuses oversized and malformed bodies', async () => {
    clock.t += 1000;
    const bad: [string, unknown][] = [
      ['unknown state', state({ state: 'hacked' })],
      ['progress over 1', state({ progress: 1.5 })],
      ['negative progress', state({ progress: -0.1 })],
      ['error over 500', state({ error: 'x'.repeat(501) })],
      ['not semver', state({ current: '2.0' })],
      ['semver with junk', state({ current: '2.0.0; rm -rf /' })],
      ['channel with a path', state({ channel: '../stable' })],
      ['channel upper case', state({ channel: 'Stable' })],
      ['extra field', state({ deviceId: beta.deviceId })],
      ['no at', { state: 'idle', current: '2.0.0', channel: 'stable' }],
      ['at not a time', state({ at: 'yesterday' })],
      ['array body', [state()]],
    ];
    for (const [what, body] of bad) {
      clock.t += 10;
      const r = await report(alpha, body);
      expect(r.statusCode, what).toBe(400);
    }
    clock.t += 10;
    const notJson = await report(alpha, undefined, '{"at": ');
    expect(notJson.statusCode).toBe(400);
    clock.t += 10;
    const huge = await report(alpha, state({ error: 'x'.repeat(300), pad: 'y'.repeat(5000) }));
    expect(huge.statusCode).toBe(413);
    // Control characters in the error text do not reach the console or the CLI as such.
    clock.t += 1000;
    const ctl = await report(
      beta,
      state({ state: 'failed', target: '2.1.0', error: 'disk\u001b[31m full\nboom' }),
    );
    expect(ctl.statusCode, ctl.body).toBe(200);
    expect(ctl.json().stored.error).toBe('disk [31m full boom');
  });

  it('audits the states that end an update, once each', async () => {
    clock.t += 1000;
    for (const s of ['installing', 'restarting', 'verifying', 'committed']) {
      clock.t += 1000;
      const r = await report(
        gamma,
        state({ state: s, current: s === 'committed' ? '2.1.0' : '2.0.0', target: '2.1.0' }),
      );
      expect(r.json().applied, s).toBe(true);
    }
    clock.t += 1000;
    // The same state again later (a periodic re-report) is no new audit row.
    await report(gamma, state({ state: 'committed', current: '2.1.0', target: '2.1.0' }));
    const rows = await store.listAudit({ action: 'device.update', deviceId: gamma.deviceId });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      actor: `device:${gamma.deviceId}`,
      details: { state: 'committed', current: '2.1.0' },
    });
  });

  it('IT assigns channels per site and per device; devices get them in their heartbeat reply', async () => {
    clock.t += 1000;
    // A read-only token changes nothing.
    expect((await put('/v1/sites/Lab/update-policy', { channel: 'canary' }, viewer)).statusCode).toBe(403);
    expect(
      (await put(`/v1/devices/${alpha.deviceId}/update-policy`, { channel: 'canary' }, viewer)).statusCode,
    ).toBe(403);
    expect(
      (
        await app.inject({
          method: 'PUT',
          url: '/v1/sites/Lab/update-policy',
          payload: { channel: 'canary' },
        })
      ).statusCode,
    ).toBe(401);
    // Malformed policies.
    for (const body of [
      {},
      { channel: '../x' },
      { channel: 'canary', extra: 1 },
      { window: { start: '25:00', end: '03:00' } },
      { window: { start: '22:00' } },
      { window: { start: '02:00', end: '02:00' } },
      { paused: 'yes' },
    ])
      expect((await put('/v1/sites/Lab/update-policy', body)).statusCode, JSON.stringify(body)).toBe(400);
    expect(
      (await put('/v1/devices/sr-aaaaaaaaaaaaaaaaaaaa/update-policy', { channel: 'canary' })).statusCode,
    ).toBe(404);

    // The Lab site goes to canary with a night window; its profile keeps what it had.
    expect((await put('/v1/sites/Lab/profile', { config: { volume: 30 } })).statusCode).toBe(200);
    const before = await heartbeat(gamma, 0);
    const site = await put('/v1/sites/Lab/update-policy', {
      channel: 'canary',
      window: { start: '22:00', end: '05:00' },
    });
    expect(site.statusCode, site.body).toBe(200);
    expect(site.json()).toMatchObject({
      update: { channel: 'canary', window: { start: '22:00', end: '05:00' } },
      devicesChanged: 2,
    });
    const profile = (await get('/v1/sites/Lab/profile')).json();
    expect(profile.config).toEqual({
      volume: 30,
      update: { channel: 'canary', window: { start: '22:00', end: '05:00' } },
    });
    const hb = await heartbeat(gamma, before.configVersion);
    expect(hb.configVersion).toBeGreaterThan(before.configVersion);
    expect(hb.config).toMatchObject({
      volume: 30,
      update: { channel: 'canary', window: { start: '22:00', end: '05:00' } },
    });
    // delta (same site) stays stable and paused through its own override.
    const dev = await put(`/v1/devices/${delta.deviceId}/update-policy`, { channel: 'stable', paused: true });
    expect(dev.statusCode, dev.body).toBe(200);
    expect(await detailUpdate(delta)).toMatchObject({
      channel: 'stable',
      paused: true,
      window: { start: '22:00', end: '05:00' },
    });
    expect(await detailUpdate(gamma)).toMatchObject({
      channel: 'canary',
      paused: false,
      channelPending: true,
    });
    // Removing the window (null) and resuming.
    expect((await put(`/v1/devices/${delta.deviceId}/update-policy`, { paused: false })).statusCode).toBe(
      200,
    );
    expect((await put('/v1/sites/Lab/update-policy', { window: null })).json().update).toEqual({
      channel: 'canary',
    });
    expect(await detailUpdate(delta)).toMatchObject({ channel: 'stable', paused: false, window: null });
    const audit = await store.listAudit({ action: 'update.policy' });
    expect(audit.length).toBe(4);
    expect(audit.every((a) => a.actor === 'it')).toBe(true);
    // A revoked device takes no configuration.
  });

  it('summarises the rollout per channel: versions, states, paused, pending, problems', async () => {
    clock.t += 1000;
    // gamma reports it now follows canary and is on 2.1.0; beta already failed (earlier test).
    await report(gamma, state({ state: 'idle', current: '2.1.0', channel: 'canary' }));
    expect((await put(`/v1/devices/${beta.deviceId}/update-policy`, { paused: true })).statusCode).toBe(200);
    clock.t += 1000;
    await report(
      delta,
      state({ state: 'rolled-back', current: '2.0.0', target: '2.1.0', error: 'gate: relay not connected' }),
    );
    const r = await get('/v1/fleet/updates', viewer);
    expect(r.statusCode, r.body).toBe(200);
    const body = r.json() as {
      channels: {
        channel: string;
        devices: number;
        paused: number;
        channelPending: number;
        versions: Record<string, number>;
        states: Record<string, number>;
      }[];
      problems: { deviceId: string; state: string; error: string | null; roomName: string | null }[];
    };
    const by = Object.fromEntries(body.channels.map((c) => [c.channel, c]));
    expect(by.canary).toMatchObject({
      devices: 1,
      paused: 0,
      channelPending: 0,
      versions: { '2.1.0': 1 },
      states: { idle: 1 },
    });
    expect(by.stable).toMatchObject({ devices: 3, paused: 1, channelPending: 0, versions: { '2.0.0': 3 } });
    expect(by.stable!.states).toEqual({ waiting: 1, failed: 1, 'rolled-back': 1 });
    expect(body.problems.map((p) => [p.roomName, p.state])).toEqual([
      ['Delta', 'rolled-back'],
      ['Beta', 'failed'],
    ]);
    expect(body.problems[0]!.error).toBe('gate: relay not connected');
    const lab = (await get('/v1/fleet/updates?site=Lab')).json();
    expect(lab.channels.map((c: { channel: string; devices: number }) => [c.channel, c.devices])).toEqual([
      ['canary', 1],
      ['stable', 1],
    ]);
    expect((await app.inject({ method: 'GET', url: '/v1/fleet/updates' })).statusCode).toBe(401);
  });

  it('a revoked device is told so, with the CRL', async () => {
    clock.t += 1000;
    const revoked = await app.inject({
      method: 'POST',
      url: `/v1/devices/${beta.deviceId}/revoke`,
      headers: bearer(admin),
      payload: { reason: 'stolen' },
    });
    expect(revoked.statusCode, revoked.body).toBe(200);
    const r = await report(beta, state({ state: 'committed', current: '9.9.9' }));
    expect(r.statusCode).toBe(403);
    expect(r.json().error).toBe('device-revoked');
    expect((await put(`/v1/devices/${beta.deviceId}/update-policy`, { channel: 'canary' })).statusCode).toBe(
      409,
    );
    // Revoked devices leave the rollout.
    const stable = (await get('/v1/fleet/updates'))
      .json()
      .channels.find((c: { channel: string }) => c.channel === 'stable');
    expect(stable.devices).toBe(2);
  });
});

describe.each(backends)('update policy through console sessions on %s', (backend: BackendName) => {
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

  it('helpdesk reads the rollout but cannot change a channel; admin can, with the CSRF header', async () => {
    const call = (s: ConsoleSession, method: string, p: string, body?: unknown, csrf = true) =>
      fetch(`${stack.url}${p}`, {
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
    expect((await call(hal, 'GET', '/v1/fleet/updates')).status).toBe(200);
    const change = { channel: 'canary' };
    const refused = await call(hal, 'PUT', '/v1/sites/Lab/update-policy', change);
    expect(refused.status).toBe(403);
    expect((await refused.json()).message).toMatch(/helpdesk is read-only/);
    expect((await call(ivy, 'PUT', '/v1/sites/Lab/update-policy', change, false)).status).toBe(403);
    expect((await stack.store.listAudit({ action: 'update.policy' })).length).toBe(0);
    const ok = await call(ivy, 'PUT', '/v1/sites/Lab/update-policy', change);
    expect(ok.status).toBe(200);
    const audit = await stack.store.listAudit({ action: 'update.policy' });
    expect(audit.map((a) => a.actor)).toEqual(['console:ivy@example.org']);
  });
});

// ── the TUF repository hosted by the service ────────────────────────────────────────────────

describe('the service hosts the TUF repository (--updates-repo)', () => {
  let work: string;
  let repo: string;
  let app: FastifyInstance;
  let base: string;
  let cleanup: () => Promise<void>;
  let store: ProvisioningStore;
  let rootJson: string;
  const SECRET = `secret-${randomBytes(8).toString('hex')}`;
  const K = {
    root: generateKey(),
    targets: generateKey(),
    snapshot: generateKey(),
    timestamp: generateKey(),
  };
  const keys = { targets: [K.targets], snapshot: [K.snapshot], timestamp: [K.timestamp] };

  async function bundle(version: string) {
    const src = join(work, `src-${version}`);
    await mkdir(join(src, 'dist'), { recursive: true });
    await writeFile(join(src, 'package.json'), JSON.stringify({ name: 'sealroom', version }));
    await writeFile(join(src, 'dist/payload.bin'), randomBytes(300_000));
    const file = join(work, `sealroom-${version}.tar.gz`);
    await buildBundle({ sourceDir: src, outFile: file, version, arch: 'x64', sourceDateEpoch: 0 });
    return file;
  }

  /** A raw HTTP request: the path goes on the wire exactly as given (fetch would normalise it). */
  const raw = (p: string, headers: Record<string, string> = {}, method = 'GET') =>
    new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>(
      (res, rej) => {
        const u = new URL(base);
        const r = request({ host: u.hostname, port: u.port, path: p, method, headers }, (resp) => {
          const chunks: Buffer[] = [];
          resp.on('data', (c: Buffer) => chunks.push(c));
          resp.on('end', () =>
            res({ status: resp.statusCode ?? 0, headers: resp.headers, body: Buffer.concat(chunks) }),
          );
        });
        r.on('error', rej);
        r.end();
      },
    );

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'sealroom-updates-fleet-'));
    repo = join(work, 'repo');
    const st = await initRepository(repo, {
      rootKeys: [K.root],
      targetsKeys: [K.targets],
      snapshotKeys: [K.snapshot],
      timestampKeys: [K.timestamp],
    });
    rootJson = JSON.stringify(st.root.toJSON());
    await addRelease(repo, await bundle('2.0.0'), { version: '2.0.0', arch: 'x64', channel: 'stable', keys });
    await addRelease(repo, await bundle('2.1.0'), { version: '2.1.0', arch: 'x64', channel: 'stable', keys });
    await addRelease(repo, await bundle('2.2.0-rc.1'), {
      version: '2.2.0-rc.1',
      arch: 'x64',
      channel: 'canary',
      keys,
    });
    // What must never be served: a file beside the served folders, one outside the repository, and
    // symlinks inside the served folders that point at them.
    writeFileSync(join(repo, 'secret.pem'), SECRET);
    writeFileSync(join(work, 'outside.txt'), SECRET);
    symlinkSync(join(work, 'outside.txt'), join(repo, 'targets', 'stable', 'x64', 'link.tar.gz'));
    symlinkSync(work, join(repo, 'targets', 'escape'));
    symlinkSync(join(repo, 'secret.pem'), join(repo, 'metadata', '99.root.json'));
    writeFileSync(join(repo, 'targets', '.hidden'), SECRET);
    const ca = await createCertificateAuthority({ commonName: 'Acme CA', org: 'Acme', validityDays: 3650 });
    const fresh = await freshStore('sqlite', undefined);
    cleanup = fresh.cleanup;
    store = fresh.store;
    app = await testService({ store, ca, updates: { repoDir: repo } });
    await app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await cleanup?.();
    rmSync(work, { recursive: true, force: true });
  });

  it('the real tuf-js client checks and downloads through it (resuming with Range)', async () => {
    const client = () =>
      new UpdateClient({
        metadataUrl: `${base}/updates/metadata/`,
        targetsUrl: `${base}/updates/targets/`,
        cacheDir: join(work, 'device-cache'),
        trustedRootJson: rootJson,
      });
    const t = await client().check({ channel: 'stable', arch: 'x64', currentVersion: '2.0.0' });
    expect(t).toMatchObject({ version: '2.1.0', targetPath: 'stable/x64/sealroom-2.1.0.tar.gz' });
    expect(await client().check({ channel: 'stable', arch: 'x64', currentVersion: '2.1.0' })).toBeUndefined();
    expect(await client().check({ channel: 'canary', arch: 'x64', currentVersion: '2.1.0' })).toMatchObject({
      version: '2.2.0-rc.1',
    });
    // A partial download (as after a power cut) continues with a Range request.
    const dest = join(work, 'dl.tar.gz');
    const file = readdirSync(join(repo, 'targets', 'stable', 'x64')).find((f) => f.endsWith('2.1.0.tar.gz'))!;
    const whole = await raw(`/updates/targets/stable/x64/${file}`);
    writeFileSync(`${dest}.part`, whole.body.subarray(0, 100_000));
    const seen: number[] = [];
    await client().download(t!, dest, { onProgress: (p) => seen.push(p.received) });
    expect(await sha256OfFile(dest)).toBe(t!.sha256);
    expect(seen[0]).toBeGreaterThanOrEqual(100_000);
  });

  it('answers Range requests, HEAD and conditional requests; caches only consistent-snapshot names', async () => {
    const dir = join(repo, 'targets', 'stable', 'x64');
    const file = readdirSync(dir).find((f) => f.endsWith('2.0.0.tar.gz'))!;
    const url = `/updates/targets/stable/x64/${file}`;
    const whole = await raw(url);
    expect(whole.status).toBe(200);
    expect(whole.headers['content-type']).toBe('application/octet-stream');
    expect(whole.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(whole.headers['accept-ranges']).toBe('bytes');
    const size = whole.body.length;
    const mid = await raw(url, { range: 'bytes=100-199' });
    expect(mid.status).toBe(206);
    expect(mid.headers['content-range']).toBe(`bytes 100-199/${size}`);
    expect(mid.body.equals(whole.body.subarray(100, 200))).toBe(true);
    const tail = await raw(url, { range: 'bytes=-10' });
    expect(tail.body.equals(whole.body.subarray(size - 10))).toBe(true);
    const open = await raw(url, { range: `bytes=${size - 5}-` });
    expect([open.status, open.body.length]).toEqual([206, 5]);
    const past = await raw(url, { range: `bytes=${size}-` });
    expect(past.status).toBe(416);
    expect(past.headers['content-range']).toBe(`bytes */${size}`);
    // Several ranges or nonsense: the whole file (allowed by RFC 9110), never a multipart body.
    expect((await raw(url, { range: 'bytes=0-1,5-6' })).status).toBe(200);
    expect((await raw(url, { range: 'lines=1-2' })).status).toBe(200);
    const head = await raw(url, {}, 'HEAD');
    expect([head.status, head.headers['content-length'], head.body.length]).toEqual([200, String(size), 0]);
    expect((await raw(url, { 'if-none-match': String(whole.headers.etag) })).status).toBe(304);
    // If-Range with another validator: the whole file, not a range of a changed one.
    expect((await raw(url, { range: 'bytes=0-9', 'if-range': '"other"' })).status).toBe(200);

    const ts = await raw('/updates/metadata/timestamp.json');
    expect(ts.status).toBe(200);
    expect(ts.headers['content-type']).toBe('application/json');
    expect(ts.headers['cache-control']).toBe('no-cache');
    expect(JSON.parse(ts.body.toString()).signed._type).toBe('timestamp');
    expect((await raw('/updates/metadata/1.root.json')).headers['cache-control']).toBe(
      'public, max-age=31536000, immutable',
    );
    expect((await raw('/updates/metadata/2.snapshot.json')).headers['cache-control']).toBe(
      'public, max-age=31536000, immutable',
    );
    expect((await raw('/updates/metadata/404.root.json')).status).toBe(404);
  });

  it('refuses path traversal, symlinks out, dotfiles and directory listings', async () => {
    const attempts = [
      '/updates/targets/../secret.pem',
      '/updates/targets/../../outside.txt',
      '/updates/targets/stable/../../secret.pem',
      '/updates/targets/%2e%2e/secret.pem',
      '/updates/targets/%2e%2e%2fsecret.pem',
      '/updates/targets/stable/x64/..%2f..%2f..%2fsecret.pem',
      '/updates/targets/%252e%252e%252fsecret.pem',
      '/updates/targets/..%5csecret.pem',
      '/updates/targets/stable\\..\\..\\secret.pem',
      '/updates/targets//etc/passwd',
      '/updates/targets/%2fetc%2fpasswd',
      '/updates/targets/stable/x64/link.tar.gz',
      '/updates/targets/escape/outside.txt',
      '/updates/targets/escape/repo/secret.pem',
      '/updates/targets/.hidden',
      '/updates/targets/stable/x64/%00',
      '/updates/metadata/../secret.pem',
      '/updates/metadata/..%2fsecret.pem',
      '/updates/metadata/%2e%2e%2frepo-config.json',
      '/updates/metadata/99.root.json',
      '/updates/metadata/../repo-config.json',
      '/updates/repo-config.json',
      '/updates/secret.pem',
      '/updates/../secret.pem',
    ];
    for (const p of attempts) {
      const r = await raw(p);
      expect([400, 404], `${p} → ${r.status}`).toContain(r.status);
      expect(r.body.toString().includes(SECRET), p).toBe(false);
      expect(r.body.toString().includes('expiries'), p).toBe(false);
    }
    // No directory listings.
    for (const p of [
      '/updates/targets/',
      '/updates/targets/stable',
      '/updates/targets/stable/x64/',
      '/updates/metadata/',
      '/updates/',
    ])
      expect((await raw(p)).status, p).toBe(404);
    // Read-only: nothing but GET and HEAD.
    expect((await raw('/updates/metadata/timestamp.json', {}, 'PUT')).status).toBe(404);
    expect((await raw('/updates/metadata/timestamp.json', {}, 'DELETE')).status).toBe(404);
  });

  it('the rollout shows the newest release per channel from the hosted repository', async () => {
    const { token } = await seedToken(store, { name: 'viewer', scope: 'read', now: Date.now() });
    const r = await raw('/v1/fleet/updates', { authorization: `Bearer ${token}` });
    expect(r.status, r.body.toString()).toBe(200);
    const channels = JSON.parse(r.body.toString()).channels as {
      channel: string;
      devices: number;
      latest: Record<string, string>;
    }[];
    expect(channels).toEqual([
      expect.objectContaining({ channel: 'canary', devices: 0, latest: { x64: '2.2.0-rc.1' } }),
      expect.objectContaining({ channel: 'stable', devices: 0, latest: { x64: '2.1.0' } }),
    ]);
  });

  it('sealroom admin update-channel and sealroom admin updates, against the listening service', async () => {
    const { Command } = await import('commander');
    const { registerProvisioningCommands, updateChannelRequest } = await import('../provisioning/cli.js');
    const admin = await seedToken(store, { name: 'cli-admin', scope: 'admin', now: Date.now() });
    const reader = await seedToken(store, { name: 'cli-reader', scope: 'read', now: Date.now() });
    const run = async (token: string, ...args: string[]) => {
      const program = new Command().exitOverride();
      registerProvisioningCommands(program);
      const out: string[] = [];
      const log = console.log;
      console.log = (...a: unknown[]) => out.push(a.join(' '));
      try {
        await program.parseAsync(['node', 'sealroom', 'admin', '--url', base, '--token', token, ...args]);
      } finally {
        console.log = log;
      }
      return out.join('\n');
    };
    const set = JSON.parse(
      await run(
        admin.token,
        'update-channel',
        '--site',
        'HQ',
        '--channel',
        'canary',
        '--window',
        '22:00-05:00',
        '--json',
      ),
    );
    expect(set).toMatchObject({
      update: { channel: 'canary', window: { start: '22:00', end: '05:00' } },
      version: 1,
    });
    expect(await run(admin.token, 'update-channel', '--site', 'HQ', '--window', 'any', '--pause')).toMatch(
      /site HQ: update \{"channel":"canary","paused":true\}/,
    );
    // A read-only token is refused by the service.
    await expect(run(reader.token, 'update-channel', '--site', 'HQ', '--channel', 'stable')).rejects.toThrow(
      /read-only/,
    );
    const table = await run(reader.token, 'updates');
    expect(table).toMatch(/CHANNEL\s+DEVICES/);
    expect(table).toMatch(/canary\s+0\s+0\s+2\.2\.0-rc\.1 \(x64\)/);
    // Refused before asking the service.
    expect(updateChannelRequest({ site: 'HQ', device: 'sr-x', channel: 'stable' })).toMatch(
      /either --site or --device/,
    );
    expect(updateChannelRequest({ channel: 'stable' })).toMatch(/either --site or --device/);
    expect(updateChannelRequest({ site: 'HQ' })).toMatch(/nothing to change/);
    expect(updateChannelRequest({ site: 'HQ', channel: '../x' })).toMatch(/--channel/);
    expect(updateChannelRequest({ site: 'HQ', window: '22:00-22:00' })).toMatch(/--window/);
    expect(updateChannelRequest({ site: 'HQ', window: '7pm-6am' })).toMatch(/--window/);
    expect(updateChannelRequest({ site: 'HQ', pause: true, resume: true })).toMatch(/exclude/);
    expect(updateChannelRequest({ device: 'sr-x', resume: true })).toEqual({
      target: { deviceId: 'sr-x' },
      change: { paused: false },
    });
  });

  it('the update policy read from a configuration, and changed in one, never trusts its shape', () => {
    expect(updatePolicyOf({})).toEqual({ channel: 'stable', window: null, paused: false });
    expect(
      updatePolicyOf({ update: { channel: '../../etc', window: { start: '9', end: 5 }, paused: 'yes' } }),
    ).toEqual({ channel: 'stable', window: null, paused: false });
    expect(updatePolicyOf({ update: ['canary'] })).toEqual({
      channel: 'stable',
      window: null,
      paused: false,
    });
    const base = JSON.parse(
      '{"volume": 3, "__proto__": {"x": 1}, "update": {"channel": "canary", "extra": 1}}',
    );
    const out = withUpdatePolicy(base, { window: { start: '01:00', end: '02:00' }, paused: true });
    expect(JSON.stringify(out)).toBe(
      '{"volume":3,"__proto__":{"x":1},"update":{"channel":"canary","extra":1,"window":{"start":"01:00","end":"02:00"},"paused":true}}',
    );
    expect(({} as Record<string, unknown>).x).toBeUndefined();
    expect(withUpdatePolicy(out, { window: null }).update).toEqual({
      channel: 'canary',
      extra: 1,
      paused: true,
    });
    expect(base.update).toEqual({ channel: 'canary', extra: 1 }); // the input is not changed
  });

  it('path and range parsing, on their own', () => {
    expect(safeSegments('stable/x64/a.tar.gz', 'targets')).toEqual(['stable', 'x64', 'a.tar.gz']);
    for (const bad of ['', '.', '..', 'a/../b', 'a//b', '/a', 'a/', 'a\\b', '.git/config', 'a%2fb', 'a\0b'])
      expect(safeSegments(bad, 'targets'), bad).toBeUndefined();
    expect(safeSegments('a/b.json', 'metadata')).toBeUndefined();
    expect(safeSegments('..json', 'metadata')).toBeUndefined();
    expect(parseRange('bytes=0-', 10)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=5-100', 10)).toEqual({ start: 5, end: 9 });
    expect(parseRange('bytes=-0', 10)).toBe('unsatisfiable');
    expect(parseRange('bytes=10-', 10)).toBe('unsatisfiable');
    expect(parseRange('bytes=5-1', 10)).toBeUndefined();
    expect(parseRange('bytes=9999999999999999-', 10)).toBe('unsatisfiable');
    expect(parseRange('bytes=99999999999999999-', 10)).toBeUndefined();
    expect(parseRange('bytes=-', 10)).toBeUndefined();
  });
});

describe('without --updates-repo', () => {
  it('serves no /updates/ at all, and refuses a folder that is not a repository', async () => {
    const ca = await createCertificateAuthority({ commonName: 'Acme CA', org: 'Acme', validityDays: 3650 });
    const fresh = await freshStore('sqlite', undefined);
    const app = await testService({ store: fresh.store, ca });
    expect((await app.inject({ method: 'GET', url: '/updates/metadata/timestamp.json' })).statusCode).toBe(
      404,
    );
    await app.close();
    const empty = mkdtempSync(join(tmpdir(), 'sealroom-not-a-repo-'));
    mkdirSync(join(empty, 'metadata'));
    await expect(testService({ store: fresh.store, ca, updates: { repoDir: empty } })).rejects.toThrow(
      /no targets\//,
    );
    rmSync(empty, { recursive: true, force: true });
    await fresh.cleanup();
  });
});
