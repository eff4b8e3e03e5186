// The production transform worker (src/web/media/transform-worker.ts) in headless Chromium: keys only
// over a MessagePort; one page sends microphone, camera and a canvas "screen" through RTCRtpScriptTransform
// to a second RTCPeerConnection whose own transform worker opens them. All three send streams share
// one SFrame counter per KID (the receiver's per-KID replay window refuses nothing), every frame is
// authenticated and decoded, in VP8 and H.264 (the codec read from the frame's metadata); with
// another meeting's keys nothing opens and nothing is decoded; without keys or with sending off,
// nothing leaves. Then the real E2EE worker in Chromium: a non-extractable WebCrypto key, a person
// certificate for it, the relay's Origin check, admission by the leading room, the rooms' security
// code, keys delivered to the transform worker over the port — and none of them seen by the page.
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';
import Fastify, { type FastifyInstance } from 'fastify';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserCorePlugin } from '../scripts/esbuild-core-browser.mjs';
import { makeKid } from '../src/core/e2ee/sender-keys.js';
import { issuePersonCertificate } from '../src/pki/person.js';
import type { E2eeToPage, MeetingView, TransformStats } from '../src/web/shared/messages.js';
import { poll, type Room, Stage } from './adversary/rooms.js';
import { CHROMIUM, CHROMIUM_ARGS } from './browser/chromium.js';
import type { KeysJson, RtcCounts } from './browser/web-transform-page.js';

const here = dirname(fileURLToPath(import.meta.url));
const bytes = (n: number) => Array.from(randomBytes(n));

/** Keys of two members (sender 1 = page A, sender 2 = page B) of one epoch. */
function meetingKeys(epoch = 1) {
  const base = { 1: bytes(32), 2: bytes(32) };
  const s12 = bytes(32);
  const s21 = bytes(32);
  return (self: 1 | 2, sending = true): KeysJson => {
    const peer = self === 1 ? 2 : 1;
    return {
      epoch,
      sendKid: makeKid(epoch, self).toString(),
      sendKey: base[self],
      receiveKeys: [{ kid: makeKid(epoch, peer).toString(), key: base[peer] }],
      auth: [{ peerIndex: peer, send: self === 1 ? s12 : s21, receive: self === 1 ? s21 : s12 }],
      sending,
    };
  };
}

let server: FastifyInstance;
let url: string;
let browser: Browser;

beforeAll(async () => {
  const built = await esbuild.build({
    entryPoints: [
      { in: join(here, 'browser/web-transform-page.ts'), out: 'page' },
      { in: join(here, '../src/web/media/transform-worker.ts'), out: 'transform-worker' },
    ],
    outdir: join(here, 'out'),
    bundle: true,
    format: 'iife',
    target: ['chrome120'],
    write: false,
    logLevel: 'warning',
  });
  // The E2EE worker needs the core's browser backend (and must hold no node builtin).
  const e2ee = await esbuild.build({
    entryPoints: [
      { in: join(here, 'browser/web-e2ee-page.ts'), out: 'e2ee-page' },
      { in: join(here, '../src/web/e2ee/worker.ts'), out: 'e2ee-worker' },
    ],
    outdir: join(here, 'out'),
    bundle: true,
    platform: 'browser',
    format: 'iife',
    target: ['chrome120'],
    write: false,
    logLevel: 'warning',
    plugins: [browserCorePlugin()],
  });
  const file = (name: string) =>
    [...built.outputFiles, ...e2ee.outputFiles].find((f) => f.path.endsWith(`/${name}`))!.text;
  server = Fastify({ logger: false });
  server.get('/', (_q, r) =>
    r
      .type('text/html')
      .send('<!doctype html><meta charset="utf-8"><body><script src="/page.js"></script></body>'),
  );
  server.get('/page.js', (_q, r) => r.type('text/javascript').send(file('page.js')));
  server.get('/e2ee', (_q, r) =>
    r
      .type('text/html')
      .send('<!doctype html><meta charset="utf-8"><body><script src="/e2ee-page.js"></script></body>'),
  );
  server.get('/e2ee-page.js', (_q, r) => r.type('text/javascript').send(file('e2ee-page.js')));
  server.get('/e2ee-worker.js', (_q, r) => r.type('text/javascript').send(file('e2ee-worker.js')));
  server.get('/transform-worker.js', (_q, r) => r.type('text/javascript').send(file('transform-worker.js')));
  url = await server.listen({ host: '127.0.0.1', port: 0 });
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

async function open(): Promise<Page> {
  const page = await browser.newPage();
  await page.goto(url);
  await page.waitForFunction(() => typeof window.webTransform === 'object');
  return page;
}

const stats = (page: Page, which: 'a' | 'b') => page.evaluate((w) => window.webTransform.stats(w), which);
const rtc = (page: Page): Promise<RtcCounts> => page.evaluate(() => window.webTransform.rtc());

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  let last: T = await read();
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 250));
    last = await read();
  }
  return last;
}

