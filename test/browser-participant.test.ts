// A browser participant nobody here wrote: headless Chromium with its fake camera and microphone and
// RTCRtpScriptTransform (a worker doing SFrame with WebCrypto, test/browser/) talks peer-to-peer over
// loopback WebRTC to a real media worker (GStreamer test sources, VP8, werift). The test plays the key
// manager and pipes the signalling. Both directions must decrypt and decode; with a wrong key on
// either side nothing is decoded and nothing crashes.
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignalPayload } from '../src/core/protocol/relay.js';
import { deriveSenderBaseKey, makeKid } from '../src/core/e2ee/sender-keys.js';
import type { MediaSupervisor, StatsMessage } from '../device/media/supervisor.js';
import type { PageStats, PixelSample } from './browser/page.js';
import { type ParticipantServer, startParticipantServer } from './browser/server.js';
import { displayPixel, latestStats, meetingKeys, newMeetingKey, waitFor, worker } from './media-harness.js';

const CHROMIUM = process.env.SEALROOM_CHROMIUM ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
  '--use-fake-device-for-media-stream',
  '--use-fake-ui-for-media-stream',
  // WebRTC ignores loopback interfaces unless told otherwise; no mDNS host names (no multicast).
  '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns',
];

const EPOCH = 1;
const ROOM = 1; // the media worker's sender index
const BROWSER = 2; // the browser's sender index
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/**
 * The top two thirds of videotestsrc's SMPTE pattern: seven bars, left to right, each a mix of full
 * and zero R, G and B. Checked by which channels are lit, so the range conversions on the way
 * (I420 limited range, canvas RGB) and VP8 artefacts do not matter.
 */
const SMPTE_BARS: { name: string; lit: [boolean, boolean, boolean] }[] = [
  { name: 'white', lit: [true, true, true] },
  { name: 'yellow', lit: [true, true, false] },
  { name: 'cyan', lit: [false, true, true] },
  { name: 'green', lit: [false, true, false] },
  { name: 'magenta', lit: [true, false, true] },
  { name: 'red', lit: [true, false, false] },
  { name: 'blue', lit: [false, false, true] },
];
const BAR_POINTS = SMPTE_BARS.map((_, i) => [(i + 0.5) / 7, 1 / 3] as [number, number]);
const isBar = (rgb: readonly number[], lit: readonly boolean[]) =>
  rgb.every((v, i) => (lit[i] ? v > 150 : v < 70));

let server: ParticipantServer;
let browser: Browser;
const workers: MediaSupervisor[] = [];

beforeAll(async () => {
  server = await startParticipantServer();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await browser?.close();
  await server?.close();
});

interface Session {
  page: Page;
  room: MediaSupervisor;
  roomStats: () => StatsMessage | undefined;
  pageStats: () => Promise<PageStats>;
  sample: () => Promise<PixelSample | undefined>;
  close: () => Promise<void>;
}

const isLoopbackCandidate = (c: string) => / (127\.\d+\.\d+\.\d+|::1) \d+ typ /.test(c);

/**
 * One media worker and one browser page, keys handed out as the key manager would (per-sender base
 * keys of one epoch, KID = makeKid(epoch, sender)); `browserMeetingKey` lets a test give the browser
 * a different meeting key than the room.
 */
