// npm run bench:provisioning — the provisioning service under load on SQLite and PostgreSQL, next to
// a bare fastify route measured the same way in the same run.
// Per backend: a 10 000-device fleet seeded straight into the store; then signed heartbeats from
// random devices over loopback HTTP (keep-alive): throughput in a closed loop at concurrency 16, and
// latency (p50/p99) in an open loop at a fixed 1000 heartbeats/s, counted from each request's
// scheduled time; then real enrollments (CSR verification + activation code) and claims
// (certificate issuance). heartbeat_p99_ms is the open-loop p99, heartbeats_per_s the closed-loop
// rate. The load generator runs in a worker thread so it does not steal the service's event loop
// (this box has 2 cores, shared).
// Last line: {"bench":"provisioning","sqlite":{"heartbeat_p99_ms":..,"heartbeats_per_s":..,"ratio_vs_bare":..},"postgres":{...}}
// with ratio_vs_bare = heartbeats/s ÷ bare-route requests/s.
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import Fastify from 'fastify';
import { signDeviceRequest } from '../../provisioning/device-auth.js';
import { buildService } from '../../provisioning/service/app.js';
import { ensureBootstrapToken } from '../../provisioning/service/serve.js';
import { LocalPostgres } from '../../provisioning/store/local-postgres.js';
import { openStore, type ProvisioningStore } from '../../provisioning/store/open.js';
import {
  createCertificateAuthority,
  createCsr,
  deviceIdForPublicKey,
  generateIdentityKey,
  rawPublicKey,
} from '../../src/pki/index.js';

const FLEET = Number(process.env.PROVISIONING_BENCH_FLEET ?? 10_000);
const SECONDS = Number(process.env.PROVISIONING_BENCH_SECONDS ?? 5);
const CONCURRENCY = Number(process.env.PROVISIONING_BENCH_CONCURRENCY ?? 16);
const ENROLLMENTS = Number(process.env.PROVISIONING_BENCH_ENROLLMENTS ?? 200);
/** Offered load for the latency figures (heartbeats per second). */
const RATE = Number(process.env.PROVISIONING_BENCH_RATE ?? 1000);

interface Req {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}
type Job =
  | { kind: 'list'; port: number; requests: Req[]; concurrency: number }
  | {
      kind: 'heartbeat' | 'bare';
      port: number;
      devices: { id: string; pkcs8: Uint8Array }[];
      seconds: number;
      concurrency: number;
      /** Open loop: this many requests per second on a fixed schedule, latency counted from the
       *  scheduled time (no coordinated omission). Absent: closed loop at `concurrency`. */
      ratePerSecond?: number;
    };
interface Result {
  ok: number;
  errors: number;
  firstError?: string;
  elapsedMs: number;
  latenciesMs: number[];
  bodies: string[];
}

const HEALTH = JSON.stringify({
  softwareVersion: '0.1.0',
  configVersion: 1,
  health: {
    loadPercent: 12.5,
    temperatureC: 48,
    memory: { usedBytes: 1_200_000_000, totalBytes: 4_000_000_000 },
    disk: { usedBytes: 9_000_000_000, totalBytes: 32_000_000_000 },
    peripherals: { present: ['camera', 'microphone', 'speaker'], missing: [] },
    meetingState: 'idle',
    uptimeSeconds: 86_400,
  },
});

// ── load generator (worker thread) ──────────────────────────────────────────────────────────

function send(agent: Agent, port: number, r: Req): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: r.method,
        path: r.path,
        agent,
        headers: { ...r.headers, ...(r.body ? { 'content-type': 'application/json' } : {}) },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    req.end(r.body || undefined);
  });
}

