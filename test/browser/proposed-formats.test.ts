// The browser-compatible frame formats (docs/interop.md) against the ones they replace, shown in
// Chromium itself, between two pages of one browser running in a network namespace that holds only
// lo. Both pages encrypt and decrypt with the WebCrypto SFrame of test/browser/; the receiving page
// reports what Chromium decoded.
//  - VP8 from a sender whose SFrame counter is past 255: whole-frame SFrame (the media worker's
//    former format) is never decoded; with the VP8 header clear and bound as metadata (the
//    clear-prefix format the worker now sends, device/media/vp8-protect.ts) it is.
//  - H.264: one SFrame per NAL unit with only the header byte clear (the worker's former format) never
//    reaches the receive transform; with SPS/PPS and the slice header up to pic_parameter_set_id clear
//    and authenticated (the clear-params format the worker now sends, device/media/h264-protect.ts),
//    it decodes.
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import type { SignalPayload } from '../../src/core/protocol/relay.js';
import { deriveSenderBaseKey, makeKid } from '../../src/core/e2ee/sender-keys.js';
import { newMeetingKey, waitFor } from '../media-harness.js';
import { CHROMIUM_ARGS, isLoopbackCandidate } from './chromium.js';
import type { PageStats } from './page.js';
import { participantFiles } from './server.js';

/** Sender keys are bound to a meeting; any fixed one does for the format tests. */
const MEETING = { meetingId: 'm-formats', creationNonce: new Uint8Array(32).fill(5) };
const EPOCH = 1;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

afterAll(async () => {
  await isolated?.close();
});

const NETNS_CHROMIUM = fileURLToPath(new URL('./chromium-netns.sh', import.meta.url));
/** Origin of the page inside the isolated browser, answered by request interception (no server). */
const ISOLATED_ORIGIN = 'http://localhost:8117';
let isolated: Browser | undefined;

/**
 * A page in a Chromium whose network namespace holds only lo (test/browser/chromium-netns.sh): two
 * such pages reach each other over loopback and nothing else. The page's files come from request
 * interception, since no server of ours is inside that namespace.
 */
async function isolatedPage(): Promise<Page> {
  if (!isolated) {
    isolated = await chromium.launch({ executablePath: NETNS_CHROMIUM, headless: true, args: CHROMIUM_ARGS });
    await loopbackReady(await isolatedPage());
  }
  const files = await participantFiles();
  const context = await isolated.newContext();
  await context.route(`${ISOLATED_ORIGIN}/**`, (route) => {
    const file = files.get(new URL(route.request().url()).pathname);
    return file
      ? route.fulfill({ status: 200, contentType: file.type, body: file.body })
      : route.fulfill({ status: 404, body: 'not found' });
  });
  const page = await context.newPage();
  await page.goto(`${ISOLATED_ORIGIN}/`);
  return page;
}

/**
 * A fresh browser in a new namespace sometimes fails its very first ICE exchange (observed: checks
 * sent, never answered); two local RTCPeerConnections that connect show its stack is ready.
 */
async function loopbackReady(page: Page): Promise<void> {
  // Host candidates are gathered on every interface only once media permission is granted.
  await page.evaluate(() => window.participant.init());
  try {
    await waitFor(
      'WebRTC over lo in the isolated browser',
      () =>
        page.evaluate(async () => {
          const [p1, p2] = [new RTCPeerConnection(), new RTCPeerConnection()];
          p1.onicecandidate = (e) => e.candidate && p2.addIceCandidate(e.candidate);
          p2.onicecandidate = (e) => e.candidate && p1.addIceCandidate(e.candidate);
          p1.createDataChannel('probe');
          await p1.setLocalDescription();
          await p2.setRemoteDescription(p1.localDescription as RTCSessionDescriptionInit);
          await p2.setLocalDescription();
          await p1.setRemoteDescription(p2.localDescription as RTCSessionDescriptionInit);
          const ok = await new Promise<boolean>((resolve) => {
            const done = () => p1.connectionState === 'connected' && resolve(true);
            p1.onconnectionstatechange = done;
            setTimeout(() => resolve(false), 3000);
          });
          p1.close();
          p2.close();
          return ok;
        }),
      30_000,
    );
  } finally {
    await page.evaluate(() => window.participant.close());
    await page.context().close();
  }
}

