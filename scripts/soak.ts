// Soak (issue 10): two rooms in an E2EE meeting with real media workers for N minutes, every process
// a real one started from the CLI as `npm start` does (relay, two room daemons and their media
// workers, the provisioning service under light load). Samples RSS and CPU of each process from
// /proc; after the warm-up, fits a line to RSS (Theil–Sen; least squares too) and reports MB/h per
// process (target < 5 MB/h for every process), plus the CPU share.
//
//   npm run soak -- --minutes 30 [--interval 10] [--warmup 5] [--enroll-every 60] [--keep]
//
// Prints a table and, last, one JSON line {"soak": …}. Exit 1 when the meeting did not hold (codes
// differ, media stopped), or — for runs of at least 10 minutes — when a process grew ≥ 5 MB/h.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { exitWithUsageIfAsked } from './usage.js';
import { parseArgs } from 'node:util';

exitWithUsageIfAsked(import.meta.url);

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const TARGET_MB_PER_HOUR = 5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const CLK_TCK = 100; // Linux USER_HZ, as /proc/<pid>/stat counts

interface Sample {
  t: number;
  rssMb: number;
  cpuSeconds: number;
}

interface ProcStat {
  rssMb: number;
  cpuSeconds: number;
  ppid: number;
}

function readProc(pid: number): ProcStat | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN);
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(f[1]);
    const cpuSeconds = (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime + stime
    if (!Number.isFinite(rssKb)) return undefined;
    return { rssMb: rssKb / 1024, cpuSeconds, ppid };
  } catch {
    return undefined;
  }
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    if (readProc(Number(entry))?.ppid === pid) out.push(Number(entry));
  }
  return out;
}

/**
 * Theil–Sen slope: the median of the slopes between every pair of points. RSS of a garbage-collected
 * process is a sawtooth; one GC near either end of the run tilts a least-squares line, the median
 * of pairwise slopes much less.
 */
export function theilSen(points: { x: number; y: number }[]): number {
  const slopes: number[] = [];
  for (let i = 0; i < points.length; i++)
    for (let j = i + 1; j < points.length; j++) {
      const a = points[i] as { x: number; y: number };
      const b = points[j] as { x: number; y: number };
      if (b.x !== a.x) slopes.push((b.y - a.y) / (b.x - a.x));
    }
  if (slopes.length === 0) return 0;
  slopes.sort((u, v) => u - v);
  const mid = slopes.length >> 1;
  return slopes.length % 2
    ? (slopes[mid] as number)
    : ((slopes[mid - 1] as number) + (slopes[mid] as number)) / 2;
}

