// The device's update agent (device/update/agent.ts) against a real loopback TUF repository (part 1's
// publisher, real tuf-js verification, real bundles and A/B slots) and a loopback stand-in for the
// provisioning service's update-state route (the other helper's half) that checks every report's
// device signature. The update server is the attacker: tampered bytes, a hanging server, hostile
// error text; none of it reaches the room screen, blocks a meeting or leaves the room without a
// version that runs.
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join, normalize } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Daemon, startDaemon } from '../device/daemon/daemon.js';
import { type DeviceState, initialState, StateStore, type UpdateView } from '../device/daemon/state.js';
import {
  boundedError,
  inMeeting,
  inWindow,
  parseUpdateSettings,
  provisioningUpdateReporter,
  UpdateAgent,
  type UpdateAgentOptions,
  type UpdateStateReport,
} from '../device/update/agent.js';
import type { HealthCheck } from '../device/update/health-gate.js';
import { Updater } from '../device/update/updater.js';
import { updateNotice } from '../kiosk-ui/src/format.js';
import { parseDeviceAuth, verifyDeviceSignature } from '../provisioning/device-auth.js';
import { buildAppBundle, makeAppTree, startCurrent } from '../scripts/powercut-ota.js';
import { buildBundle } from '../src/update/bundle.js';
import { UpdateClient } from '../src/update/tuf-client.js';
import { addRelease, generateKey, initRepository, type RoleKeys } from '../src/update/tuf-repo.js';
import { createDevelopmentCa, issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { startRelay } from '../src/relay/server.js';
import { silentLogger } from '../src/util/log.js';
import { createControlServer } from '../device/kiosk/control-server.js';
import { buildKioskUi, collectPageErrors, findOverflows, launchChromium } from './kiosk-browser.js';
import { RoomDouble, SELF } from './kiosk-room-double.js';
import { SMALL } from './media-harness.js';

const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
const HOSTILE = '<img src=x onerror=alert(1)> Call +1 555 0100 to fix your room';

let work: string;
let n = 0;
const bundles: Record<string, string> = {};

/** The release server: a repository directory served with Range, plus what an attacker may do to it. */
interface Repo {
  dir: string;
  url: string;
  server: Server;
  trustedRoot: string;
  keys: RoleKeys;
  /** Per request: 'serve' (default), 'hang', or 'hostile' (HTTP 500 with a hostile body). */
  mode: 'serve' | 'hang' | 'hostile';
  /** Targets sent in chunks of this many bytes every `chunkMs` (slow link). */
  chunk?: { bytes: number; ms: number };
  ranges: string[];
}

function serveRepo(dir: string, repo: Partial<Repo>): Promise<Server> {
  const server = createServer((req, res) => {
    const r = repo as Repo;
    if (r.mode === 'hang') return; // never answers
    if (r.mode === 'hostile') {
      res.writeHead(500, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ error: HOSTILE, message: HOSTILE }));
    }
    const url = new URL(req.url ?? '/', 'http://x');
    const rel = normalize(decodeURIComponent(url.pathname)).replace(/^\/+/, '');
    if (rel.startsWith('..')) return res.writeHead(400).end();
    let data: Buffer;
    try {
      data = fs.readFileSync(join(dir, rel));
    } catch {
      return res.writeHead(404).end();
    }
    const range = req.headers.range?.match(/^bytes=(\d+)-$/);
    let from = 0;
    if (range) {
      r.ranges.push(req.headers.range!);
      from = Number(range[1]);
      if (from >= data.length) return res.writeHead(416).end();
      res.writeHead(206, {
        'content-length': data.length - from,
        'content-range': `bytes ${from}-${data.length - 1}/${data.length}`,
      });
    } else {
      res.writeHead(200, { 'content-length': data.length });
    }
    const body = data.subarray(from);
    const chunk = rel.startsWith('targets/') ? r.chunk : undefined;
    if (!chunk) return res.end(body);
    let at = 0;
    const tick = () => {
      if (res.destroyed) return;
      res.write(body.subarray(at, at + chunk.bytes));
      at += chunk.bytes;
      if (at >= body.length) res.end();
      else setTimeout(tick, chunk.ms);
    };
    tick();
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function makeRepo(releases: Record<string, string>): Promise<Repo> {
  const dir = join(work, `repo-${n++}`);
  const keys = {
    root: [generateKey()],
    targets: [generateKey()],
    snapshot: [generateKey()],
    timestamp: [generateKey()],
  } satisfies RoleKeys;
  const state = await initRepository(dir, {
    rootKeys: keys.root,
    targetsKeys: keys.targets,
    snapshotKeys: keys.snapshot,
    timestampKeys: keys.timestamp,
  });
  for (const [version, file] of Object.entries(releases))
    await addRelease(dir, file, { version, arch, channel: 'stable', keys });
  const repo: Partial<Repo> = { dir, keys, mode: 'serve', ranges: [] };
  repo.server = await serveRepo(dir, repo);
  repo.url = `http://127.0.0.1:${(repo.server.address() as { port: number }).port}`;
  repo.trustedRoot = JSON.stringify(state.root.toJSON());
  servers.push(repo.server);
  return repo as Repo;
}

/** The provisioning stand-in: POST /v1/devices/:id/update-state, signature checked, then replies. */
interface Receiver {
  url: string;
  accepted: UpdateStateReport[];
  refusedSignatures: number;
  /** Status codes to answer with before accepting (e.g. [503, 503]). */
  failFirst: number[];
}

const device = (() => {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return { deviceId: 'dev-agent-1', privateKey, publicKey };
})();

async function receiver(): Promise<Receiver> {
  const r: Receiver = { url: '', accepted: [], refusedSignatures: 0, failFirst: [] };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const auth = parseDeviceAuth(req.headers, Date.now());
      const path = req.url ?? '';
      if (
        typeof auth === 'string' ||
        auth.deviceId !== device.deviceId ||
        path !== `/v1/devices/${device.deviceId}/update-state` ||
        !verifyDeviceSignature(auth, { method: req.method ?? '', path, body }, device.publicKey)
      ) {
        r.refusedSignatures++;
        return res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"bad-signature"}');
      }
      const fail = r.failFirst.shift();
      if (fail) return res.writeHead(fail).end();
      r.accepted.push(JSON.parse(body) as UpdateStateReport);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  servers.push(server);
  r.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return r;
}

const servers: Server[] = [];

beforeAll(async () => {
  work = fs.mkdtempSync(join(tmpdir(), 'sealroom-agent-'));
  for (const v of ['1.0.0', '2.0.0']) bundles[v] = await buildAppBundle(work, v, { files: 2 });
  // A bigger, incompressible 3.0.0 for the slow-link download.
  const src = join(work, 'app-3.0.0-big');
  makeAppTree(src, '3.0.0', { files: 1 });
  fs.writeFileSync(join(src, 'pipelines', 'blob.bin'), randomBytes(256 * 1024));
  bundles['3.0.0'] = join(work, 'sealroom-3.0.0-big.tar.gz');
  await buildBundle({
    sourceDir: src,
    outFile: bundles['3.0.0'],
    version: '3.0.0',
    arch,
    sourceDateEpoch: 0,
  });
}, 60_000);

afterAll(() => {
  for (const s of servers) {
    s.closeAllConnections();
    s.close();
  }
  fs.rmSync(work, { recursive: true, force: true });
});

/** A box installed with 1.0.0 in slot a, its daemon state, and an agent against `repo`. */
async function box(
  repo: Repo,
  o: {
    version?: string;
    report?: Receiver;
    checks?: HealthCheck[];
    settings?: unknown;
    now?: () => Date;
    agent?: Partial<UpdateAgentOptions>;
    root?: string;
  } = {},
) {
  const root = o.root ?? join(work, `box-${n++}`, 'app');
  const updater = new Updater({ root, updateDeadlineMs: 6 * 3600_000 });
  if (!o.root) await updater.install(bundles['1.0.0']!);
  const state = new StateStore(initialState(o.version ?? '1.0.0'));
  state.update((s) => {
    s.phase = 'idle';
  });
  const seen: UpdateView[] = [];
  state.on('change', (s) => {
    const u = s.update;
    const last = seen.at(-1);
    if (u && JSON.stringify(u) !== JSON.stringify(last)) seen.push(u);
  });
  let restarts = 0;
  let restarted!: () => void;
  const restartedP = new Promise<void>((r) => {
    restarted = r;
  });
  const agent = new UpdateAgent({
    state,
    updater,
    client: new UpdateClient({
      metadataUrl: `${repo.url}/metadata/`,
      targetsUrl: `${repo.url}/targets/`,
      cacheDir: join(root, '..', 'tuf-cache'),
      trustedRootJson: repo.trustedRoot,
      metadataTimeoutMs: 2000,
      idleTimeoutMs: 2000,
    }),
    downloadDir: join(root, '..', 'downloads'),
    version: o.version ?? '1.0.0',
    restart: () => {
      restarts++;
      restarted();
    },
    healthChecks: () => o.checks ?? [{ name: 'ok', run: async () => 'fine' }],
    ...(o.report
      ? {
          report: provisioningUpdateReporter({
            baseUrl: o.report.url,
            identity: () => ({ deviceId: device.deviceId, privateKey: device.privateKey }),
          }),
          reportRetry: { minMs: 20, maxMs: 100 },
        }
      : {}),
    settings: o.settings ?? { channel: 'stable' },
    firstCheckMs: 3600_000, // tests call checkNow()
    pollMs: 50,
    gateTimeoutMs: 2000,
    gateRetryMs: 50,
    checkTimeoutMs: 3000,
    ...(o.now ? { now: o.now } : {}),
    ...o.agent,
  });
  const meeting = (on: boolean) =>
    state.update((s) => {
      s.phase = on ? 'in-meeting' : 'idle';
      if (on)
        s.meeting = {
          meetingId: '123456789',
          role: 'leader',
          status: 'active',
          securityCode: '12345 67890 12345 67890 12345 67890 12345 67890',
          roster: [],
          waiting: [],
          locked: false,
          rekeying: false,
          leaderChanged: false,
        };
      else if (s.meeting) s.meeting = { ...s.meeting, status: 'ended' };
    });
  return { root, updater, state, agent, seen, meeting, restarts: () => restarts, restartedP };
}

const until = async (what: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
};

const at = (hhmm: string) => {
  const d = new Date();
  d.setHours(Number(hhmm.slice(0, 2)), Number(hhmm.slice(3)), 0, 0);
  return d;
};

describe('update settings from the device config (untrusted)', () => {
  it('takes channel, window and pause; refuses anything else for the default', () => {
    expect(parseUpdateSettings(undefined).settings).toEqual({ channel: 'stable', paused: false });
    expect(
      parseUpdateSettings({ channel: 'canary', window: { start: '02:00', end: '04:30' }, paused: true })
        .settings,
    ).toEqual({ channel: 'canary', window: { start: '02:00', end: '04:30' }, paused: true });
    const bad = parseUpdateSettings({
      channel: '../../etc',
      window: { start: '25:00', end: '04:00' },
      paused: 'yes',
    });
    expect(bad.settings).toEqual({ channel: 'stable', paused: false });
    expect(bad.problems).toHaveLength(3);
    for (const c of ['a/b', '', 'x'.repeat(33), 'Stable', '.hidden', 'a b', 'a.b', 'a_b', '-x'])
      expect(parseUpdateSettings({ channel: c }).settings.channel).toBe('stable');
    expect(parseUpdateSettings('stable').problems).toEqual(['update is not an object']);
  });

  it('opens the window in device local time, across midnight too', () => {
    const w = { start: '22:00', end: '05:00' };
    expect(inWindow(w, at('23:30'))).toBe(true);
    expect(inWindow(w, at('04:59'))).toBe(true);
    expect(inWindow(w, at('05:00'))).toBe(false);
    expect(inWindow(w, at('12:00'))).toBe(false);
    expect(inWindow({ start: '02:00', end: '04:00' }, at('03:00'))).toBe(true);
    expect(inWindow({ start: '02:00', end: '04:00' }, at('01:59'))).toBe(false);
    expect(inWindow(undefined, at('12:00'))).toBe(true);
  });

  it('bounds error text for reports: one line, ≤ 500 characters', () => {
    const e = boundedError(new Error(`a\nb\u0007${'x'.repeat(900)}`));
    expect(e.length).toBe(500);
    expect(e).not.toMatch(/[\n\u0007]/);
  });
});

describe('the room screen shows only fixed sentences and signed versions', () => {
  const base = (update: UpdateView, phase: DeviceState['phase'] = 'idle'): DeviceState => ({
    ...initialState('1.0.0'),
    phase,
    update,
  });
  it('progress, waiting for the window, installing, restarting, checking', () => {
    const u = { current: '1.0.0', channel: 'stable', target: '2.0.0' };
    expect(updateNotice(base({ ...u, state: 'downloading', progress: 0.426 }))).toEqual({
      text: 'Downloading update 2.0.0: 42%',
      progress: 0.426,
    });
    expect(updateNotice(base({ ...u, state: 'waiting', waitingFor: 'window' }))?.text).toBe(
      'Update 2.0.0 ready: it installs in the maintenance window',
    );
    expect(updateNotice(base({ ...u, state: 'installing' }))?.text).toBe('Installing update 2.0.0…');
    expect(updateNotice(base({ ...u, state: 'restarting' }))?.text).toBe(
      'Restarting to finish update 2.0.0…',
    );
    expect(updateNotice(base({ ...u, state: 'verifying' }))?.text).toBe('Checking update 2.0.0…');
    for (const state of ['idle', 'available', 'committed', 'failed', 'rolled-back'] as const)
      expect(updateNotice(base({ ...u, state, error: HOSTILE }))).toBeUndefined();
  });

  it('nothing during a meeting (its security code is what the room looks at)', () => {
    const u: UpdateView = {
      current: '1.0.0',
      channel: 'stable',
      target: '2.0.0',
      state: 'downloading',
      progress: 0.5,
    };
    expect(updateNotice(base(u, 'in-meeting'))).toBeUndefined();
  });

  it('a version that is not plain semver is not shown; progress is clamped', () => {
    const n = updateNotice(
      base({
        current: '1.0.0',
        channel: 'stable',
        target: `2.0.0${HOSTILE}`,
        state: 'downloading',
        progress: 7,
      }),
    );
    expect(n).toEqual({ text: 'Downloading update: 100%', progress: 1 });
  });
});

describe('the update agent with a real TUF repository', () => {
  let repo: Repo;
  beforeAll(async () => {
    repo = await makeRepo({ '2.0.0': bundles['2.0.0']! });
  }, 60_000);

  it('downloads outside meetings, waits for the window and the meeting, installs, restarts; each step reported signed', async () => {
    const report = await receiver();
    let now = at('12:00');
    const b = await box(repo, {
      report,
      settings: { channel: 'stable', window: { start: '02:00', end: '04:00' } },
      now: () => now,
    });
    b.meeting(true);
    const screens: (string | undefined)[] = [];
    b.state.on('change', (s) => screens.push(updateNotice(s)?.text));
    const cycle = b.agent.checkNow();
    // In a meeting: found, but not even downloaded.
    await until(() => b.state.get().update?.waitingFor === 'meeting');
    expect(b.state.get().update).toMatchObject({ state: 'waiting', target: '2.0.0', current: '1.0.0' });
    expect(updateNotice(b.state.get())).toBeUndefined();
    b.meeting(false);
    // Downloaded and verified, then outside the window it waits.
    await until(() => b.state.get().update?.waitingFor === 'window');
    expect(b.seen.some((v) => v.state === 'downloading')).toBe(true);
    expect(updateNotice(b.state.get())?.text).toBe(
      'Update 2.0.0 ready: it installs in the maintenance window',
    );
    // The window opens while a meeting runs: still waits.
    b.meeting(true);
    now = at('03:00');
    await until(() => b.state.get().update?.waitingFor === 'meeting');
    expect(b.restarts()).toBe(0);
    expect((await b.updater.status()).state?.pending).toBeUndefined();
    b.meeting(false);
    await b.restartedP;
    await cycle;
    expect(b.restarts()).toBe(1);
    const st = (await b.updater.status()).state!;
    expect(st.pending).toMatchObject({ slot: 'b', version: '2.0.0', attempts: 0 });
    expect(fs.readlinkSync(join(b.root, 'current'))).toBe('slots/b');
    expect(startCurrent(b.root)).toBe('2.0.0');
    // Every report verified with the device key; order and fields as the contract says.
    await until(() => report.accepted.at(-1)?.state === 'restarting');
    expect(report.refusedSignatures).toBe(0);
    const states = report.accepted.map((r) => r.state);
    expect(states[0]).toBe('available');
    expect(states).toEqual(expect.arrayContaining(['waiting', 'downloading', 'installing', 'restarting']));
    expect(states.indexOf('installing')).toBeGreaterThan(states.lastIndexOf('downloading'));
    for (const r of report.accepted) {
      expect(r).toMatchObject({ current: '1.0.0', target: '2.0.0', channel: 'stable' });
      expect(
        Object.keys(r).every((k) =>
          ['at', 'state', 'current', 'target', 'channel', 'progress', 'error'].includes(k),
        ),
      ).toBe(true);
    }
    const ats = report.accepted.map((r) => Date.parse(r.at));
    expect(ats).toEqual([...ats].sort((x, y) => x - y));
    expect(new Set(ats).size).toBe(ats.length);
    // Never anything on the screen during the meeting parts.
    expect(
      screens
        .filter((t) => t !== undefined)
        .every((t) => /^(Downloading|Update|Installing|Restarting)/.test(t!)),
    ).toBe(true);
    await b.agent.stop();

    // ExecStartPre's boot check, then the new version starts: its gate passes and it commits.
    expect((await b.updater.bootCheck()).action).toBe('try-pending');
    const after = await box(repo, { report, version: '2.0.0', root: b.root });
    await after.agent.start();
    expect(after.state.get().update).toMatchObject({ state: 'committed', current: '2.0.0' });
    expect(after.seen.map((v) => v.state)).toEqual(['verifying', 'committed']);
    expect((await after.updater.status()).state).toMatchObject({ committedVersion: '2.0.0', current: 'b' });
    await until(() => report.accepted.at(-1)?.state === 'committed');
    expect(report.accepted.at(-2)).toMatchObject({ state: 'verifying', current: '1.0.0', target: '2.0.0' });
    // Up to date now: a check finds nothing newer.
    expect((await after.agent.checkNow()).state).toBe('idle');
    await after.agent.stop();
  }, 60_000);

  it('a failing gate rolls back by itself, restarts only after the meeting, and says so', async () => {
    const report = await receiver();
    const b = await box(repo);
    await b.updater.apply(bundles['2.0.0']!, { expectedVersion: '2.0.0' });
    await b.updater.bootCheck();
    const after = await box(repo, {
      report,
      version: '2.0.0',
      root: b.root,
      checks: [
        {
          name: 'kiosk page',
          run: async () => {
            throw new Error('/: HTTP 500');
          },
        },
      ],
      agent: { gateTimeoutMs: 300 },
    });
    after.meeting(true);
    const started = after.agent.start();
    await until(() => after.state.get().update?.state === 'rolled-back');
    const st = (await after.updater.status()).state!;
    expect(st).toMatchObject({ committedVersion: '1.0.0', current: 'a' });
    expect(st.pending).toBeUndefined();
    expect(st.rejected).toContain('2.0.0');
    expect(fs.readlinkSync(join(b.root, 'current'))).toBe('slots/a');
    await new Promise((r) => setTimeout(r, 200));
    expect(after.restarts()).toBe(0); // the meeting goes on
    after.meeting(false);
    await after.restartedP;
    await started;
    expect(after.restarts()).toBe(1);
    await until(() => report.accepted.some((r) => r.state === 'rolled-back'));
    expect(report.accepted.find((r) => r.state === 'rolled-back')).toMatchObject({
      current: '1.0.0',
      target: '2.0.0',
      error: expect.stringContaining('health gate failed: kiosk page: /: HTTP 500'),
    });
    await after.agent.stop();

    // Back on 1.0.0: the rollback is said once more with its own time (the service ignores the older
    // `at`); 2.0.0, rolled back here, is not downloaded again.
    const again = await box(repo, { report, version: '1.0.0', root: b.root });
    await again.agent.start();
    expect(again.state.get().update).toMatchObject({ state: 'rolled-back', target: '2.0.0' });
    expect(report.accepted.at(-1)?.at).toBe(st.last?.at);
    expect((await again.agent.checkNow()).state).toBe('idle');
    expect(again.seen.some((v) => v.state === 'downloading')).toBe(false);
    await again.agent.stop();
  }, 60_000);

  it('never commits a version on trial that this process is not running', async () => {
    const b = await box(repo);
    await b.updater.apply(bundles['2.0.0']!, { expectedVersion: '2.0.0' });
    const inProcess = await box(repo, { version: '1.0.0', root: b.root });
    await inProcess.agent.start();
    expect((await inProcess.updater.status()).state?.pending?.version).toBe('2.0.0');
    expect(inProcess.state.get().update?.state).toBe('restarting');
    await inProcess.agent.stop();
  });

  it('pauses a download when a meeting starts and resumes it (Range) afterwards', async () => {
    const slow = await makeRepo({ '3.0.0': bundles['3.0.0']! });
    slow.chunk = { bytes: 8 * 1024, ms: 50 };
    const b = await box(slow);
    const cycle = b.agent.checkNow();
    await until(() => (b.state.get().update?.progress ?? 0) > 0.1);
    b.meeting(true);
    await until(() => b.state.get().update?.waitingFor === 'meeting');
    const paused = b.state.get().update!.progress!;
    expect(paused).toBeLessThan(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(b.state.get().update?.progress).toBe(paused); // nothing moves during the meeting
    b.meeting(false);
    await b.restartedP;
    await cycle;
    expect(slow.ranges.length).toBeGreaterThan(0);
    expect((await b.updater.status()).state?.pending?.version).toBe('3.0.0');
    await b.agent.stop();
  }, 60_000);

  it('a paused device does not download; unpausing checks at once', async () => {
    const b = await box(repo, { settings: { channel: 'stable', paused: true } });
    expect((await b.agent.checkNow()).waitingFor).toBe('paused');
    expect(b.seen.some((v) => v.state === 'available')).toBe(false);
    b.agent.setSettings({ channel: 'stable', paused: false });
    await b.restartedP;
    expect((await b.updater.status()).state?.pending?.version).toBe('2.0.0');
    await b.agent.stop();
  }, 30_000);
});

describe('the update server is the attacker', () => {
  it('tampered bytes: refused, nothing installed, nothing restarted, nothing on the screen', async () => {
    const repo = await makeRepo({ '2.0.0': bundles['2.0.0']! });
    const dir = join(repo.dir, 'targets', 'stable', arch);
    for (const f of fs.readdirSync(dir)) {
      const p = join(dir, f);
      const data = fs.readFileSync(p);
      data[data.length >> 1]! ^= 0xff;
      fs.writeFileSync(p, data);
    }
    const report = await receiver();
    const b = await box(repo, { report });
    const v = await b.agent.checkNow();
    expect(v).toMatchObject({ state: 'failed', target: '2.0.0' });
    expect(v.error).toMatch(/hash|length|verif/i);
    expect(b.restarts()).toBe(0);
    const st = await b.updater.status();
    expect(st.state).toMatchObject({ committedVersion: '1.0.0', current: 'a' });
    expect(st.state?.pending).toBeUndefined();
    expect(st.slots.b).toBeUndefined();
    expect(fs.readdirSync(join(b.root, '..', 'downloads'))).toEqual([]);
    expect(updateNotice(b.state.get())).toBeUndefined();
    await until(() => report.accepted.some((r) => r.state === 'failed'));
    await b.agent.stop();
  }, 30_000);

  it('a hanging server: the check gives up, the agent stops at once, meetings go on', async () => {
    const repo = await makeRepo({ '2.0.0': bundles['2.0.0']! });
    repo.mode = 'hang';
    const b = await box(repo, { agent: { checkTimeoutMs: 400 } });
    const cycle = b.agent.checkNow();
    // Meanwhile the room starts a meeting: nothing in its way.
    b.meeting(true);
    expect(b.state.get().phase).toBe('in-meeting');
    const v = await cycle;
    expect(v.state).toBe('failed');
    expect(v.error).toMatch(/did not finish|timed out|abort/i);
    expect(b.restarts()).toBe(0);
    const t0 = Date.now();
    await b.agent.stop();
    expect(Date.now() - t0).toBeLessThan(1500);
    expect(updateNotice(b.state.get())).toBeUndefined();
  }, 30_000);

  it('hostile error text goes (bounded) to IT, never to the screen', async () => {
    const repo = await makeRepo({ '2.0.0': bundles['2.0.0']! });
    repo.mode = 'hostile';
    const report = await receiver();
    const b = await box(repo, { report });
    const v = await b.agent.checkNow();
    expect(v.state).toBe('failed');
    await until(() => report.accepted.some((r) => r.state === 'failed'));
    const r = report.accepted.find((x) => x.state === 'failed')!;
    expect((r.error ?? '').length).toBeLessThanOrEqual(500);
    // Whatever the server said, the screen shows nothing of it in any state.
    for (const state of ['failed', 'downloading', 'waiting', 'installing'] as const) {
      const text =
        updateNotice({ ...b.state.get(), update: { ...v, state, waitingFor: 'window' } })?.text ?? '';
      expect(text).not.toContain('Call');
      expect(text).not.toContain('<img');
    }
    await b.agent.stop();
  }, 30_000);

  it('a hanging download is given up within its time and the box stays on its version', async () => {
    const repo = await makeRepo({ '3.0.0': bundles['3.0.0']! });
    repo.chunk = { bytes: 1024, ms: 100 }; // far too slow
    const b = await box(repo, { agent: { downloadTimeoutMs: 500 } });
    const v = await b.agent.checkNow();
    expect(v).toMatchObject({ state: 'failed', target: '3.0.0' });
    expect(v.error).toMatch(/too long/);
    // What came is kept, to be resumed by the next try.
    expect(fs.readdirSync(join(b.root, '..', 'downloads'))).toEqual(['sealroom-3.0.0.tar.gz.part']);
    expect((await b.updater.status()).state).toMatchObject({ committedVersion: '1.0.0' });
    expect(b.restarts()).toBe(0);
    await b.agent.stop();
  }, 30_000);
});

describe('update-state reports', () => {
  it('are retried until taken, keep only the newest, and stop on a final refusal', async () => {
    const report = await receiver();
    report.failFirst = [503, 503];
    const send = provisioningUpdateReporter({
      baseUrl: report.url,
      identity: () => ({ deviceId: device.deviceId, privateKey: device.privateKey }),
    });
    const repo = await makeRepo({});
    const b = await box(repo, { report });
    await b.agent.checkNow(); // idle, retried through two 503s
    await until(() => report.accepted.length === 1);
    expect(report.accepted[0]).toMatchObject({ state: 'idle', current: '1.0.0', channel: 'stable' });
    await b.agent.stop();
    // A forged signature (another key) is refused by the service: the device's are not.
    const other = generateKeyPairSync('ed25519').privateKey;
    const forged = provisioningUpdateReporter({
      baseUrl: report.url,
      identity: () => ({ deviceId: device.deviceId, privateKey: other }),
    });
    await expect(
      forged({ at: new Date().toISOString(), state: 'idle', current: '1.0.0', channel: 'stable' }),
    ).rejects.toThrow();
    expect(report.refusedSignatures).toBe(1);
    await send({ at: new Date().toISOString(), state: 'idle', current: '1.0.0', channel: 'stable' });
    expect(report.accepted).toHaveLength(2);
  }, 30_000);

  it('inMeeting: a meeting being joined or waited for counts', () => {
    const s = initialState('1.0.0');
    expect(inMeeting(s)).toBe(false);
    expect(inMeeting({ ...s, phase: 'in-meeting' })).toBe(true);
    for (const status of ['connecting', 'waiting', 'active'] as const)
      expect(inMeeting({ ...s, meeting: { status } as DeviceState['meeting'] })).toBe(true);
    expect(inMeeting({ ...s, meeting: { status: 'ended' } as DeviceState['meeting'] })).toBe(false);
  });
});

describe('the standalone boot check (ExecStartPre)', () => {
  const run = (root: string) =>
    spawnSync(
      process.execPath,
      ['--import', 'tsx', join('device', 'update', 'boot-check.ts'), '--root', root],
      {
        encoding: 'utf8',
        cwd: join(import.meta.dirname, '..'),
      },
    );

  it('counts a start of the version on trial and rolls back one out of attempts; never fails the unit', async () => {
    const root = join(work, `boot-${n++}`, 'app');
    const u = new Updater({ root });
    await u.install(bundles['1.0.0']!);
    await u.apply(bundles['2.0.0']!);
    for (let i = 1; i <= 3; i++) {
      const r = run(root);
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('try-pending: 2.0.0 (slot b)');
    }
    const r = run(root);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('rolled-back: 1.0.0 (slot a)');
    expect(startCurrent(root)).toBe('1.0.0');
    // Not installed in slots, or a broken state file: it says so and lets the service start.
    expect(run(join(work, 'nowhere'))).toMatchObject({ status: 0 });
    fs.writeFileSync(join(root, 'update-state.json'), '{"format":');
    const broken = run(root);
    expect(broken.status).toBe(0);
    expect(broken.stderr).toContain('boot check failed (starting anyway)');
  }, 60_000);
});

describe('in the daemon (real relay, real kiosk control server, real media worker, real gate checks)', () => {
  it('a version on trial passes the gate and commits; a hanging update server never holds a meeting', async () => {
    const ca = await createDevelopmentCa('Example Corp');
    const relay = await startRelay({ log: silentLogger, trust: { caPems: [ca.certPem] }, port: 0 });
    const uiDir = join(work, `ui-${n++}`);
    fs.mkdirSync(uiDir);
    fs.writeFileSync(join(uiDir, 'index.html'), '<!doctype html><html><body>room</body></html>');
    const repo = await makeRepo({ '3.0.0': bundles['3.0.0']! });
    repo.mode = 'hang';
    const root = join(work, `daemon-box-${n++}`, 'app');
    const u = new Updater({ root });
    await u.install(bundles['1.0.0']!);
    await u.apply(bundles['2.0.0']!, { expectedVersion: '2.0.0' });
    await u.bootCheck();
    let restarts = 0;
    const daemons: Daemon[] = [];
    try {
      const start = async (roomName: string, update: boolean) => {
        const dev = await issueDevelopmentDevice(ca, { roomName, org: 'Example Corp' });
        const d = await startDaemon({
          relayUrl: relay.url,
          certificatePem: dev.certificatePem,
          identityKeyPem: dev.identityKeyPem,
          trustAnchors: { orgCaPem: ca.certPem },
          log: silentLogger,
          // The room being updated runs a real media worker (test profile): its gate checks the pipelines.
          ...(update ? { media: 'worker' as const, mediaSettings: SMALL } : { media: 'none' as const }),
          loopbackOnly: true,
          controlPort: 0,
          uiDir,
          version: '2.0.0',
          ...(update
            ? {
                update: {
                  root,
                  trustedRootJson: repo.trustedRoot,
                  metadataUrl: `${repo.url}/metadata/`,
                  targetsUrl: `${repo.url}/targets/`,
                  cacheDir: join(root, '..', 'cache'),
                  restart: () => {
                    restarts++;
                  },
                  settings: { channel: 'stable' },
                  timing: {
                    firstCheckMs: 0,
                    checkTimeoutMs: 60_000,
                    gateRetryMs: 100,
                    gateTimeoutMs: 20_000,
                  },
                },
              }
            : {}),
        });
        daemons.push(d);
        return d;
      };
      const room = await start('Boardroom', true);
      const t0 = Date.now();
      await until(() => room.state.get().update?.state === 'committed', 25_000);
      expect((await u.status()).state).toMatchObject({ committedVersion: '2.0.0', current: 'b' });
      // Committed with the media pipeline check in its gate: the worker runs, its pipelines play.
      expect(room.state.get().media.worker).toBe('running');
      expect(room.supervisor?.lastStatus?.pipelines).toBe('playing');
      // The first check now hangs on the update server; the room meets all the same.
      await until(() => room.state.get().update?.checkedAt !== undefined || Date.now() - t0 > 500, 5000);
      const other = await start('Huddle Room', false);
      await until(() => other.state.get().relay.connected, 20_000);
      const tCommit = Date.now() - t0;
      expect(tCommit).toBeLessThan(25_000);
      const { meetingId } = await room.actions.startMeeting();
      await other.actions.joinMeeting(meetingId);
      await until(() => room.state.get().meeting?.waiting.length === 1, 20_000);
      await room.actions.admit(room.state.get().meeting!.waiting[0]!.participantId);
      await until(() => other.state.get().meeting?.status === 'active', 20_000);
      expect(room.state.get().phase).toBe('in-meeting');
      expect(updateNotice(room.state.get())).toBeUndefined();
      expect(restarts).toBe(0);
      const t1 = Date.now();
      await room.stop();
      expect(Date.now() - t1).toBeLessThan(5000);
    } finally {
      for (const d of daemons) await d.stop().catch(() => undefined);
      await relay.close();
    }
  }, 90_000);
});

describe('the room screen in Chromium', () => {
  it('shows the progress outside meetings, nothing during one, and never the server’s words', async () => {
    const ui = buildKioskUi();
    const browser = await launchChromium();
    const store = new StateStore(initialState('1.0.0'));
    store.update((s) => {
      s.phase = 'idle';
      s.device = { ...s.device, roomName: SELF.roomName, org: SELF.org, deviceId: SELF.deviceId };
      s.update = {
        state: 'downloading',
        current: '1.0.0',
        target: '2.0.0',
        channel: 'stable',
        progress: 0.42,
        error: HOSTILE,
      };
    });
    const room = new RoomDouble(store);
    const server = await createControlServer({
      state: store,
      actions: room,
      log: silentLogger,
      uiDir: ui.dir,
    });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
      const errors = collectPageErrors(page);
      await page.goto(server.url);
      await page.waitForSelector('[data-testid=update-notice]');
      expect(await page.textContent('[data-testid=update-notice]')).toBe('Downloading update 2.0.0: 42%');
      expect(await page.getAttribute('.update-progress', 'value')).toBe('42');
      expect(await findOverflows(page)).toEqual([]);
      store.update((s) => {
        s.update = { ...s.update!, state: 'failed' };
      });
      await page.waitForSelector('[data-testid=update-notice]', { state: 'detached' });
      expect(await page.textContent('body')).not.toContain('Call +1');
      store.update((s) => {
        s.update = { ...s.update!, state: 'installing' };
      });
      await page.waitForSelector('[data-testid=update-notice]');
      // A meeting starts: the indicator goes, the security code has the screen.
      await room.startMeeting();
      await page.waitForSelector('[data-testid=security-code]');
      expect(await page.$('[data-testid=update-notice]')).toBeNull();
      expect(errors).toEqual([]);
    } finally {
      await server.close();
      await browser.close();
      ui.remove();
    }
  }, 90_000);
});