/** Two browser pages peer-to-peer (a offers), signalling piped by the test, loopback candidates only. */
async function browserPair(
  formats: { vp8Format?: 'whole-frame' | 'clear-prefix'; h264Format?: 'per-nal' | 'clear-params' },
  initialCounter: bigint,
) {
  const codec: 'vp8' | 'h264' = formats.h264Format ? 'h264' : 'vp8';
  const mk = newMeetingKey();
  const [A, B] = [4, 5];
  const pages = await Promise.all([isolatedPage(), isolatedPage()]);
  const [a, b] = pages as [Page, Page];
  const forward = (to: Page) => (payload: SignalPayload) => {
    if (payload.kind === 'candidate' && !isLoopbackCandidate(payload.candidate)) return;
    to.evaluate((p) => window.participant.signal(p), payload).catch(() => undefined);
  };
  await a.exposeFunction('sealroomSignal', forward(b));
  await b.exposeFunction('sealroomSignal', forward(a));
  for (const [page, self, other] of [
    [a, A, B],
    [b, B, A],
  ] as const) {
    await page.evaluate(() => window.participant.init());
    await page.evaluate((k) => window.participant.setKeys(k), {
      sendKid: makeKid(EPOCH, self).toString(),
      sendKey: hex(deriveSenderBaseKey(mk, EPOCH, self, MEETING)),
      receiveKeys: [
        { kid: makeKid(EPOCH, other).toString(), key: hex(deriveSenderBaseKey(mk, EPOCH, other, MEETING)) },
      ],
      ...formats,
      videoCodec: codec,
      initialCounter: initialCounter.toString(),
    });
  }
  await a.evaluate((mime) => window.participant.offer(mime), codec === 'h264' ? 'video/H264' : 'video/VP8');
  return {
    b,
    statsA: () => a.evaluate(() => window.participant.stats()),
    statsB: () => b.evaluate(() => window.participant.stats()),
    close: async () => {
      for (const p of pages) {
        await p.evaluate(() => window.participant.close()).catch(() => undefined);
        await p.context().close();
      }
    },
  };
}

describe('VP8: header clear and bound as SFrame metadata', () => {
  it('a sender past CTR 255: whole-frame SFrame is never decoded, the clear-prefix format is', async () => {
    const outcome: Record<string, PageStats> = {};
    for (const format of ['whole-frame', 'clear-prefix'] as const) {
      const pair = await browserPair({ vp8Format: format }, 300n);
      try {
        outcome[format] = await waitFor(
          `${format}: 60 frames opened by B`,
          async () => {
            const st = await pair.statsB();
            return st.counters['receive-video'].opened > 60 ? st : undefined;
          },
          40_000,
        );
        if (format === 'clear-prefix') {
          await waitFor('clear-prefix: the fake camera playing at B', async () => {
            const px = await pair.b.evaluate(() => window.participant.sample([]));
            return px && px.nonBlack > 0.5;
          });
        }
      } finally {
        await pair.close();
      }
    }
    const whole = outcome['whole-frame'] as PageStats;
    const prefix = outcome['clear-prefix'] as PageStats;
    console.log(
      '[proposed formats] VP8 at CTR 300:',
      JSON.stringify({ whole: whole.counters['receive-video'], wholeIn: whole.inboundVideo }),
      JSON.stringify({ prefix: prefix.counters['receive-video'], prefixIn: prefix.inboundVideo }),
    );
    // Chromium ↔ Chromium retransmits (NACK/RTX): a duplicate frame is refused as REPLAY, correctly.
    const { REPLAY: _w, ...wholeFailures } = whole.counters['receive-video'].failures;
    const { REPLAY: _p, ...prefixFailures } = prefix.counters['receive-video'].failures;
    expect(wholeFailures).toEqual({});
    expect(whole.counters['receive-video'].typeMislabelled).toBeGreaterThan(0);
    expect(whole.inboundVideo?.framesDecoded ?? 0).toBe(0);
    expect(prefixFailures).toEqual({});
    expect(prefix.counters['receive-video'].typeMislabelled).toBe(0);
    expect(prefix.inboundVideo?.framesDecoded ?? 0).toBeGreaterThan(30);
    expect(prefix.inboundVideo?.keyFramesDecoded ?? 0).toBeGreaterThan(0);
  }, 120_000);
});

describe('H.264: parameter sets and slice-header ids clear and authenticated', () => {
  it('per-NAL SFrame (the worker’s former format) never reaches Chromium’s receive transform; the clear-params format decodes', async () => {
    const outcome: Record<string, PageStats> = {};
    for (const h264Format of ['per-nal', 'clear-params'] as const) {
      const pair = await browserPair({ h264Format }, 0n);
      try {
        outcome[h264Format] = await waitFor(
          `${h264Format}: 60 frames sent by A and an outcome at B`,
          async () => {
            const [sa, sb] = [await pair.statsA(), await pair.statsB()];
            const sent = sa.counters['send-video'].sealed;
            const decoded = sb.inboundVideo?.framesDecoded ?? 0;
            if (sb.connectionState !== 'connected' || sent < 60) return undefined;
            return h264Format === 'per-nal' || decoded > 30 ? sb : undefined;
          },
          40_000,
        );
      } finally {
        await pair.close();
      }
    }
    const perNal = outcome['per-nal'] as PageStats;
    const clear = outcome['clear-params'] as PageStats;
    console.log(
      '[proposed formats] H.264:',
      JSON.stringify({ perNal: perNal.counters['receive-video'], perNalIn: perNal.inboundVideo }),
      JSON.stringify({ clear: clear.counters['receive-video'], clearIn: clear.inboundVideo }),
    );
    expect(perNal.counters['receive-video'].opened).toBeLessThan(6);
    expect(perNal.inboundVideo?.framesDecoded ?? 0).toBe(0);
    const { REPLAY: _r, ...clearFailures } = clear.counters['receive-video'].failures;
    expect(clearFailures).toEqual({});
    expect(clear.inboundVideo?.framesDecoded ?? 0).toBeGreaterThan(30);
    for (const st of [perNal, clear]) {
      for (const pair of st.candidatePairs) expect(pair.local).toMatch(/^(127\.|::1)/);
    }
  }, 120_000);
});
