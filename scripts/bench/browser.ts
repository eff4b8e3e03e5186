// npm run bench:browser — a person in a browser: how long from joining to the first decrypted frame,
// and what SFrame costs the browser per received 720p stream.
//
// 1. Joins (the whole stack of test/people/stack.ts in this process: org CA, provisioning service
//    with the dev OpenID Connect provider, the relay with its SFU, one room daemon with a real
//    GStreamer media worker leading a meeting). BENCH_JOINS times, a fresh Chromium context (a new
//    person session) opens the join URL, signs in as alice by filling the IdP's login form, gets a
//    person certificate, connects to the relay and asks to join; the room admits her as soon as she
//    is in its waiting list (no human delay); then she leaves and the room rekeys.
//    join → first frame = from pressing "Join meeting" (signed in, certificate in hand) to the first
//    frame of the room's video painted in her page (requestVideoFrameCallback on the received track:
//    a frame that failed SFrame never reaches the decoder) — Date.now() in Node and in the page, same
//    machine. Shown apart: sign-in before it (navigation → Join, including the scripted form
//    filling), when her first frame reached the relay (its record hook) and when the room admitted.
// 2. CPU (browser-cpu.ts): K received VP8 1280×720@30 streams, the same encoded frames either sealed
//    (SFrame + sender authentication, opened by the web app's transform worker) or plain (no
//    transform), alternating windows; CPU of every Chromium process from /proc/<pid>/stat.
//    sframe_cpu_overhead_pct = (median SFrame − median plain) / median plain, per stream.
//
// Usage: npm run bench:browser   (while developing: npx tsx scripts/bench/browser.ts)
//   --no-join   skip part 1; --no-cpu   skip part 2
// Environment: BENCH_JOINS (default 8), BENCH_STREAMS (K, default 2), BENCH_ROUNDS (windows per mode,
//   default 3), BENCH_SECONDS (window, default 8), BENCH_WARMUP_MS (default 3000), SEALROOM_CHROMIUM.
// Ends with one JSON line: {"bench":"browser","join_to_first_frame_ms_p95":..,"sframe_cpu_overhead_pct":..,
//   "join_to_first_frame_ms_p50":..,"joins":..,"signin_ms_p50":..,"join_to_relay_ms_p50":..,
//   "join_to_admitted_ms_p50":..,
//   "cpu_pct_per_stream_sframe":..,"cpu_pct_per_stream_plain":..,"streams":..,"cpu_source":..}.
import { loadavg } from 'node:os';
import type { Browser } from 'playwright-core';
import type { RecordEntry } from '../../src/relay/server.js';
import { ALICE, chromiumDriver, launchPeopleChromium, Person } from '../../test/people/person.js';
import { poll } from '../../test/people/poll.js';
import type { PeopleStack } from '../../test/people/stack.js';
import { exitWithUsageIfAsked } from '../usage.js';
import { type CpuWindow, cpuWindow, openCpuPage } from './browser-cpu.js';
import { BrowserBenchSender } from './browser-sender.js';

exitWithUsageIfAsked(import.meta.url);

const JOINS = Number(process.env.BENCH_JOINS ?? 8);
const K = Number(process.env.BENCH_STREAMS ?? 2);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 3000);
const flag = (f: string) => process.argv.includes(f);

const round1 = (x: number) => Math.round(x * 10) / 10;
function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] as number;
}
/** The middle value (the mean of the two middle ones for an even count). */
function median(xs: number[]): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

interface Join {
  signinMs: number;
  /** Join pressed → the page's first relay frame (E2EE worker start, WebSocket, TLS-less loopback). */
  connectMs: number;
  admitWaitMs: number;
  joinToFirstFrameMs: number;
}

/** Connection ids that sent their first WebSocket frame, with when (this process's clock). */
const firstFrameOf = new Map<string, number>();
function onRecord(e: RecordEntry): void {
  if (e.kind === 'ws-in' && !firstFrameOf.has(e.connection)) firstFrameOf.set(e.connection, Date.now());
}

async function oneJoin(stack: PeopleStack, browser: Browser, n: number): Promise<Join> {
  const leader = stack.rooms[0];
  if (!leader) throw new Error('no room');
  const known = new Set(firstFrameOf.keys());
  const driver = await chromiumDriver(browser);
  const person = new Person(driver, ALICE);
  // The room admits as soon as the person is in its waiting list (a state change, not a poll).
  let admittedAt = 0;
  let personId = '';
  const onChange = () => {
    const pid = stack.waitingPerson(ALICE.email);
    if (pid && !admittedAt) {
      admittedAt = Date.now();
      personId = pid;
      void leader.daemon.actions.admit(pid).catch(() => undefined);
    }
  };
  leader.daemon.state.on('change', onChange);
  try {
    const navAt = Date.now();
    await person.open(stack.joinUrl());
    const joinAt = await person.pressJoin();
    const first = await poll(
      `join ${n}: the first decoded frame`,
      async () => {
        const r = await person.probe();
        const at = r.videos.map((v) => v.firstFrameAt).filter((t) => t > 0);
        return at.length > 0 ? Math.min(...at) : undefined;
      },
      60_000,
      50,
    );
    const wsAt = Math.min(...[...firstFrameOf].filter(([c]) => !known.has(c)).map(([, t]) => t));
    if (!Number.isFinite(wsAt)) throw new Error(`join ${n}: no new relay connection was seen`);
    return {
      signinMs: joinAt - navAt,
      connectMs: wsAt - joinAt,
      admitWaitMs: admittedAt - joinAt,
      joinToFirstFrameMs: first - joinAt,
    };
  } finally {
    leader.daemon.state.off('change', onChange);
    if (await driver.exists('[data-testid=leave]').catch(() => false))
      await driver.click('[data-testid=leave]').catch(() => undefined);
    await driver.close();
    // Gone from the room's roster (and rekeyed) before the next join.
    if (personId)
      await poll(
        'the person to leave the roster',
        () => !leader.daemon.state.get().meeting?.roster.some((r) => r.participantId === personId),
        30_000,
      ).catch(() => undefined);
  }
}

