// npm run bench:provisioning — the provisioning service under load on SQLite and PostgreSQL, next to
// a bare fastify route measured the same way in the same run.
// Per backend: a 100 000-device fleet (PROVISIONING_BENCH_FLEET) seeded straight into the store;
// one heartbeat from every device first (a service that has been up one heartbeat period, 30 s, has
// seen each device once: its per-device caches are warm), then heartbeats from random devices over
// loopback HTTP (keep-alive), MAC'd with each device's heartbeat key as devices send them
// (provisioning/heartbeat-key.ts; the keys are derived from the service secret the way the service
// does, checked against POST /v1/devices/:id/heartbeat-key for the first 1000 devices, since 100 000
// signed key requests are set-up, not load), after one MAC'd heartbeat from every device (the
// service derives a device's key once per key, 6 h, and caches it: steady state): throughput in a
// closed loop at concurrency 16 (node:http's client; again with a raw-socket client that costs the
// shared cores far less per request, raw_client_ratio_vs_bare), and
// latency (p50/p99) in an open loop at a fixed 1000 heartbeats/s, counted from each request's
// scheduled time; the bare route gets the same body (same size, JSON parsed and validated, a JSON
// reply). Then the console's first page of the device list (GET /v1/devices?limit=50, admin token,
// p95 over 100 sequential requests), real enrollments (CSR verification + activation code) and claims
// (certificate issuance). The load generator runs in a worker thread so it does not steal the
// service's event loop (this box has 2 cores, shared), and signs the measured heartbeats before the
// clock starts (signing is the device's work, not the service's).
// The Ed25519-signed heartbeat (older devices, the fallback) is measured in the closed loop too.
// Last line: {"bench":"provisioning","sqlite":{"ratio_vs_bare":..,"signed_ratio_vs_bare":..,
// "p99_ratio_vs_bare":..,"device_list_p95_ms":..,...},"postgres":{...}} with ratio_vs_bare = MAC'd
// heartbeats/s ÷ bare-route requests/s (closed loop), signed_ratio_vs_bare the same for signed
// heartbeats, and p99_ratio_vs_bare = MAC'd heartbeat p99 ÷ bare p99 at 1000/s offered.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import Fastify from 'fastify';
import { signDeviceRequest } from '../../provisioning/device-auth.js';
import {
  deriveHeartbeatKey,
  HEARTBEAT_KEY_TTL_MS,
  heartbeatKeyId,
  heartbeatSecretName,
  macHeartbeatRequest,
} from '../../provisioning/heartbeat-key.js';
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

const FLEET = Number(process.env.PROVISIONING_BENCH_FLEET ?? 100_000);
/** Seconds of each measured phase, split over ROUNDS alternating rounds. */
const SECONDS = Number(process.env.PROVISIONING_BENCH_SECONDS ?? 6);
const ROUNDS = Number(process.env.PROVISIONING_BENCH_ROUNDS ?? 3);
const CONCURRENCY = Number(process.env.PROVISIONING_BENCH_CONCURRENCY ?? 16);
const ENROLLMENTS = Number(process.env.PROVISIONING_BENCH_ENROLLMENTS ?? 200);
/** Offered load for the latency figures (heartbeats per second). */
const RATE = Number(process.env.PROVISIONING_BENCH_RATE ?? 1000);
/** Closed-loop heartbeats signed before the clock starts (beyond them the generator signs live). */
const PRESIGN = Number(process.env.PROVISIONING_BENCH_PRESIGN ?? 60_000);
const LIST_REQUESTS = Number(process.env.PROVISIONING_BENCH_LIST_REQUESTS ?? 100);
/** An Ed25519 private key's PKCS#8 DER, and a raw public key. */
const PKCS8_BYTES = 48;
const PUBLIC_KEY_BYTES = 32;

/** Path prefix: writes the service thread's CPU profile of a closed-loop MAC'd round per store. */
const PROFILE = process.env.PROVISIONING_BENCH_PROFILE;

