// Remote actions end to end: IT queues them through the real provisioning service (SQLite, HTTPS,
// admin API), a real enrolled device (EnrollmentRunner) receives them in heartbeat replies, does
// them once and reports: a log bundle to download (gzip, the daemon's log, no secret), a renewed
// certificate (new serial), a restart reported before the daemon restarts.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestJson } from '../provisioning/client/http.js';
import { buildService } from '../provisioning/service/app.js';
import { ensureBootstrapToken, loadOrCreateServiceTls } from '../provisioning/service/serve.js';
import { openStore, type ProvisioningStore } from '../provisioning/store/open.js';
import {
  createRestarter,
  type Daemon,
  RESTART_EXIT_CODE,
  restartMode,
  startDaemon,
} from '../device/daemon/daemon.js';
import { initialState, StateStore } from '../device/daemon/state.js';
import { ACTIONS_FILE } from '../device/enrollment/actions.js';
import { readTar } from '../device/enrollment/log-bundle.js';
import { EnrollmentRunner } from '../device/enrollment/runner.js';
import { createCertificateAuthority } from '../src/pki/index.js';
import { silentLogger } from '../src/util/log.js';
import { createPinnedFetch } from '../src/util/pinned-fetch.js';
import { freePort } from './provisioning-helpers.js';