async function joins(browser: Browser): Promise<Join[]> {
  // Imported here: the CPU part alone needs none of the stack.
  const { startPeopleStack } = await import('../../test/people/stack.js');
  const stack = await startPeopleStack({ rooms: 1, wall: () => false, record: false, onRecord });
  const out: Join[] = [];
  try {
    for (let i = 1; i <= JOINS; i++) {
      const j = await oneJoin(stack, browser, i);
      out.push(j);
      console.log(
        `join ${String(i).padStart(2)}: join → first frame ${j.joinToFirstFrameMs.toFixed(0).padStart(5)} ms  (relay reached after ${j.connectMs.toFixed(0)} ms, admitted after ${j.admitWaitMs.toFixed(0)} ms; sign-in before it ${j.signinMs.toFixed(0)} ms)`,
      );
    }
  } finally {
    await stack.close();
  }
  return out;
}

function describeWindow(w: CpuWindow): string {
  return `${w.mode.padEnd(6)} K=${w.k}  Chromium ${w.chromiumPct.toFixed(1).padStart(5)} % (renderer ${w.rendererPct.toFixed(1)} %) = ${w.perStreamPct.toFixed(1)} % per stream  decoded ${w.decodedFps.toFixed(1)} fps, painted(min) ${w.paintedFpsMin.toFixed(1)} fps at ${w.width}×${w.height}${w.opened !== undefined ? `  opened ${w.opened}, refused ${w.refused}` : ''}`;
}

async function cpu(browser: Browser): Promise<CpuWindow[]> {
  const sender = new BrowserBenchSender();
  const page = await openCpuPage(browser);
  const out: CpuWindow[] = [];
  try {
    for (let r = 0; r < ROUNDS; r++)
      for (const mode of ['plain', 'sframe'] as const) {
        const w = await cpuWindow(sender, page, K, mode, { warmupMs: WARMUP_MS, seconds: SECONDS });
        out.push(w);
        console.log(describeWindow(w));
      }
  } finally {
    await sender.close();
    sender.stop();
    await page.close();
  }
  return out;
}

async function main(): Promise<void> {
  console.log(
    `bench:browser — load average ${loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  const browser = await launchPeopleChromium();
  let j: Join[] = [];
  let c: CpuWindow[] = [];
  try {
    if (!flag('--no-join')) j = await joins(browser);
    if (!flag('--no-cpu')) c = await cpu(browser);
  } finally {
    await browser.close();
  }
  const ttf = j.map((x) => x.joinToFirstFrameMs);
  const plain = c.filter((w) => w.mode === 'plain');
  const sframe = c.filter((w) => w.mode === 'sframe');
  const plainPct = median(plain.map((w) => w.perStreamPct));
  const sframePct = median(sframe.map((w) => w.perStreamPct));
  const overhead = ((sframePct - plainPct) / plainPct) * 100;
  if (j.length > 0) {
    console.log(
      `join → first decrypted frame over ${j.length} joins: p50 ${median(ttf).toFixed(0)} ms, p95 ${quantile(ttf, 0.95).toFixed(0)} ms (sign-in before it p50 ${median(j.map((x) => x.signinMs)).toFixed(0)} ms)`,
    );
  }
  if (c.length > 0) {
    console.log(
      `CPU per received 720p stream (all Chromium processes, median of ${ROUNDS}): plain ${plainPct.toFixed(1)} %, SFrame ${sframePct.toFixed(1)} % → overhead ${overhead.toFixed(1)} %`,
    );
    if (sframe.some((w) => (w.opened ?? 0) === 0 || (w.refused ?? 0) > 0))
      console.log('  ✗ an SFrame window opened no frame or refused some: the comparison is not valid');
  }
  console.log(
    JSON.stringify({
      bench: 'browser',
      join_to_first_frame_ms_p95: j.length ? Math.round(quantile(ttf, 0.95)) : null,
      sframe_cpu_overhead_pct: c.length ? round1(overhead) : null,
      join_to_first_frame_ms_p50: j.length ? Math.round(median(ttf)) : null,
      joins: j.length,
      signin_ms_p50: j.length ? Math.round(median(j.map((x) => x.signinMs))) : null,
      join_to_relay_ms_p50: j.length ? Math.round(median(j.map((x) => x.connectMs))) : null,
      join_to_admitted_ms_p50: j.length ? Math.round(median(j.map((x) => x.admitWaitMs))) : null,
      cpu_pct_per_stream_sframe: c.length ? round1(sframePct) : null,
      cpu_pct_per_stream_plain: c.length ? round1(plainPct) : null,
      renderer_pct_per_stream_sframe: c.length
        ? round1(median(sframe.map((w) => w.rendererPct / w.k)))
        : null,
      renderer_pct_per_stream_plain: c.length ? round1(median(plain.map((w) => w.rendererPct / w.k))) : null,
      streams: K,
      stream: '1280x720@30 VP8',
      cpu_source: '/proc/<pid>/stat utime+stime of every Chromium process',
    }),
  );
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
