// A browser participant nobody here wrote: headless Chromium with its fake camera and microphone and
// RTCRtpScriptTransform (a worker doing SFrame with WebCrypto, test/browser/) talks peer-to-peer over
// loopback WebRTC to a real media worker (GStreamer test sources, werift). The test plays the key
// manager and pipes the signalling. VP8: both directions decrypt and decode, also across a rekey;
// with a wrong key on either side nothing is decoded and nothing crashes. VP8 travels in the
// clear-prefix format (device/media/vp8-protect.ts), so a browser joining after the worker's SFrame
// counter passed 255 decodes too. H.264 travels in the clear-params format (device/media/h264-protect.ts)
// and decodes both ways. test/browser/proposed-formats.test.ts shows the former formats failing in
// Chromium, between two pages.
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignalPayload } from '../src/core/protocol/relay.js';
import { deriveSenderBaseKey, makeKid } from '../src/core/e2ee/sender-keys.js';
import type { MediaSupervisor, StatsMessage } from '../device/media/supervisor.js';
import type { PageStats, PixelSample } from './browser/page.js';
import { CHROMIUM, CHROMIUM_ARGS, isLoopbackCandidate } from './browser/chromium.js';
import { type ParticipantServer, startParticipantServer } from './browser/server.js';
import {
  TEST_MEETING,
  authKeys,
  displayPixel,
  isBlack,
  latestStats,
  meetingKeys,
  newMeetingKey,
  speakerPcm,
  tonePower,
  waitFor,
  worker,
} from './media-harness.js';

const rms = (pcm: Buffer) => {
  let sum = 0;
  const n = Math.floor(pcm.length / 2);
  for (let i = 0; i < n; i++) sum += (pcm.readInt16LE(i * 2) / 32768) ** 2;
  return Math.sqrt(sum / Math.max(1, n));
};

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
  closePage: () => Promise<void>;
}

/**
 * One media worker and one browser page, keys handed out as the key manager would (per-sender base
 * keys of one epoch, KID = makeKid(epoch, sender)); `browserMeetingKey` lets a test give the browser
 * a different meeting key than the room.
 */
