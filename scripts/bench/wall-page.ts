// bench:wall's kiosk stand-in: real headless Debian Chromium (playwright-core, /usr/bin/chromium, the
// WebRTC flags of test/browser/chromium.ts) at 1920×1080, answering a wall offer and painting every
// video m-line in a <video> (3×3 grid, the self-view small in a corner). Everything measured is
// measured in the page, per m-line, with requestVideoFrameCallback: frames presented
// (metadata.presentedFrames), glass-to-glass = expectedDisplayTime (in Node's wall clock via a
// calibration round trip) − the RTP timestamp (the sender's capture wall clock at 90 kHz), and the
// paint time of the sender's white marker frames (a 16×16 thumbnail of the presented frame).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { type Browser, chromium, type Page } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from '../../test/browser/chromium.js';

export interface MidWindow {
  mid: string;
  /** Frames presented (composited) in the window. */
  presented: number;
  /** Glass-to-glass samples (ms), one per rVFC callback that carried an RTP timestamp. */
  latencyMs: number[];
  /** Capture → received by Chromium (rVFC receiveTime), same frames. */
  receivedMs: number[];
}

export interface Flash {
  mid: string;
  /** Paint time (Node wall clock, ms) and RTP timestamp of the first white frame of a mark. */
  paintedAt: number;
  rtp: number;
}

/**
 * What bench:wall launches Chromium with (headless, 1920×1080 viewport): the WebRTC flags of
 * test/browser/chromium.ts; headless Chromium runs the page's renderer as a background process (nice
 * +5 on Linux), the kiosk's page is the visible foreground one, so the bench keeps it at normal
 * priority. bench:wall-ceiling launches with the same.
 */
export const WALL_PAGE_LAUNCH_ARGS = [
  ...CHROMIUM_ARGS,
  '--disable-renderer-backgrounding',
  '--disable-background-timer-throttling',
];

/**
 * BENCH_CHROMIUM_GL=swiftshader: composite with Chromium's software GL (SwiftShader, multithreaded)
 * instead of its software compositor (--disable-gpu, the default of every headless test here).
 */
function chromiumArgs(): string[] {
  if (process.env.BENCH_CHROMIUM_GL !== 'swiftshader') return WALL_PAGE_LAUNCH_ARGS;
  return [
    ...WALL_PAGE_LAUNCH_ARGS.filter((a) => a !== '--disable-gpu'),
    '--use-angle=swiftshader',
    '--enable-unsafe-swiftshader',
  ];
}