async function runJob(job: Job): Promise<Result> {
  const agent = new Agent({ keepAlive: true, maxSockets: job.concurrency });
  const result: Result = { ok: 0, errors: 0, elapsedMs: 0, latenciesMs: [], bodies: [] };
  const record = (status: number, body: string, ms: number, keep: boolean) => {
    if (status >= 200 && status < 300) {
      result.ok++;
      result.latenciesMs.push(ms);
      if (keep) result.bodies.push(body);
    } else {
      result.errors++;
      result.firstError ??= `HTTP ${status}: ${body.slice(0, 200)}`;
    }
  };
  let start = performance.now();
  if (job.kind === 'list') {
    let next = 0;
    await Promise.all(
      Array.from({ length: job.concurrency }, async () => {
        while (next < job.requests.length) {
          const r = job.requests[next++]!;
          const t = performance.now();
          const res = await send(agent, job.port, r);
          record(res.status, res.body, performance.now() - t, true);
        }
      }),
    );
  } else {
    const keys = job.devices.map((d) => ({
      id: d.id,
      key: createPrivateKey({ key: Buffer.from(d.pkcs8), format: 'der', type: 'pkcs8' }),
    }));
    start = performance.now(); // importing 10 000 keys is set-up, not load
    const end = start + job.seconds * 1000;
    const makeRequest = (): Req => {
      if (job.kind === 'bare') return { method: 'POST', path: '/bare', headers: {}, body: HEALTH };
      const d = keys[Math.floor(Math.random() * keys.length)]!;
      const path = `/v1/devices/${d.id}/heartbeat`;
      const headers = signDeviceRequest({
        privateKey: d.key,
        deviceId: d.id,
        method: 'POST',
        path,
        body: HEALTH,
        now: Date.now(),
      });
      return { method: 'POST', path, headers, body: HEALTH };
    };
    if (job.ratePerSecond) {
      const interval = 1000 / job.ratePerSecond;
      const inflight = new Set<Promise<void>>();
      let sent = 0;
      while (performance.now() < end) {
        // Fire everything that is due, then yield to the event loop for about a millisecond.
        while (start + sent * interval <= performance.now()) {
          const due = start + sent * interval;
          sent++;
          const p: Promise<void> = send(agent, job.port, makeRequest()).then(
            (res) => record(res.status, res.body, performance.now() - due, false),
            (err: Error) => record(0, err.message, 0, false),
          );
          inflight.add(p);
          void p.finally(() => inflight.delete(p));
        }
        await new Promise((r) => setTimeout(r, 1));
      }
      await Promise.all(inflight);
    } else {
      await Promise.all(
        Array.from({ length: job.concurrency }, async () => {
          while (performance.now() < end) {
            const t = performance.now();
            const res = await send(agent, job.port, makeRequest());
            record(res.status, res.body, performance.now() - t, false);
          }
        }),
      );
    }
  }
  result.elapsedMs = performance.now() - start;
  agent.destroy();
  return result;
}

if (!isMainThread) {
  runJob(workerData as Job).then((r) => parentPort!.postMessage(r));
}

function inWorker(job: Job): Promise<Result> {
  return new Promise((resolve, reject) => {
    // From the sources (tsx), the worker needs the TypeScript loader too; compiled, it needs nothing.
    const execArgv = import.meta.url.endsWith('.ts') ? ['--import', 'tsx'] : [];
    const w = new Worker(new URL(import.meta.url), { workerData: job, execArgv });
    w.once('message', (r: Result) => {
      void w.terminate();
      resolve(r);
    });
    w.once('error', reject);
  });
}

