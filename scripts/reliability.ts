// The reliability matrix (issue 10): real network faults between the rooms, the relay and the
// provisioning service, each on its own host (a network namespace) of the fault lab that
// scripts/netns/setup.sh builds (veth links to a router namespace; faults by `tc netem`, or by the
// userspace netem scripts/netns/shaper.py where the kernel has no sch_netem). Two room daemons with
// real media workers (GStreamer test sources, SFrame, werift to the relay's SFU) meet; then, one case
// after another, room B's link (both directions) gets 5/10/20 % loss, 200 ms jitter, a 30 s
// partition and link flaps. Per case: did the meeting survive (same meeting, never ended), how long
// media took to come back after the fault ended, the longest media gap, the frame rate during the
// fault, rekeys, and whether both rooms show the same security code afterwards. Meanwhile a probe
// on room B's host enrolls devices with the provisioning service through the same faulty link; at the
// end every enrollment the service acknowledged must be stored.
//
//   npm run reliability -- --budget 600 [--cases loss5,partition30] [--fault-seconds 20] [--link roomb|relay] [--keep]
//
// Prints a table and, last, one JSON line {"reliability": …}. Exit 0 when every case passed, 1 when
// one failed, 2 when the lab cannot run here (not root, no `ip netns`).
//
// The same file is the program each host runs (--role room | prov-probe), so the rooms run the
// daemon as `sealroom daemon` does, plus a status line every 250 ms that the orchestrator reads.
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { exitWithUsageIfAsked } from './usage.js';
import { parseArgs, promisify } from 'node:util';

exitWithUsageIfAsked(import.meta.url);

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const NETNS = join(ROOT, 'scripts', 'netns');
const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// Roles run on a lab host
// ---------------------------------------------------------------------------------------------

export interface RoomStatus {
  type: 'status';
  t: number;
  connected: boolean;
  meetingId?: string;
  status?: string;
  code?: string;
  epoch?: number;
  rekeying?: boolean;
  leaderLost?: boolean;
  waiting: number;
  video: number;
  audio: number;
  failures: number;
  sent: number;
  admitted: number;
}

async function roomRole(o: Record<string, string | boolean | undefined>): Promise<void> {
  process.env.SEALROOM_MEDIA_STATS_MS ??= '250';
  const { loadOrIssueDevelopmentDevice } = await import('../src/relay/dev-ca-store.js');
  const { startDaemon } = await import('../device/daemon/daemon.js');
  const { cliLogger } = await import('../src/relay/readable-log.js');
  const caDir = String(o['dev-ca']);
  const roomName = String(o.room);
  const files = await loadOrIssueDevelopmentDevice(caDir, join(String(o['data-dir']), 'identity'), {
    roomName,
  });
  const daemon = await startDaemon({
    relayUrl: String(o.relay),
    ...files,
    trustAnchors: { orgCaPem: readFileSync(join(caDir, 'ca.pem'), 'utf8') },
    log: cliLogger('room', { json: true }),
    media: 'worker',
    mediaSettings: { width: 320, height: 180, fps: 15, tiles: 4, galleryWidth: 640, galleryHeight: 360 },
    controlPort: 0,
  });
  let counters = { video: 0, audio: 0, failures: 0, sent: 0 };
  daemon.supervisor?.on('stats', ({ counters: c }) => {
    counters = {
      video: c.videoFramesDecrypted,
      audio: c.audioFramesDecrypted,
      failures: c.decryptFailures,
      sent: c.videoFramesSent,
    };
  });
  let autoAdmit = false;
  let admitted = 0;
  const admitting = new Set<string>();
  daemon.state.on('change', (s) => {
    if (!autoAdmit) return;
    for (const w of s.meeting?.waiting ?? []) {
      if (admitting.has(w.participantId)) continue;
      admitting.add(w.participantId);
      daemon.actions
        .admit(w.participantId)
        .then(() => admitted++)
        .catch(() => admitting.delete(w.participantId));
    }
  });
  const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
  const timer = setInterval(() => {
    const s = daemon.state.get();
    const m = s.meeting;
    const status: RoomStatus = {
      type: 'status',
      t: Date.now(),
      connected: s.relay.connected,
      ...(m
        ? {
            meetingId: m.meetingId,
            status: m.status,
            ...(m.securityCode ? { code: m.securityCode } : {}),
            ...(m.keyEpoch !== undefined ? { epoch: m.keyEpoch } : {}),
            rekeying: m.rekeying,
            leaderLost: m.leaderLost ?? false,
          }
        : {}),
      waiting: m?.waiting.length ?? 0,
      admitted,
      ...counters,
    };
    out(status);
  }, 250);
  const stop = async () => {
    clearInterval(timer);
    const force = setTimeout(() => process.exit(1), 8000);
    force.unref();
    await daemon.stop().catch(() => undefined);
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop());
  process.once('SIGINT', () => void stop());
  for await (const line of createInterface({ input: process.stdin })) {
    let cmd: { cmd: string; meetingId?: string };
    try {
      cmd = JSON.parse(line) as typeof cmd;
    } catch {
      continue;
    }
    try {
      if (cmd.cmd === 'start') {
        autoAdmit = true;
        const { meetingId } = await daemon.actions.startMeeting();
        out({ type: 'started', meetingId });
      } else if (cmd.cmd === 'join' && cmd.meetingId) {
        await daemon.actions.joinMeeting(cmd.meetingId);
        out({ type: 'joining' });
      } else if (cmd.cmd === 'leave') {
        await daemon.actions.leaveMeeting();
        out({ type: 'left' });
      } else if (cmd.cmd === 'stop') {
        await stop();
      }
    } catch (err) {
      out({ type: 'error', cmd: cmd.cmd, message: (err as Error).message });
    }
  }
}