const STREAMS = ['microphone', 'camera', 'content'] as const;
const RECEIVED = ['receive-microphone', 'receive-camera', 'receive-content'];
const failures = (s: TransformStats) =>
  Object.values(s.streams).reduce((n, st) => n + Object.values(st.failed).reduce((x, y) => x + y, 0), 0);

describe('the production transform worker in Chromium', () => {
  for (const mime of ['video/VP8', 'video/H264'] as const) {
    it(`${mime}: microphone, camera and content sealed under one KID, opened and decoded`, async () => {
      const page = await open();
      try {
        const keys = meetingKeys();
        expect(await page.evaluate((k) => window.webTransform.keys('a', k), keys(1))).toBe(1);
        expect(await page.evaluate((k) => window.webTransform.keys('b', k), keys(2))).toBe(1);
        await page.evaluate((m) => window.webTransform.start(m), mime);
        const r = await until(
          () => rtc(page),
          (x) => ['1', '2'].every((mid) => (x.inbound[mid]?.framesDecoded ?? 0) >= 20),
          30_000,
          'both video streams decoded',
        );
        expect(r.inbound['1']?.codec).toBe(mime);
        expect(r.inbound['2']?.codec).toBe(mime);
        const a = await stats(page, 'a');
        const b = await until(
          () => stats(page, 'b'),
          (s) => RECEIVED.every((k) => (s.streams[k]?.opened ?? 0) > 10),
          15_000,
          'all three streams opened',
        );
        for (const s of STREAMS) expect(a.streams[`send-${s}`]?.sent).toBeGreaterThan(10);
        // One counter for the three streams of one KID: the receiver's per-KID replay window would
        // refuse about two frames in three if each stream counted on its own. A duplicate that NACK/RTX
        // delivers twice is refused as a replay (docs/interop.md), nothing else fails.
        const opened = RECEIVED.reduce((n, k) => n + (b.streams[k]?.opened ?? 0), 0);
        // (Chromium also hands the audio receive transform the odd empty frame: dropped as EMPTY.)
        const count = (code: string) => RECEIVED.reduce((n, k) => n + (b.streams[k]?.failed[code] ?? 0), 0);
        const replays = count('REPLAY');
        expect(failures(b) - replays - count('EMPTY'), JSON.stringify(b)).toBe(0);
        expect(replays, JSON.stringify(b)).toBeLessThan(opened * 0.02 + 2);
        expect(a.epoch).toBe(1);
        expect(JSON.stringify([a, b])).not.toContain(Buffer.from(keys(1).sendKey).toString('hex'));
      } finally {
        await page.evaluate(() => window.webTransform.close());
        await page.close();
      }
    }, 90_000);
  }

  it('with another meeting’s keys nothing opens or decodes; without keys (or with keys the page posts itself) or with sending off nothing leaves', async () => {
    const page = await open();
    try {
      const ours = meetingKeys();
      const theirs = meetingKeys();
      await page.evaluate((m) => window.webTransform.start(m), 'video/VP8' as const);
      // No keys yet: every frame is dropped on the send side.
      const noKeys = await until(
        () => stats(page, 'a'),
        (s) => (s.streams['send-camera']?.dropped ?? 0) > 10,
        15_000,
        'frames dropped without keys',
      );
      expect(noKeys.streams['send-camera']?.sent ?? 0).toBe(0);
      // Keys posted by the page (not over the E2EE worker's port) are ignored: still nothing sent.
      await page.evaluate((k) => window.webTransform.injectKeys('a', k), ours(1));
      await new Promise((r) => setTimeout(r, 500));
      const injected = await stats(page, 'a');
      expect(injected.epoch).toBe(0);
      expect(injected.streams['send-camera']?.sent ?? 0).toBe(0);
      await page.evaluate((k) => window.webTransform.keys('a', k), ours(1));
      await page.evaluate((k) => window.webTransform.keys('b', k), theirs(2)); // the wrong meeting
      const b = await until(
        () => stats(page, 'b'),
        (s) => (s.streams['receive-camera']?.failed.BAD_TAG ?? 0) > 20,
        20_000,
        'refused frames',
      );
      for (const k of RECEIVED) expect(b.streams[k]?.opened ?? 0).toBe(0);
      const r = await rtc(page);
      expect(r.inbound['1']?.framesDecoded ?? 0).toBe(0);
      expect(r.inbound['2']?.framesDecoded ?? 0).toBe(0);
      // The right keys: it recovers.
      await page.evaluate((k) => window.webTransform.keys('b', k), ours(2));
      await until(
        () => rtc(page),
        (x) => (x.inbound['1']?.framesDecoded ?? 0) > 5,
        20_000,
        'decoding after the right keys',
      );
      // Sending off (rekeying): the sender drops everything.
      await page.evaluate((k) => window.webTransform.keys('a', k), ours(1, false));
      const before = (await stats(page, 'a')).streams['send-camera']!.sent;
      await new Promise((r) => setTimeout(r, 1500));
      const after = await stats(page, 'a');
      expect(after.sending).toBe(false);
      expect(after.streams['send-camera']!.sent).toBe(before);
      expect(after.streams['send-camera']!.dropped).toBeGreaterThan(noKeys.streams['send-camera']!.dropped);
      // A second keys port from the page is ignored: the worker keeps the E2EE worker's keys.
      await page.evaluate((k) => window.webTransform.hijackPort('a', k), meetingKeys(7)(1));
      await new Promise((r) => setTimeout(r, 500));
      expect((await stats(page, 'a')).epoch).toBe(1);
    } finally {
      await page.evaluate(() => window.webTransform.close());
      await page.close();
    }
  }, 90_000);
});