/** Least-squares slope of y over x. */
export function slope(points: { x: number; y: number }[]): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let num = 0;
  let den = 0;
  for (const p of points) {
    num += (p.x - mx) * (p.y - my);
    den += (p.x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

function spawnPart(
  name: string,
  args: string[],
  dir: string,
  parts: ChildProcess[],
  stderrReady?: RegExp,
): Promise<{ child: ChildProcess; ready: Record<string, string> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/sealroom.ts', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: process.env,
  });
  parts.push(child);
  const log = createWriteStream(join(dir, `${name}.log`), { flags: 'a' });
  child.stderr?.pipe(log);
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${name} did not start within 90 s`)), 90_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      rej(new Error(`${name} exited with ${code} before it was ready (see ${join(dir, `${name}.log`)})`));
    });
    if (stderrReady) {
      let text = '';
      child.stderr?.on('data', (c: Buffer) => {
        text += c.toString();
        const m = stderrReady.exec(text);
        if (m?.[1]) {
          clearTimeout(timer);
          res({ child, ready: { url: m[1] } });
        }
      });
    } else if (child.stdout) {
      createInterface({ input: child.stdout }).once('line', (line) => {
        clearTimeout(timer);
        try {
          res({ child, ready: JSON.parse(line) as Record<string, string> });
        } catch {
          rej(new Error(`${name} printed ${line}`));
        }
      });
    }
  });
}

async function api(control: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(new URL(path, control), {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const json = (await res.json()) as { error?: string };
  if (!res.ok) throw new Error(`${path}: ${json.error ?? res.status}`);
  return json;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

interface MeetingState {
  relay: { connected: boolean };
  meeting?: {
    meetingId: string;
    status: string;
    securityCode?: string;
    waiting: { participantId: string }[];
  };
}

export interface SoakProcess {
  name: string;
  pids: number[];
  samples: number;
  rssStartMb: number;
  rssEndMb: number;
  rssMaxMb: number;
  /** RSS growth after the warm-up (Theil–Sen, robust to GC sawtooth), MB per hour. */
  mbPerHour: number;
  /** The same by least squares, for comparison. */
  mbPerHourLsq: number;
  /** CPU share of one core after the warm-up, %. */
  cpuPercent: number;
}

async function main(): Promise<number> {
  const { values: o } = parseArgs({
    options: {
      minutes: { type: 'string', default: '30' },
      interval: { type: 'string' },
      warmup: { type: 'string' },
      media: { type: 'string', default: 'worker' },
      'no-provisioning': { type: 'boolean' },
      'enroll-every': { type: 'string', default: '60' },
      keep: { type: 'boolean' },
    },
    allowPositionals: true,
  });
  const minutes = Number(o.minutes);
  const runMs = minutes * 60_000;
  const intervalMs = Number(o.interval ?? (minutes >= 10 ? 10 : 1)) * 1000;
  // Warm-up: JIT, pools and GStreamer buffers fill; default a quarter of the run, at most 5 minutes.
  const warmupMs = o.warmup !== undefined ? Number(o.warmup) * 60_000 : Math.min(5 * 60_000, runMs / 4);
  const say = (s = '') => process.stderr.write(`${s}\n`);
  const dir = mkdtempSync(join(tmpdir(), 'sealroom-soak-'));
  const parts: ChildProcess[] = [];
  const t0 = Date.now();
  // Ctrl-C / SIGTERM: stop every part (daemons stop their media workers) before leaving.
  const onSignal = () => {
    for (const p of parts) p.kill('SIGTERM');
    setTimeout(() => {
      for (const p of parts) p.kill('SIGKILL');
      process.exit(130);
    }, 5000);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let result: Record<string, unknown> = {};
  let ok = false;
  try {
    const caDir = join(dir, 'org-ca');
    const { loadOrCreateDevelopmentCa } = await import('../src/relay/dev-ca-store.js');
    await loadOrCreateDevelopmentCa(caDir, 'Sealroom Demo Org');
    const named = new Map<string, number>(); // process name → pid (top-level parts)
    const relay = await spawnPart(
      'relay',
      ['relay', '--dev-ca', caDir, '--port', '0', '--log-json'],
      dir,
      parts,
    );
    named.set('relay', relay.child.pid ?? 0);
    const relayUrl = relay.ready.relay ?? '';
    let prov: { url: string; token: string; fetch: typeof fetch } | undefined;
    if (o['no-provisioning'] !== true) {
      const provDir = join(dir, 'provisioning');
      const p = await spawnPart(
        'provisioning',
        ['provisioning', 'serve', '--data-dir', provDir, '--port', '0', '--enrollments-per-minute', '100000'],
        dir,
        parts,
        /provisioning service on (\S+)/,
      );
      named.set('provisioning', p.child.pid ?? 0);
      let f: typeof fetch = fetch;
      const tlsCa = join(provDir, 'tls', 'ca.pem');
      if ((p.ready.url ?? '').startsWith('https')) {
        const { createPinnedFetch } = await import('../src/util/pinned-fetch.js');
        f = createPinnedFetch(readFileSync(tlsCa, 'utf8'));
      }
      prov = {
        url: p.ready.url ?? '',
        token: readFileSync(join(provDir, 'admin-token'), 'utf8').trim(),
        fetch: f,
      };
    }
    const rooms = ['Boardroom', 'Huddle'];
    const daemons = await Promise.all(
      rooms.map((room, i) =>
        spawnPart(
          `room-${i}`,
          [
            'daemon',
            '--relay',
            relayUrl,
            '--dev-ca',
            caDir,
            '--room',
            room,
            '--data-dir',
            join(dir, `room-${i}`),
            '--control-port',
            '0',
            '--media',
            String(o.media),
            '--size',
            '320x180',
            '--fps',
            '15',
            '--loopback-only',
            '--log-json',
          ],
          dir,
          parts,
        ),
      ),
    );
    for (const [i, d] of daemons.entries()) named.set(`daemon ${rooms[i]}`, d.child.pid ?? 0);
    const [a, b] = daemons.map((d) => d.ready.control ?? '') as [string, string];
    const state = (c: string) => api(c, 'GET', '/api/state') as Promise<MeetingState>;
    await until('both rooms connected', async () =>
      (await state(a)).relay.connected && (await state(b)).relay.connected ? true : undefined,
    );
    const { meetingId } = (await api(a, 'POST', '/api/meeting/start', {})) as { meetingId: string };
    await api(b, 'POST', '/api/meeting/join', { meetingId });
    const waiting = await until('the join request', async () => (await state(a)).meeting?.waiting[0]);
    await api(a, 'POST', '/api/meeting/admit', { participantId: waiting.participantId });
    const codes = async () => {
      const [x, y] = [await state(a), await state(b)];
      const cx = x.meeting?.status === 'active' ? x.meeting.securityCode : undefined;
      const cy = y.meeting?.status === 'active' ? y.meeting.securityCode : undefined;
      return cx && cy ? [cx, cy] : undefined;
    };
    await until('both rooms in the meeting', codes);
    const health = relayUrl.replace(/^ws/, 'http').replace(/\/v1\/ws$/, '/healthz');
    const forwarded = async () =>
      ((await (await fetch(health)).json()) as { packetsForwarded: number }).packetsForwarded;
    await until(
      'media through the relay',
      async () => ((await forwarded()) > 100 ? true : undefined),
      90_000,
    );
    say(
      `soak: meeting ${meetingId} with media; sampling every ${intervalMs / 1000} s for ${minutes} min (logs ${dir})`,
    );
    // Sampling: top-level parts by pid; media workers are the daemons' children (found each time:
    // a restarted worker is a new pid under the same name).
    const series = new Map<string, { pids: Set<number>; samples: Sample[] }>();
    const record = (name: string, pids: number[]) => {
      const stats = pids.map(readProc).filter((s): s is ProcStat => s !== undefined);
      if (stats.length === 0) return;
      const entry = series.get(name) ?? { pids: new Set<number>(), samples: [] };
      for (const p of pids) entry.pids.add(p);
      entry.samples.push({
        t: Date.now(),
        rssMb: stats.reduce((s, x) => s + x.rssMb, 0),
        cpuSeconds: stats.reduce((s, x) => s + x.cpuSeconds, 0),
      });
      series.set(name, entry);
    };
    const fwdStart = await forwarded();
    const tStart = Date.now();
    let enrollments = 0;
    let provErrors = 0;
    let nextProv = 0;
    let nextEnroll = 0;
    let lastReport = Date.now();
    while (Date.now() - tStart < runMs) {
      for (const [name, pid] of named) {
        record(name, [pid]);
        if (name.startsWith('daemon ')) record(`media worker ${name.slice(7)}`, childrenOf(pid));
      }
      // Light provisioning load: a fleet listing every 10 s, an enrollment every --enroll-every s.
      if (prov && Date.now() >= nextProv) {
        nextProv = Date.now() + 10_000;
        const enroll = Date.now() >= nextEnroll;
        if (enroll) nextEnroll = Date.now() + Number(o['enroll-every']) * 1000;
        try {
          const { generateIdentityKey, createCsr, deviceIdForPublicKey } = await import(
            '../src/pki/identity.js'
          );
          const key = generateIdentityKey();
          const deviceId = deviceIdForPublicKey(key.publicKey);
          const res = enroll
            ? await prov.fetch(`${prov.url}/v1/enrollments`, {
                method: 'POST',
                headers: { 'content-type': 'application/json' },
                body: JSON.stringify({
                  csr: await createCsr(key, { deviceId }),
                  softwareVersion: 'soak',
                  inventory: {},
                }),
              })
            : undefined;
          await res?.arrayBuffer();
          const list = await prov.fetch(`${prov.url}/v1/devices`, {
            headers: { authorization: `Bearer ${prov.token}` },
          });
          await list.arrayBuffer();
          if ((res === undefined || res.status === 201) && list.ok) enrollments += enroll ? 1 : 0;
          else provErrors++;
        } catch {
          provErrors++;
        }
      }
      if (Date.now() - lastReport > 60_000) {
        lastReport = Date.now();
        const line = [...series].map(([n, s]) => `${n} ${s.samples.at(-1)?.rssMb.toFixed(0)} MB`).join(', ');
        say(`  ${((Date.now() - tStart) / 60_000).toFixed(0)} min: ${line}`);
      }
      await sleep(intervalMs);
    }
    const tEnd = Date.now();
    writeFileSync(
      join(dir, 'samples.json'),
      JSON.stringify(Object.fromEntries([...series].map(([n, x]) => [n, x.samples]))),
    );
    const finalCodes = await codes().catch(() => undefined);
    const fwdEnd = await forwarded().catch(() => fwdStart);
    const processes: SoakProcess[] = [...series].map(([name, s]) => {
      const after = s.samples.filter((x) => x.t - tStart >= warmupMs);
      const use = after.length >= 2 ? after : s.samples;
      const first = use[0] as Sample;
      const last = use[use.length - 1] as Sample;
      const points = use.map((x) => ({ x: x.t, y: x.rssMb }));
      const perMs = theilSen(points);
      const lsqPerMs = slope(points);
      return {
        name,
        pids: [...s.pids],
        samples: s.samples.length,
        rssStartMb: Math.round((s.samples[0]?.rssMb ?? 0) * 10) / 10,
        rssEndMb: Math.round(last.rssMb * 10) / 10,
        rssMaxMb: Math.round(Math.max(...s.samples.map((x) => x.rssMb)) * 10) / 10,
        mbPerHour: Math.round(perMs * 3_600_000 * 100) / 100,
        mbPerHourLsq: Math.round(lsqPerMs * 3_600_000 * 100) / 100,
        cpuPercent:
          Math.round(
            ((last.cpuSeconds - first.cpuSeconds) / Math.max(0.001, (last.t - first.t) / 1000)) * 1000,
          ) / 10,
      };
    });
    const meetingHeld = finalCodes !== undefined && finalCodes[0] === finalCodes[1] && fwdEnd > fwdStart;
    const targetJudged = minutes >= 10;
    const withinTarget = processes.every((p) => p.mbPerHour < TARGET_MB_PER_HOUR);
    ok = meetingHeld && processes.length >= 4 && (!targetJudged || withinTarget);
    say('');
    say(
      `${'process'.padEnd(26)} ${'RSS start'.padStart(9)} ${'end'.padStart(7)} ${'max'.padStart(7)} ${'MB/h'.padStart(8)} ${'CPU %'.padStart(6)}`,
    );
    for (const p of processes)
      say(
        `${p.name.padEnd(26)} ${p.rssStartMb.toFixed(1).padStart(9)} ${p.rssEndMb.toFixed(1).padStart(7)} ${p.rssMaxMb.toFixed(1).padStart(7)} ${p.mbPerHour.toFixed(2).padStart(8)} ${p.cpuPercent.toFixed(1).padStart(6)}`,
      );
    say(
      `meeting ${meetingHeld ? 'held' : 'DID NOT HOLD'}: same code ${finalCodes ? finalCodes[0] === finalCodes[1] : 'n/a'}, relay forwarded ${fwdEnd - fwdStart} packets during the soak; provisioning ${enrollments} enrollments and a fleet listing every 10 s, ${provErrors} errors`,
    );
    say(
      targetJudged
        ? `growth target < ${TARGET_MB_PER_HOUR} MB/h after ${warmupMs / 60_000} min warm-up: ${withinTarget ? 'met by every process' : 'MISSED'}`
        : `run shorter than 10 min: MB/h figures are indicative only (target not judged)`,
    );
    result = {
      minutes,
      warmupMinutes: warmupMs / 60_000,
      intervalSeconds: intervalMs / 1000,
      measuredSeconds: Math.round((tEnd - tStart) / 1000),
      processes,
      meeting: {
        held: meetingHeld,
        sameCode: finalCodes ? finalCodes[0] === finalCodes[1] : false,
        packetsForwarded: fwdEnd - fwdStart,
      },
      provisioning: prov
        ? { enrollments, enrollEverySeconds: Number(o['enroll-every']), errors: provErrors }
        : undefined,
      targetMbPerHour: TARGET_MB_PER_HOUR,
      targetJudged,
      withinTarget,
      ok,
    };
  } catch (err) {
    say(`soak: ${(err as Error).message} (logs in ${dir})`);
    o.keep = true;
    result = { ok: false, error: (err as Error).message };
  } finally {
    await Promise.all(
      parts.map(
        (p) =>
          new Promise<void>((res) => {
            if (p.exitCode !== null || p.signalCode !== null) return res();
            const k = setTimeout(() => p.kill('SIGKILL'), 8000);
            p.once('exit', () => {
              clearTimeout(k);
              res();
            });
            p.kill('SIGTERM');
          }),
      ),
    );
    if (o.keep !== true) rmSync(dir, { recursive: true, force: true });
  }
  console.log(JSON.stringify({ soak: { ...result, seconds: Math.round((Date.now() - t0) / 1000) } }));
  return ok ? 0 : 1;
}

process.exit(await main());