/** Enrolls a fresh device every --interval ms; prints each acknowledged enrollment (and failures). */
async function provProbeRole(o: Record<string, string | boolean | undefined>): Promise<void> {
  const { generateIdentityKey, createCsr, deviceIdForPublicKey } = await import('../src/pki/identity.js');
  const url = String(o.url);
  let fetchImpl: typeof fetch = fetch;
  if (url.startsWith('https:') && typeof o['tls-ca'] === 'string') {
    const { createPinnedFetch } = await import('../src/util/pinned-fetch.js');
    fetchImpl = createPinnedFetch(readFileSync(o['tls-ca'], 'utf8'));
  }
  const interval = Number(o.interval ?? 1000);
  let running = true;
  process.once('SIGTERM', () => {
    running = false;
  });
  const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);
  while (running) {
    const started = Date.now();
    const key = generateIdentityKey();
    const deviceId = deviceIdForPublicKey(key.publicKey);
    const csr = await createCsr(key, { deviceId });
    // Retried like a device does (same CSR) until acknowledged or 3 tries failed.
    let acknowledged = false;
    let lastError = '';
    for (let attempt = 0; attempt < 3 && !acknowledged && running; attempt++) {
      try {
        const res = await fetchImpl(`${url}/v1/enrollments`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ csr, softwareVersion: 'reliability', inventory: {} }),
          signal: AbortSignal.timeout(5000),
        });
        const body = (await res.json().catch(() => ({}))) as { deviceId?: string; error?: string };
        if (res.status === 201 && body.deviceId === deviceId) acknowledged = true;
        else if (res.status === 409)
          acknowledged = true; // an earlier try was stored, its reply lost
        else lastError = `HTTP ${res.status} ${body.error ?? ''}`;
      } catch (err) {
        lastError = (err as Error).name === 'TimeoutError' ? 'timeout' : (err as Error).message;
      }
    }
    out(acknowledged ? { type: 'ack', deviceId, t: Date.now() } : { type: 'fail', deviceId, lastError });
    await sleep(Math.max(0, interval - (Date.now() - started)));
  }
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// The orchestrator
// ---------------------------------------------------------------------------------------------

type FaultSpec =
  | { kind: 'none' }
  | { kind: 'loss'; percent: number }
  | { kind: 'jitter'; ms: number }
  | { kind: 'partition' }
  | { kind: 'flaps'; downSeconds: number; upSeconds: number };

interface CaseDef {
  name: string;
  fault: FaultSpec;
  /** Fixed duration (the 30 s partition), else the run's fault duration. */
  seconds?: number;
}

