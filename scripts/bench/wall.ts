// npm run bench:wall — how many far 720p30 participants one room can show, at what latency and CPU,
// on the wall path (the media worker forwards decrypted, still-encoded frames over a loopback
// PeerConnection to Chromium, which decodes and paints them) against today's GStreamer-only gallery
// (the same worker decoding and composing the 3×3 1080p gallery); and the lip-sync offset of the wall.
//
// One sending room in this process: one 1280×720@30 x264 encoder + Opus, every frame SFrame-sealed
// and sender-authenticated per stream, K streams offered to the receiving worker as the relay's SFU
// would. The RTP timestamp carries the capture wall clock (90 kHz).
//  gallery: a real worker (MediaSupervisor, profile test, wall=false, latencyProbe): fps and drops of
//           the slowest stream (frames out of its decoder, capped by frames out of the compositor),
//           capture→decoded latency, the worker's CPU.
//  wall:    a real worker with wall=true; real headless Debian Chromium (/usr/bin/chromium, 1920×1080,
//           3×3 grid of <video> + self-view) answers its wall offer; per m-line, in the page, with
//           requestVideoFrameCallback: frames presented, glass-to-glass = paint time
//           (expectedDisplayTime, page clock calibrated against Node's) − capture time (RTP
//           timestamp); Chromium's inbound-rtp (frames decoded, jitter buffer) beside it; CPU = worker +
//           every Chromium process, from /proc/<pid>/stat.
//  A/V:     K = 1 on the wall: the sender flashes the picture (yellow background) and beeps (1 kHz) at
//           one moment; the flash's paint time is found in the page (pixels of the presented frame),
//           the beep's arrival in the receiving worker's speaker output (the test profile's speaker
//           appsink, read with the worker's probe). av_offset_ms = audio latency − video latency
//           (positive = audio late). Outside ±80 ms the knob is applied (audio early: the worker's
//           audioDelayMs; audio late: Chromium's RTCRtpReceiver.jitterBufferTarget) and measured again.
// K = 1, 2, 4, 6, 8, 9, paired per K (a fresh worker each), until a K no longer holds 30 fps with
// < 1 % drops (each path on its own; the wall goes on while Chromium at least decodes every frame); a
// K that misses is measured once more and the better window kept.
// CPU in % of one core; "per stream" = the receiving side's CPU / K; the sender is shown apart.
//
// Usage: npm run bench:wall [-- --direct] [-- --no-gallery] [-- --no-av]
//   (while developing: npx tsx scripts/bench/wall.ts …)
//   --direct      also run a reference path: the sender's plain frames straight to Chromium (no worker)
//   --no-gallery  skip the GStreamer gallery baseline; --no-wall skip the wall; --no-av skip lip sync
// Environment: BENCH_SECONDS (window, default 10), BENCH_WARMUP_MS (default 3000), BENCH_K
//   (default 1,2,4,6,8,9), BENCH_AV_MARKS (flash+beep marks, default 8), SEALROOM_CHROMIUM,
//   BENCH_NICE (e.g. -10 as root: the bench's processes ahead of other work on a shared box).
//   BENCH_JITTER_TARGET_MS (jitterBufferTarget on the wall page), BENCH_CHROMIUM_GL=swiftshader,
//   BENCH_WALL_AB (page variants measured beside each wall window: pixelated, noself).
// Ends with one JSON line: {"bench":"wall","max_receivers_720p30":..,"glass_to_glass_ms_p50":..,
//   "glass_to_glass_ms_p95":..,"cpu_pct_per_stream":..,"gallery_max_receivers_720p30":..,
//   "gallery_cpu_pct_per_stream":..,"av_offset_ms":..,"cpu_compared_at_k":..,
//   "max_receivers_720p30_decoded":..} (+ av_offset_ms_before_knob, av_knob when a knob was applied).
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { loadavg, setPriority } from 'node:os';
import { performance } from 'node:perf_hooks';
import { MediaSupervisor, type StatsMessage } from '../../device/media/supervisor.js';
import { exitWithUsageIfAsked } from '../usage.js';
import { chromiumPids, snapshot, used } from './wall-cpu.js';
import { WallPage } from './wall-page.js';
import { receiverKeys, senderIndex, WallSender } from './wall-sender.js';