async function connect(
  meetingKey: Uint8Array,
  opts: {
    browserMeetingKey?: Uint8Array;
    room?: MediaSupervisor;
    browserIndex?: number;
    codec?: 'vp8' | 'h264';
  } = {},
): Promise<Session> {
  let room = opts.room;
  if (!room) {
    room = worker({ codec: opts.codec ?? 'vp8', pattern: 'smpte', toneHz: 1000, width: 320, height: 240 });
    workers.push(room);
    await room.start();
    room.setKeys(meetingKeys(meetingKey, EPOCH, ROOM, [ROOM, BROWSER]));
    room.setRoster([{ senderIndex: BROWSER, name: 'Browser' }]);
  } else {
    room.removeAllListeners('signal');
    room.disconnect();
  }
  const roomStats = latestStats(room);

  const page = await browser.newPage();
  page.on('pageerror', (err) => console.error('[browser participant] page error:', err.message));
  await page.exposeFunction('sealroomSignal', (payload: SignalPayload) => {
    // Only loopback candidates reach the worker: every ICE check stays on 127.0.0.1.
    if (payload.kind === 'candidate' && !isLoopbackCandidate(payload.candidate)) return;
    room?.signal(payload);
  });
  await page.goto(server.url);
  const devices = await page.evaluate(() => window.participant.init());
  expect(devices.video).not.toBe('');
  await page.evaluate((k) => window.participant.setKeys(k), {
    ...browserKeys(opts.browserMeetingKey ?? meetingKey, opts.browserIndex ?? BROWSER, meetingKey),
    videoCodec: opts.codec,
  });
  room.on('signal', (payload) => {
    // Chromium gets no candidate of the worker: any remote candidate, even 127.0.0.1, would be paired
    // with Chromium's non-loopback interfaces too (checks from the host address). It learns the
    // worker's address from the worker's own checks to its 127.0.0.1 candidate (peer-reflexive).
    if (payload.kind === 'candidate') return;
    const p =
      payload.kind === 'description'
        ? { ...payload, sdp: payload.sdp.replace(/^a=candidate:.*\r?\n/gm, '') }
        : payload;
    page.evaluate((m) => window.participant.signal(m), p).catch(() => undefined);
  });
  room.connect('offer');
  return {
    page,
    room,
    roomStats,
    pageStats: () => page.evaluate(() => window.participant.stats()),
    sample: () => page.evaluate((pts) => window.participant.sample(pts), BAR_POINTS),
    closePage: async () => {
      await page.evaluate(() => window.participant.close()).catch(() => undefined);
      await page.close();
    },
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
  it('each side decrypts and decodes the other’s video and audio, and keeps doing so across a rekey', async () => {
    const started = Date.now();
    const mk = newMeetingKey();
    const s = await connect(mk);
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
      const rv = stats.counters['receive-video'];
      expect(rv.opened).toBeGreaterThan(30);
      expect(rv.failures).toEqual({});
      expect(stats.counters['send-video'].sealed).toBeGreaterThan(30);
      expect(s.roomStats()?.counters.decryptFailures).toBe(0);

      // Audio both ways: the worker's 1 kHz tone in the browser's spectrum; Chromium's fake
      // microphone (a 400 Hz beep) in the worker's speaker.
      const heard = await waitFor('the worker’s 1 kHz tone in the browser', async () => {
        const h = await s.page.evaluate(() => window.participant.listen([1000, 440]));
        return h && Math.abs(h.peakHz - 1000) < 30 ? h : undefined;
      });
      expect(heard.levelsDb[0]).toBeGreaterThan((heard.levelsDb[1] ?? 0) + 40);
      const pcm = await waitFor('the browser’s beep in the worker’s speaker', async () => {
        const p = await speakerPcm(s.room);
        return p && tonePower(p, 400) > 100 * tonePower(p, 1000) && rms(p) > 0.01 ? p : undefined;
      });
      expect(rms(pcm)).toBeGreaterThan(0.01);
      const final = await s.pageStats();
      expect(final.counters['receive-audio'].opened).toBeGreaterThan(50);
      expect(final.counters['receive-audio'].failures).toEqual({});
      expect(final.counters['send-audio'].sealed).toBeGreaterThan(50);
      expect(s.roomStats()?.counters.audioFramesDecrypted).toBeGreaterThan(50);

      // Every ICE pair Chromium formed is loopback to loopback.
      expect(final.candidatePairs.length).toBeGreaterThan(0);
      for (const pair of final.candidatePairs) expect(pair.local).toMatch(/^(127\.|::1)/);
      // Figures for docs/interop.md (informative, not asserted): how Chromium labelled the worker's
      // clear-prefix frames, and the browser's uplink without transport-wide congestion feedback.
      const seconds = (Date.now() - started) / 1000;
      const rvFinal = final.counters['receive-video'];
      const out = final.outboundVideo;
      console.log(
        `[browser participant] ${seconds.toFixed(1)} s: browser decoded ${final.inboundVideo?.framesDecoded} ` +
          `worker frames (Chromium labelled ${rvFinal.typeMislabelled} of ${rvFinal.opened} with the wrong ` +
          `type; ${rvFinal.keyframes} real keyframes); browser sent ${out?.framesEncoded} frames at ` +
          `${out?.frameWidth}px, ${(((out?.bytesSent ?? 0) * 8) / seconds / 1000).toFixed(0)} kbit/s average`,
      );

      // Rekey: the key manager moves both ends to epoch 2 (new KIDs, new base keys); receivers keep
      // epoch 1 until it is retired, so frames in flight still open.
      const both = (self: number) =>
        [1, 2].map((e) => ({ kid: makeKid(e, self), key: deriveSenderBaseKey(mk, e, self, TEST_MEETING) }));
      const roomBefore = fromBrowser(s.roomStats())?.videoFrames ?? 0;
      // Receivers learn the epoch-2 keys before any sender uses them, as the key manager orders it
      // (otherwise the first epoch-2 frames may meet an unknown KID).
      s.room.setKeys({
        epoch: 1,
        sendKid: makeKid(1, ROOM),
        sendKey: deriveSenderBaseKey(mk, 1, ROOM, TEST_MEETING),
        receiveKeys: [...both(ROOM), ...both(BROWSER)],
        auth: authKeys(mk, ROOM, [ROOM, BROWSER]),
      });
      await s.page.evaluate((k) => window.participant.setKeys(k), {
        sendKid: makeKid(1, BROWSER).toString(),
        sendKey: hex(deriveSenderBaseKey(mk, 1, BROWSER, TEST_MEETING)),
        receiveKeys: both(ROOM).map(({ kid, key }) => ({ kid: kid.toString(), key: hex(key) })),
        auth: browserAuth(mk, BROWSER),
      });
      s.room.setKeys({
        epoch: 2,
        sendKid: makeKid(2, ROOM),
        sendKey: deriveSenderBaseKey(mk, 2, ROOM, TEST_MEETING),
        receiveKeys: [...both(ROOM), ...both(BROWSER)],
        auth: authKeys(mk, ROOM, [ROOM, BROWSER]),
      });
      await s.page.evaluate((k) => window.participant.setKeys(k), {
        sendKid: makeKid(2, BROWSER).toString(),
        sendKey: hex(deriveSenderBaseKey(mk, 2, BROWSER, TEST_MEETING)),
        receiveKeys: both(ROOM).map(({ kid, key }) => ({ kid: kid.toString(), key: hex(key) })),
        auth: browserAuth(mk, BROWSER),
      });
      const decodedBefore = final.inboundVideo?.framesDecoded ?? 0;
      const epoch2 = makeKid(2, ROOM).toString();
      const rekeyed = await waitFor('epoch-2 video decoded in the browser', async () => {
        const st = await s.pageStats();
        const opened2 = st.counters['receive-video'].openedByKid[epoch2] ?? 0;
        return opened2 > 30 && (st.inboundVideo?.framesDecoded ?? 0) > decodedBefore + 30 ? st : undefined;
      });
      expect(rekeyed.counters['receive-video'].failures).toEqual({});
      await waitFor(
        'the worker decrypting the browser’s epoch-2 video',
        () => (fromBrowser(s.roomStats())?.videoFrames ?? 0) > roomBefore + 30,
      );
      expect(s.roomStats()?.counters.decryptFailures).toBe(0);
    } catch (err) {
      await dump(s);
      throw err;
    } finally {
      await s.close();
    }
  }, 90_000);
});