async function until<T>(
  f: () => T | undefined | Promise<T | undefined>,
  what: string,
  ms = 20_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Action {
  id: string;
  kind: string;
  status: string;
  result: { message?: string; bundleBytes?: number } | null;
}

describe('remote actions on a real device against the real service', () => {
  let dir: string;
  let store: ProvisioningStore;
  let app: FastifyInstance;
  let url: string;
  let token: string;
  let fetchImpl: typeof fetch;
  let deviceId: string;
  let activationCode: string;
  let keyPem: string;
  const state = new StateStore(initialState('9.9.9'));
  const restarts: string[] = [];
  let runner: EnrollmentRunner;
  // What the daemon printed: its stderr ring. Hostile: secrets ended up in it.
  let logText = 'daemon started\nhello from the daemon log\n';

  const makeRunner = () => {
    const r = new EnrollmentRunner({
      stateDir: join(dir, 'device'),
      serviceUrl: url,
      softwareVersion: '9.9.9',
      state,
      pollIntervalMs: 100,
      heartbeatIntervalMs: 100,
      backoff: { baseMs: 50, maxMs: 200 },
      collectInventory: async () => ({ model: 'test-box' }),
      collectHealth: async () => ({ loadPercent: 3, peripherals: { present: ['camera'], missing: [] } }),
      logText: () => logText,
      secrets: () => ['kiosk-token-0123456789'],
      readJournal: false,
    });
    r.on('restart', (id) => restarts.push(id));
    return r;
  };

  async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (
      await requestJson<T>(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}` },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        fetch: fetchImpl,
      })
    ).body;
  }

  async function queue(kind: string): Promise<Action> {
    return call<Action>('POST', `/v1/devices/${deviceId}/actions`, { kind });
  }

  async function finished(id: string, device = deviceId): Promise<Action> {
    return until(async () => {
      const { items } = await call<{ items: Action[] }>('GET', `/v1/devices/${device}/actions`);
      const a = items.find((x) => x.id === id);
      return a && (a.status === 'done' || a.status === 'failed') ? a : undefined;
    }, `action ${id} to finish`);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sealroom-fleet-actions-'));
    const ca = await createCertificateAuthority({ commonName: 'CA', org: 'Acme', validityDays: 3650 });
    store = await openStore({ dataDir: join(dir, 'svc') });
    const tokenPath = await ensureBootstrapToken(store, join(dir, 'svc'));
    token = readFileSync(tokenPath!, 'utf8').trim();
    const port = await freePort();
    const tls = await loadOrCreateServiceTls({ dataDir: join(dir, 'svc'), org: 'Acme' });
    url = `https://127.0.0.1:${port}`;
    fetchImpl = createPinnedFetch(tls.caPem!);
    app = await buildService({
      store,
      ca,
      org: 'Acme',
      publicUrl: url,
      logger: false,
      https: { cert: tls.cert, key: tls.key },
      rateLimits: { deviceRequestsPerMinute: 60_000, deviceBurst: 1000 },
      heartbeats: { flushIntervalMs: 20 },
    });
    await app.listen({ host: '127.0.0.1', port });

    runner = makeRunner();
    await runner.start();
    activationCode = await until(() => state.get().enrollment?.activationCode, 'the activation code');
    deviceId = runner.identity!.deviceId;
    keyPem = readFileSync(join(dir, 'device', 'identity.key'), 'utf8');
    expect(keyPem).toContain('PRIVATE KEY');
    logText += `showing activation code ${activationCode}\nkey dump ${keyPem}\nkiosk-token-0123456789\n`;
    await call('POST', '/v1/claims', { activationCode, roomName: 'Aula', site: 'Lyon' });
    await until(() => runner.current?.phase === 'enrolled', 'enrollment');
  }, 60_000);

  afterAll(async () => {
    await runner?.stop();
    await app?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('collect-logs: the bundle downloads as gzip, holds the log, and no key, code or token', async () => {
    const queued = await queue('collect-logs');
    expect(queued.status).toBe('queued');
    const done = await finished(queued.id);
    expect(done.status).toBe('done');
    expect(done.result?.bundleBytes).toBeGreaterThan(100);

    const res = await fetchImpl(`${url}/v1/actions/${queued.id}/bundle`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/application\/gzip/);
    expect(res.headers.get('content-disposition')).toMatch(/attachment/);
    const gz = Buffer.from(await res.arrayBuffer());
    expect(gz.length).toBe(done.result?.bundleBytes);
    expect(gz.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    const files = readTar(gunzipSync(gz));
    expect(files.map((f) => f.name)).toEqual(
      expect.arrayContaining(['daemon.log', 'about.json', 'enrollment.json', 'state.json', 'health.json']),
    );
    const all = files.map((f) => `${f.name}\n${f.text}`).join('\n');
    expect(all).toContain('hello from the daemon log');
    expect(JSON.parse(files.find((f) => f.name === 'enrollment.json')!.text)).toMatchObject({
      deviceId,
      roomName: 'Aula',
      phase: 'enrolled',
    });
    // No secret: the identity key (any line of it), the activation code, the kiosk token.
    expect(all).not.toContain('PRIVATE KEY');
    for (const line of keyPem.split('\n').filter((l) => l.length > 20)) expect(all).not.toContain(line);
    expect(all).not.toContain(activationCode);
    expect(all).not.toContain('kiosk-token-0123456789');
    // Done once: the ledger holds it, the service has one bundle.
    const ledger = JSON.parse(readFileSync(join(dir, 'device', ACTIONS_FILE), 'utf8'));
    expect(ledger.entries.filter((e: { id: string }) => e.id === queued.id)).toHaveLength(1);
  });

  it('renew-certificate: a new certificate serial, reported done', async () => {
    const before = (await call<{ certSerial: string }>('GET', `/v1/devices/${deviceId}`)).certSerial;
    const held = runner.current?.phase === 'enrolled' ? runner.current.certificate.serial : '';
    expect(held).toBeTruthy();
    const queued = await queue('renew-certificate');
    const done = await finished(queued.id);
    expect(done.status).toBe('done');
    const now = runner.current?.phase === 'enrolled' ? runner.current.certificate.serial : '';
    expect(now).not.toBe(held);
    expect(done.result?.message).toContain(now);
    const after = (await call<{ certSerial: string }>('GET', `/v1/devices/${deviceId}`)).certSerial;
    expect(after).not.toBe(before);
    expect(readFileSync(join(dir, 'device', 'device.pem'), 'utf8')).toContain('BEGIN CERTIFICATE');
    // The device goes back to plain heartbeats (no endless renewals).
    await new Promise((r) => setTimeout(r, 400));
    expect(runner.current?.phase === 'enrolled' && runner.current.certificate.serial).toBe(now);
  });

  it('renew-certificate refused by the device (not its pinned CA): reported failed, heartbeats go on', async () => {
    const caPath = join(dir, 'device', 'ca.pem');
    const pinned = readFileSync(caPath, 'utf8');
    const other = await createCertificateAuthority({ commonName: 'Other', org: 'Evil', validityDays: 30 });
    writeFileSync(caPath, other.certPem);
    try {
      const held = runner.current?.phase === 'enrolled' ? runner.current.certificate.serial : '';
      const queued = await queue('renew-certificate');
      const done = await finished(queued.id);
      expect(done.status).toBe('failed');
      expect(done.result?.message).toMatch(/renewal failed: .*different org CA/);
      expect(runner.current?.phase === 'enrolled' && runner.current.certificate.serial).toBe(held);
      // Back to heartbeats, not a renewal loop.
      await until(
        () => runner.current?.phase === 'enrolled' && !runner.current.renewalDue,
        'renewal dropped',
      );
      const seen = (await call<{ lastSeenAt: string }>('GET', `/v1/devices/${deviceId}`)).lastSeenAt;
      await until(async () => {
        await app.heartbeats.flush();
        const d = await call<{ lastSeenAt: string }>('GET', `/v1/devices/${deviceId}`);
        return d.lastSeenAt > seen ? d : undefined;
      }, 'a heartbeat after the failed renewal');
    } finally {
      writeFileSync(caPath, pinned);
    }
  });

  it('restart: reported done, then the daemon is asked to restart; the restarted one does not do it again', async () => {
    const queued = await queue('restart');
    await until(() => restarts.includes(queued.id), 'the restart request');
    const done = await finished(queued.id);
    expect(done).toMatchObject({ status: 'done', result: { message: 'daemon restarting' } });
    // What `sealroom daemon` does with it: exit 75 under systemd (Restart=always), else in-process.
    expect(restartMode({ INVOCATION_ID: 'abc', NOTIFY_SOCKET: '/run/systemd/notify' })).toBe('exit');
    expect(restartMode({ INVOCATION_ID: 'abc' })).toBe('in-process'); // e.g. a terminal in a user unit
    expect(restartMode({})).toBe('in-process');
    expect(restartMode({ SEALROOM_RESTART: 'exit' })).toBe('exit');
    expect(restartMode({ INVOCATION_ID: 'abc', SEALROOM_RESTART: 'in-process' })).toBe('in-process');
    expect(RESTART_EXIT_CODE).toBe(75);

    // The restart: a new runner on the same state dir resumes enrolled and keeps heartbeating.
    await runner.stop();
    const count = restarts.length;
    runner = makeRunner();
    await runner.start();
    expect(runner.current?.phase).toBe('enrolled');
    const seenBefore = (await call<{ lastSeenAt: string }>('GET', `/v1/devices/${deviceId}`)).lastSeenAt;
    await until(async () => {
      await app.heartbeats.flush();
      const d = await call<{ lastSeenAt: string }>('GET', `/v1/devices/${deviceId}`);
      return d.lastSeenAt > seenBefore ? d : undefined;
    }, 'a heartbeat from the restarted device');
    expect(restarts.length).toBe(count);
  });

  it('restart of a whole daemon: in-process on the same control port (no service manager), or exit 75', async () => {
    // The daemon as `sealroom daemon` composes it, with the restarter it uses outside systemd.
    const stateDir = join(dir, 'daemon');
    const boots: Daemon[] = [];
    const requested: string[] = [];
    let restart: () => Promise<void> = async () => {};
    const boot = async (controlPort: number) => {
      boots.push(
        await startDaemon({
          relayUrl: 'ws://127.0.0.1:9/v1/ws', // no relay: the meeting client just retries
          provisioningUrl: url,
          stateDir,
          log: silentLogger,
          media: 'none',
          controlPort,
          enrollmentTiming: {
            heartbeatIntervalMs: 100,
            pollIntervalMs: 100,
            backoff: { baseMs: 50, maxMs: 200 },
          },
          onRestartRequested: (id) => {
            requested.push(id);
            void restart();
          },
        }),
      );
    };
    restart = createRestarter({
      mode: 'in-process',
      current: () => boots.at(-1)!,
      boot,
      exit: () => {
        throw new Error('must not exit in-process');
      },
      log: silentLogger,
    });
    await boot(0);
    try {
      const first = boots[0]!;
      const code = await until(() => first.state.get().enrollment?.activationCode, 'the daemon code');
      await call('POST', '/v1/claims', { activationCode: code, roomName: 'Salle 2', site: 'Lyon' });
      await until(
        () => first.state.get().phase === 'idle' && first.enrollment?.current?.phase === 'enrolled',
        'enrolled',
      );
      const id = first.state.get().device.deviceId!;
      // The self-test result is in the state the heartbeat reports.
      expect(first.state.get().selfTest).toMatchObject({ ok: true, failed: [] });
      const queued = await call<Action>('POST', `/v1/devices/${id}/actions`, { kind: 'restart' });
      await until(() => boots.length === 2, 'the in-process restart');
      expect(requested).toEqual([queued.id]);
      const second = boots[1]!;
      expect(second.controlUrl).toBe(first.controlUrl);
      expect(second.kioskToken).not.toBe(first.kioskToken);
      const health = await fetch(`${second.controlUrl}/healthz`);
      expect(health.status).toBe(200);
      expect((await finished(queued.id, id)).status).toBe('done');
      await until(() => second.enrollment?.current?.phase === 'enrolled', 'the restarted daemon enrolled');
      // It keeps heartbeating and does not restart again for the same action.
      await new Promise((r) => setTimeout(r, 500));
      expect(boots).toHaveLength(2);
    } finally {
      await boots.at(-1)?.stop();
    }

    // Under systemd: the graceful stop with exit status 75 (Restart=always starts it again).
    const exits: number[] = [];
    const viaSystemd = createRestarter({
      mode: restartMode({ INVOCATION_ID: 'x', NOTIFY_SOCKET: '/run/systemd/notify' }),
      current: () => ({ controlUrl: 'http://127.0.0.1:1', stop: async () => {} }),
      boot: async () => {
        throw new Error('must not boot');
      },
      exit: (c) => {
        exits.push(c);
      },
      log: silentLogger,
    });
    await viaSystemd();
    expect(exits).toEqual([RESTART_EXIT_CODE]);
  }, 60_000);

  it('an unknown kind is refused by the admin API; the device would fail it as unsupported', async () => {
    await expect(queue('format-disk')).rejects.toMatchObject({ status: 400 });
  });
  it('hostile: 10 000 actions and a 100 kB id in the store are bounded on the device', async () => {
    // Written straight into the database (a buggy or tampered store), past the admin API's checks.
    const now = new Date().toISOString();
    await store.db.transaction(async (tx) => {
      for (let i = 0; i < 10_000; i++)
        await tx.run(
          "INSERT INTO device_actions (id, device_id, kind, status, created_at, created_by) VALUES (?, ?, ?, 'queued', ?, 'test')",
          [`act_${String(i).padStart(25, '0')}`, deviceId, 'format-disk', now],
        );
      await tx.run(
        "INSERT INTO device_actions (id, device_id, kind, status, created_at, created_by) VALUES (?, ?, 'restart', 'queued', ?, 'test')",
        ['y'.repeat(100_000), deviceId, now],
      );
      await tx.run('UPDATE devices SET pending_actions = 10001 WHERE id = ?', [deviceId]);
    });
    app.heartbeats.invalidate(deviceId);
    const restartsBefore = restarts.length;
    const failed = await until(async () => {
      const rows = await store.db.all<{ n: number }>(
        "SELECT COUNT(*) AS n FROM device_actions WHERE device_id = ? AND status = 'failed' AND id LIKE 'act_000%'",
        [deviceId],
      );
      return Number(rows[0]?.n) >= 32 ? Number(rows[0]?.n) : undefined;
    }, 'the device to fail the bulk actions').catch(async (e) => {
      console.log(
        JSON.stringify(
          await store.db.all('SELECT status, COUNT(*) AS n FROM device_actions GROUP BY status'),
        ),
        JSON.stringify(state.get().enrollment),
      );
      throw e;
    });
    expect(failed).toBeGreaterThanOrEqual(32);
    // The huge id was never acted on (no restart), and the device keeps heartbeating.
    expect(restarts.length).toBe(restartsBefore);
    const seen = (await call<{ lastSeenAt: string }>('GET', `/v1/devices/${deviceId}`)).lastSeenAt;
    await until(async () => {
      await app.heartbeats.flush();
      const d = await call<{ lastSeenAt: string }>('GET', `/v1/devices/${deviceId}`);
      return d.lastSeenAt > seen ? d : undefined;
    }, 'a later heartbeat');
    expect(readFileSync(join(dir, 'device', ACTIONS_FILE), 'utf8').length).toBeLessThan(64 * 1024);
    const results = await store.db.all<{ result: string }>(
      "SELECT result FROM device_actions WHERE device_id = ? AND status = 'failed' AND id LIKE 'act_000%' LIMIT 5",
      [deviceId],
    );
    for (const r of results) expect(r.result).toContain('unsupported');
  }, 60_000);
});
