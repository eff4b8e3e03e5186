// The wall end to end, as `npm start` runs it: `sealroom demo` starts the provisioning service, a
// relay and two room daemons as real processes, each with a real GStreamer media worker (profile
// demo: test sources; wall on) whose test camera shows its own moving pattern (Boardroom: SMPTE
// bars; Huddle Room: the `colors` rainbow grid). Real Debian Chromium opens Boardroom's kiosk URL
// (token in the fragment) and we read the pixels it decodes: the far room's tile must carry the
// Huddle Room pattern's colours (and none of Boardroom's), change over time, be labelled with the
// name Boardroom verified, sit beside a readable security code (full size at first, then a band),
// and the self-view must show Boardroom's own bars; Huddle Room's kiosk shows the reverse. Then the
// attacker: the same URL without the token, the session routes without or with a wrong token (or
// the other room's), and a page on another origin that even knows the token.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { type Browser, chromium, type ElementHandle, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPackageRoot } from '../device/kiosk/ui-dir.js';
import { DEMO_ROOMS } from '../src/cli/demo.js';
import { buildKioskUi, CHROMIUM_PATH, digitInkHeights, HEADLESS_ARGS } from './kiosk-browser.js';

const ROOT = findPackageRoot();
const ARTIFACTS = join(ROOT, 'test-artifacts', 'kiosk');
const [ROOM_A, ROOM_B] = DEMO_ROOMS;
/** WebRTC on loopback in headless Chromium (as test/browser/chromium.ts), no camera needed. */
const WALL_ARGS = [
  ...HEADLESS_ARGS,
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
  '--autoplay-policy=no-user-gesture-required',
];

// What the kiosk page marks (kiosk-ui/src/view.ts: videoTile, codeDigits).
const TILE = '[data-testid=wall-tile]';
const remoteTile = (senderIndex?: number) =>
  senderIndex === undefined
    ? `${TILE}[data-kind=remote]`
    : `${TILE}[data-kind=remote][data-sender-index="${senderIndex}"]`;
const SELF_TILE = `${TILE}[data-kind=self]`;
const CODE = '[data-testid=security-code]';

interface RosterEntry {
  roomName: string;
  org: string;
  isSelf: boolean;
  senderIndex?: number;
}
interface StateLike {
  meeting?: { status: string; securityCode?: string; roster: RosterEntry[] };
}

let demo: ChildProcess | undefined;
let demoExit: Promise<unknown> | undefined;
let out = '';
let err = '';
let ui: { dir: string; remove(): void } | undefined;
let browser: Browser | undefined;
/** Room A (Boardroom): kiosk URL as printed, its origin, the token; room B's control origin. */
let kioskA = '';
let originA = '';
let token = '';
let originB = '';

async function getState(origin: string): Promise<StateLike> {
  return (await (await fetch(new URL('/api/state', origin))).json()) as StateLike;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  // The daemons serve the kiosk UI as built from today's kiosk-ui/ sources.
  ui = buildKioskUi();
  demo = spawn(
    process.execPath,
    // --duration: even if this test process dies, the demo (and every part it started) ends by itself.
    ['--import', 'tsx', 'src/cli/sealroom.ts', 'demo', '--media', 'worker', '--duration', '900'],
    {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, SEALROOM_LOG_LEVEL: 'warn', SEALROOM_KIOSK_UI_DIR: ui.dir },
    },
  );
  demo.stdin?.end();
  demo.stdout?.on('data', (c: Buffer) => {
    out += c.toString();
  });
  demo.stderr?.on('data', (c: Buffer) => {
    err += c.toString();
  });
  const child = demo;
  demoExit = new Promise((resolve) => child.once('exit', resolve));
  await Promise.race([
    waitFor('the demo to be up', async () => (/Running for \d+ s/.test(out) ? true : undefined), 240_000),
    demoExit.then(() => {
      throw new Error(`the demo ended early:\n${out}\n${err}`);
    }),
  ]);
  const kiosk = (room: string) =>
    new RegExp(`${room} kiosk\\s+(http://127\\.0\\.0\\.1:\\d+/(?:#wall=[A-Za-z0-9_-]+)?)`).exec(out)?.[1] ??
    '';
  kioskA = kiosk(ROOM_A.name);
  originA = new URL(kioskA).origin;
  originB = new URL(kiosk(ROOM_B.name)).origin;
  token = /#wall=([A-Za-z0-9_-]+)$/.exec(kioskA)?.[1] ?? '';
  browser = await chromium.launch({ executablePath: CHROMIUM_PATH, headless: true, args: WALL_ARGS });
}, 300_000);