interface Req {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string;
}
type Job =
  | { kind: 'list'; port: number; requests: Req[]; concurrency: number }
  /** One heartbeat from every device, in order (warms the service's per-device caches): signed, or
   *  MAC'd with the device's heartbeat key (`mac`, after the 'keys' job). */
  | { kind: 'sweep'; port: number; concurrency: number; mac?: boolean }
  /** Derive every device's heartbeat key from the service secret; fetch the first `check` from the
   *  key route and compare. */
  | { kind: 'keys'; port: number; secret: Uint8Array; check: number; concurrency: number }
  | {
      kind: 'heartbeat' | 'heartbeat-signed' | 'bare';
      port: number;
      seconds: number;
      concurrency: number;
      /** Open loop: this many requests per second on a fixed schedule, latency counted from the
       *  scheduled time (no coordinated omission). Absent: closed loop at `concurrency`. */
      ratePerSecond?: number;
      /** Heartbeats signed before the clock starts (more are signed on the fly). */
      presign?: number;
      /** Closed loop only: 'http' (default) goes through node:http's client; 'raw' sends request
       *  bytes built before the clock over keep-alive sockets (RawConnection). */
      client?: 'raw' | 'http';
    };
interface Result {
  ok: number;
  errors: number;
  firstError?: string;
  elapsedMs: number;
  latenciesMs: number[];
  bodies: string[];
  /** Heartbeats that had to be signed during the measurement (the pre-signed pool ran out). */
  signedLive: number;
  /** CPU time (ms) of this process (every thread: service, load generator, writer, GC) plus the
   *  PostgreSQL server's processes during the job; set by the main thread. */
  cpuMs?: number;
  /** Garbage-collection pauses of the service's thread during the job (ms); set by the main thread. */
  gcMs?: number;
  /** CPU time (ms) of the service's thread (main) during the job; set by the main thread. */
  serviceCpuMs?: number;
  /** CPU time (ms) of the load generator's thread during the measured time. */
  generatorCpuMs?: number;
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

/** A request as the bytes a device puts on the wire (what node:http's client would send). */
function requestBytes(port: number, r: Req): Buffer {
  const body = Buffer.from(r.body, 'utf8');
  let head = `${r.method} ${r.path} HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nconnection: keep-alive\r\n`;
  for (const [k, v] of Object.entries(r.headers)) head += `${k}: ${v}\r\n`;
  if (r.body) head += `content-type: application/json\r\ncontent-length: ${body.length}\r\n`;
  return Buffer.concat([Buffer.from(`${head}\r\n`, 'latin1'), body]);
}

/**
 * One keep-alive HTTP/1.1 connection that writes pre-built request bytes and reads one response at
 * a time (status, content-length body; the body is decoded only for an error). An extra pair of
 * closed-loop phases uses it for the bare route and the MAC'd heartbeats alike: node:http's client
 * spends about as much of the shared cores per request as the service's bare route does, so with
 * it the figure is partly the client's; with this one it is mostly the service's.
 */
class RawConnection {
  #pending: Buffer | undefined;
  #waiting:
    | { resolve: (r: { status: number; body: string }) => void; reject: (e: Error) => void }
    | undefined;
  private constructor(readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (c: Buffer) => this.#onData(c));
    const fail = (err: Error) => {
      const w = this.#waiting;
      this.#waiting = undefined;
      w?.reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('connection closed')));
  }
  static open(port: number): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port }, () => resolve(new RawConnection(socket)));
      socket.once('error', reject);
    });
  }
  send(bytes: Buffer): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
      this.socket.write(bytes);
    });
  }
  #onData(chunk: Buffer) {
    const buf = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    const headerEnd = buf.indexOf('\r\n\r\n');
    if (headerEnd < 0) {
      this.#pending = buf;
      return;
    }
    const head = buf.toString('latin1', 0, headerEnd);
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    const w = this.#waiting;
    if (!length) {
      this.#waiting = undefined;
      w?.reject(new Error(`response without content-length: ${head.slice(0, 100)}`));
      return;
    }
    const total = headerEnd + 4 + Number(length[1]);
    if (buf.length < total) {
      this.#pending = buf;
      return;
    }
    this.#pending = undefined;
    this.#waiting = undefined;
    const status = Number(head.slice(9, 12));
    w?.resolve({
      status,
      body: status >= 200 && status < 300 ? '' : buf.toString('utf8', headerEnd + 4, total),
    });
  }
}

/** The worker's devices (keys imported once, at start; heartbeat keys from the 'keys' job). */
let keys: { id: string; key: KeyObject; hb?: { keyId: string; key: Buffer } }[] = [];

function macHeartbeat(d: (typeof keys)[number]): Req {
  const path = `/v1/devices/${d.id}/heartbeat`;
  const headers = macHeartbeatRequest({ ...d.hb!, method: 'POST', path, body: HEALTH, now: Date.now() });
  return { method: 'POST', path, headers, body: HEALTH };
}

function signedHeartbeat(d: { id: string; key: KeyObject }): Req {
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
}