async function connect(meetingKey: Uint8Array, browserMeetingKey = meetingKey): Promise<Session> {
  const room = worker({ codec: 'vp8', pattern: 'smpte', toneHz: 1000, width: 320, height: 240 });
  workers.push(room);
  await room.start();
  room.setKeys(meetingKeys(meetingKey, EPOCH, ROOM, [ROOM, BROWSER]));
  room.setRoster([{ senderIndex: BROWSER, name: 'Browser' }]);
  const roomStats = latestStats(room);

  const page = await browser.newPage();
  page.on('pageerror', (err) => console.error('[browser participant] page error:', err.message));
  await page.exposeFunction('sealroomSignal', (payload: SignalPayload) => {
    // Only loopback candidates reach the worker: every ICE check stays on 127.0.0.1.
    if (payload.kind === 'candidate' && !isLoopbackCandidate(payload.candidate)) return;
    room.signal(payload);
  });
  await page.goto(server.url);
  const devices = await page.evaluate(() => window.participant.init());
  expect(devices.video).not.toBe('');
  const bk = browserMeetingKey;
  await page.evaluate((k) => window.participant.setKeys(k), {
    sendKid: makeKid(EPOCH, BROWSER).toString(),
    sendKey: hex(deriveSenderBaseKey(bk, EPOCH, BROWSER)),
    receiveKeys: [{ kid: makeKid(EPOCH, ROOM).toString(), key: hex(deriveSenderBaseKey(bk, EPOCH, ROOM)) }],
  });
  room.on('signal', (payload) => {
    page.evaluate((p) => window.participant.signal(p), payload).catch(() => undefined);
  });
  room.connect('offer');
  return {
    page,
    room,
    roomStats,
    pageStats: () => page.evaluate(() => window.participant.stats()),
    sample: () => page.evaluate((pts) => window.participant.sample(pts), BAR_POINTS),
    close: async () => {
      await page.evaluate(() => window.participant.close()).catch(() => undefined);
      await page.close();
      await room.stop();
    },
  };
}

/** What both ends saw, printed when a test fails. */
async function dump(s: Session): Promise<void> {
  const page = await s.pageStats().catch((e: Error) => e.message);
  const sample = await s.sample().catch((e: Error) => e.message);
  console.error('[browser participant] page', JSON.stringify(page), JSON.stringify(sample));
  console.error('[browser participant] worker', JSON.stringify(s.roomStats()));
}

const fromBrowser = (s: StatsMessage | undefined) => s?.remotes.find((r) => r.senderIndex === BROWSER);

describe('browser participant (Chromium, RTCRtpScriptTransform, WebCrypto SFrame) ↔ media worker (VP8)', () => {
  it('each side decrypts and decodes the other’s video', async () => {
    const s = await connect(newMeetingKey());
    try {
      // Browser → worker: the worker opens the browser's SFrames and its gallery shows them.
      const seen = await waitFor(
        'the browser’s video decrypted by the worker',
        () => {
          const r = fromBrowser(s.roomStats());
          return r && r.videoFrames > 60 ? r : undefined;
        },
        40_000,
      );
      expect(seen.slot).toBe(0);
      const tile = await waitFor('the browser’s video in the worker’s gallery', async () => {
        const px = await displayPixel(s.room, 48, 27);
        return px && px[0] + px[1] + px[2] > 60 ? px : undefined;
      });
      expect(tile[0] + tile[1] + tile[2]).toBeGreaterThan(60);

      // Worker → browser: decrypted in the browser's receive transform, decoded, playing.
      const played = await waitFor(
        'the worker’s SMPTE bars playing in the browser',
        async () => {
          const px = await s.sample();
          return px && SMPTE_BARS.every((bar, i) => isBar(px.colours[i] ?? [], bar.lit)) ? px : undefined;
        },
        40_000,
      );
      expect(played.width).toBe(320);
      expect(played.nonBlack).toBeGreaterThan(0.75);
      const stats = await waitFor('30 decoded frames in the browser', async () => {
        const st = await s.pageStats();
        return (st.inboundVideo?.framesDecoded ?? 0) > 30 ? st : undefined;
      });
      console.log('[browser participant] page stats', JSON.stringify(stats));
      console.log('[browser participant] worker stats', JSON.stringify(s.roomStats()?.counters));
      const rv = stats.counters['receive-video'];
      expect(rv.opened).toBeGreaterThan(30);
      expect(rv.failures).toEqual({});
      expect(stats.counters['receive-audio'].failures).toEqual({});
      expect(stats.counters['send-video'].sealed).toBeGreaterThan(30);
      expect(s.roomStats()?.counters.decryptFailures).toBe(0);
    } catch (err) {
      await dump(s);
      throw err;
    } finally {
      await s.close();
    }
  }, 90_000);
});