afterAll(async () => {
  await browser?.close();
  if (demo && demo.exitCode === null && demo.signalCode === null) {
    const child = demo;
    const kill = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.kill('SIGTERM');
    await demoExit;
    clearTimeout(kill);
  }
  ui?.remove();
}, 60_000);

/** What a <video> shows now, read from the decoded frame (drawn into a canvas at its own size). */
interface Sample {
  width: number;
  height: number;
  /** Share of pixels with an orange hue (15–45°, saturated, bright): in `colors`, never in SMPTE bars. */
  orange: number;
  /** Share of pixels near one of the fully saturated bar colours (white, yellow, cyan, …): SMPTE bars. */
  nearBar: number;
  /** Frames the element has decoded so far. */
  decoded: number;
  /** 160×90 luma thumbnail, to see the picture move. */
  luma: number[];
}

function sample(video: ElementHandle<HTMLVideoElement>): Promise<Sample> {
  return video.evaluate((v) => {
    const width = v.videoWidth;
    const height = v.videoHeight;
    const decoded = v.getVideoPlaybackQuality().totalVideoFrames;
    if (!width || !height) return { width, height, orange: 0, nearBar: 0, decoded, luma: [] };
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext('2d', { willReadFrequently: true });
    if (!ctx) throw new Error('no 2d context');
    ctx.drawImage(v, 0, 0, width, height);
    const px = ctx.getImageData(0, 0, width, height).data;
    const bars = [
      [255, 255, 255],
      [255, 255, 0],
      [0, 255, 255],
      [0, 255, 0],
      [255, 0, 255],
      [255, 0, 0],
      [0, 0, 255],
    ];
    let orange = 0;
    let nearBar = 0;
    for (let i = 0; i < px.length; i += 4) {
      const r = px[i] ?? 0;
      const g = px[i + 1] ?? 0;
      const b = px[i + 2] ?? 0;
      const max = Math.max(r, g, b);
      const min = Math.min(r, g, b);
      const d = max - min;
      // Hue in degrees; orange lies between red (0°) and yellow (60°), with red the largest channel.
      if (max === r && d > 0 && d / max > 0.5 && max > 128) {
        const hue = (((g - b) / d + 6) % 6) * 60;
        if (hue >= 15 && hue <= 45) orange++;
      }
      for (const [R = 0, G = 0, B = 0] of bars)
        if (Math.abs(r - R) + Math.abs(g - G) + Math.abs(b - B) < 60) {
          nearBar++;
          break;
        }
    }
    const n = px.length / 4;
    const thumb = document.createElement('canvas');
    thumb.width = 160;
    thumb.height = 90;
    const tctx = thumb.getContext('2d', { willReadFrequently: true });
    if (!tctx) throw new Error('no 2d context');
    tctx.drawImage(v, 0, 0, 160, 90);
    const t = tctx.getImageData(0, 0, 160, 90).data;
    const luma: number[] = [];
    for (let i = 0; i < t.length; i += 4)
      luma.push(Math.round(0.299 * (t[i] ?? 0) + 0.587 * (t[i + 1] ?? 0) + 0.114 * (t[i + 2] ?? 0)));
    return { width, height, orange: orange / n, nearBar: nearBar / n, decoded, luma };
  });
}

const meanAbsDiff = (a: number[], b: number[]) =>
  a.reduce((sum, v, i) => sum + Math.abs(v - (b[i] ?? 0)), 0) / Math.max(1, a.length);

/** The first video inside `selector` once it decodes frames. */
async function playingVideo(page: Page, selector: string, timeoutMs: number) {
  const video = `${selector} video`;
  await page.waitForFunction(
    (sel) => {
      const v = document.querySelector<HTMLVideoElement>(sel);
      return !!v && v.videoWidth > 0 && v.getVideoPlaybackQuality().totalVideoFrames > 2;
    },
    video,
    { timeout: timeoutMs, polling: 250 },
  );
  const handle = await page.$(video);
  if (!handle) throw new Error(`no ${video}`);
  return handle as ElementHandle<HTMLVideoElement>;
}

/**
 * The code is on screen, nothing covers it, it reads the meeting's digits, it does not overlap the far
 * room's picture, and its digits' ink is at least `minShare` of the screen height.
 */
