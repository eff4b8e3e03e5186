// The runner against a real provisioning service on loopback (SQLite, HTTPS with its own TLS CA the
// device pins at first use), with a virtual clock shared by device and service so retries and
// heartbeats run without waiting.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { requestJson } from '../../provisioning/client/http.js';
import { certificateSha256, PROVISIONING_CA_FILE } from '../../provisioning/client/tls-pin.js';
import { buildService } from '../../provisioning/service/app.js';
import {
  ensureBootstrapToken,
  loadOrCreateServiceTls,
  type ServiceTls,
} from '../../provisioning/service/serve.js';
import { openStore, type ProvisioningStore } from '../../provisioning/store/open.js';
import {
  type CertificateAuthority,
  createCertificateAuthority,
  verifyDeviceCertificate,
} from '../../src/pki/index.js';
import { createPinnedFetch } from '../../src/util/pinned-fetch.js';
import { initialState, StateStore } from '../daemon/state.js';
import { type Clock, EnrollmentRunner, STATE_FILE } from './runner.js';

class VirtualClock implements Clock {
  t = Date.now();
  sleeps: number[] = [];
  now = () => this.t;
  random = () => 0.999;
  async sleep(ms: number, signal: AbortSignal): Promise<void> {
    this.sleeps.push(ms);
    this.t += ms;
    if (!signal.aborted) await new Promise((r) => setTimeout(r, 5));
  }
}

async function freePort(): Promise<number> {
  return new Promise((res) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => res(typeof a === 'object' && a ? a.port : 0));
    });
  });
}

async function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** IT's calls, over HTTPS trusting the service TLS CA. */
class Admin {
  constructor(
    readonly url: string,
    readonly token: string,
    readonly fetchImpl: typeof fetch,
  ) {}
  async call(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
    return (
      await requestJson<Record<string, unknown>>(`${this.url}${path}`, {
        method,
        headers: { authorization: `Bearer ${this.token}` },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        fetch: this.fetchImpl,
      })
    ).body;
  }
  claim(body: { activationCode: string; roomName: string; site: string; config?: object }) {
    return this.call('POST', '/v1/claims', body);
  }
  showDevice(id: string) {
    return this.call('GET', `/v1/devices/${id}`);
  }
  revoke(id: string, reason: string) {
    return this.call('POST', `/v1/devices/${id}/revoke`, { reason });
  }
  setConfig(id: string, config: Record<string, unknown>) {
    return this.call('PUT', `/v1/devices/${id}/config`, { config });
  }
}

const fakeHealth = async () => ({ loadPercent: 1, peripherals: { present: ['camera'], missing: [] } });
const fakeInventory = async () => ({ model: 'test-box' });

