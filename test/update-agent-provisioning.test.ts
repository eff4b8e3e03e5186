// End to end with the real provisioning service (the fleet half of issue 14): a real daemon enrolls,
// IT moves it to the canary channel (PUT /v1/devices/:id/update-policy → the `update` config in the
// next heartbeat reply), the agent checks at once, fetches the TUF metadata and the bundle from the
// service's /updates/ over the pinned TLS, installs it, restarts; after the restart its health gate
// commits it. Every step lands in the service as signed update-state reports (device detail and
// GET /v1/fleet/updates).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Daemon, startDaemon } from '../device/daemon/daemon.js';
import { Updater } from '../device/update/updater.js';
import { requestJson } from '../provisioning/client/http.js';
import { buildService } from '../provisioning/service/app.js';
import { ensureBootstrapToken, loadOrCreateServiceTls } from '../provisioning/service/serve.js';
import { openStore, type ProvisioningStore } from '../provisioning/store/open.js';
import { buildAppBundle, startCurrent } from '../scripts/powercut-ota.js';
import { createCertificateAuthority } from '../src/pki/index.js';
import { addRelease, generateKey, initRepository } from '../src/update/tuf-repo.js';
import { silentLogger } from '../src/util/log.js';
import { createPinnedFetch } from '../src/util/pinned-fetch.js';
import { freePort } from './provisioning-helpers.js';

const arch = process.arch === 'arm64' ? 'arm64' : 'x64';

async function until<T>(f: () => T | undefined | Promise<T | undefined>, what: string, ms = 30_000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

interface Reported {
  state: string;
  current: string;
  target: string | null;
  channel: string;
}

describe('the update agent against the real provisioning service', () => {
  let dir: string;
  let store: ProvisioningStore;
  let app: FastifyInstance;
  let url: string;
  let token: string;
  let fetchImpl: typeof fetch;
  let trustedRoot: string;
  let root: string;
  let uiDir: string;
  const daemons: Daemon[] = [];

  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> =>
    (
      await requestJson<T>(`${url}${path}`, {
        method,
        headers: { authorization: `Bearer ${token}` },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        fetch: fetchImpl,
      })
    ).body;

  const start = async (version: string, onRestart: () => void) => {
    const d = await startDaemon({
      relayUrl: 'ws://127.0.0.1:9/v1/ws', // no relay in this test: the gate below checks the rest
      provisioningUrl: url,
      stateDir: join(dir, 'device'),
      log: silentLogger,
      media: 'none',
      controlPort: 0,
      uiDir,
      version,
      enrollmentTiming: {
        heartbeatIntervalMs: 100,
        pollIntervalMs: 100,
        backoff: { baseMs: 50, maxMs: 200 },
      },
      update: {
        root,
        trustedRootJson: trustedRoot,
        restart: onRestart,
        healthChecks: (controlUrl) => [
          {
            name: 'kiosk control server',
            run: async () => {
              const r = await fetch(new URL('/healthz', controlUrl));
              if (!r.ok) throw new Error(`HTTP ${r.status}`);
              return 'ok';
            },
          },
        ],
        timing: {
          firstCheckMs: 3600_000,
          pollMs: 50,
          gateRetryMs: 50,
          reportRetry: { minMs: 50, maxMs: 200 },
        },
      },
    });
    daemons.push(d);
    return d;
  };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sealroom-agent-prov-'));
    // The release repository, hosted by the service; 2.0.0 on the canary channel only.
    const keys = {
      root: [generateKey()],
      targets: [generateKey()],
      snapshot: [generateKey()],
      timestamp: [generateKey()],
    };
    const repoDir = join(dir, 'repo');
    const repo = await initRepository(repoDir, {
      rootKeys: keys.root,
      targetsKeys: keys.targets,
      snapshotKeys: keys.snapshot,
      timestampKeys: keys.timestamp,
    });
    trustedRoot = JSON.stringify(repo.root.toJSON());
    const v1 = await buildAppBundle(dir, '1.0.0', { files: 2 });
    const v2 = await buildAppBundle(dir, '2.0.0', { files: 2 });
    await addRelease(repoDir, v2, { version: '2.0.0', arch, channel: 'canary', keys });
    root = join(dir, 'box', 'app');
    await new Updater({ root }).install(v1);
    uiDir = join(dir, 'ui');
    mkdirSync(uiDir);
    writeFileSync(join(uiDir, 'index.html'), '<!doctype html><html><body>room</body></html>');

    const ca = await createCertificateAuthority({ commonName: 'CA', org: 'Acme', validityDays: 3650 });
    store = await openStore({ dataDir: join(dir, 'svc') });
    token = readFileSync((await ensureBootstrapToken(store, join(dir, 'svc')))!, 'utf8').trim();
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
      updates: { repoDir },
    });
    await app.listen({ host: '127.0.0.1', port });
  }, 90_000);

  afterAll(async () => {
    for (const d of daemons) await d.stop().catch(() => undefined);
    await app?.close();
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('channel from IT → check → download from the service → install → restart → gate → commit, all reported', async () => {
    let restarted = 0;
    const d = await start('1.0.0', () => {
      restarted++;
    });
    const code = await until(() => d.state.get().enrollment?.activationCode, 'the activation code');
    await call('POST', '/v1/claims', { activationCode: code, roomName: 'Aula', site: 'Lyon' });
    await until(() => d.enrollment?.current?.phase === 'enrolled', 'enrollment');
    const deviceId = d.enrollment!.identity!.deviceId;
    const reported = async () =>
      (
        await call<{ update?: { reported: Reported | null; channel: string } }>(
          'GET',
          `/v1/devices/${deviceId}`,
        )
      ).update;

    // On stable there is nothing; IT moves the room to canary.
    expect((await d.update!.checkNow()).state).toBe('idle');
    await call('PUT', `/v1/devices/${deviceId}/update-policy`, { channel: 'canary' });
    await until(() => restarted === 1 || undefined, 'the install and restart');
    expect(d.state.get().update).toMatchObject({ state: 'restarting', target: '2.0.0', channel: 'canary' });
    expect((await new Updater({ root }).status()).state?.pending?.version).toBe('2.0.0');
    expect(startCurrent(root)).toBe('2.0.0');
    await until(async () => (await reported())?.reported?.state === 'restarting' || undefined, 'the report');
    expect((await reported())?.reported).toMatchObject({
      current: '1.0.0',
      target: '2.0.0',
      channel: 'canary',
    });
    await d.stop();

    // The service manager starts the new version: boot check, then its gate commits it.
    expect((await new Updater({ root }).bootCheck()).action).toBe('try-pending');
    const after = await start('2.0.0', () => {
      restarted++;
    });
    await until(() => after.state.get().update?.state === 'committed' || undefined, 'the commit');
    await until(
      async () => (await reported())?.reported?.state === 'committed' || undefined,
      'the commit report',
    );
    expect((await reported())?.reported).toMatchObject({ current: '2.0.0', channel: 'canary' });
    const rollout = await call<{ channels: { channel: string; versions: Record<string, number> }[] }>(
      'GET',
      '/v1/fleet/updates',
    );
    expect(rollout.channels.find((c) => c.channel === 'canary')?.versions).toMatchObject({ '2.0.0': 1 });
    expect(restarted).toBe(1);
  }, 120_000);
});