async function runJob(job: Job): Promise<Result> {
  const agent = new Agent({ keepAlive: true, maxSockets: job.concurrency });
  const result: Result = { ok: 0, errors: 0, elapsedMs: 0, latenciesMs: [], bodies: [], signedLive: 0 };
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
  let genCpu0 = threadCpuMs();
  if (job.kind === 'keys') {
    const secret = Buffer.from(job.secret);
    const expires = Math.floor((Date.now() + HEARTBEAT_KEY_TTL_MS) / 1000);
    for (const d of keys)
      d.hb = { keyId: heartbeatKeyId(d.id, expires, 1), key: deriveHeartbeatKey(secret, d.id, expires) };
    for (const d of keys.slice(0, job.check)) {
      const path = `/v1/devices/${d.id}/heartbeat-key`;
      const headers = signDeviceRequest({
        privateKey: d.key,
        deviceId: d.id,
        method: 'POST',
        path,
        body: '',
        now: Date.now(),
      });
      const res = await send(agent, job.port, { method: 'POST', path, headers, body: '' });
      const got = res.status === 200 ? (JSON.parse(res.body) as { keyId: string; key: string }) : undefined;
      if (!got) record(res.status, res.body, 0, false);
      else {
        // Issued within the same second or the next: compare the key the route gives for its keyId.
        const exp = Number(got.keyId.split('.')[1]);
        const mine = deriveHeartbeatKey(secret, d.id, exp).toString('base64');
        record(mine === got.key ? 200 : 500, `derived key differs for ${d.id}`, 0, false);
      }
    }
  } else if (job.kind === 'list' || job.kind === 'sweep') {
    let next = 0;
    const total = job.kind === 'list' ? job.requests.length : keys.length;
    await Promise.all(
      Array.from({ length: job.concurrency }, async () => {
        while (next < total) {
          const i = next++;
          const r =
            job.kind === 'list'
              ? job.requests[i]!
              : job.mac
                ? macHeartbeat(keys[i]!)
                : signedHeartbeat(keys[i]!);
          const t = performance.now();
          const res = await send(agent, job.port, r);
          record(res.status, res.body, performance.now() - t, job.kind === 'list');
        }
      }),
    );
  } else {
    const pool: Req[] = [];
    const make = job.kind === 'heartbeat' ? macHeartbeat : signedHeartbeat;
    if (job.kind !== 'bare') {
      for (let i = 0; i < (job.presign ?? 0); i++)
        pool.push(make(keys[Math.floor(Math.random() * keys.length)]!));
    }
    let used = 0;
    const bare: Req = { method: 'POST', path: '/bare', headers: {}, body: HEALTH };
    const makeRequest = (): Req => {
      if (job.kind === 'bare') return bare;
      if (used < pool.length) return pool[used++]!;
      result.signedLive++;
      return make(keys[Math.floor(Math.random() * keys.length)]!);
    };
    // Closed loop, raw client: the requests' bytes are built now too (device work, like signing),
    // and the sockets opened; the bare route's one request is built the same way.
    const raw = !job.ratePerSecond && job.client === 'raw';
    const rawPool = raw ? pool.map((r) => requestBytes(job.port, r)) : [];
    const bareBytes = raw ? requestBytes(job.port, bare) : Buffer.alloc(0);
    const nextBytes = (): Buffer => {
      if (job.kind === 'bare') return bareBytes;
      if (used < rawPool.length) return rawPool[used++]!;
      result.signedLive++;
      return requestBytes(job.port, make(keys[Math.floor(Math.random() * keys.length)]!));
    };
    const conns = raw
      ? await Promise.all(Array.from({ length: job.concurrency }, () => RawConnection.open(job.port)))
      : [];
    start = performance.now(); // signing beforehand is set-up, not load
    parentPort?.postMessage('clock'); // the main thread counts CPU from here
    genCpu0 = threadCpuMs();
    const end = start + job.seconds * 1000;
    if (raw) {
      await Promise.all(
        conns.map(async (c) => {
          while (performance.now() < end) {
            const t = performance.now();
            const res = await c.send(nextBytes()).catch((err: Error) => ({ status: 0, body: err.message }));
            record(res.status, res.body, performance.now() - t, false);
            if (res.status === 0) break;
          }
        }),
      );
      for (const c of conns) c.socket.destroy();
    } else if (job.ratePerSecond) {
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
  result.generatorCpuMs = threadCpuMs() - genCpu0;
  agent.destroy();
  return result;
}

if (!isMainThread) {
  const devices = workerData as FleetKeys;
  const ids = devices.ids.split('\n');
  keys = ids.map((id, i) => ({
    id,
    key: createPrivateKey({
      key: Buffer.from(devices.pkcs8.buffer, devices.pkcs8.byteOffset + i * PKCS8_BYTES, PKCS8_BYTES),
      format: 'der',
      type: 'pkcs8',
    }),
  }));
  parentPort!.on('message', (job: Job) => {
    runJob(job).then((r) => parentPort!.postMessage(r));
  });
  parentPort!.postMessage('ready');
}

/** CPU time (ms) of the calling thread so far (Linux /proc; 0 elsewhere). */
function threadCpuMs(): number {
  try {
    const f = readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
}

/** Garbage-collection pauses of the service's thread so far (ms). */
let gcPauseMs = 0;
if (isMainThread) {
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) gcPauseMs += e.duration;
  }).observe({ entryTypes: ['gc'] });
}