async function checkCodeBesideVideo(page: Page, tile: string, code: string, minShare: number) {
  const codeBox = await page.locator(CODE).boundingBox();
  const tileBox = await page.locator(tile).boundingBox();
  if (!codeBox || !tileBox) throw new Error('no security code or no far-room tile on screen');
  const viewport = page.viewportSize() ?? { width: 0, height: 0 };
  expect(codeBox.x).toBeGreaterThanOrEqual(0);
  expect(codeBox.y).toBeGreaterThanOrEqual(0);
  expect(codeBox.x + codeBox.width).toBeLessThanOrEqual(viewport.width + 1);
  expect(codeBox.y + codeBox.height).toBeLessThanOrEqual(viewport.height + 1);
  const overlap =
    Math.max(
      0,
      Math.min(codeBox.x + codeBox.width, tileBox.x + tileBox.width) - Math.max(codeBox.x, tileBox.x),
    ) *
    Math.max(
      0,
      Math.min(codeBox.y + codeBox.height, tileBox.y + tileBox.height) - Math.max(codeBox.y, tileBox.y),
    );
  expect(overlap).toBe(0);
  const onTop = await page.evaluate(({ sel, x, y }) => !!document.elementFromPoint(x, y)?.closest(sel), {
    sel: CODE,
    x: codeBox.x + codeBox.width / 2,
    y: codeBox.y + codeBox.height / 2,
  });
  expect(onTop).toBe(true);
  const digits = ((await page.locator(CODE).textContent()) ?? '').replace(/\D/g, '');
  expect(digits).toBe(code.replace(/\D/g, ''));
  const ink = await digitInkHeights(page);
  expect(ink).toHaveLength(40);
  for (const d of ink) expect(d.ink / d.viewport).toBeGreaterThanOrEqual(minShare);
}