exitWithUsageIfAsked(import.meta.url);

// Every pending appsink pull holds a libuv thread (docs/media.md): the sender has four appsinks and
// two buses. The pool size is read once, before this module runs: re-run with a big enough pool.
if (!process.env.UV_THREADPOOL_SIZE) {
  const r = spawnSync(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, UV_THREADPOOL_SIZE: '24' },
  });
  process.exit(r.status ?? 1);
}

/**
 * BENCH_NICE (e.g. -10, root only): run the sender, the worker and Chromium (they inherit it) ahead
 * of other work on a shared box, approximating a room box that runs nothing else.
 */
const NICE = process.env.BENCH_NICE === undefined ? undefined : Number(process.env.BENCH_NICE);
if (NICE !== undefined) setPriority(process.pid, NICE);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const WARMUP_MS = Number(process.env.BENCH_WARMUP_MS ?? 3000);
const K_STEPS = (process.env.BENCH_K ?? '1,2,4,6,8,9').split(',').map(Number);
const AV_MARKS = Number(process.env.BENCH_AV_MARKS ?? 8);
/** BENCH_JITTER_TARGET_MS: RTCRtpReceiver.jitterBufferTarget on the wall page before each window. */
const JITTER_TARGET_MS =
  process.env.BENCH_JITTER_TARGET_MS === undefined ? undefined : Number(process.env.BENCH_JITTER_TARGET_MS);
/**
 * BENCH_WALL_AB (comma list): page variants measured on the same wall connection right after each
 * wall window, so both see the same load: `pixelated` (image-rendering: pixelated on the videos:
 * nearest-neighbour instead of bilinear scaling in the compositor), `noself` (the self-view not
 * painted). Printed beside the wall's figures; the JSON line stays the plain page's.
 */
const AB_VARIANTS: Record<string, { apply(p: WallPage): Promise<void>; undo(p: WallPage): Promise<void> }> = {
  pixelated: {
    apply: (p) => p.setCss('video{image-rendering:pixelated}'),
    undo: (p) => p.setCss(''),
  },
  noself: { apply: (p) => p.showSelf(false), undo: (p) => p.showSelf(true) },
};
const AB = (process.env.BENCH_WALL_AB ?? '').split(',').filter(Boolean);
for (const v of AB)
  if (!AB_VARIANTS[v])
    throw new Error(`BENCH_WALL_AB: unknown variant ${v} (known: ${Object.keys(AB_VARIANTS).join(', ')})`);
const flag = (f: string) => process.argv.includes(f);
const CODEC = 'h264' as const;
/** Lip-sync target (ITU-R BT.1359 detectability is ±45/−125 ms; the room's target is ±80 ms). */
const AV_TARGET_MS = 80;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (x: number) => `${x.toFixed(1)} %`;
const round1 = (x: number) => Math.round(x * 10) / 10;
function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
}
const median = (xs: number[]) => quantile(xs, 0.5);

interface Window {
  path: 'gallery' | 'wall' | 'direct';
  k: number;
  /** Slowest stream's frames per second (decoded for the gallery, presented for the wall). */
  minFps: number;
  dropPct: number;
  p50: number;
  p95: number;
  latencies: number[];
  /** Slowest stream's decoded fps (wall/direct: Chromium's inbound-rtp framesDecoded). */
  decodedFps?: number;
  /** Wall/direct: frames sent but not decoded by Chromium (slowest stream), %. */
  decodedDropPct?: number;
  /** Gallery: frames out of the compositor to the display per second. */
  displayFps?: number;
  /** Wall/direct: capture → received by Chromium p50, and Chromium's mean jitter-buffer delay. */
  receivedP50?: number;
  jitterBufferMs?: number;
  workerCpuPct: number;
  chromiumCpuPct: number;
  senderCpuPct: number;
  perStreamPct: number;
}