const PAGE = `<!doctype html><html><head><meta charset="utf-8"><title>bench:wall</title><style>
html,body{margin:0;width:1920px;height:1080px;background:#000;overflow:hidden}
#grid{display:grid;grid-template-columns:repeat(3,640px);grid-template-rows:repeat(3,360px)}
video{width:640px;height:360px;object-fit:cover;background:#111}
#self{position:absolute;right:24px;bottom:24px;width:320px;height:180px;border:2px solid #fff}
</style><style id="ab"></style></head><body><div id="grid"></div><script>
'use strict';
const S = { offset: 0, tiles: new Map(), flashes: [], watch: null, pc: null, selfMid: null, selfStream: null };
const thumb = document.createElement('canvas');
thumb.width = 16; thumb.height = 16;
const tctx = thumb.getContext('2d', { willReadFrequently: true });
function wallNow(pageMs) { return performance.timeOrigin + pageMs + S.offset; }
function track(mid, video) {
  const t = { video, presented: 0, base: 0, lat: [], net: [], white: false };
  S.tiles.set(mid, t);
  const onFrame = (_now, md) => {
    t.presented = md.presentedFrames;
    if (md.rtpTimestamp !== undefined) {
      const paint = wallNow(md.expectedDisplayTime);
      const behind = (((Math.round(paint * 90) % 4294967296) - md.rtpTimestamp + 4294967296) % 4294967296) / 90;
      t.lat.push(Math.round(behind * 10) / 10);
      if (t.lat.length > 20000) t.lat.shift();
      if (md.receiveTime !== undefined) {
        // Capture → the frame's last packet received by Chromium: the part before the page.
        const rx = wallNow(md.receiveTime);
        t.net.push(Math.round(((((Math.round(rx * 90) % 4294967296) - md.rtpTimestamp + 4294967296) % 4294967296) / 90) * 10) / 10);
        if (t.net.length > 20000) t.net.shift();
      }
      if (S.watch === mid) {
        tctx.drawImage(video, 0, 0, 16, 16);
        const px = tctx.getImageData(0, 0, 16, 16).data;
        let sum = 0;
        for (let i = 0; i < px.length; i += 4) sum += px[i];
        const white = sum / 256 > 200;
        if (white && !t.white) S.flashes.push({ mid, paintedAt: paint, rtp: md.rtpTimestamp });
        t.white = white;
      }
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}
window.bench = {
  setOffset(ms) { S.offset = ms; },
  watch(mid) { S.watch = mid; },
  flashes() { const f = S.flashes; S.flashes = []; return f; },
  async answer(offer, selfMid) {
    if (S.pc) S.pc.close();
    S.selfMid = selfMid ?? null;
    for (const t of S.tiles.values()) t.video.remove();
    S.tiles.clear();
    const pc = new RTCPeerConnection({ iceServers: [] });
    S.pc = pc;
    const grid = document.getElementById('grid');
    pc.ontrack = (e) => {
      const mid = e.transceiver.mid;
      const video = document.createElement('video');
      video.muted = true; video.autoplay = true; video.playsInline = true;
      video.dataset.mid = mid;
      if (mid === selfMid) { video.id = 'self'; document.body.appendChild(video); }
      else grid.appendChild(video);
      video.srcObject = new MediaStream([e.track]);
      track(mid, video);
    };
    await pc.setRemoteDescription({ type: 'offer', sdp: offer });
    await pc.setLocalDescription(await pc.createAnswer());
    if (pc.iceGatheringState !== 'complete') {
      await new Promise((resolve) => {
        const done = () => { if (pc.iceGatheringState === 'complete') resolve(); };
        pc.addEventListener('icegatheringstatechange', done);
        setTimeout(resolve, 2000);
      });
    }
    return pc.localDescription.sdp;
  },
  state() { return S.pc ? S.pc.connectionState : 'none'; },
  selfMid() { return S.selfMid; },
  showSelf(on) {
    const v = document.getElementById('self');
    if (!v) return;
    if (!on && v.srcObject) { S.selfStream = v.srcObject; v.srcObject = null; }
    if (on && !v.srcObject && S.selfStream) v.srcObject = S.selfStream;
  },
  setCss(css) { document.getElementById('ab').textContent = css; },
  jitterTarget(ms) {
    for (const r of S.pc.getReceivers()) r.jitterBufferTarget = ms;
    return S.pc.getReceivers().map((r) => r.jitterBufferTarget);
  },
  startWindow() {
    for (const t of S.tiles.values()) { t.base = t.presented; t.lat = []; t.net = []; }
  },
  endWindow() {
    return [...S.tiles].map(([mid, t]) => ({ mid, presented: t.presented - t.base, latencyMs: t.lat, receivedMs: t.net }));
  },
  async rtpStats() {
    const out = {};
    if (!S.pc) return out;
    for (const tr of S.pc.getTransceivers()) {
      const st = await tr.receiver.getStats();
      st.forEach((r) => {
        if (r.type === 'inbound-rtp') out[tr.mid] = { received: r.framesReceived, decoded: r.framesDecoded, dropped: r.framesDropped, jb: r.jitterBufferDelay / Math.max(1, r.jitterBufferEmittedCount), decodeMs: 1000 * r.totalDecodeTime / Math.max(1, r.framesDecoded), keyframes: r.keyFramesDecoded, freezes: r.freezeCount, pli: r.pliCount, nack: r.nackCount, lost: r.packetsLost };
      });
    }
    return out;
  },
};
</script></body></html>`;

const nowMs = () => performance.timeOrigin + performance.now();

export class WallPage {
  private constructor(
    readonly browser: Browser,
    readonly page: Page,
    private readonly server: Server,
  ) {}