describe('EnrollmentRunner', () => {
  let dir: string;
  let ca: CertificateAuthority;
  let store: ProvisioningStore;
  let app: FastifyInstance | undefined;
  let clock: VirtualClock;
  let port: number;
  let admin: Admin;
  let tls: ServiceTls;
  const runners: EnrollmentRunner[] = [];

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sealroom-runner-'));
    ca = await createCertificateAuthority({ commonName: 'CA', org: 'Acme', validityDays: 3650 });
    store = await openStore({ dataDir: join(dir, 'svc') });
    const tokenPath = await ensureBootstrapToken(store, join(dir, 'svc'));
    clock = new VirtualClock();
    port = await freePort();
    tls = await loadOrCreateServiceTls({ dataDir: join(dir, 'svc'), org: 'Acme' });
    admin = new Admin(
      `https://127.0.0.1:${port}`,
      readFileSync(tokenPath!, 'utf8').trim(),
      createPinnedFetch(tls.caPem!),
    );
  });

  afterEach(async () => {
    for (const r of runners.splice(0)) await r.stop();
    await app?.close();
    app = undefined;
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function startService() {
    app = await buildService({
      store,
      ca,
      org: 'Acme',
      publicUrl: `https://127.0.0.1:${port}`,
      logger: false,
      now: () => new Date(clock.t),
      https: { cert: tls.cert, key: tls.key },
    });
    await app.listen({ host: '127.0.0.1', port });
  }

  function runner(state = new StateStore(initialState('1.2.3'))) {
    const r = new EnrollmentRunner({
      stateDir: join(dir, 'device'),
      serviceUrl: `https://127.0.0.1:${port}`,
      softwareVersion: '1.2.3',
      state,
      clock,
      pollIntervalMs: 2000,
      heartbeatIntervalMs: 30_000,
      collectHealth: fakeHealth,
      collectInventory: fakeInventory,
    });
    runners.push(r);
    return { r, state };
  }

  it('retries with growing backoff while the service is down, then shows the code', async () => {
    const { r, state } = runner();
    await r.start();
    await until(() => clock.sleeps.length >= 4, 'four retries');
    expect(state.get().enrollment).toMatchObject({
      status: 'error',
      message: expect.stringMatching(/unreachable/),
    });
    const [a, b, c] = clock.sleeps;
    expect(a! < b! && b! < c!).toBe(true);
    await startService();
    await until(() => state.get().enrollment?.status === 'awaiting-claim', 'the activation code');
    const view = state.get().enrollment!;
    expect(view.activationCode).toMatch(/^[A-Z0-9]{4}-[A-Z0-9]{4}$/);
    expect(view.claimUrl).toContain(view.activationCode);
    expect(state.get().phase).toBe('enrolling');
    const key = statSync(join(dir, 'device', 'identity.key'));
    expect(key.mode & 0o777).toBe(0o600);
    // Trust on first use: the service's TLS CA is now pinned.
    expect(certificateSha256(readFileSync(join(dir, 'device', PROVISIONING_CA_FILE), 'utf8'))).toBe(
      tls.caSha256,
    );
  });

  it('resumes after a restart mid-enrollment with the same code, then enrolls and applies config', async () => {
    await startService();
    const first = runner();
    await first.r.start();
    await until(() => first.state.get().enrollment?.status === 'awaiting-claim', 'the activation code');
    const code = first.state.get().enrollment!.activationCode!;
    await first.r.stop();
    // A power cut during a state write leaves a temp file behind and the old state intact.
    writeFileSync(join(dir, 'device', `.${STATE_FILE}.deadbeef.tmp`), '{"half":');

    const second = runner();
    await second.r.start();
    expect(second.state.get().enrollment?.activationCode).toBe(code);
    const deviceId = second.r.identity!.deviceId;
    expect(deviceId).toBe(first.r.identity!.deviceId);
    const configs: unknown[] = [];
    second.r.on('config', (c) => configs.push(c));

    await admin.claim({ activationCode: code, roomName: 'Aula', site: 'Lyon', config: { volume: 30 } });
    await until(() => second.state.get().enrollment?.status === 'enrolled', 'enrollment');
    expect(second.state.get()).toMatchObject({
      phase: 'idle',
      device: { deviceId, roomName: 'Aula', site: 'Lyon', org: 'Acme' },
    });
    const certPem = readFileSync(join(dir, 'device', 'device.pem'), 'utf8');
    expect((await verifyDeviceCertificate(certPem, ca.certPem)).deviceId).toBe(deviceId);
    // Only one enrollment was ever registered: the restart reused it.
    expect((await store.db.all('SELECT id FROM enrollments WHERE device_id = ?', [deviceId])).length).toBe(1);

    await until(() => configs.length >= 1, 'first config');
    await admin.setConfig(deviceId, { volume: 80 });
    await until(() => configs.length >= 2, 'pushed config');
    expect(configs.at(-1)).toEqual({ volume: 80 });
    await app!.heartbeats.flush(); // heartbeats are written behind, in batches
    const shown = await admin.showDevice(deviceId);
    expect(shown.health).toMatchObject({ loadPercent: 1 });

    await admin.revoke(deviceId, 'lost');
    // Believed because the 403 carries the CRL, signed by the org CA, listing this device.
    await until(() => second.r.current?.phase === 'revoked', 'revocation');
    expect(second.state.get().enrollment).toMatchObject({
      status: 'error',
      message: expect.stringMatching(/revoked/),
    });
    expect(readdirSync(join(dir, 'device')).sort()).toEqual(
      expect.arrayContaining([
        'ca.pem',
        'device.pem',
        'enrollment.json',
        'identity.key',
        PROVISIONING_CA_FILE,
      ]),
    );
  });
});
