// bench:browser's CPU comparison: the browser's cost per received 720p stream with and without
// SFrame, in one run. A page in headless Debian Chromium answers the bench sender's offer (K VP8
// 1280×720@30 streams, browser-sender.ts) and shows every stream in a 640×360 <video>; in the SFrame
// window each receiver runs the web app's own transform worker (src/web/media/transform-worker.ts,
// bundled here with esbuild: WebCrypto SFrame + frame authentication, the code people run), in the
// plain window no transform at all. CPU = utime + stime of every Chromium process (renderer, GPU,
// network, …) from /proc/<pid>/stat over the window (wall-cpu.ts), also split into the renderer
// (where WebRTC decodes and the transform worker runs) and the rest. Windows alternate
// plain/sframe/plain/sframe… so drift in the box's load hits both alike; the medians are compared.
//
// In this bench the page's main thread hands the keys to the transform worker (it plays the E2EE
// worker): the people's page never does (keys go E2EE worker → transform worker over a MessagePort).
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as esbuild from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { findPackageRoot } from '../../device/kiosk/ui-dir.js';
import type { TransformKeys, TransformStats } from '../../src/web/shared/messages.js';
import { type BrowserBenchSender, browserTransformKeys } from './browser-sender.js';
import { descendants, snapshot, used } from './wall-cpu.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>bench:browser</title><style>
html,body{margin:0;background:#000} video{width:640px;height:360px;background:#111}
</style></head><body><div id="tiles"></div><script>
'use strict';
const B = { pc: null, worker: null, port: null, frames: new Map(), nextId: 0, waiting: new Map() };
function startWorker() {
  if (B.worker) return;
  B.worker = new Worker('/transform-worker.js');
  const ch = new MessageChannel();
  B.worker.postMessage({ type: 'port', port: ch.port2 }, [ch.port2]);
  B.port = ch.port1;
  B.worker.onmessage = (e) => { const w = B.waiting.get(e.data.id); if (w) { B.waiting.delete(e.data.id); w(e.data.stats); } };
}
window.bench = {
  async setKeys(keys) {
    startWorker();
    const set = new Promise((resolve) => { B.port.onmessage = (e) => { if (e.data?.type === 'keys-set') resolve(); }; });
    B.port.postMessage(keys);
    await set;
  },
  async answer(offer, sealed) {
    if (B.pc) B.pc.close();
    document.getElementById('tiles').replaceChildren();
    B.frames.clear();
    const pc = new RTCPeerConnection({ iceServers: [] });
    B.pc = pc;
    pc.ontrack = (e) => {
      // Attached synchronously in ontrack (docs/interop.md: before any further await).
      if (sealed) e.receiver.transform = new RTCRtpScriptTransform(B.worker, { side: 'receive', kind: 'video', source: 'camera', codec: 'vp8' });
      const v = document.createElement('video');
      v.muted = true; v.autoplay = true; v.playsInline = true;
      v.srcObject = new MediaStream([e.track]);
      document.getElementById('tiles').append(v);
      const mid = e.transceiver.mid;
      B.frames.set(mid, 0);
      const onFrame = () => { B.frames.set(mid, (B.frames.get(mid) || 0) + 1); v.requestVideoFrameCallback(onFrame); };
      v.requestVideoFrameCallback(onFrame);
      v.play().catch(() => {});
    };
    await pc.setRemoteDescription({ type: 'offer', sdp: offer });
    await pc.setLocalDescription(await pc.createAnswer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const t = setTimeout(resolve, 2000);
      pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); } });
    });
    return pc.localDescription.sdp;
  },
  async counters() {
    let framesDecoded = 0, width = 0, height = 0;
    if (B.pc) (await B.pc.getStats()).forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'video') { framesDecoded += s.framesDecoded || 0; width = Math.max(width, s.frameWidth || 0); height = Math.max(height, s.frameHeight || 0); }
    });
    const painted = [...B.frames.values()];
    let transform = null;
    if (B.worker) {
      const id = ++B.nextId;
      transform = await new Promise((resolve) => { B.waiting.set(id, resolve); B.worker.postMessage({ type: 'stats', id }); setTimeout(() => resolve(null), 1000); });
    }
    return { framesDecoded, width, height, painted, transform };
  },
};
</script></body></html>`;

async function bundleTransformWorker(): Promise<string> {
  const root = findPackageRoot();
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: [join(root, 'src/web/media/transform-worker.ts')],
    bundle: true,
    format: 'iife',
    target: ['chrome120', 'firefox128'],
    platform: 'browser',
    write: false,
    logLevel: 'warning',
  });
  const file = result.outputFiles[0];
  if (!file) throw new Error('esbuild produced no transform worker');
  return file.text;
}

export interface CpuPage {
  page: Page;
  close(): Promise<void>;
}

export async function openCpuPage(browser: Browser): Promise<CpuPage> {
  const worker = await bundleTransformWorker();
  const server: Server = createServer((req, res) => {
    if (req.url === '/transform-worker.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(worker);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const page = await browser.newPage({ viewport: { width: 1300, height: 760 } });
  page.on('pageerror', (e) => console.error('bench page error:', e.message));
  await page.goto(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  await page.waitForFunction(() => 'bench' in window);
  return {
    page,
    async close() {
      await page.close().catch(() => undefined);
      await new Promise((r) => server.close(() => r(undefined)));
    },
  };
}

interface Counters {
  framesDecoded: number;
  width: number;
  height: number;
  painted: number[];
  transform: TransformStats | null;
}

const counters = (p: Page) =>
  p.evaluate(() => (window as unknown as { bench: { counters(): Promise<Counters> } }).bench.counters());

/** Chromium's processes (children of this process whose command name says so), by role. */
function chromiumProcesses(): { renderer: number[]; other: number[] } {
  const out = { renderer: [] as number[], other: [] as number[] };
  for (const p of descendants(process.pid)) {
    if (!/chrom/i.test(p.comm)) continue;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${p.pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    (cmd.includes('--type=renderer') ? out.renderer : out.other).push(p.pid);
  }
  return out;
}

export interface CpuWindow {
  mode: 'plain' | 'sframe';
  k: number;
  seconds: number;
  /** All Chromium processes, % of one core. */
  chromiumPct: number;
  rendererPct: number;
  /** Per received stream. */
  perStreamPct: number;
  /** Frames Chromium decoded per second (all streams) and painted per second (slowest stream). */
  decodedFps: number;
  paintedFpsMin: number;
  width: number;
  height: number;
  /** SFrame window: frames the transform opened / refused in the window. */
  opened?: number;
  refused?: number;
}

/** One measured window: connect K streams in `mode`, warm up, measure. */
export async function cpuWindow(
  sender: BrowserBenchSender,
  cpuPage: CpuPage,
  k: number,
  mode: 'plain' | 'sframe',
  opts: { warmupMs: number; seconds: number },
): Promise<CpuWindow> {
  const page = cpuPage.page;
  if (mode === 'sframe')
    await page.evaluate(
      (keys) =>
        (window as unknown as { bench: { setKeys(k: TransformKeys): Promise<void> } }).bench.setKeys(keys),
      browserTransformKeys(k),
    );
  await sender.connectPage(k, mode === 'sframe', (offer) =>
    page.evaluate(
      ([o, s]) =>
        (window as unknown as { bench: { answer(o: string, s: boolean): Promise<string> } }).bench.answer(
          o,
          s,
        ),
      [offer, mode === 'sframe'] as [string, boolean],
    ),
  );
  await sleep(opts.warmupMs);
  const c0 = await counters(page);
  const procs = chromiumProcesses();
  const r0 = snapshot(procs.renderer);
  const o0 = snapshot(procs.other);
  const t0 = performance.now();
  await sleep(opts.seconds * 1000);
  const ms = performance.now() - t0;
  const rendererMs = used(r0, snapshot(procs.renderer));
  const otherMs = used(o0, snapshot(procs.other));
  const c1 = await counters(page);
  const stream = (c: Counters) => c.transform?.streams['receive-camera'];
  const opened = mode === 'sframe' ? (stream(c1)?.opened ?? 0) - (stream(c0)?.opened ?? 0) : undefined;
  const failedSum = (c: Counters) => Object.values(stream(c)?.failed ?? {}).reduce((a, b) => a + b, 0);
  const refused = mode === 'sframe' ? failedSum(c1) - failedSum(c0) : undefined;
  const chromiumPct = ((rendererMs + otherMs) / ms) * 100;
  const painted = c1.painted.map((p, i) => (p - (c0.painted[i] ?? 0)) / (ms / 1000));
  return {
    mode,
    k,
    seconds: ms / 1000,
    chromiumPct,
    rendererPct: (rendererMs / ms) * 100,
    perStreamPct: chromiumPct / k,
    decodedFps: (c1.framesDecoded - c0.framesDecoded) / (ms / 1000),
    paintedFpsMin: painted.length === k ? Math.min(...painted) : 0,
    width: c1.width,
    height: c1.height,
    ...(opened !== undefined ? { opened } : {}),
    ...(refused !== undefined ? { refused } : {}),
  };
}
