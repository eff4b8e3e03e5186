// A stand-in kiosk page for wall tests and benchmarks: real Debian Chromium (playwright-core) with a
// blank page, served from 127.0.0.1, that answers the media worker's wall offer with its own
// RTCPeerConnection, shows each received track in a <video> per mid, and reports per mid what a
// viewer would see: frames painted (requestVideoFrameCallback), the average colour of the picture, a
// small grey thumbnail (to tell a moving picture from a frozen one), keyframes received (an
// RTCRtpScriptTransform that passes every frame through and can ask for a keyframe: a real PLI) and
// the inbound-rtp stats.
import { type Server, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type Browser, type Page, chromium } from 'playwright-core';
import { CHROMIUM, CHROMIUM_ARGS } from './browser/chromium.js';

export interface TileReport {
  mid: string;
  /** Frames painted in the <video> (requestVideoFrameCallback). */
  painted: number;
  width: number;
  height: number;
  /** Average RGB of the picture (undefined before the first frame). */
  avg?: [number, number, number];
  /** Encoded frames received per type (script transform). */
  keyFrames: number;
  deltaFrames: number;
  framesDecoded: number;
  keyFramesDecoded: number;
  /** PLIs this page sent on this m-line. */
  pliCount: number;
}

export interface Thumbnail {
  avg: [number, number, number];
  /** 32×18 grey levels. */
  grey: number[];
}

const WORKER_JS = `
const counts = new Map();
const askers = new Map();
onrtctransform = (event) => {
  const t = event.transformer;
  const mid = t.options.mid;
  const c = { key: 0, delta: 0 };
  counts.set(mid, c);
  askers.set(mid, () => (t.sendKeyFrameRequest ? t.sendKeyFrameRequest().then(() => true, () => false) : Promise.resolve(false)));
  t.readable.pipeThrough(new TransformStream({
    transform(frame, controller) {
      if (frame.type === 'key') c.key++; else c.delta++;
      controller.enqueue(frame);
    },
  })).pipeTo(t.writable);
};
onmessage = async (e) => {
  if (e.data.type === 'counts') postMessage({ id: e.data.id, counts: Object.fromEntries(counts) });
  if (e.data.type === 'keyframe') {
    const ask = askers.get(e.data.mid);
    postMessage({ id: e.data.id, ok: ask ? await ask() : false });
  }
};
`;

const PAGE_HTML = `<!doctype html><html><head><meta charset="utf-8"><title>wall test page</title>
<style>body{margin:0;background:#000} video{width:160px;height:90px;margin:2px;background:#222}</style></head>
<body><div id="tiles"></div><script>
const worker = new Worker('/worker.js');
let nextId = 0;
const waiting = new Map();
worker.onmessage = (e) => { waiting.get(e.data.id)?.(e.data); waiting.delete(e.data.id); };
const ask = (msg) => new Promise((resolve) => { const id = ++nextId; waiting.set(id, resolve); worker.postMessage({ ...msg, id }); });
const tiles = new Map();
window.wall = {
  pc: undefined,
  async answer(offer) {
    const pc = new RTCPeerConnection({ iceServers: [] });
    this.pc = pc;
    pc.ontrack = (e) => {
      const mid = e.transceiver.mid;
      e.receiver.transform = new RTCRtpScriptTransform(worker, { mid });
      const video = document.createElement('video');
      video.muted = true; video.autoplay = true; video.playsInline = true; video.dataset.mid = mid;
      video.srcObject = new MediaStream([e.track]);
      document.getElementById('tiles').append(video);
      const tile = { video, painted: 0 };
      tiles.set(mid, tile);
      const count = () => { tile.painted++; video.requestVideoFrameCallback(count); };
      video.requestVideoFrameCallback(count);
      video.play().catch(() => {});
    };
    await pc.setRemoteDescription({ type: 'offer', sdp: offer });
    await pc.setLocalDescription(await pc.createAnswer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const t = setTimeout(resolve, 2000);
      pc.addEventListener('icegatheringstatechange', () => {
        if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
      });
    });
    return pc.localDescription.sdp;
  },
  state() { return this.pc ? this.pc.connectionState : 'none'; },
  thumbnail(mid) {
    const tile = tiles.get(mid);
    if (!tile || tile.video.videoWidth === 0) return undefined;
    const c = document.createElement('canvas'); c.width = 32; c.height = 18;
    const g = c.getContext('2d', { willReadFrequently: true });
    g.drawImage(tile.video, 0, 0, 32, 18);
    const d = g.getImageData(0, 0, 32, 18).data;
    let r = 0, gr = 0, b = 0; const grey = [];
    for (let i = 0; i < d.length; i += 4) { r += d[i]; gr += d[i + 1]; b += d[i + 2]; grey.push(Math.round((d[i] + d[i + 1] + d[i + 2]) / 3)); }
    const n = d.length / 4;
    return { avg: [Math.round(r / n), Math.round(gr / n), Math.round(b / n)], grey };
  },
  async report() {
    const counts = (await ask({ type: 'counts' })).counts;
    const inbound = new Map();
    if (this.pc) {
      const stats = await this.pc.getStats();
      stats.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'video') inbound.set(s.mid, s); });
    }
    const out = [];
    for (const [mid, tile] of tiles) {
      const s = inbound.get(mid) ?? {};
      const c = counts[mid] ?? { key: 0, delta: 0 };
      const thumb = this.thumbnail(mid);
      out.push({ mid, painted: tile.painted, width: tile.video.videoWidth, height: tile.video.videoHeight,
        avg: thumb?.avg, keyFrames: c.key, deltaFrames: c.delta, framesDecoded: s.framesDecoded ?? 0,
        keyFramesDecoded: s.keyFramesDecoded ?? 0, pliCount: s.pliCount ?? 0 });
    }
    return out;
  },
  async requestKeyframe(mid) { return (await ask({ type: 'keyframe', mid })).ok; },
  close() { this.pc?.close(); },
};
</script></body></html>`;