  static async open(): Promise<WallPage> {
    // Served from 127.0.0.1 (a secure context, like the kiosk's control server).
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(PAGE);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: chromiumArgs() });
    const context = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
    const page = await context.newPage();
    page.on('pageerror', (e) => console.error('page:', e.message));
    await page.goto(`http://127.0.0.1:${port}/`);
    const p = new WallPage(browser, page, server);
    await p.calibrate();
    return p;
  }

  /** Node wall clock − page wall clock, from the tightest of several round trips; set in the page. */
  async calibrate(): Promise<{ offset: number; uncertainty: number }> {
    let best = { offset: 0, uncertainty: Number.POSITIVE_INFINITY };
    for (let i = 0; i < 15; i++) {
      const before = nowMs();
      const pageTime = await this.page.evaluate(() => performance.timeOrigin + performance.now());
      const after = nowMs();
      const half = (after - before) / 2;
      if (half < best.uncertainty) best = { offset: before + half - pageTime, uncertainty: half };
    }
    await this.page.evaluate((ms) => (window as unknown as BenchApi).bench.setOffset(ms), best.offset);
    return best;
  }

  /** Answers an offer (ICE gathering complete, ≤ 2 s); `selfMid` goes to the self-view corner. */
  answer(offer: string, selfMid?: string): Promise<string> {
    return this.page.evaluate(([o, s]) => (window as unknown as BenchApi).bench.answer(o as string, s), [
      offer,
      selfMid,
    ] as const);
  }

  /** The m-line shown as the self-view (null: none). */
  selfMid(): Promise<string | null> {
    return this.page.evaluate(() => (window as unknown as BenchApi).bench.selfMid());
  }

  /** A/B: stop (false) or resume (true) painting the self-view. */
  showSelf(on: boolean): Promise<void> {
    return this.page.evaluate((v) => (window as unknown as BenchApi).bench.showSelf(v), on);
  }

  /** A/B: extra CSS for the page (an empty string removes it). */
  setCss(css: string): Promise<void> {
    return this.page.evaluate((c) => (window as unknown as BenchApi).bench.setCss(c), css);
  }

  /** The page's PeerConnection state ('none' before the first answer). */
  state(): Promise<string> {
    return this.page.evaluate(() => (window as unknown as BenchApi).bench.state());
  }

  async waitConnected(timeoutMs = 15000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const s = await this.state();
      if (s === 'connected') return;
      if (Date.now() > deadline) throw new Error(`wall page: PeerConnection ${s}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  startWindow(): Promise<void> {
    return this.page.evaluate(() => (window as unknown as BenchApi).bench.startWindow());
  }

  endWindow(): Promise<MidWindow[]> {
    return this.page.evaluate(() => (window as unknown as BenchApi).bench.endWindow());
  }

  watch(mid: string | null): Promise<void> {
    return this.page.evaluate((m) => (window as unknown as BenchApi).bench.watch(m), mid);
  }

  flashes(): Promise<Flash[]> {
    return this.page.evaluate(() => (window as unknown as BenchApi).bench.flashes());
  }

  /** inbound-rtp stats per mid (frames received/decoded/dropped, jitter buffer, decode time). */
  rtpStats(): Promise<Record<string, Record<string, number>>> {
    return this.page.evaluate(() => (window as unknown as BenchApi).bench.rtpStats());
  }

  /** RTCRtpReceiver.jitterBufferTarget (ms) on every receiver; returns what the page reads back. */
  jitterTarget(ms: number | null): Promise<(number | null)[]> {
    return this.page.evaluate((v) => (window as unknown as BenchApi).bench.jitterTarget(v), ms);
  }

  async close(): Promise<void> {
    await this.browser.close().catch(() => undefined);
    await new Promise((r) => this.server.close(r));
  }
}

interface BenchApi {
  bench: {
    setOffset(ms: number): void;
    answer(offer: string, selfMid: string | undefined): Promise<string>;
    state(): string;
    selfMid(): string | null;
    showSelf(on: boolean): void;
    setCss(css: string): void;
    startWindow(): void;
    endWindow(): MidWindow[];
    watch(mid: string | null): void;
    flashes(): Flash[];
    jitterTarget(ms: number | null): (number | null)[];
    rtpStats(): Promise<Record<string, Record<string, number>>>;
  };
}