describe('the wall end to end: npm start, then a kiosk page shows the far room', () => {
  it('prints kiosk URLs that carry the wall token', () => {
    expect(out).toMatch(
      new RegExp(`${ROOM_A.name} kiosk\\s+http://127\\.0\\.0\\.1:\\d+/#wall=[A-Za-z0-9_-]{43}\\s`),
    );
    expect(out).toMatch(
      new RegExp(`${ROOM_B.name} kiosk\\s+http://127\\.0\\.0\\.1:\\d+/#wall=[A-Za-z0-9_-]{43}\\s`),
    );
    expect(err).not.toMatch(/sealroom demo:/);
  });

  it(`${ROOM_A.name}'s kiosk shows ${ROOM_B.name}'s moving pattern, its verified name, the self-view and the code`, async () => {
    // What Boardroom verified: the far room's name and sender index, and the code.
    const stateA = await waitFor(
      `${ROOM_A.name} to see ${ROOM_B.name} in an active meeting`,
      async () => {
        const s = await getState(originA);
        const far = s.meeting?.roster.find((r) => !r.isSelf);
        return s.meeting?.status === 'active' && s.meeting.securityCode && far ? s : undefined;
      },
      60_000,
    );
    const far = stateA.meeting?.roster.find((r) => !r.isSelf);
    expect(far?.roomName).toBe(ROOM_B.name);
    const code = stateA.meeting?.securityCode ?? '';
    expect((await getState(originB)).meeting?.securityCode).toBe(code);

    const context = await browser!.newContext({ viewport: { width: 1920, height: 1080 } });
    const page = await context.newPage();
    try {
      await page.goto(kioskA);
      // The page took the token and removed it from the address (never in history or a screenshot).
      await page.waitForFunction(() => location.hash === '', undefined, { timeout: 30_000 });
      expect(await page.evaluate(() => sessionStorage.getItem('sealroom.wallToken'))).toBe(token);

      // The far room's tile: Huddle Room's `colors` grid (orange hues, few bar colours), not Boardroom's bars.
      const remote = await playingVideo(page, remoteTile(far?.senderIndex), 120_000);
      const first = await sample(remote);
      expect(first.width).toBe(640);
      expect(first.height).toBe(360);
      expect(first.orange).toBeGreaterThan(0.02);
      expect(first.nearBar).toBeLessThan(0.35);

      // It moves: the pattern drifts, so frames a moment apart differ (and the decoder keeps going).
      const later: Sample[] = [];
      for (let i = 0; i < 5; i++) {
        await page.waitForTimeout(400);
        later.push(await sample(remote));
      }
      const diffs = [first, ...later]
        .slice(1)
        .map((s, i) => meanAbsDiff(s.luma, [first, ...later][i]?.luma ?? []));
      expect(diffs.filter((d) => d > 2).length).toBeGreaterThanOrEqual(3);
      expect(later.at(-1)?.decoded ?? 0).toBeGreaterThan(first.decoded);
      for (const s of later) expect(s.orange).toBeGreaterThan(0.02);

      // The label: the name (and organisation) Boardroom verified for that sender, nothing else.
      const label = page.locator(`${remoteTile(far?.senderIndex)} [data-testid=tile-label]`);
      await expect
        .poll(async () => (await label.textContent()) ?? '', { timeout: 15_000 })
        .toContain(ROOM_B.name);
      const labelText = (await label.textContent()) ?? '';
      expect(
        labelText
          .replace(ROOM_B.name, '')
          .replace(far?.org ?? '', '')
          .trim(),
      ).toBe('');
      expect(labelText).not.toContain(ROOM_A.name);
      expect(await label.getAttribute('class')).not.toMatch(/unverified/);

      // The self-view: Boardroom's own SMPTE bars (mostly bar colours, no orange).
      const self = await sample(await playingVideo(page, SELF_TILE, 60_000));
      expect(self.nearBar).toBeGreaterThan(0.5);
      expect(self.orange).toBeLessThan(0.005);

      // The security code beside the video, full size as the meeting starts (≥ 6 % of the screen
      // height, as without video), then — while the video plays — a band that stays on screen.
      const tile = remoteTile(far?.senderIndex);
      // (On a slow run the full-size period may be over already: a tap on the band brings it back.)
      if ((await page.getAttribute('.meeting', 'data-code')) === 'band')
        await page.click('[data-testid=code-band]');
      await expect.poll(() => page.getAttribute('.meeting', 'data-code'), { timeout: 15_000 }).toBe('full');
      await checkCodeBesideVideo(page, tile, code, 0.06);
      await page.screenshot({ path: join(ARTIFACTS, 'wall-e2e-code-full-1920x1080.png') });
      await expect.poll(() => page.getAttribute('.meeting', 'data-code'), { timeout: 60_000 }).toBe('band');
      await checkCodeBesideVideo(page, tile, code, 0.025);
      const tileBox = await page.locator(tile).boundingBox();
      expect(tileBox && tileBox.width * tileBox.height).toBeGreaterThan(1920 * 1080 * 0.25);
      const steady = await sample(remote);
      expect(steady.orange).toBeGreaterThan(0.02);
      expect(steady.decoded).toBeGreaterThan(later.at(-1)?.decoded ?? 0);
      await page.screenshot({ path: join(ARTIFACTS, 'wall-e2e-1920x1080.png') });
    } finally {
      await context.close();
    }
  }, 300_000);

  it(`and the other way round: ${ROOM_B.name}'s kiosk shows ${ROOM_A.name}'s bars`, async () => {
    const kioskB = new RegExp(`${ROOM_B.name} kiosk\\s+(\\S+)`).exec(out)?.[1] ?? '';
    const context = await browser!.newContext({ viewport: { width: 1280, height: 720 } });
    const page = await context.newPage();
    try {
      await page.goto(kioskB);
      const far = await sample(await playingVideo(page, remoteTile(), 120_000));
      expect(far.nearBar).toBeGreaterThan(0.5);
      expect(far.orange).toBeLessThan(0.005);
      const self = await sample(await playingVideo(page, SELF_TILE, 60_000));
      expect(self.orange).toBeGreaterThan(0.02);
      expect(self.nearBar).toBeLessThan(0.35);
      await expect
        .poll(
          async () => (await page.locator(`${remoteTile()} [data-testid=tile-label]`).textContent()) ?? '',
          {
            timeout: 15_000,
          },
        )
        .toContain(ROOM_A.name);
    } finally {
      await context.close();
    }
  }, 180_000);

  it('without the token the same kiosk URL shows no video, and the session route answers 401', async () => {
    const context = await browser!.newContext({ viewport: { width: 1280, height: 720 } });
    const page = await context.newPage();
    const opened: number[] = [];
    page.on('response', (r) => {
      if (new URL(r.url()).pathname === '/api/wall/sessions') opened.push(r.status());
    });
    try {
      await page.goto(`${originA}/`);
      await page.locator(CODE).waitFor({ state: 'visible', timeout: 30_000 });
      // Long enough for a page with the token to have its first frames (the test above: seconds).
      await page.waitForTimeout(8000);
      const videos = await page.evaluate(() =>
        [...document.querySelectorAll('video')].map((v) => ({
          width: v.videoWidth,
          frames: v.getVideoPlaybackQuality().totalVideoFrames,
          live:
            v.srcObject instanceof MediaStream &&
            v.srcObject.getTracks().some((t) => t.readyState === 'live'),
        })),
      );
      for (const v of videos) expect(v).toEqual({ width: 0, frames: 0, live: false });
      expect(opened.filter((s) => s < 300)).toEqual([]);
    } finally {
      await context.close();
    }
    // The route itself: no token, a wrong one, a token in the wrong scheme — all 401, nothing opened.
    const wrong = Buffer.alloc(32, 7).toString('base64url');
    for (const authorization of [undefined, `Bearer ${wrong}`, `Bearer ${token}x`, `Basic ${token}`, token]) {
      const res = await fetch(new URL('/api/wall/sessions', originA), {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body: '{}',
      });
      expect(res.status, String(authorization)).toBe(401);
      expect(((await res.json()) as { error?: string }).error).toBeTruthy();
    }
    for (const [method, path, body] of [
      ['POST', '/api/wall/sessions/AAAAAAAAAAAAAAAAAAAAAA/answer', JSON.stringify({ sdp: 'v=0' })],
      ['DELETE', '/api/wall/sessions/AAAAAAAAAAAAAAAAAAAAAA', undefined],
    ] as const) {
      const res = await fetch(new URL(path, originA), {
        method,
        headers: body ? { 'content-type': 'application/json' } : {},
        ...(body ? { body } : {}),
      });
      expect(res.status, `${method} ${path}`).toBe(401);
    }
    // Room B's token does not open room A's wall.
    const tokenB = /#wall=([A-Za-z0-9_-]+)/.exec(out.slice(out.indexOf(`${ROOM_B.name} kiosk`)))?.[1] ?? '';
    expect(tokenB).not.toBe(token);
    const cross = await fetch(new URL('/api/wall/sessions', originA), {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${tokenB}` },
      body: '{}',
    });
    expect(cross.status).toBe(401);
  }, 120_000);

  it('a page on another origin cannot open a session, even knowing the token', async () => {
    // Another local web page (another origin on the same box) tries the route from the browser.
    const server: Server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><title>elsewhere</title><p>another site</p>');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const evil = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const context = await browser!.newContext();
    const page = await context.newPage();
    try {
      await page.goto(`${evil}/`);
      const attempt = await page.evaluate(
        async ({ target, bearer }) => {
          const results: string[] = [];
          // With the token and JSON (needs a CORS preflight the control server never grants).
          try {
            const r = await fetch(`${target}/api/wall/sessions`, {
              method: 'POST',
              headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
              body: '{}',
            });
            results.push(`read ${r.status} ${await r.text()}`);
          } catch (e) {
            results.push(`refused ${(e as Error).name}`);
          }
          // Without a preflight (a "simple" request): opaque to the page, and refused by the server.
          try {
            const r = await fetch(`${target}/api/wall/sessions`, {
              method: 'POST',
              mode: 'no-cors',
              headers: { 'content-type': 'text/plain' },
              body: '{}',
            });
            results.push(`opaque ${r.type} ${r.status}`);
          } catch (e) {
            results.push(`refused ${(e as Error).name}`);
          }
          return results;
        },
        { target: originA, bearer: token },
      );
      expect(attempt[0]).toBe('refused TypeError');
      expect(attempt[1]).toBe('opaque opaque 0');
    } finally {
      await context.close();
      await new Promise((resolve) => server.close(resolve));
    }
    // What the server answers those two requests (seen from outside the browser):
    // the preflight grants nothing, the simple request is refused and opens nothing.
    const preflight = await fetch(new URL('/api/wall/sessions', originA), {
      method: 'OPTIONS',
      headers: {
        origin: evil,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    expect(preflight.headers.get('access-control-allow-headers')).toBeNull();
    const simple = await fetch(new URL('/api/wall/sessions', originA), {
      method: 'POST',
      headers: { origin: evil, 'content-type': 'text/plain' },
      body: '{}',
    });
    expect(simple.status).toBeGreaterThanOrEqual(400);
    expect(simple.headers.get('access-control-allow-origin')).toBeNull();
    // A page on a foreign (non-loopback) origin is refused outright, token or not.
    const foreign = await fetch(new URL('/api/wall/sessions', originA), {
      method: 'POST',
      headers: {
        origin: 'https://evil.example',
        'content-type': 'application/json',
        authorization: `Bearer ${token}`,
      },
      body: '{}',
    });
    expect(foreign.status).toBe(403);
  }, 120_000);
});