/** Serves the page and its transform worker on 127.0.0.1. */
async function servePage(): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/worker.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' });
      res.end(WORKER_JS);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(PAGE_HTML);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

export class WallPage {
  private constructor(readonly page: Page) {}

  static async open(browser: WallBrowser): Promise<WallPage> {
    const page = await browser.browser.newPage({ viewport: { width: 800, height: 400 } });
    await page.goto(browser.url);
    await page.waitForFunction(() => 'wall' in window);
    return new WallPage(page);
  }

  /** Answers the worker's offer; returns the answer SDP (ICE gathered, no trickle). */
  answer(offer: string): Promise<string> {
    return this.page.evaluate((sdp) => (window as unknown as WallWindow).wall.answer(sdp), offer);
  }

  connectionState(): Promise<string> {
    return this.page.evaluate(() => (window as unknown as WallWindow).wall.state());
  }

  /** Per mid: painted frames, picture size and average colour, keyframes, PLIs. */
  async report(): Promise<Map<string, TileReport>> {
    const list = await this.page.evaluate(() => (window as unknown as WallWindow).wall.report());
    return new Map(list.map((t) => [t.mid, t]));
  }

  thumbnail(mid: string): Promise<Thumbnail | undefined> {
    return this.page.evaluate((m) => (window as unknown as WallWindow).wall.thumbnail(m), mid);
  }

  /** Whether the picture of `mid` changes within `ms` (mean absolute grey difference > `threshold`). */
  async moving(mid: string, ms = 700, threshold = 4): Promise<boolean> {
    const a = await this.thumbnail(mid);
    await new Promise((r) => setTimeout(r, ms));
    const b = await this.thumbnail(mid);
    if (!a || !b) return false;
    let diff = 0;
    for (let i = 0; i < a.grey.length; i++) diff += Math.abs((a.grey[i] ?? 0) - (b.grey[i] ?? 0));
    return diff / a.grey.length > threshold;
  }

  /** A real keyframe request (RTCP PLI) from Chromium on `mid`. */
  requestKeyframe(mid: string): Promise<boolean> {
    return this.page.evaluate((m) => (window as unknown as WallWindow).wall.requestKeyframe(m), mid);
  }

  async close(): Promise<void> {
    await this.page.evaluate(() => (window as unknown as WallWindow).wall.close()).catch(() => undefined);
    await this.page.close().catch(() => undefined);
  }
}

interface WallWindow {
  wall: {
    answer(sdp: string): Promise<string>;
    state(): string;
    report(): Promise<TileReport[]>;
    thumbnail(mid: string): Thumbnail | undefined;
    requestKeyframe(mid: string): Promise<boolean>;
    close(): void;
  };
}

export interface WallBrowser {
  browser: Browser;
  url: string;
  close(): Promise<void>;
}

/** Debian Chromium with the WebRTC-on-loopback flags, and the page server. */
export async function launchWallBrowser(): Promise<WallBrowser> {
  const server = await servePage();
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  const { port } = server.address() as AddressInfo;
  return {
    browser,
    url: `http://127.0.0.1:${port}/`,
    async close() {
      await browser.close().catch(() => undefined);
      await new Promise((r) => server.close(() => r(undefined)));
    },
  };
}

/** The fingerprint line of an SDP (its DTLS certificate). */
export const fingerprintOf = (sdp: string) => /^a=fingerprint:.*$/m.exec(sdp)?.[0];

/** ICE candidate addresses in an SDP. */
export const candidateAddresses = (sdp: string) =>
  [...sdp.matchAll(/^a=candidate:\S+ \d+ \S+ \d+ (\S+) \d+ typ/gm)].map((m) => m[1] as string);

/** Is `avg` close to `rgb` (each channel within `tol`)? */
export const near = (avg: readonly number[] | undefined, rgb: readonly number[], tol = 50) =>
  !!avg && avg.every((v, i) => Math.abs(v - (rgb[i] ?? 0)) <= tol);