describe('the E2EE worker in Chromium, against a real relay and rooms', () => {
  let stage: Stage;
  let roomA: Room;
  let roomB: Room;
  let meetingId: string;

  beforeAll(async () => {
    stage = new Stage({ allowedOrigins: [new URL(url).origin] });
    await stage.start();
    roomA = await stage.room('Boardroom');
    roomB = await stage.room('Huddle');
    meetingId = await stage.meeting(roomA, [roomB]);
  }, 60_000);

  afterAll(async () => {
    await stage?.close();
  });

  async function person(page: Page, name: string, email: string): Promise<string> {
    const publicKey = await page.evaluate(() => window.webE2ee.makeKey());
    const issued = await issuePersonCertificate({
      ca: stage.ca,
      publicKeyRaw: new Uint8Array(Buffer.from(publicKey, 'base64')),
      person: { name, email, org: 'Sealroom Demo Org' },
    });
    return issued.certPem;
  }

  const trust = () => ({ orgCaPems: [stage.ca.certPem], partnerCaPems: [], revokedSerials: [] });
  const seen = (page: Page): Promise<E2eeToPage[]> => page.evaluate(() => window.webE2ee.seen());
  const lastOf = async (page: Page) => {
    const all = await seen(page);
    const status = all.filter((m) => m.type === 'status').at(-1) as
      | Extract<E2eeToPage, { type: 'status' }>
      | undefined;
    const view = all.filter((m) => m.type === 'view').at(-1) as { view: MeetingView } | undefined;
    return { all, status: status?.status, text: status?.text, view: view?.view };
  };

  it('joins with a non-extractable key, is admitted, shows the rooms’ code; keys reach only the transform worker', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${url}/e2ee`);
      await page.waitForFunction(() => typeof window.webE2ee === 'object');
      const pem = await person(page, 'Erin Black', 'erin@example.org');
      expect(await page.evaluate(() => window.webE2ee.privateKeyExportable())).toBe(false);
      await page.evaluate(([relay, id, cert, t]) => window.webE2ee.start(relay, id, cert, t), [
        stage.relay.url,
        meetingId,
        pem,
        trust(),
      ] as const);
      let pid = '';
      await until(
        () => lastOf(page),
        (x) => x.status === 'waiting' && (x.view?.participantId ?? '') !== '',
        15_000,
        'waiting',
      ).then((x) => {
        pid = x.view!.participantId;
      });
      await poll(
        () => roomA.state.get().meeting?.waiting.some((w) => w.participantId === pid),
        10_000,
        'in the waiting list',
      );
      await roomA.client.admit(pid);
      const code = roomA.state.get().meeting?.securityCode;
      const inMeeting = await until(
        () => lastOf(page),
        (x) => x.status === 'admitted' && x.view?.securityCode === code && x.view?.sending === true,
        15_000,
        'admitted with the code',
      );
      expect(inMeeting.view!.members.map((m) => [m.name, m.kind, m.email])).toEqual([
        ['Boardroom', 'room', ''],
        ['Huddle', 'room', ''],
        ['Erin Black', 'person', 'erin@example.org'],
      ]);
      // The transform worker holds the keys of the epoch the rooms use (it says which, not what).
      const roomEpoch = roomB.keys.at(-1)!.event.epoch;
      const t = await until(
        () => page.evaluate(() => window.webE2ee.transformStats()),
        (s) => s.epoch === roomEpoch && s.sending,
        10_000,
        'keys in the transform worker',
      );
      expect(t.epoch).toBe(roomEpoch);
      // The SFU's offer was forwarded to the page (it answers with its RTCPeerConnection).
      await until(
        () => seen(page),
        (all) => all.some((m) => m.type === 'signal'),
        10_000,
        'the SFU offer',
      );
      // Nothing the page received carries a key: room B's keys (which include ours) appear nowhere.
      const text = JSON.stringify(await seen(page));
      const b = roomB.keys.at(-1)!.event;
      const secrets = [
        b.sendKey,
        ...b.receiveKeys.map((k) => k.key),
        ...b.auth.flatMap((a) => [a.send, a.receive]),
      ];
      expect(secrets.length).toBeGreaterThan(3);
      for (const k of secrets)
        for (const enc of ['hex', 'base64', 'base64url'] as const)
          expect(text).not.toContain(Buffer.from(k).toString(enc));
      expect(new Set((await seen(page)).map((m) => m.type))).toEqual(new Set(['status', 'view', 'signal']));
      await page.evaluate(() => window.webE2ee.leave());
      await until(
        () => lastOf(page),
        (x) => x.status === 'left',
        10_000,
        'left',
      );
      await until(
        () => page.evaluate(() => window.webE2ee.transformStats()),
        (s) => s.epoch === 0,
        5000,
        'keys wiped in the transform worker',
      );
    } finally {
      await page.evaluate(() => window.webE2ee.close()).catch(() => undefined);
      await page.close();
    }
  }, 90_000);

  it('a page from an origin the relay does not allow never gets in', async () => {
    const page = await browser.newPage();
    try {
      const other = url.replace('127.0.0.1', 'localhost');
      await page.goto(`${other}/e2ee`);
      await page.waitForFunction(() => typeof window.webE2ee === 'object');
      const pem = await person(page, 'Frank Green', 'frank@example.org');
      await page.evaluate(([relay, id, cert, t]) => window.webE2ee.start(relay, id, cert, t), [
        stage.relay.url,
        meetingId,
        pem,
        trust(),
      ] as const);
      const last = await until(
        () => lastOf(page),
        (x) => x.status === 'error' || x.status === 'refused',
        15_000,
        'refused',
      );
      expect(last.view?.participantId ?? '').toBe('');
      expect(roomA.state.get().meeting?.waiting ?? []).toEqual([]);
    } finally {
      await page.evaluate(() => window.webE2ee.close()).catch(() => undefined);
      await page.close();
    }
  }, 60_000);
});