/** The bench's PostgreSQL server (postmaster pid), whose CPU counts with the service's. */
let postmasterPid: number | undefined;

/**
 * CPU time (ms) of the PostgreSQL postmaster and its children so far (0 without one; Linux /proc):
 * the live children's own time plus the postmaster's cutime/cstime, the time of the children it
 * has already reaped. Without the latter, a backend that exits between two samples (the pool
 * closes idle connections after 10 s) took its whole CPU time out of the sum, and the phase's
 * "other threads and PostgreSQL" figure could come out negative.
 */
function postgresCpuMs(): number {
  if (postmasterPid === undefined) return 0;
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Fields after "pid (comm) ": state ppid ... utime(12th) stime(13th) cutime(14th) cstime(15th),
      // in clock ticks (100/s).
      const f = readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]!.split(' ');
      if (Number(entry) === postmasterPid)
        ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
      else if (Number(f[1]) === postmasterPid) ticks += Number(f[11]) + Number(f[12]);
    } catch {
      // the process ended meanwhile (its time moves to the postmaster's cutime once reaped)
    }
  }
  return ticks * 10;
}

/** A load generator in a worker thread holding the fleet's keys; runs one job at a time. */
class LoadGenerator {
  readonly #worker: Worker;
  readonly #ready: Promise<void>;
  constructor(devices: FleetKeys) {
    // From the sources (tsx), the worker registers the TypeScript loader first; compiled, it needs nothing.
    this.#worker = import.meta.url.endsWith('.ts')
      ? new Worker(
          `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(import.meta.url)}); });`,
          { eval: true, workerData: devices },
        )
      : new Worker(new URL(import.meta.url), { workerData: devices });
    this.#ready = new Promise((resolve, reject) => {
      this.#worker.once('message', () => resolve());
      this.#worker.once('error', reject);
    });
  }
  async run(job: Job): Promise<Result> {
    await this.#ready;
    // CPU counted from the start of the measured time (the worker says 'clock' after pre-signing).
    let cpu0 = process.cpuUsage();
    let server0 = postgresCpuMs();
    let gc0 = gcPauseMs;
    let main0 = threadCpuMs();
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => {
        this.#worker.off('message', onMessage);
        reject(err);
      };
      const onMessage = (m: Result | 'clock') => {
        if (m === 'clock') {
          cpu0 = process.cpuUsage();
          server0 = postgresCpuMs();
          gc0 = gcPauseMs;
          main0 = threadCpuMs();
          return;
        }
        this.#worker.off('message', onMessage);
        this.#worker.off('error', onError);
        const cpu = process.cpuUsage(cpu0);
        m.cpuMs = (cpu.user + cpu.system) / 1000 + (postgresCpuMs() - server0);
        m.gcMs = gcPauseMs - gc0;
        m.serviceCpuMs = threadCpuMs() - main0;
        resolve(m);
      };
      this.#worker.on('message', onMessage);
      this.#worker.once('error', onError);
      this.#worker.postMessage(job);
    });
  }
  close(): Promise<number> {
    return this.#worker.terminate();
  }
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
    /** CPU µs per answered request, all threads of the bench and the PostgreSQL server. */
    cpuUsPerRequest: ((r.cpuMs ?? 0) * 1000) / Math.max(1, r.ok),
    /** The service thread's GC pauses per answered request (µs). */
    gcUsPerRequest: ((r.gcMs ?? 0) * 1000) / Math.max(1, r.ok),
    /** Of cpuUsPerRequest: the service's (main) thread, and the load generator's thread. */
    serviceUsPerRequest: ((r.serviceCpuMs ?? 0) * 1000) / Math.max(1, r.ok),
    generatorUsPerRequest: ((r.generatorCpuMs ?? 0) * 1000) / Math.max(1, r.ok),
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    errors: r.errors,
    firstError: r.firstError,
    signedLive: r.signedLive,
  };
}