export const CASES: CaseDef[] = [
  { name: 'baseline', fault: { kind: 'none' } },
  { name: 'loss5', fault: { kind: 'loss', percent: 5 } },
  { name: 'loss10', fault: { kind: 'loss', percent: 10 } },
  { name: 'loss20', fault: { kind: 'loss', percent: 20 } },
  { name: 'jitter200', fault: { kind: 'jitter', ms: 200 } },
  { name: 'partition30', fault: { kind: 'partition' }, seconds: 30 },
  { name: 'flaps', fault: { kind: 'flaps', downSeconds: 2, upSeconds: 3 } },
];

export interface CaseResult {
  name: string;
  fault: string;
  faultSeconds: number;
  /** Same meeting, never ended or denied, both rooms active again after the fault. */
  survived: boolean;
  /** After the fault ended: until both rooms decrypted ≥ 10 new video frames from the other (s). */
  recoverySeconds: number | null;
  /** Longest stretch without a new decrypted video frame at either room, fault start → recovery (s). */
  maxGapSeconds: number;
  /** Video frames decrypted per second during the fault, each room, vs before it. */
  fpsDuring: [number, number];
  fpsBefore: [number, number];
  /** Audio frames decrypted per second (20 ms Opus frames: 50/s when nothing is missing). */
  audioFpsBefore: [number, number];
  audioFpsDuring: [number, number];
  /** Both rooms show the same security code after recovery. */
  sameCode: boolean;
  rekeys: number;
  relayDisconnects: number;
  leaderLost: boolean;
  /** Either room left the 'active' state at some point (reconnecting, waiting for admission). */
  interrupted: boolean;
  /** Joins the leader admitted during the case (a room dropped from the meeting asked again). */
  readmissions: number;
  decryptFailures: number;
  ok: boolean;
  note?: string;
}

class Host {
  readonly samples: RoomStatus[] = [];
  readonly events: Record<string, unknown>[] = [];
  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    if (child.stdout)
      createInterface({ input: child.stdout }).on('line', (line) => {
        try {
          const v = JSON.parse(line) as Record<string, unknown>;
          if (v.type === 'status') {
            this.samples.push(v as unknown as RoomStatus);
            if (this.samples.length > 20_000) this.samples.splice(0, 10_000);
          } else this.events.push(v);
        } catch {
          /* not ours */
        }
      });
  }
  get last(): RoomStatus | undefined {
    return this.samples[this.samples.length - 1];
  }
  send(cmd: Record<string, unknown>): void {
    this.child.stdin?.write(`${JSON.stringify(cmd)}\n`);
  }
  since(t: number): RoomStatus[] {
    return this.samples.filter((s) => s.t >= t);
  }
}

interface Lab {
  prefix: string;
  octet: number;
  ip: (host: string) => string;
  env: NodeJS.ProcessEnv;
}

/** Set when a room process died: every wait gives up at once with this reason. */
let failed: string | undefined;