const holds = (w: Window) => w.minFps >= 29.7 && w.dropPct < 1;
/** Wall/direct: Chromium decoded every stream at 30 fps (< 1 % missing), painted or not. */
const decodes = (w: Window) =>
  w.decodedFps !== undefined && w.decodedFps >= 29.7 && (w.decodedDropPct ?? 100) < 1;
const goesOn = (w: Window) => holds(w) || (w.path !== 'gallery' && decodes(w));

function describe(w: Window): string {
  const what = w.path === 'gallery' ? 'capture→decoded' : 'glass-to-glass';
  const cpu =
    w.path === 'gallery'
      ? `worker ${pct(w.workerCpuPct).padStart(7)}`
      : `worker ${pct(w.workerCpuPct).padStart(7)} + chromium ${pct(w.chromiumCpuPct).padStart(7)}`;
  const inPage =
    w.path === 'gallery'
      ? `\n          (decoded fps(min) ${w.decodedFps?.toFixed(1)}, compositor → display ${w.displayFps?.toFixed(1)} fps)`
      : w.decodedFps !== undefined
        ? `\n          (Chromium: decoded fps(min) ${w.decodedFps.toFixed(1)}, capture→received p50 ${w.receivedP50?.toFixed(0)} ms, jitter buffer ${w.jitterBufferMs?.toFixed(0)} ms)`
        : '';
  return `${w.path.padEnd(7)} K=${String(w.k).padStart(2)}  shown fps(min) ${w.minFps.toFixed(1).padStart(5)}  drops ${pct(w.dropPct).padStart(6)}  ${what} p50/p95 ${w.p50.toFixed(0)}/${w.p95.toFixed(0)} ms  CPU ${cpu} = ${pct(w.perStreamPct)} per stream  (sender ${pct(w.senderCpuPct)})${holds(w) ? '' : '  ← does not hold 30 fps'}${inPage}`;
}

function newReceiver(wall: boolean): MediaSupervisor {
  const receiver = new MediaSupervisor({
    loopbackOnly: true,
    settings: {
      profile: 'test',
      codec: CODEC,
      tiles: 9,
      galleryWidth: 1920,
      galleryHeight: 1080,
      latencyProbe: !wall,
      wall,
    },
  });
  receiver.on('error', (e) => console.error('receiver:', e.message));
  return receiver;
}