/** The browser's pairwise frame-authentication keys with the room (hex, for the page). */
const browserAuth = (meetingKey: Uint8Array, self: number) =>
  authKeys(meetingKey, self, [self, ROOM]).map((a) => ({
    peerIndex: a.peerIndex,
    send: hex(a.send),
    receive: hex(a.receive),
  }));

/** `authFrom`: whose pairwise keys (default the same meeting's): a wrong SFrame key alone fails at SFrame. */
const browserKeys = (meetingKey: Uint8Array, self: number, authFrom = meetingKey) => ({
  auth: browserAuth(authFrom, self),
  sendKid: makeKid(EPOCH, self).toString(),
  sendKey: hex(deriveSenderBaseKey(meetingKey, EPOCH, self, TEST_MEETING)),
  receiveKeys: [
    {
      kid: makeKid(EPOCH, ROOM).toString(),
      key: hex(deriveSenderBaseKey(meetingKey, EPOCH, ROOM, TEST_MEETING)),
    },
  ],
});

describe('wrong keys', () => {
  it('with a wrong key on either side nothing is decrypted or decoded, nothing crashes, and the right key recovers', async () => {
    const mk = newMeetingKey();
    // The browser holds the keys of another meeting key for the same KIDs: both directions fail.
    const s = await connect(mk, { browserMeetingKey: newMeetingKey() });
    try {
      const failing = await waitFor(
        'authentication failures on both sides',
        async () => {
          const st = await s.pageStats();
          const w = s.roomStats();
          return (st.counters['receive-video'].failures.AUTH_FAILED ?? 0) > 30 &&
            (w?.counters.decryptFailures ?? 0) > 60
            ? { st, w }
            : undefined;
        },
        40_000,
      );
      // The browser: no frame opened, none decoded, nothing drawn.
      expect(failing.st.counters['receive-video'].opened).toBe(0);
      expect(failing.st.counters['receive-audio'].opened).toBe(0);
      expect(failing.st.inboundVideo?.framesDecoded ?? 0).toBe(0);
      expect(await s.sample()).toBeUndefined();
      // The worker: nothing from the browser decrypted, its tile stays black, it asks for keyframes.
      expect(failing.w?.counters.videoFramesDecrypted).toBe(0);
      expect(failing.w?.counters.audioFramesDecrypted).toBe(0);
      expect(failing.w?.remotes).toEqual([]);
      expect(failing.w?.counters.keyframesRequested).toBeGreaterThan(0);
      expect(isBlack(await displayPixel(s.room, 48, 27))).toBe(true);
      expect((await s.room.probe()).type).toBe('probe');

      // The key manager hands the browser the right keys: both directions open again.
      await s.page.evaluate((k) => window.participant.setKeys(k), browserKeys(mk, BROWSER));
      await waitFor(
        'the worker decrypting the browser’s video',
        () => (fromBrowser(s.roomStats())?.videoFrames ?? 0) > 30,
        40_000,
      );
      const after = await waitFor(
        'the browser opening the worker’s frames',
        async () => {
          const st = await s.pageStats();
          return st.counters['receive-video'].opened > 30 ? st : undefined;
        },
        40_000,
      );
      expect(after.counters['receive-audio'].opened).toBeGreaterThan(0);
      expect(after.connectionState).toBe('connected');
    } catch (err) {
      await dump(s);
      throw err;
    } finally {
      await s.close();
    }
  }, 90_000);
});