async function until<T>(what: string, probe: () => T | undefined, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (failed) throw new Error(failed);
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

export async function labCheck(): Promise<{ ok: boolean; mode?: string; reason?: string }> {
  try {
    const { stdout } = await run('bash', [join(NETNS, 'check.sh')]);
    const [ok, mode] = stdout.trim().split(' ');
    return ok === 'ok' ? { ok: true, ...(mode ? { mode } : {}) } : { ok: false, reason: stdout.trim() };
  } catch (err) {
    const e = err as { stdout?: string; message: string };
    return { ok: false, reason: (e.stdout ?? e.message).trim() };
  }
}

function faultLabel(f: FaultSpec): string {
  switch (f.kind) {
    case 'none':
      return 'none';
    case 'loss':
      return `${f.percent} % loss`;
    case 'jitter':
      return `${f.ms} ms delay ± ${f.ms} ms jitter`;
    case 'partition':
      return 'partition (all packets dropped)';
    case 'flaps':
      return `link flaps (${f.downSeconds} s down / ${f.upSeconds} s up)`;
  }
}

async function orchestrate(o: Record<string, string | boolean | undefined>): Promise<number> {
  const t0 = Date.now();
  const budget = Number(o.budget ?? 600) * 1000;
  const say = (s = '') => process.stderr.write(`${s}\n`);
  const check = await labCheck();
  if (!check.ok) {
    say(`reliability: the fault lab cannot run here: ${check.reason}`);
    console.log(JSON.stringify({ reliability: { skipped: check.reason } }));
    return 2;
  }
  // Whose link gets the faults: room B's (default), or the relay's (both rooms' media and signalling).
  const link = String(o.link ?? 'roomb');
  if (!['roomb', 'rooma', 'relay', 'prov'].includes(link))
    throw new Error('--link must be roomb, rooma, relay or prov');
  const wanted = typeof o.cases === 'string' ? o.cases.split(',') : CASES.map((c) => c.name);
  const cases = CASES.filter((c) => wanted.includes(c.name));
  const unknown = wanted.filter((w) => !CASES.some((c) => c.name === w));
  if (unknown.length)
    throw new Error(`unknown case(s) ${unknown.join(', ')}; known: ${CASES.map((c) => c.name).join(', ')}`);
  // Fault duration: what the budget leaves after ~90 s of set-up and ~20 s per case around the fault.
  const fixed = cases.reduce((n, c) => n + (c.seconds ?? 0), 0);
  const flexible = cases.filter((c) => c.seconds === undefined && c.fault.kind !== 'none').length;
  const faultSeconds =
    o['fault-seconds'] !== undefined
      ? Number(o['fault-seconds'])
      : Math.max(
          5,
          Math.min(20, Math.floor((budget / 1000 - 90 - 20 * cases.length - fixed) / Math.max(1, flexible))),
        );
  const lab: Lab = {
    prefix: String(o['lab-prefix'] ?? 'sr'),
    octet: Number(o['lab-octet'] ?? 201),
    ip: (h) => `10.${lab.octet}.${{ prov: 1, relay: 2, rooma: 3, roomb: 4 }[h] ?? 0}.2`,
    env: {},
  };
  lab.env = { ...process.env, SRNET_PREFIX: lab.prefix, SRNET_OCTET: String(lab.octet) };
  const dir = mkdtempSync(join(tmpdir(), 'sealroom-reliability-'));
  const children: ChildProcess[] = [];
  const netns = (script: string, ...args: string[]) =>
    run('bash', [join(NETNS, script), ...args], { env: lab.env });
  const onHost = (host: string, name: string, args: string[], stdin = false): ChildProcess => {
    const child = spawn(
      'ip',
      ['netns', 'exec', `${lab.prefix}-${host}`, process.execPath, '--import', 'tsx', ...args],
      {
        cwd: ROOT,
        stdio: [stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
        env: lab.env,
      },
    );
    child.stderr?.pipe(createWriteStream(join(dir, `${name}.log`), { flags: 'a' }));
    children.push(child);
    return child;
  };
  const stopAll = async () => {
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((res) => {
            if (c.exitCode !== null || c.signalCode !== null) return res();
            const k = setTimeout(() => c.kill('SIGKILL'), 8000);
            c.once('exit', () => {
              clearTimeout(k);
              res();
            });
            c.kill('SIGTERM');
          }),
      ),
    );
  };
  // Ctrl-C / SIGTERM: no process and no namespace is left behind.
  const onSignal = () => {
    for (const c of children) c.kill('SIGKILL');
    if (o['keep-lab'] !== true)
      spawnSync('bash', [join(NETNS, 'teardown.sh')], { env: lab.env, stdio: 'ignore' });
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const results: CaseResult[] = [];
  let provisioning: Record<string, unknown> | undefined;
  let mode = check.mode ?? '?';
  let shaper: { packets: number; link: string; faulted: { lost: number; partitioned: number } } | undefined;
  try {
    mode = (await netns('setup.sh')).stdout.trim().split('\n').pop() ?? mode;
    say(
      `fault lab ${lab.prefix}: hosts prov ${lab.ip('prov')}, relay ${lab.ip('relay')}, room A ${lab.ip('rooma')}, room B ${lab.ip('roomb')}; faults by ${mode === 'netem' ? 'tc netem' : 'the userspace shaper (no sch_netem in this kernel)'}`,
    );
    say(`logs in ${dir}; faults on the ${link} link, ${faultSeconds} s each (partition 30 s)`);
    const { loadOrCreateDevelopmentCa } = await import('../src/relay/dev-ca-store.js');
    const caDir = join(dir, 'org-ca');
    await loadOrCreateDevelopmentCa(caDir, 'Sealroom Demo Org');
    // The relay (development CA, as `npm start --no-provisioning` runs it).
    const relayChild = onHost('relay', 'relay', [
      'src/cli/sealroom.ts',
      'relay',
      '--dev-ca',
      caDir,
      '--host',
      lab.ip('relay'),
      '--port',
      '7443',
      '--state-dir',
      join(dir, 'relay-state'),
      '--log-json',
    ]);
    const relayLine = await firstLine(relayChild, 'relay', 60_000);
    const relayUrl = String((JSON.parse(relayLine) as { relay: string }).relay);
    say(`relay ${relayUrl}`);
    // Provisioning (kept small: a probe enrolls devices through room B's link).
    let probe: Host | undefined;
    let prov: { url: string; token: string; fetch: typeof fetch } | undefined;
    if (o['no-provisioning'] !== true) {
      const provDir = join(dir, 'provisioning');
      const provChild = onHost('prov', 'provisioning', [
        'src/cli/sealroom.ts',
        'provisioning',
        'serve',
        '--data-dir',
        provDir,
        '--host',
        lab.ip('prov'),
        '--port',
        '8443',
        '--org',
        'Sealroom Demo Org',
        '--enrollments-per-minute',
        '100000',
        '--public-url',
        `https://${lab.ip('prov')}:8443`,
      ]);
      const announced = await stderrMatch(provChild, /provisioning service on (\S+)/, 60_000);
      const url = `${announced.startsWith('https') ? 'https' : 'http'}://${lab.ip('prov')}:8443`;
      const tlsCa = join(provDir, 'tls', 'ca.pem');
      let f: typeof fetch = fetch;
      if (url.startsWith('https') && existsSync(tlsCa)) {
        const { createPinnedFetch } = await import('../src/util/pinned-fetch.js');
        f = createPinnedFetch(readFileSync(tlsCa, 'utf8'));
      }
      prov = { url, token: readFileSync(join(provDir, 'admin-token'), 'utf8').trim(), fetch: f };
      say(`provisioning ${url}`);
      probe = new Host(
        'probe',
        onHost('roomb', 'prov-probe', [
          'scripts/reliability.ts',
          '--role',
          'prov-probe',
          '--url',
          url,
          '--interval',
          '1000',
          ...(existsSync(tlsCa) ? ['--tls-ca', tlsCa] : []),
        ]),
      );
    }
    // Two rooms, each on its own host.
    const room = (host: string, roomName: string) =>
      new Host(
        roomName,
        onHost(
          host,
          host,
          [
            'scripts/reliability.ts',
            '--role',
            'room',
            '--relay',
            relayUrl,
            '--dev-ca',
            caDir,
            '--room',
            roomName,
            '--data-dir',
            join(dir, host),
          ],
          true,
        ),
      );
    const a = room('rooma', 'Boardroom');
    const b = room('roomb', 'Huddle');
    for (const [h, host] of [
      [a, 'rooma'],
      [b, 'roomb'],
    ] as const)
      h.child.once('exit', (code) => {
        failed = `room ${h.name} exited with ${code} (see ${join(dir, `${host}.log`)})`;
      });
    const meet = async () => {
      await until('both rooms connected to the relay', () => a.last?.connected && b.last?.connected, 90_000);
      const before = a.events.length;
      a.send({ cmd: 'start' });
      const started = await until(
        'the meeting to start',
        () => a.events.slice(before).find((e) => e.type === 'started' || e.type === 'error'),
        30_000,
      );
      if (started.type === 'error') throw new Error(`start: ${String(started.message)}`);
      b.send({ cmd: 'join', meetingId: started.meetingId });
      await until('both rooms active with a security code', () => bothActive(a, b), 60_000);
      const v = [a.last?.video ?? 0, b.last?.video ?? 0];
      await until(
        'media both ways',
        () => (a.last?.video ?? 0) > v[0]! + 30 && (b.last?.video ?? 0) > v[1]! + 30,
        90_000,
      );
    };
    await meet();
    say(`meeting ${a.last?.meetingId} active, code ${a.last?.code}; media flowing both ways`);
    for (const c of cases) {
      const seconds = c.fault.kind === 'none' ? Math.min(faultSeconds, 10) : (c.seconds ?? faultSeconds);
      const left = budget - (Date.now() - t0);
      if (left < (seconds + 30) * 1000 && results.length > 0) {
        say(`${c.name}: skipped (budget)`);
        continue;
      }
      const r = await runCase(c, seconds, a, b, netns, link);
      results.push(r);
      say(formatCase(r));
      if (!r.survived || !bothActive(a, b)) {
        // Start over so the next case begins from a working meeting.
        say('  (meeting re-established for the next case)');
        a.send({ cmd: 'leave' });
        b.send({ cmd: 'leave' });
        await sleep(2000);
        await meet().catch((err: Error) => say(`  could not re-establish: ${err.message}`));
      }
    }
    if (probe && prov) {
      probe.child.kill('SIGTERM');
      await new Promise((r) => probe.child.once('exit', r));
      const acks = probe.events.filter((e) => e.type === 'ack').map((e) => String(e.deviceId));
      const fails = probe.events.filter((e) => e.type === 'fail');
      const missing: string[] = [];
      for (const id of acks) {
        const res = await prov.fetch(`${prov.url}/v1/devices/${id}`, {
          headers: { authorization: `Bearer ${prov.token}` },
        });
        if (res.status !== 200) missing.push(id);
      }
      provisioning = {
        acknowledged: acks.length,
        stored: acks.length - missing.length,
        missing: missing.length,
        failedAfterRetries: fails.length,
        ok: missing.length === 0 && acks.length > 0,
      };
      say(
        `provisioning: ${acks.length} enrollments acknowledged from room B's host (faults on the ${link} link), ${acks.length - missing.length} stored, ${missing.length} lost; ${fails.length} gave up after 3 tries (never acknowledged)`,
      );
    }
  } catch (err) {
    say(`reliability: ${(err as Error).message} (logs in ${dir})`);
    o.keep = true;
    results.push({ ...emptyResult('setup'), note: (err as Error).message });
  } finally {
    await stopAll();
    if (mode === 'shaper') {
      // What the userspace shaper did to room B's link: the proof the faults were applied.
      try {
        const stats = JSON.parse(
          readFileSync(`/run/sealroom-netns/${lab.prefix}/faults.json.stats`, 'utf8'),
        ) as { in: number; links: Record<string, { lost: number; partitioned: number }> };
        shaper = { packets: stats.in, link, faulted: stats.links[link] ?? { lost: 0, partitioned: 0 } };
        say(
          `shaper: ${stats.in} packets through the router; the ${link} link: ${shaper.faulted.lost} lost, ${shaper.faulted.partitioned} dropped by partitions`,
        );
      } catch {
        /* no stats */
      }
    }
    if (o['keep-lab'] !== true) await netns('teardown.sh').catch(() => undefined);
    if (o.keep !== true) rmSync(dir, { recursive: true, force: true });
  }
  const ok = results.length > 0 && results.every((r) => r.ok) && (provisioning?.ok ?? true) === true;
  console.log(
    JSON.stringify({
      reliability: {
        ok,
        mode,
        faultSeconds,
        link,
        seconds: Math.round((Date.now() - t0) / 1000),
        cases: results,
        ...(provisioning ? { provisioning } : {}),
        ...(shaper ? { shaper } : {}),
      },
    }),
  );
  return ok ? 0 : 1;
}

function emptyResult(name: string): CaseResult {
  return {
    name,
    fault: '',
    faultSeconds: 0,
    survived: false,
    recoverySeconds: null,
    maxGapSeconds: 0,
    fpsDuring: [0, 0],
    fpsBefore: [0, 0],
    audioFpsBefore: [0, 0],
    audioFpsDuring: [0, 0],
    sameCode: false,
    rekeys: 0,
    relayDisconnects: 0,
    leaderLost: false,
    interrupted: false,
    readmissions: 0,
    decryptFailures: 0,
    ok: false,
  };
}

function bothActive(a: Host, b: Host): boolean {
  const [x, y] = [a.last, b.last];
  return (
    x?.status === 'active' &&
    y?.status === 'active' &&
    x.meetingId === y.meetingId &&
    x.code !== undefined &&
    x.code === y.code
  );
}

function fps(samples: RoomStatus[], from: number, to: number, kind: 'video' | 'audio' = 'video'): number {
  const s = samples.filter((x) => x.t >= from && x.t <= to);
  if (s.length < 2) return 0;
  const first = s[0] as RoomStatus;
  const last = s[s.length - 1] as RoomStatus;
  return (last[kind] - first[kind]) / Math.max(0.001, (last.t - first.t) / 1000);
}

function maxGap(samples: RoomStatus[], from: number, to: number): number {
  let gap = 0;
  let lastChange = from;
  let prev: number | undefined;
  for (const s of samples) {
    if (s.t < from || s.t > to) continue;
    if (prev !== undefined && s.video > prev) {
      gap = Math.max(gap, s.t - lastChange);
      lastChange = s.t;
    }
    prev = s.video;
  }
  return Math.max(gap, to - lastChange) / 1000;
}

async function runCase(
  c: CaseDef,
  seconds: number,
  a: Host,
  b: Host,
  netns: (script: string, ...args: string[]) => Promise<unknown>,
  link: string,
): Promise<CaseResult> {
  const rooms = [a, b] as const;
  const meetingId = a.last?.meetingId;
  const epoch0 = a.last?.epoch ?? 0;
  const failures0 = (a.last?.failures ?? 0) + (b.last?.failures ?? 0);
  const admitted0 = a.last?.admitted ?? 0;
  // Up to 5 s before the fault: the frame rate we compare with.
  const tBefore = Date.now();
  await sleep(Math.min(5000, seconds * 600));
  const tStart = Date.now();
  const fpsBefore = rooms.map((r) => fps(r.samples, tBefore, tStart)) as [number, number];
  const audioBefore = rooms.map((r) => fps(r.samples, tBefore, tStart, 'audio'));
  const f = c.fault;
  if (f.kind === 'loss') await netns('fault.sh', link, 'loss', String(f.percent));
  else if (f.kind === 'jitter') await netns('fault.sh', link, 'jitter', String(f.ms));
  else if (f.kind === 'partition') await netns('fault.sh', link, 'partition');
  if (f.kind === 'flaps') {
    while (Date.now() - tStart < seconds * 1000) {
      await netns('fault.sh', link, 'flap', String(f.downSeconds));
      await sleep(f.upSeconds * 1000);
    }
  } else await sleep(seconds * 1000);
  const tEnd = Date.now();
  if (f.kind !== 'none' && f.kind !== 'flaps') await netns('fault.sh', link, 'clear');
  const fpsDuring = rooms.map((r) => fps(r.samples, tStart, tEnd)) as [number, number];
  const audioDuring = rooms.map((r) => fps(r.samples, tStart, tEnd, 'audio'));
  // Recovery: both rooms decrypt ≥ 10 new video frames from the other after the fault, both active
  // in the same meeting with the same code (90 s at most).
  const v0 = rooms.map((r) => r.last?.video ?? 0);
  let recoverySeconds: number | null = null;
  try {
    await until(
      'recovery',
      () =>
        bothActive(a, b) &&
        (a.last?.video ?? 0) >= (v0[0] ?? 0) + 10 &&
        (b.last?.video ?? 0) >= (v0[1] ?? 0) + 10,
      90_000,
    );
    recoverySeconds = (Date.now() - tEnd) / 1000;
  } catch {
    /* not recovered */
  }
  const tRecovered = Date.now();
  const during = rooms.map((r) => r.since(tStart));
  const all = [...(during[0] ?? []), ...(during[1] ?? [])];
  const ended = all.some(
    (s) => s.status === 'ended' || s.status === 'denied' || (s.meetingId && s.meetingId !== meetingId),
  );
  const epochs = new Set((during[1] ?? []).map((s) => s.epoch));
  let disconnects = 0;
  for (const r of during) {
    let prev = true;
    for (const s of r ?? []) {
      if (prev && !s.connected) disconnects++;
      prev = s.connected;
    }
  }
  const survived = !ended && bothActive(a, b) && a.last?.meetingId === meetingId;
  const sameCode = bothActive(a, b);
  const failures = (a.last?.failures ?? 0) + (b.last?.failures ?? 0) - failures0;
  const result: CaseResult = {
    name: c.name,
    fault: faultLabel(f),
    faultSeconds: Math.round((tEnd - tStart) / 100) / 10,
    survived,
    recoverySeconds: recoverySeconds === null ? null : Math.round(recoverySeconds * 10) / 10,
    maxGapSeconds: Math.round(Math.max(...rooms.map((r) => maxGap(r.samples, tStart, tRecovered))) * 10) / 10,
    fpsDuring: fpsDuring.map((x) => Math.round(x * 10) / 10) as [number, number],
    fpsBefore: fpsBefore.map((x) => Math.round(x * 10) / 10) as [number, number],
    audioFpsBefore: audioBefore.map((x) => Math.round(x)) as [number, number],
    audioFpsDuring: audioDuring.map((x) => Math.round(x)) as [number, number],
    sameCode,
    rekeys: Math.max(0, (a.last?.epoch ?? epoch0) - epoch0, epochs.size - 1),
    relayDisconnects: disconnects,
    leaderLost: all.some((s) => s.leaderLost === true),
    interrupted: all.some((s) => s.status !== 'active'),
    readmissions: (a.last?.admitted ?? 0) - admitted0,
    decryptFailures: failures,
    ok: survived && sameCode && recoverySeconds !== null,
  };
  return result;
}

function formatCase(r: CaseResult): string {
  return [
    `${r.name.padEnd(12)} ${r.ok ? 'ok  ' : 'FAIL'} ${r.fault} for ${r.faultSeconds} s:`,
    `survived ${r.survived ? 'yes' : 'NO'}, media back ${r.recoverySeconds === null ? 'NEVER' : `${r.recoverySeconds} s`} after the fault,`,
    `longest gap ${r.maxGapSeconds} s, video fps A/B ${r.fpsBefore.join('/')} before → ${r.fpsDuring.join('/')} during, audio ${r.audioFpsBefore.join('/')} → ${r.audioFpsDuring.join('/')},`,
    `same code ${r.sameCode ? 'yes' : 'NO'}, rekeys ${r.rekeys}, relay disconnects ${r.relayDisconnects},`,
    `leader lost ${r.leaderLost ? 'yes' : 'no'}, interrupted ${r.interrupted ? 'yes' : 'no'}, re-admissions ${r.readmissions}, decrypt failures ${r.decryptFailures}`,
  ].join(' ');
}

function firstLine(child: ChildProcess, name: string, timeoutMs: number): Promise<string> {
  return new Promise((res, rej) => {
    const timer = setTimeout(
      () => rej(new Error(`${name} did not start within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    if (!child.stdout) return rej(new Error(`${name}: no stdout`));
    createInterface({ input: child.stdout }).once('line', (line) => {
      clearTimeout(timer);
      res(line);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`${name} exited with ${code} before it was ready`));
    });
  });
}

function stderrMatch(child: ChildProcess, re: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((res, rej) => {
    let text = '';
    const timer = setTimeout(() => rej(new Error(`no ${re} within ${timeoutMs / 1000} s`)), timeoutMs);
    child.stderr?.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      const m = re.exec(text);
      if (m?.[1]) {
        clearTimeout(timer);
        res(m[1]);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`exited with ${code} before it was ready: ${text.slice(-500)}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------

const { values } = parseArgs({
  options: {
    role: { type: 'string' },
    budget: { type: 'string' },
    cases: { type: 'string' },
    'fault-seconds': { type: 'string' },
    'lab-prefix': { type: 'string' },
    link: { type: 'string' },
    'lab-octet': { type: 'string' },
    'no-provisioning': { type: 'boolean' },
    keep: { type: 'boolean' },
    'keep-lab': { type: 'boolean' },
    relay: { type: 'string' },
    'dev-ca': { type: 'string' },
    room: { type: 'string' },
    'data-dir': { type: 'string' },
    url: { type: 'string' },
    'tls-ca': { type: 'string' },
    interval: { type: 'string' },
  },
  allowPositionals: true,
});

if (values.role === 'room') await roomRole(values);
else if (values.role === 'prov-probe') await provProbeRole(values);
else {
  mkdirSync(tmpdir(), { recursive: true });
  process.exit(await orchestrate(values));
}