/** Several runs of one kind as one result (counts and time added, latencies pooled). */
function merge(rs: Result[]): Result {
  return {
    ok: rs.reduce((n, r) => n + r.ok, 0),
    errors: rs.reduce((n, r) => n + r.errors, 0),
    firstError: rs.find((r) => r.firstError)?.firstError,
    elapsedMs: rs.reduce((n, r) => n + r.elapsedMs, 0),
    latenciesMs: rs.flatMap((r) => r.latenciesMs),
    bodies: [],
    signedLive: rs.reduce((n, r) => n + r.signedLive, 0),
    cpuMs: rs.reduce((n, r) => n + (r.cpuMs ?? 0), 0),
    gcMs: rs.reduce((n, r) => n + (r.gcMs ?? 0), 0),
    serviceCpuMs: rs.reduce((n, r) => n + (r.serviceCpuMs ?? 0), 0),
    generatorCpuMs: rs.reduce((n, r) => n + (r.generatorCpuMs ?? 0), 0),
  };
}

const round = (x: number, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
const load = () => loadavg().map((x) => round(x, 1));

/**
 * The fleet's ids and private keys, for the load generator. Compact (one string, one byte array):
 * the service's thread holds it too, and 100 000 small objects there would be marked by every one
 * of the service's major garbage collections, a cost a real service does not have.
 */
interface FleetKeys {
  /** Device ids, '\n'-separated. */
  ids: string;
  /** PKCS8_BYTES per device, in id order. */
  pkcs8: Uint8Array;
}
interface Fleet extends FleetKeys {
  /** PUBLIC_KEY_BYTES per device (raw), in id order. */
  publicKeys: Uint8Array;
}

/** The fleet's keys, made once: both stores get the same devices. */
function makeFleet(): Fleet {
  const ids: string[] = [];
  const pkcs8 = new Uint8Array(FLEET * PKCS8_BYTES);
  const publicKeys = new Uint8Array(FLEET * PUBLIC_KEY_BYTES);
  for (let i = 0; i < FLEET; i++) {
    const key = generateIdentityKey();
    ids.push(deviceIdForPublicKey(key.publicKey));
    const der = key.privateKey.export({ format: 'der', type: 'pkcs8' });
    if (der.length !== PKCS8_BYTES) throw new Error(`unexpected PKCS#8 length ${der.length}`);
    pkcs8.set(der, i * PKCS8_BYTES);
    publicKeys.set(rawPublicKey(key.publicKey), i * PUBLIC_KEY_BYTES);
  }
  return { ids: ids.join('\n'), pkcs8, publicKeys };
}

/** Seeds the fleet into the store in chunks (the row objects of one chunk at a time). */
async function seedFleet(store: ProvisioningStore, fleet: Fleet, now: string): Promise<void> {
  const ids = fleet.ids.split('\n');
  const CHUNK = 10_000;
  for (let start = 0; start < ids.length; start += CHUNK) {
    const rows: Parameters<ProvisioningStore['seedActiveDevices']>[0] = [];
    for (let i = start; i < Math.min(ids.length, start + CHUNK); i++) {
      rows.push({
        id: ids[i]!,
        publicKey: Buffer.from(
          fleet.publicKeys.subarray(i * PUBLIC_KEY_BYTES, (i + 1) * PUBLIC_KEY_BYTES),
        ).toString('base64'),
        roomName: `Room ${String(i).padStart(6, '0')}`,
        site: `Site ${i % 50}`,
        serial: (0x4000_0000_0000 + i).toString(16),
        certPem: 'seeded',
      });
    }
    await store.seedActiveDevices(rows, now);
  }
}

async function benchBackend(name: 'sqlite' | 'postgres', databaseUrl: string | undefined, fleet: Fleet) {
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

  // The baseline: the same body parsed as JSON and validated as an object, a small JSON reply.
  const bare = Fastify({ logger: false });
  bare.post('/bare', { schema: { body: { type: 'object' } } }, async () => ({
    ok: true,
    serverTime: new Date().toISOString(),
  }));
  await bare.listen({ host: '127.0.0.1', port: 0 });
  const barePort = (bare.server.address() as { port: number }).port;
  const gen = new LoadGenerator({ ids: fleet.ids, pkcs8: fleet.pkcs8 });

  try {
    let t = performance.now();
    await seedFleet(store, fleet, new Date().toISOString());
    console.log(`${name}: seeded ${FLEET} devices in ${Math.round(performance.now() - t)} ms`);

    // Every device once (per-device caches warm, as after one 30 s heartbeat period), then JIT
    // warm-up of both servers; none of it counted.
    t = performance.now();
    const sweep = summarize(await gen.run({ kind: 'sweep', port, concurrency: CONCURRENCY }));
    console.log(
      `${name}: first heartbeat of all ${FLEET} devices: ${round(sweep.perSecond, 0)}/s (cold caches), ${sweep.errors} errors${sweep.errors ? ` (${sweep.firstError})` : ''}`,
    );
    await app.heartbeats.flush();
    // Heartbeat keys: the service secret is in the store (the bench may read it; devices may not).
    const secretRow = await store.db.get<{ value: string }>(
      'SELECT value FROM service_secrets WHERE name = ?',
      [heartbeatSecretName(1)],
    );
    const keysR = summarize(
      await gen.run({
        kind: 'keys',
        port,
        secret: new Uint8Array(Buffer.from(String(secretRow!.value), 'base64')),
        check: Math.min(1000, FLEET),
        concurrency: 1,
      }),
    );
    if (keysR.errors) throw new Error(`heartbeat keys: ${keysR.errors} errors (${keysR.firstError})`);
    // One MAC'd heartbeat from every device: the service derives each device's key once per key
    // (6 h) and caches it, so in steady state a MAC'd heartbeat finds its key cached. Without this
    // sweep most measured heartbeats would be their device's first MAC'd one (≈ 60 000 heartbeats
    // over 100 000 devices) and pay a derivation a device costs once per 6 hours.
    t = performance.now();
    const macSweep = summarize(await gen.run({ kind: 'sweep', port, concurrency: CONCURRENCY, mac: true }));
    if (macSweep.errors) throw new Error(`MAC'd sweep: ${macSweep.errors} errors (${macSweep.firstError})`);
    console.log(
      `${name}: first MAC'd heartbeat of all ${FLEET} devices: ${round(macSweep.perSecond, 0)}/s (keys derived and cached)`,
    );
    await app.heartbeats.flush();
    await gen.run({ kind: 'heartbeat', port, seconds: 0.5, concurrency: CONCURRENCY });
    await gen.run({ kind: 'heartbeat-signed', port, seconds: 0.5, concurrency: CONCURRENCY });
    await gen.run({ kind: 'bare', port: barePort, seconds: 0.5, concurrency: CONCURRENCY });

    const loadBefore = load();
    // Bare and heartbeat phases alternate in ROUNDS short rounds: on a shared box the load swings
    // within seconds, and alternating exposes both to the same swings.
    const slice = SECONDS / ROUNDS;
    const closedBare: Result[] = [];
    const closedHb: Result[] = [];
    const closedSigned: Result[] = [];
    const closedBareRaw: Result[] = [];
    const closedHbRaw: Result[] = [];
    const pacedBare: Result[] = [];
    const pacedHb: Result[] = [];
    const paced = { seconds: slice, concurrency: 64, ratePerSecond: RATE };
    const closed = { seconds: slice, concurrency: CONCURRENCY };
    const presign = Math.ceil(PRESIGN / ROUNDS);
    let profiler: Session | undefined;
    const profiles: unknown[] = [];
    if (PROFILE) {
      profiler = new Session();
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
    }
    for (let r = 0; r < ROUNDS; r++) {
      closedBare.push(await gen.run({ kind: 'bare', port: barePort, ...closed }));
      if (profiler) await profiler.post('Profiler.start');
      closedHb.push(await gen.run({ kind: 'heartbeat', port, ...closed, presign }));
      if (profiler) {
        const { profile } = await profiler.post('Profiler.stop');
        profiles.push(profile);
      }
      closedSigned.push(await gen.run({ kind: 'heartbeat-signed', port, ...closed, presign }));
      // The same two closed-loop phases with the raw client: a load generator that costs the shared
      // cores far less per request (see RawConnection), so the service's thread is more often the
      // limit on both routes.
      closedBareRaw.push(await gen.run({ kind: 'bare', port: barePort, ...closed, client: 'raw' }));
      closedHbRaw.push(await gen.run({ kind: 'heartbeat', port, ...closed, presign, client: 'raw' }));
      // Latency at a fixed offered load (the target's 1000/s): open loop, at most 64 sockets.
      pacedBare.push(await gen.run({ kind: 'bare', port: barePort, ...paced }));
      pacedHb.push(
        await gen.run({ kind: 'heartbeat', port, ...paced, presign: Math.ceil(RATE * slice * 1.05) }),
      );
    }
    if (profiler) {
      // The service thread's profile of the closed-loop MAC'd rounds (the last round's), for
      // chrome://inspect or speedscope.
      const file = `${PROFILE}.${name}.cpuprofile`;
      writeFileSync(file, JSON.stringify(profiles.at(-1)));
      profiler.disconnect();
      console.log(`${name}: service-thread CPU profile of a MAC'd heartbeat round: ${file}`);
    }
    const bareR = summarize(merge(closedBare));
    const hbR = summarize(merge(closedHb));
    if (hbR.errors) console.log(`${name}: ${hbR.errors} heartbeat errors, first: ${hbR.firstError}`);
    const bareRawR = summarize(merge(closedBareRaw));
    const hbRawR = summarize(merge(closedHbRaw));
    const signedR = summarize(merge(closedSigned));
    if (signedR.errors)
      console.log(`${name}: ${signedR.errors} signed heartbeat errors, first: ${signedR.firstError}`);
    const bareP = summarize(merge(pacedBare));
    const hbP = summarize(merge(pacedHb));
    if (hbP.errors) console.log(`${name}: ${hbP.errors} paced heartbeat errors, first: ${hbP.firstError}`);
    await app.heartbeats.flush();
    const written = await store.db.get<{ n: number }>(
      'SELECT COUNT(*) AS n FROM devices WHERE last_seen_at IS NOT NULL',
    );

    // The console's first page of the device list (H-fleet's keyset-paged route), one at a time.
    const listReq: Req = {
      method: 'GET',
      path: '/v1/devices?limit=50',
      headers: { authorization: `Bearer ${token}` },
      body: '',
    };
    const listR = summarize(
      await gen.run({
        kind: 'list',
        port,
        requests: Array.from({ length: LIST_REQUESTS }, () => listReq),
        concurrency: 1,
      }),
    );
    if (listR.errors) console.log(`${name}: device list errors ${listR.errors}: ${listR.firstError}`);

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
    const enrollRaw = await gen.run({ kind: 'list', port, requests: enrollRequests, concurrency: 4 });
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
    const claimR = summarize(await gen.run({ kind: 'list', port, requests: claims, concurrency: 4 }));
    if (enrollR.errors || claimR.errors) {
      console.log(
        `${name}: enrollment errors ${enrollR.errors} (${enrollR.firstError}), claim errors ${claimR.errors} (${claimR.firstError})`,
      );
    }

    console.log(
      `${name}: bare fastify route     ${round(bareR.perSecond, 0)} req/s   p50 ${round(bareR.p50)} ms   p99 ${round(bareR.p99)} ms`,
    );
    console.log(
      `${name}: heartbeats, MAC (${FLEET} devices) ${round(hbR.perSecond, 0)} /s   p50 ${round(hbR.p50)} ms   p99 ${round(hbR.p99)} ms   (${round(hbR.perSecond / bareR.perSecond, 3)}× bare; ${hbR.signedLive} made live)`,
    );
    // Where the CPU of a request goes (Linux): the closed-loop phases, per answered request.
    const cpuLine = (label: string, r: ReturnType<typeof summarize>) =>
      `${name}: CPU per request, ${label}: ${round(r.cpuUsPerRequest, 0)} µs = service thread ${round(r.serviceUsPerRequest, 0)} (GC pauses ${round(r.gcUsPerRequest, 0)}) + load generator ${round(r.generatorUsPerRequest, 0)} + other threads and PostgreSQL ${round(r.cpuUsPerRequest - r.serviceUsPerRequest - r.generatorUsPerRequest, 0)}`;
    console.log(cpuLine('bare', bareR));
    console.log(cpuLine("MAC'd heartbeat", hbR));
    console.log(
      `${name}: with the raw client: bare ${round(bareRawR.perSecond, 0)} req/s, MAC'd heartbeats ${round(hbRawR.perSecond, 0)} /s (${round(hbRawR.perSecond / bareRawR.perSecond, 3)}× bare)`,
    );
    console.log(cpuLine('bare, raw client', bareRawR));
    console.log(cpuLine("MAC'd heartbeat, raw client", hbRawR));
    console.log(
      `${name}: heartbeats, Ed25519-signed  ${round(signedR.perSecond, 0)} /s   p50 ${round(signedR.p50)} ms   p99 ${round(signedR.p99)} ms   (${round(signedR.perSecond / bareR.perSecond, 3)}× bare; ${signedR.signedLive} signed live)`,
    );
    console.log(
      `${name}: at ${RATE}/s offered        bare p50 ${round(bareP.p50)} ms p99 ${round(bareP.p99)} ms   heartbeats p50 ${round(hbP.p50)} ms p99 ${round(hbP.p99)} ms (${round(hbP.perSecond, 0)}/s served; p99 ${round(hbP.p99 / bareP.p99, 2)}× bare)`,
    );
    console.log(
      `${name}: device list first page p50 ${round(listR.p50)} ms p95 ${round(listR.p95)} ms (${LIST_REQUESTS} requests); devices with last_seen_at: ${written?.n}`,
    );
    console.log(
      `${name}: enrollments            ${round(enrollR.perSecond, 1)} /s   p99 ${round(enrollR.p99)} ms`,
    );
    console.log(
      `${name}: claims (cert issuance) ${round(claimR.perSecond, 1)} /s   p99 ${round(claimR.p99)} ms`,
    );
    console.log(`${name}: load average ${loadBefore.join(' ')} before, ${load().join(' ')} after`);
    return {
      heartbeats_per_s: round(hbR.perSecond, 0),
      bare_per_s: round(bareR.perSecond, 0),
      ratio_vs_bare: round(hbR.perSecond / bareR.perSecond, 3),
      cpu_us_per_heartbeat: round(hbR.cpuUsPerRequest, 0),
      cpu_us_per_bare_request: round(bareR.cpuUsPerRequest, 0),
      service_thread_us_per_heartbeat: round(hbR.serviceUsPerRequest, 0),
      service_thread_us_per_bare_request: round(bareR.serviceUsPerRequest, 0),
      generator_us_per_heartbeat: round(hbR.generatorUsPerRequest, 0),
      generator_us_per_bare_request: round(bareR.generatorUsPerRequest, 0),
      raw_client_ratio_vs_bare: round(hbRawR.perSecond / bareRawR.perSecond, 3),
      signed_heartbeats_per_s: round(signedR.perSecond, 0),
      signed_ratio_vs_bare: round(signedR.perSecond / bareR.perSecond, 3),
      heartbeat_p99_ms: round(hbP.p99),
      bare_p99_ms: round(bareP.p99),
      p99_ratio_vs_bare: round(hbP.p99 / bareP.p99, 3),
      device_list_p95_ms: round(listR.p95),
      errors: hbR.errors + signedR.errors + hbP.errors + listR.errors,
      load_average: loadBefore,
    };
  } finally {
    await gen.close();
    await bare.close();
    await app.close();
    await store.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function main() {
  console.log(
    `provisioning bench: fleet ${FLEET}, ${SECONDS} s per phase, concurrency ${CONCURRENCY}, ${ENROLLMENTS} enrollments; load average ${load().join(' ')} (2 shared cores: figures are noisy)`,
  );
  let t = performance.now();
  const fleet = makeFleet();
  console.log(`made ${FLEET} device keys in ${Math.round(performance.now() - t)} ms`);
  t = performance.now();
  // PROVISIONING_BENCH_STORES=sqlite (or postgres) measures one store only (quicker experiments).
  const stores = (process.env.PROVISIONING_BENCH_STORES ?? 'sqlite,postgres').split(',');
  let sqlite: Awaited<ReturnType<typeof benchBackend>> | undefined;
  let postgres: Awaited<ReturnType<typeof benchBackend>> | undefined;
  if (stores.includes('sqlite')) sqlite = await benchBackend('sqlite', undefined, fleet);
  if (stores.includes('postgres')) {
    const pg = new LocalPostgres();
    try {
      await pg.start();
      try {
        postmasterPid = Number(
          readFileSync(join(pg.dir, 'pg', 'data', 'postmaster.pid'), 'utf8').split('\n')[0],
        );
      } catch {
        postmasterPid = undefined; // not Linux, or another layout: the server's CPU is not counted
      }
      postgres = await benchBackend('postgres', await pg.createDatabase(), fleet);
    } finally {
      await pg.stop();
    }
  }
  console.log(JSON.stringify({ bench: 'provisioning', fleet: FLEET, sqlite, postgres }));
}

if (isMainThread) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