describe('late join: VP8 in the clear-prefix format (docs/interop.md)', () => {
  it('a browser joining after the worker’s SFrame counter passed 255 labels the worker’s keyframes correctly and decodes its picture', async () => {
    const mk = newMeetingKey();
    const first = await connect(mk);
    // The worker's one sender (audio and video share its counter) moves past CTR 255. With whole-frame
    // SFrame its header's first byte would from then on be 0xA9, read as "VP8 delta" by Chromium;
    // in the clear-prefix format byte 0 is VP8's own frame tag.
    await waitFor(
      'the worker past CTR 300',
      () => {
        const c = first.roomStats()?.counters;
        return c && c.videoFramesSent + c.audioFramesSent > 300;
      },
      40_000,
    );
    await first.closePage();
    // A new participant (sender 3, its own KID) joins the same room media worker.
    const LATE = 3;
    first.room.setKeys(meetingKeys(mk, EPOCH, ROOM, [ROOM, BROWSER, LATE]));
    const late = await connect(mk, { room: first.room, browserIndex: LATE });
    try {
      await waitFor(
        'the worker’s SMPTE bars playing in the late browser',
        async () => {
          const px = await late.sample();
          return px && SMPTE_BARS.every((bar, i) => isBar(px.colours[i] ?? [], bar.lit)) ? px : undefined;
        },
        40_000,
      );
      const st = await waitFor(
        'the late browser decoding the worker',
        async () => {
          const x = await late.pageStats();
          return (x.inboundVideo?.framesDecoded ?? 0) > 30 ? x : undefined;
        },
        40_000,
      );
      const rv = st.counters['receive-video'];
      expect(rv.failures).toEqual({});
      expect(rv.keyframes).toBeGreaterThan(0);
      // Chromium classified every frame from the clear frame tag, as the plaintext says.
      expect(rv.typeMislabelled).toBe(0);
      expect(st.inboundVideo?.keyFramesDecoded ?? 0).toBeGreaterThan(0);
      // The worker's counter really was past 255 for the frames the late browser decoded.
      const c = late.roomStats()?.counters;
      expect((c?.videoFramesSent ?? 0) + (c?.audioFramesSent ?? 0)).toBeGreaterThan(300 + rv.opened);
      // The other direction: the worker decodes the late browser.
      await waitFor(
        'the worker decrypting the late browser',
        () => (late.roomStats()?.remotes.find((r) => r.senderIndex === LATE)?.videoFrames ?? 0) > 30,
        40_000,
      );
      console.log(
        `[browser participant] late join past CTR 300: ${st.inboundVideo?.framesDecoded} decoded, ` +
          `${st.inboundVideo?.keyFramesDecoded} keyframes decoded, ${st.inboundVideo?.pliCount ?? 0} PLIs`,
      );
    } catch (err) {
      await dump(late);
      throw err;
    } finally {
      await late.close();
    }
  }, 120_000);
});