// ── measurement (main thread) ───────────────────────────────────────────────────────────────

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function summarize(r: Result) {
  const sorted = [...r.latenciesMs].sort((a, b) => a - b);
  return {
    perSecond: r.ok / (r.elapsedMs / 1000),
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    errors: r.errors,
    firstError: r.firstError,
  };
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;

async function seedFleet(store: ProvisioningStore): Promise<{ id: string; pkcs8: Uint8Array }[]> {
  const devices: { id: string; pkcs8: Uint8Array }[] = [];
  const rows = [];
  for (let i = 0; i < FLEET; i++) {
    const key = generateIdentityKey();
    const id = deviceIdForPublicKey(key.publicKey);
    devices.push({ id, pkcs8: new Uint8Array(key.privateKey.export({ format: 'der', type: 'pkcs8' })) });
    rows.push({
      id,
      publicKey: Buffer.from(rawPublicKey(key.publicKey)).toString('base64'),
      roomName: `Room ${i}`,
      site: `Site ${i % 50}`,
      serial: (0x4000_0000_0000 + i).toString(16),
      certPem: 'seeded',
    });
  }
  await store.seedActiveDevices(rows, new Date().toISOString());
  return devices;
}

async function benchBackend(name: 'sqlite' | 'postgres', databaseUrl: string | undefined) {
  const dataDir = mkdtempSync(join(tmpdir(), `sealroom-bench-prov-${name}-`));
  const store = await openStore({ dataDir, databaseUrl });
  const tokenPath = await ensureBootstrapToken(store, dataDir);
  const token = readFileSync(tokenPath!, 'utf8').trim();
  const ca = await createCertificateAuthority({ commonName: 'Bench CA', org: 'Bench', validityDays: 3650 });
  const app = await buildService({
    store,
    ca,
    org: 'Bench',
    publicUrl: 'http://127.0.0.1',
    logger: false,
    // Limits off: this measures capacity (a small PROVISIONING_BENCH_FLEET would otherwise hit the
    // per-device limit, which is the point of the limit, not of the benchmark).
    rateLimits: {
      enrollmentsPerMinute: 1e9,
      claimsPerMinute: 1e9,
      deviceRequestsPerMinute: 1e9,
      deviceBurst: 1e9,
    },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;

  const bare = Fastify({ logger: false });
  bare.post('/bare', { schema: { body: { type: 'object' } } }, async () => ({ ok: true }));
  await bare.listen({ host: '127.0.0.1', port: 0 });
  const barePort = (bare.server.address() as { port: number }).port;

  try {
    let t = performance.now();
    const devices = await seedFleet(store);
    console.log(`${name}: seeded ${FLEET} devices in ${Math.round(performance.now() - t)} ms`);

    // Warm-up (JIT, prepared statements, connection pool), not counted.
    await inWorker({
      kind: 'heartbeat',
      port,
      devices: devices.slice(0, 500),
      seconds: 0.5,
      concurrency: CONCURRENCY,
    });
    await inWorker({ kind: 'bare', port: barePort, devices: [], seconds: 0.5, concurrency: CONCURRENCY });

    const bareR = summarize(
      await inWorker({
        kind: 'bare',
        port: barePort,
        devices: [],
        seconds: SECONDS,
        concurrency: CONCURRENCY,
      }),
    );
    const hbR = summarize(
      await inWorker({ kind: 'heartbeat', port, devices, seconds: SECONDS, concurrency: CONCURRENCY }),
    );
    if (hbR.errors) console.log(`${name}: ${hbR.errors} heartbeat errors, first: ${hbR.firstError}`);
    // Latency at a fixed offered load (the target's 1000/s): open loop, at most 64 sockets.
    const paced = { seconds: SECONDS, concurrency: 64, ratePerSecond: RATE };
    const bareP = summarize(await inWorker({ kind: 'bare', port: barePort, devices: [], ...paced }));
    const hbP = summarize(await inWorker({ kind: 'heartbeat', port, devices, ...paced }));
    if (hbP.errors) console.log(`${name}: ${hbP.errors} paced heartbeat errors, first: ${hbP.firstError}`);

    // Enrollments: CSRs made beforehand (that is device work), then posted.
    t = performance.now();
    const enrollRequests: Req[] = [];
    for (let i = 0; i < ENROLLMENTS; i++) {
      const key = generateIdentityKey();
      const csr = await createCsr(key, { deviceId: deviceIdForPublicKey(key.publicKey) });
      enrollRequests.push({
        method: 'POST',
        path: '/v1/enrollments',
        headers: {},
        body: JSON.stringify({ csr, softwareVersion: '0.1.0', inventory: { model: 'bench', cores: 4 } }),
      });
    }
    const enrollRaw = await inWorker({ kind: 'list', port, requests: enrollRequests, concurrency: 4 });
    const enrollR = summarize(enrollRaw);
    const claims: Req[] = enrollRaw.bodies.map((b, i) => ({
      method: 'POST',
      path: '/v1/claims',
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify({
        activationCode: (JSON.parse(b) as { activationCode: string }).activationCode,
        roomName: `Bench room ${i}`,
        site: 'Bench',
      }),
    }));
    const claimR = summarize(await inWorker({ kind: 'list', port, requests: claims, concurrency: 4 }));
    if (enrollR.errors || claimR.errors) {
      console.log(
        `${name}: enrollment errors ${enrollR.errors} (${enrollR.firstError}), claim errors ${claimR.errors} (${claimR.firstError})`,
      );
    }

    console.log(
      `${name}: bare fastify route     ${round(bareR.perSecond, 0)} req/s   p50 ${round(bareR.p50)} ms   p99 ${round(bareR.p99)} ms`,
    );
    console.log(
      `${name}: heartbeats (${FLEET} devices) ${round(hbR.perSecond, 0)} /s   p50 ${round(hbR.p50)} ms   p99 ${round(hbR.p99)} ms   (${round(hbR.perSecond / bareR.perSecond, 3)}× bare)`,
    );
    console.log(
      `${name}: at ${RATE}/s offered        bare p50 ${round(bareP.p50)} ms p99 ${round(bareP.p99)} ms   heartbeats p50 ${round(hbP.p50)} ms p99 ${round(hbP.p99)} ms (${round(hbP.perSecond, 0)}/s served)`,
    );
    console.log(
      `${name}: enrollments            ${round(enrollR.perSecond, 1)} /s   p99 ${round(enrollR.p99)} ms`,
    );
    console.log(
      `${name}: claims (cert issuance) ${round(claimR.perSecond, 1)} /s   p99 ${round(claimR.p99)} ms`,
    );
    return {
      heartbeat_p99_ms: round(hbP.p99),
      heartbeats_per_s: round(hbR.perSecond, 0),
      ratio_vs_bare: round(hbR.perSecond / bareR.perSecond, 3),
    };
  } finally {
    await bare.close();
    await app.close();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main() {
  console.log(
    `provisioning bench: fleet ${FLEET}, ${SECONDS} s per phase, concurrency ${CONCURRENCY}, ${ENROLLMENTS} enrollments (shared 2-core box: figures are noisy)`,
  );
  const sqlite = await benchBackend('sqlite', undefined);
  const pg = new LocalPostgres();
  let postgres: Awaited<ReturnType<typeof benchBackend>>;
  try {
    await pg.start();
    postgres = await benchBackend('postgres', await pg.createDatabase());
  } finally {
    await pg.stop();
  }
  console.log(JSON.stringify({ bench: 'provisioning', sqlite, postgres }));
}

if (isMainThread) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