/** CPU of the sender (this process), the worker and Chromium over a window. */
class CpuWindow {
  readonly #t0 = performance.now();
  readonly #self = process.cpuUsage();
  readonly #worker;
  readonly #chrome;
  constructor(private readonly workerPid: number | undefined) {
    this.#worker = snapshot(workerPid ? [workerPid] : []);
    this.#chrome = snapshot(chromiumPids());
  }
  end() {
    const ms = performance.now() - this.#t0;
    const self = process.cpuUsage(this.#self);
    return {
      seconds: ms / 1000,
      senderPct: ((self.user + self.system) / 1000 / ms) * 100,
      workerPct: (used(this.#worker, snapshot(this.workerPid ? [this.workerPid] : [])) / ms) * 100,
      chromiumPct: (used(this.#chrome, snapshot(chromiumPids())) / ms) * 100,
    };
  }
}

async function galleryWindow(sender: WallSender, receiver: MediaSupervisor, k: number): Promise<Window> {
  await sender.connect(k, receiver);
  await sleep(WARMUP_MS);
  const latencies: number[] = [];
  const collect = (s: StatsMessage) => latencies.push(...s.latencyMs);
  const r0 = await new Promise<StatsMessage>((r) => receiver.once('stats', r));
  const cpu = new CpuWindow(receiver.pid);
  const sent0 = sender.framesSent;
  receiver.on('stats', collect);
  await sleep(SECONDS * 1000);
  const r1 = await new Promise<StatsMessage>((r) => receiver.once('stats', r));
  receiver.off('stats', collect);
  const c = cpu.end();
  const sent = sender.framesSent - sent0;
  const decoded = Array.from({ length: k }, (_, i) => {
    const s = senderIndex(i);
    const after = r1.remotes.find((r) => r.senderIndex === s)?.decodedFrames ?? 0;
    const before = r0.remotes.find((r) => r.senderIndex === s)?.decodedFrames ?? 0;
    return after - before;
  });
  // A tile shows a new picture only if its decoder produced one and the compositor output a frame:
  // the slowest stream's decoded frames, capped by the frames the compositor put out (display).
  const displayed = r1.counters.displayFrames - r0.counters.displayFrames;
  const shown = Math.min(...decoded, displayed);
  return {
    path: 'gallery',
    k,
    minFps: shown / c.seconds,
    decodedFps: Math.min(...decoded) / c.seconds,
    displayFps: displayed / c.seconds,
    dropPct: sent > 0 ? Math.max(0, (1 - shown / sent) * 100) : 100,
    p50: quantile(latencies, 0.5),
    p95: quantile(latencies, 0.95),
    latencies,
    workerCpuPct: c.workerPct,
    chromiumCpuPct: 0,
    senderCpuPct: c.senderPct,
    perStreamPct: c.workerPct / k,
  };
}

/** The wall connection of one worker: opened once, reopened when the page lost it. */
class Wall {
  sessionId = randomBytes(18).toString('base64url');
  slots: { mid: string; kind: string; senderIndex?: number }[] = [];
  constructor(
    readonly receiver: MediaSupervisor,
    readonly page: WallPage,
  ) {
    receiver.on('wall-slots', (m) => {
      this.slots = m.slots;
    });
    receiver.on('wall-error', (e) => console.error(`wall-error ${e.message}`));
  }

  async open(): Promise<void> {
    const gotSlots = new Promise((r) => this.receiver.once('wall-slots', r));
    this.sessionId = randomBytes(18).toString('base64url');
    const { sdp } = await this.receiver.openWall(this.sessionId);
    await Promise.race([gotSlots, sleep(1000)]);
    const selfMid = this.slots.find((s) => s.kind === 'self')?.mid ?? '9';
    this.receiver.answerWall(this.sessionId, await this.page.answer(sdp, selfMid));
    await this.page.waitConnected();
  }

  async ensureOpen(): Promise<void> {
    if ((await this.page.state()) !== 'connected') await this.open();
  }

  /** The m-line carrying bench stream i (wall-slots), or null when the worker has not said. */
  midOf(i: number): string | undefined {
    return this.slots.find((s) => s.kind === 'remote' && s.senderIndex === senderIndex(i))?.mid;
  }
}

async function pageWindow(
  path: 'wall' | 'direct',
  sender: WallSender,
  page: WallPage,
  k: number,
  streamMids: () => string[],
  workerPid: number | undefined,
): Promise<Window> {
  await sleep(WARMUP_MS);
  const rtp0 = await page.rtpStats();
  await page.startWindow();
  const cpu = new CpuWindow(workerPid);
  const sent0 = sender.framesSent;
  await sleep(SECONDS * 1000);
  const windows = await page.endWindow();
  const sent = sender.framesSent - sent0;
  const c = cpu.end();
  const rtp1 = await page.rtpStats();
  // Stream i's m-line from wall-slots; if the worker has not said (yet), the remaining remote
  // m-lines that showed frames, in mid order.
  const self = await page.selfMid();
  const active = windows
    .filter((w) => w.presented > 0 && w.mid !== self)
    .map((w) => w.mid)
    .sort((a, b) => Number(a) - Number(b));
  const named = streamMids();
  const spare = active.filter((m) => !named.includes(m));
  const mids = named.map((m) => (m === '?' ? (spare.shift() ?? '?') : m));
  const mine = mids.map(
    (mid) => windows.find((w) => w.mid === mid) ?? { mid, presented: 0, latencyMs: [], receivedMs: [] },
  );
  const presented = mine.length === k ? Math.min(...mine.map((w) => w.presented)) : 0;
  const latencies = mine.flatMap((w) => w.latencyMs);
  const receiving = c.workerPct + c.chromiumPct;
  const decoded = mids.map((mid) => (rtp1[mid]?.decoded ?? 0) - (rtp0[mid]?.decoded ?? 0));
  const jb = mids.map((mid) => rtp1[mid]?.jb ?? Number.NaN);
  return {
    path,
    k,
    minFps: presented / c.seconds,
    dropPct: sent > 0 ? Math.max(0, (1 - presented / sent) * 100) : 100,
    p50: quantile(latencies, 0.5),
    p95: quantile(latencies, 0.95),
    latencies,
    decodedFps: (decoded.length === k ? Math.min(...decoded) : 0) / c.seconds,
    decodedDropPct:
      sent > 0 ? Math.max(0, (1 - (decoded.length === k ? Math.min(...decoded) : 0) / sent) * 100) : 100,
    receivedP50: quantile(
      mine.flatMap((w) => w.receivedMs),
      0.5,
    ),
    jitterBufferMs: (jb.reduce((a, b) => a + b, 0) / jb.length) * 1000,
    workerCpuPct: c.workerPct,
    chromiumCpuPct: c.chromiumPct,
    senderCpuPct: c.senderPct,
    perStreamPct: receiving / k,
  };
}

// ------------------------------------------------------------------ A/V offset

interface AvMark {
  audioMs: number;
  videoMs: number;
  offsetMs: number;
  /** ± on the audio arrival (probe round trip and one mixer buffer). */
  uncertaintyMs: number;
}

/** First loud sample after ≥ 10 ms of quiet in mono S16LE, or −1. */
function onsetIn(pcm: Buffer, threshold = 3000): number {
  const n = pcm.length >> 1;
  let quiet = 0;
  for (let i = 0; i < n; i++) {
    if (Math.abs(pcm.readInt16LE(i * 2)) > threshold) {
      if (quiet >= 480) return i;
      quiet = 0;
    } else quiet++;
  }
  return -1;
}

/**
 * When the beep reached the speaker: the probe returns the last second of speaker output, whose last
 * sample left the mixer between the probe being sent (less one 10 ms mixer buffer) and its answer.
 * Of the probes that contain the onset, the one with the shortest round trip gives the estimate.
 */
async function speakerOnset(
  receiver: MediaSupervisor,
  after: number,
): Promise<{ at: number; pm: number } | undefined> {
  let best: { at: number; pm: number } | undefined;
  const deadline = Date.now() + 2500;
  while (Date.now() < deadline) {
    await sleep(150);
    const t0 = Date.now();
    const p = await receiver.probe();
    const t1 = Date.now();
    if (!p.speaker) continue;
    const pcm = Buffer.from(p.speaker, 'base64');
    const i = onsetIn(pcm);
    if (i < 0) continue;
    const back = ((pcm.length >> 1) - i) / 48;
    const estimate = { at: (t0 - 10 + t1) / 2 - back, pm: (t1 - t0 + 10) / 2 };
    if (estimate.at < after) continue;
    if (!best || estimate.pm < best.pm) best = estimate;
    if (best.pm < 10) break;
  }
  return best;
}

async function measureAv(
  sender: WallSender,
  receiver: MediaSupervisor,
  page: WallPage,
  mid: string,
  marks: number,
): Promise<AvMark[]> {
  await page.watch(mid);
  await page.flashes();
  await page.startWindow();
  const out: AvMark[] = [];
  for (let m = 0; m < marks; m++) {
    await sleep(1200);
    const f0 = sender.flashes.length;
    const b0 = sender.beeps.length;
    const started = Date.now();
    await sender.mark(300);
    const audio = await speakerOnset(receiver, started);
    const flashes = await page.flashes();
    const flash = sender.flashes[f0];
    const beep = sender.beeps[b0];
    // The page's first flash frame; its capture time from its RTP timestamp (relative to the
    // sender's first flash frame: they may differ by a frame).
    const seen = flash ? flashes.find((f) => Math.abs(((f.rtp - flash.rtp) << 0) / 90) < 500) : undefined;
    if (!audio || !flash || beep === undefined || !seen) {
      console.log(
        `  mark ${m + 1}: missed (${!audio ? 'no beep at the speaker ' : ''}${!flash || beep === undefined ? 'not captured ' : ''}${!seen ? 'no flash painted' : ''})`,
      );
      continue;
    }
    // Flash and beep are switched on in one tick: their first captured frame/sample lie within a
    // frame interval and an audio buffer of each other. Farther apart, the sender itself stalled
    // (the load of a shared box) and the mark says nothing about the receiving side.
    if (Math.abs(flash.at - beep) > 150) {
      console.log(
        `  mark ${m + 1}: discarded (sender stalled: flash and beep captured ${(flash.at - beep).toFixed(0)} ms apart)`,
      );
      continue;
    }
    const captured = flash.at + ((seen.rtp - flash.rtp) << 0) / 90;
    const videoMs = seen.paintedAt - captured;
    const audioMs = audio.at - beep;
    out.push({ audioMs, videoMs, offsetMs: audioMs - videoMs, uncertaintyMs: audio.pm });
    console.log(
      `  mark ${m + 1}: beep→speaker ${audioMs.toFixed(0)} ms (±${audio.pm.toFixed(0)}), flash→painted ${videoMs.toFixed(0)} ms, offset ${(audioMs - videoMs).toFixed(0)} ms (capture skew flash−beep ${(flash.at - beep).toFixed(0)} ms)`,
    );
  }
  await page.watch(null);
  // The flash is a whole-picture change (x264's largest frame): every frame's glass-to-glass over
  // the same marks shows what typical motion sees.
  const all = (await page.endWindow()).find((w) => w.mid === mid)?.latencyMs ?? [];
  if (out.length > 0 && all.length > 0) {
    const typical = median(all);
    const audio = median(out.map((m) => m.audioMs));
    console.log(
      `  all frames over these marks: glass-to-glass p50 ${typical.toFixed(0)} ms → offset against typical frames ${(audio - typical).toFixed(0)} ms`,
    );
  }
  return out;
}

function summariseAv(label: string, marks: AvMark[]): number {
  const off = median(marks.map((m) => m.offsetMs));
  console.log(
    `${label}: ${marks.length} marks, audio ${median(marks.map((m) => m.audioMs)).toFixed(0)} ms, video ${median(marks.map((m) => m.videoMs)).toFixed(0)} ms, offset median ${off.toFixed(0)} ms (min ${Math.min(...marks.map((m) => m.offsetMs)).toFixed(0)}, max ${Math.max(...marks.map((m) => m.offsetMs)).toFixed(0)}; positive = audio late)`,
  );
  return off;
}

// ------------------------------------------------------------------ main

/** A fresh receiving worker (wall or gallery) with the bench keys, stopped afterwards. */
async function withReceiver<T>(wall: boolean, run: (r: MediaSupervisor) => Promise<T>): Promise<T> {
  const receiver = newReceiver(wall);
  await receiver.start();
  receiver.setKeys(receiverKeys());
  try {
    return await run(receiver);
  } finally {
    await senderRef?.close();
    await receiver.stop();
  }
}
let senderRef: WallSender | undefined;

/**
 * One window, printed; a K that misses 30 fps is measured once more and the better window kept (other
 * work on this shared box stalls single windows; a K that really does not hold misses both).
 */
async function best(measure: () => Promise<Window>): Promise<Window> {
  const first = await measure();
  console.log(describe(first));
  if (holds(first)) return first;
  const second = await measure();
  console.log(`${describe(second)}  (second window)`);
  return second.minFps - second.dropPct > first.minFps - first.dropPct ? second : first;
}

async function main(): Promise<void> {
  console.log(
    `wall benchmark: 1280x720@30 ${CODEC} + Opus, SFrame + sender authentication, ${SECONDS} s windows, load average before start ${loadavg()[0]?.toFixed(2)} (2 cores, shared machine: figures are noisy)${NICE !== undefined ? `, bench processes at nice ${NICE}` : ''}`,
  );
  const page = await WallPage.open();
  const sender = new WallSender(CODEC);
  senderRef = sender;
  const results: Window[] = [];
  const abResults: { name: string; w: Window }[] = [];
  {
    // What Chromium costs with the page open and nothing to show (counted in every wall window).
    const idle = new CpuWindow(undefined);
    await sleep(5000);
    console.log(`chromium idle (page open, no video): ${pct(idle.end().chromiumPct)}`);
  }
  let avBefore: number | undefined;
  let avAfter: number | undefined;
  let avKnob = '';
  try {
    if (flag('--direct')) {
      for (const k of K_STEPS) {
        await sender.connectPage(k, (o) => page.answer(o));
        const mids = Array.from({ length: k }, (_, i) => String(i));
        const w = await best(() => pageWindow('direct', sender, page, k, () => mids, undefined));
        results.push(w);
        if (!goesOn(w)) break;
      }
      await sender.close();
    }
    // Paired per K (gallery, then wall, each with a fresh worker), so both see the same load.
    let galleryOn = !flag('--no-gallery');
    let wallOn = !flag('--no-wall');
    for (const k of K_STEPS) {
      if (!galleryOn && !wallOn) break;
      if (galleryOn) {
        const w = await withReceiver(false, async (receiver) =>
          best(() => galleryWindow(sender, receiver, k)),
        );
        results.push(w);
        galleryOn = holds(w);
      }
      if (wallOn) {
        const w = await withReceiver(true, async (receiver) => {
          const wall = new Wall(receiver, page);
          await sender.connect(k, receiver);
          await wall.open();
          if (JITTER_TARGET_MS !== undefined) await page.jitterTarget(JITTER_TARGET_MS);
          const mids = () => Array.from({ length: k }, (_, i) => wall.midOf(i) ?? '?');
          const plain = await best(() => pageWindow('wall', sender, page, k, mids, receiver.pid));
          for (const name of AB) {
            const v = AB_VARIANTS[name] as (typeof AB_VARIANTS)[string];
            await v.apply(page);
            const w = await pageWindow('wall', sender, page, k, mids, receiver.pid);
            await v.undo(page);
            abResults.push({ name, w });
            console.log(`${describe(w)}  (A/B: ${name})`);
          }
          return plain;
        });
        results.push(w);
        wallOn = goesOn(w);
      }
    }
    if (!flag('--no-wall') && !flag('--no-av')) {
      await withReceiver(true, async (receiver) => {
        console.log('A/V offset, K = 1 on the wall:');
        const wall = new Wall(receiver, page);
        await sender.connect(1, receiver);
        await wall.open();
        await sleep(WARMUP_MS);
        const before = await measureAv(sender, receiver, page, wall.midOf(0) ?? '0', AV_MARKS);
        if (before.length === 0) return;
        avBefore = summariseAv('A/V offset', before);
        if (Math.abs(avBefore) <= AV_TARGET_MS) return;
        if (avBefore > 0) {
          // Audio late: hold video back in Chromium's jitter buffer by the offset.
          const target = Math.round(avBefore);
          const readBack = await page.jitterTarget(target);
          avKnob = `RTCRtpReceiver.jitterBufferTarget = ${target} ms (read back ${readBack[0]})`;
        } else {
          // Audio early: delay the speaker path in the worker (rebuilds its pipelines).
          const delay = Math.min(500, Math.round(-avBefore));
          await receiver.updateSettings({ audioDelayMs: delay });
          await wall.ensureOpen();
          avKnob = `audioDelayMs = ${delay}`;
        }
        console.log(`outside ±${AV_TARGET_MS} ms: applying ${avKnob}`);
        await sleep(WARMUP_MS);
        const after = await measureAv(sender, receiver, page, wall.midOf(0) ?? '0', AV_MARKS);
        if (after.length > 0) avAfter = summariseAv(`A/V offset with ${avKnob}`, after);
      });
    }
  } finally {
    await sender.close();
    sender.stop();
    await page.close();
  }

  const maxK = (path: Window['path'], ok: (w: Window) => boolean = holds) =>
    Math.max(0, ...results.filter((w) => w.path === path && ok(w)).map((w) => w.k));
  const wallMax = maxK('wall');
  const wallDecoded = maxK('wall', decodes);
  const galleryMax = maxK('gallery');
  // CPU per stream compared at the largest K measured on both paths while both kept up (the
  // gallery showing, Chromium at least decoding every frame): fixed costs amortised alike.
  const at = (path: Window['path'], k: number) => results.find((w) => w.path === path && w.k === k);
  const both = results
    .filter((w) => w.path === 'gallery' && holds(w))
    .map((w) => w.k)
    .filter((k) => {
      const w = at('wall', k);
      return w !== undefined && (holds(w) || decodes(w));
    });
  const common = Math.max(0, ...both);
  const wall1 = at('wall', 1);
  const gallery1 = at('gallery', 1);
  console.log('');
  console.log(
    `largest K holding 30 fps with < 1 % drops: wall ${wallMax} painted (${wallDecoded} decoded by Chromium), GStreamer gallery ${galleryMax}${flag('--direct') ? `, direct ${maxK('direct')}` : ''}`,
  );
  if (wall1)
    console.log(
      `K = 1: wall glass-to-glass p50/p95 ${wall1.p50.toFixed(0)}/${wall1.p95.toFixed(0)} ms (capture→received by Chromium p50 ${wall1.receivedP50?.toFixed(0)} ms)${gallery1 ? `; gallery capture→decoded ${gallery1.p50.toFixed(0)}/${gallery1.p95.toFixed(0)} ms (before compositing and display)` : ''}`,
    );
  const wc = at('wall', common);
  const gc = at('gallery', common);
  console.log(
    `CPU per received stream at K = ${common}: wall ${wc ? pct(wc.perStreamPct) : 'n/a'} (worker + Chromium), gallery ${gc ? pct(gc.perStreamPct) : 'n/a'} (worker)`,
  );
  if (avBefore !== undefined)
    console.log(
      `A/V offset ${avBefore.toFixed(0)} ms${avAfter !== undefined ? `; with ${avKnob}: ${avAfter.toFixed(0)} ms` : ''} (target ±${AV_TARGET_MS} ms, positive = audio late)`,
    );
  if (abResults.length > 0) {
    console.log('A/B on the wall (painted fps of the slowest stream, drops, CPU worker + Chromium):');
    for (const k of [...new Set(abResults.map((a) => a.w.k))]) {
      const plain = at('wall', k);
      const cells = [
        plain
          ? `plain ${plain.minFps.toFixed(1)} fps ${pct(plain.dropPct)} ${pct(plain.workerCpuPct + plain.chromiumCpuPct)}`
          : '',
        ...abResults
          .filter((a) => a.w.k === k)
          .map(
            (a) =>
              `${a.name} ${a.w.minFps.toFixed(1)} fps ${pct(a.w.dropPct)} ${pct(a.w.workerCpuPct + a.w.chromiumCpuPct)}`,
          ),
      ];
      console.log(`  K=${k}: ${cells.join('; ')}`);
    }
  }
  const num = (x: number | undefined) => (x === undefined || Number.isNaN(x) ? null : round1(x));
  console.log(
    JSON.stringify({
      bench: 'wall',
      max_receivers_720p30: wallMax,
      glass_to_glass_ms_p50: num(wall1?.p50),
      glass_to_glass_ms_p95: num(wall1?.p95),
      cpu_pct_per_stream: num(wc?.perStreamPct),
      gallery_max_receivers_720p30: galleryMax,
      gallery_cpu_pct_per_stream: num(gc?.perStreamPct),
      av_offset_ms: num(avAfter ?? avBefore),
      ...(avAfter !== undefined ? { av_offset_ms_before_knob: num(avBefore), av_knob: avKnob } : {}),
      cpu_compared_at_k: common,
      max_receivers_720p30_decoded: wallDecoded,
    }),
  );
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    senderRef?.stop();
    process.exit(130);
  });
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