describe('H.264, the media worker’s default codec, in the clear-params format', () => {
  it('both directions decrypt and decode: the browser sees the worker’s picture, the worker the browser’s', async () => {
    const s = await connect(newMeetingKey(), { codec: 'h264' });
    try {
      // Chromium's H.264, protected by the browser with the worker's own layout, opens and decodes
      // in the worker.
      await waitFor(
        'the browser’s H.264 decrypted by the worker',
        () => (fromBrowser(s.roomStats())?.videoFrames ?? 0) > 60,
        40_000,
      );
      await waitFor('the browser’s H.264 in the worker’s gallery', async () => {
        const px = await displayPixel(s.room, 48, 27);
        return px && px[0] + px[1] + px[2] > 60;
      });
      // The other way: Chromium's receive path reads SPS/PPS and the slice-header ids before the
      // transform; in the clear-params format they are clear, so the worker's frames reach the
      // transform, open and decode (with the former per-NAL format none did).
      await waitFor(
        'the worker’s SMPTE bars playing in the browser (H.264)',
        async () => {
          const px = await s.sample();
          return px && SMPTE_BARS.every((bar, i) => isBar(px.colours[i] ?? [], bar.lit)) ? px : undefined;
        },
        40_000,
      );
      const st = await waitFor(
        'Chromium decoding the worker’s H.264',
        async () => {
          const x = await s.pageStats();
          return (x.inboundVideo?.framesDecoded ?? 0) > 60 ? x : undefined;
        },
        40_000,
      );
      expect(st.counters['receive-video'].failures).toEqual({});
      expect(st.inboundVideo?.keyFramesDecoded ?? 0).toBeGreaterThan(0);
      expect(s.roomStats()?.counters.decryptFailures).toBe(0);
      const sent = s.roomStats()?.counters.videoFramesSent ?? 0;
      const forced = s.roomStats()?.counters.keyframesForced ?? 0;
      console.log(
        `[browser participant] H.264 worker → browser: ${st.counters['receive-video'].opened} frames opened ` +
          `(worker's last stats: ${sent} sent), ${st.inboundVideo?.framesDecoded} decoded (${st.inboundVideo?.decoderImplementation}), ` +
          `${st.inboundVideo?.pliCount ?? 0} PLIs, ${forced} keyframes forced by the worker`,
      );
    } catch (err) {
      await dump(s);
      throw err;
    } finally {
      await s.close();
    }
  }, 90_000);
});
