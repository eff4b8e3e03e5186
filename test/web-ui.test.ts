// The web participant page (src/web/app/) in real headless Debian Chromium, served by the real /join/
// route (provisioning/service/routes-join.ts, with its CSP) and built by scripts/build-web.mjs — but
// with a scripted E2EE worker (test/web-ui-stub-worker.ts) in place of src/web/e2ee/worker.ts, so every
// screen can be driven exactly: sign-in refusals, signed in (certificate), waiting, the meeting (code,
// verified roster, tiles), denied, left. The "relay's SFU" is a second RTCPeerConnection in the page
// whose sender seals with the real transform worker: the page must answer the offer as docs/relay.md
// says (publish on m-lines 0-2, receive the rest), decrypt the room's camera into a labelled tile, send
// its own camera/microphone/screen sealed (the fake SFU opens them with the page's keys), and share
// its screen on the content line with replaceTrack. The real sign-in against the dev IdP and a real
// relay are in test/web-ui-signin.test.ts and H5's test/people-meeting.test.ts.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { findPackageRoot } from '../device/kiosk/ui-dir.js';
import { registerJoinRoutes } from '../provisioning/service/routes-join.js';
import type { E2eeToPage, MeetingView, TransformStats } from '../src/web/shared/messages.js';
import { CHROMIUM_ARGS } from './browser/chromium.js';
import { expectAxeClean } from './browser-helpers.js';
import { findOverflows, HEADLESS_ARGS, launchChromium } from './kiosk-browser.js';

const root = findPackageRoot();
const ARTIFACTS = join(root, 'test-artifacts', 'web');
const RELAY = 'ws://127.0.0.1:9/v1/ws';
const MEETING = 'abcd-1234';
const LINK = `#meeting=${MEETING}&relay=${encodeURIComponent(RELAY)}`;
const CODE = '57056 67967 65014 89928 88357 83584 20101 24099';
const TRUST = {
  orgCaPems: ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'],
  partnerCaPems: [],
  revokedSerials: ['01'],
};
const PERSON = { name: 'Alice Smith', email: 'alice@example.org', org: 'Example Corp' };
const CERT_PEM = '-----BEGIN CERTIFICATE-----\nALICE\n-----END CERTIFICATE-----\n';

let dir: string;
let app: FastifyInstance;
let origin: string;
let browser: Browser;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  dir = mkdtempSync(join(tmpdir(), 'sealroom-web-ui-'));
  execFileSync(
    process.execPath,
    [
      join(root, 'scripts', 'build-web.mjs'),
      '--outdir',
      dir,
      '--e2ee-entry',
      join(root, 'test', 'web-ui-stub-worker.ts'),
    ],
    { cwd: root, stdio: 'pipe' },
  );
  app = Fastify({ logger: false });
  // An identity provider nobody listens at: sign-in fails at discovery, with a message.
  const people = { issuer: 'http://127.0.0.1:9/oidc', relayUrl: RELAY };
  await registerJoinRoutes(app, { people, web: { dir } });
  app.get('/api/people/config', async () => ({
    issuer: people.issuer,
    clientId: 'sealroom-web',
    redirectUri: `${origin}/join/`,
    org: 'Example Corp',
    relayUrl: RELAY,
  }));
  app.get('/api/people/trust', async () => TRUST);
  origin = (await app.listen({ host: '127.0.0.1', port: 0 })).replace('localhost', '127.0.0.1');
  // Fake camera and microphone; getDisplayMedia picks the fake "Entire screen" without a prompt.
  browser = await launchChromium([
    ...CHROMIUM_ARGS.filter((a) => !HEADLESS_ARGS.includes(a)),
    '--auto-select-desktop-capture-source=Entire screen',
  ]);
}, 90_000);

afterEach(async () => {
  for (const c of contexts.splice(0)) await c.close().catch(() => undefined);
});

afterAll(async () => {
  await browser?.close();
  await app?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Opened {
  page: Page;
  errors: string[];
}

async function open(hash = LINK, size = { width: 1280, height: 800 }): Promise<Opened> {
  const context = await browser.newContext({ viewport: size });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  page.on('console', (msg) => {
    if (process.env.WEB_UI_DEBUG) console.log(`[page ${msg.type()}] ${msg.text()}`);
    // The unreachable IdP in the refusal test logs a failed fetch; everything else counts.
    if (msg.type() === 'error' && !/ERR_CONNECTION_REFUSED|Failed to load resource/.test(msg.text()))
      errors.push(msg.text());
  });
  // What the stub worker saw from the page, and a bus to make it talk.
  await page.addInitScript(() => {
    const w = window as unknown as {
      __bus: BroadcastChannel;
      __seen: unknown[];
      __onSeen: ((m: unknown) => void)[];
    };
    w.__seen = [];
    w.__onSeen = [];
    w.__bus = new BroadcastChannel('sealroom-web-ui-stub');
    w.__bus.onmessage = (e: MessageEvent) => {
      const seen = (e.data as { seen?: unknown }).seen;
      if (!seen) return;
      w.__seen.push(seen);
      for (const f of w.__onSeen) f(seen);
    };
  });
  await page.goto(`${origin}/join/${hash}`);
  await page.waitForSelector('[data-screen]:not([data-screen=loading])');
  return { page, errors };
}

/** Puts a key pair and a certificate in the page's IndexedDB as a finished sign-in leaves them. */
async function seedSignIn(page: Page, notAfter = new Date(Date.now() + 11.9 * 3600_000)): Promise<void> {
  await page.evaluate(
    async ({ cert, person, notAfter }) => {
      const pair = (await crypto.subtle.generateKey({ name: 'Ed25519' }, false, [
        'sign',
        'verify',
      ])) as CryptoKeyPair;
      const raw = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
      const publicKey = btoa(String.fromCharCode(...raw))
        .replace(/\+/g, '-')
        .replace(/\//g, '_')
        .replace(/=+$/, '');
      const db = await new Promise<IDBDatabase>((resolve, reject) => {
        const req = indexedDB.open('sealroom-web', 1);
        req.onupgradeneeded = () => req.result.createObjectStore('kv');
        req.onsuccess = () => resolve(req.result);
        req.onerror = () => reject(req.error);
      });
      await new Promise<void>((resolve, reject) => {
        const tx = db.transaction('kv', 'readwrite');
        tx.objectStore('kv').put(pair, 'person-key');
        tx.objectStore('kv').put({ certificate: cert, notAfter, person, publicKey }, 'person-certificate');
        tx.oncomplete = () => resolve();
        tx.onerror = () => reject(tx.error);
      });
      db.close();
    },
    { cert: CERT_PEM, person: PERSON, notAfter: notAfter.toISOString() },
  );
  await page.reload();
  await page.waitForSelector('[data-screen=ready]');
}

const emit = (page: Page, message: E2eeToPage) =>
  page.evaluate(
    (m) => (window as unknown as { __bus: BroadcastChannel }).__bus.postMessage({ cmd: 'emit', message: m }),
    message,
  );

async function seen(page: Page, type: string, timeout = 10_000): Promise<Record<string, unknown>[]> {
  await page.waitForFunction(
    (t) => (window as unknown as { __seen: { type: string }[] }).__seen.some((m) => m.type === t),
    type,
    { timeout },
  );
  return page.evaluate(
    (t) => (window as unknown as { __seen: { type: string }[] }).__seen.filter((m) => m.type === t),
    type,
  ) as Promise<Record<string, unknown>[]>;
}

function view(over: Partial<MeetingView> = {}): MeetingView {
  return {
    meetingId: MEETING,
    participantId: 'me-2',
    securityCode: CODE,
    leaderId: 'room-a',
    members: [
      {
        participantId: 'room-a',
        senderIndex: 1,
        kind: 'room',
        name: 'Huddle 2.01',
        email: '',
        org: 'Example Corp',
        leader: true,
        self: false,
      },
      { participantId: 'me-2', senderIndex: 2, kind: 'person', ...PERSON, leader: false, self: true },
    ],
    refused: [],
    sending: true,
    sharer: null,
    epoch: 1,
    muted: { audio: false, video: false },
    ...over,
  };
}

async function codeOnScreen(page: Page): Promise<string> {
  const groups = await page.$$eval('[data-testid=security-code] .code-group', (els) =>
    els.map((e) => e.textContent ?? ''),
  );
  return groups.join(' ');
}

const axeClean = (page: Page, label: string) => expectAxeClean(page, label);

describe('web participant page', () => {
  it('sign-in screen: says which meeting, refuses with clear messages', async () => {
    const { page, errors } = await open();
    expect(await page.getAttribute('[data-screen]', 'data-screen')).toBe('sign-in');
    expect(await page.textContent('[data-testid=target]')).toContain(MEETING);
    expect(await page.textContent('[data-testid=sign-in]')).toBe('Sign in with Example Corp');
    await axeClean(page, 'sign-in');
    await page.screenshot({ path: join(ARTIFACTS, 'sign-in.png') });

    // The identity provider cannot be reached.
    await page.click('[data-testid=sign-in]');
    await page.waitForSelector('[data-testid=error][data-code=idp-unreachable]');
    expect(await page.textContent('[data-testid=error]')).toMatch(
      /identity provider at http:\/\/127\.0\.0\.1:9 could not be reached/,
    );

    // The identity provider sent the person back with an error: shown, and the address bar cleaned.
    await page.goto(`${origin}/join/?error=access_denied&error_description=User+cancelled&state=x`);
    await page.waitForSelector('[data-testid=error][data-code=access_denied]');
    expect(await page.textContent('[data-testid=error]')).toContain(
      'Sign-in was cancelled or refused at the identity provider. (User cancelled)',
    );
    expect(new URL(page.url()).search).toBe('');

    // A code that this page never asked for (no PKCE state here): refused before any token request.
    await page.goto(`${origin}/join/?code=stolen&state=x`);
    await page.waitForSelector('[data-testid=error][data-code=no-pending]');
    expect(new URL(page.url()).search).toBe('');
    expect(errors).toEqual([]);
  });

  it('refuses crafted links: a relay this organisation does not use, a bad meeting id', async () => {
    const { page } = await open(
      `#meeting=${MEETING}&relay=${encodeURIComponent('wss://evil.example/v1/ws')}`,
    );
    expect(await page.textContent('[data-testid=link-error]')).toMatch(
      /relay this organisation does not use/,
    );
    await page.goto(`${origin}/join/#meeting=AB&relay=${encodeURIComponent(RELAY)}`);
    await page.reload();
    await page.waitForSelector('[data-testid=link-error]');
    expect(await page.textContent('[data-testid=link-error]')).toMatch(/no valid meeting id/);
    // A link with only the meeting id uses the organisation's relay.
    await page.goto(`${origin}/join/#meeting=${MEETING}`);
    await page.reload();
    await page.waitForSelector('[data-testid=target]');
  });

  it('signed in → waiting → meeting → leave; media through a fake SFU with the real transform worker', async () => {
    const { page, errors } = await open();
    await seedSignIn(page);
    // The certificate's person and expiry.
    expect(await page.textContent('[data-testid=person-name]')).toBe(PERSON.name);
    expect(await page.textContent('[data-testid=person-email]')).toBe(PERSON.email);
    expect(await page.textContent('[data-testid=person-org]')).toBe(PERSON.org);
    expect(await page.textContent('[data-testid=cert-expiry]')).toMatch(
      /Certificate valid until \d\d:\d\d \(in 11 h 5\d min\)/,
    );
    await page.waitForSelector('[data-testid=self-tile] video');
    await axeClean(page, 'ready');
    await page.screenshot({ path: join(ARTIFACTS, 'ready.png') });

    await page.click('[data-testid=join]');
    await page.waitForSelector('[data-screen=waiting] [data-testid=status][data-status=waiting]');
    const [start] = await seen(page, 'start');
    // The worker got the link's target, the certificate, the trust anchors, a port to the transform
    // worker and a non-extractable Ed25519 private key.
    expect(start).toEqual({
      type: 'start',
      relayUrl: RELAY,
      meetingId: MEETING,
      certificatePem: CERT_PEM,
      trust: TRUST,
      privateType: 'private',
      privateExtractable: false,
      algorithm: 'Ed25519',
      hasPort: true,
    });
    await axeClean(page, 'waiting');
    await page.screenshot({ path: join(ARTIFACTS, 'waiting.png') });

    // Admitted, with the verified view: code and roster exactly as the worker verified them.
    await emit(page, { type: 'status', status: 'admitted', text: 'In the meeting' });
    await emit(page, { type: 'view', view: view({ refused: ['ghost-9'] }) });
    await page.waitForSelector('[data-screen=meeting] [data-testid=security-code]');
    expect(await codeOnScreen(page)).toBe(CODE);
    const roster = await page.$$eval('[data-testid=roster-entry]', (els) =>
      els.map((e) => ({
        id: e.getAttribute('data-participant-id'),
        kind: e.getAttribute('data-kind'),
        text: e.textContent,
      })),
    );
    expect(roster).toEqual([
      { id: 'room-a', kind: 'room', text: '▣Huddle 2.01 · Example Corp leads' },
      { id: 'me-2', kind: 'person', text: '●Alice Smith · alice@example.org · Example Corp · signed in you' },
    ]);
    expect(await page.$$eval('[data-testid=roster-refused]', (els) => els.map((e) => e.textContent))).toEqual(
      ['!A participant whose certificate did not verify (not shown, not trusted)'],
    );
    // No content line offered yet: sharing is not possible.
    expect(await page.isDisabled('[data-testid=share]')).toBe(true);

    // Keys for both ends (epoch 1: room index 1, this page index 2), pairwise frame-auth keys.
    const epoch1 = keysFor(1);
    await givePageKeys(page, epoch1.page);
    await seen(page, 'transform-ack');

    await startFakeSfu(page, epoch1.sfu);

    // The room's camera: decrypted and decoded in a tile labelled with the verified name; the ghost's
    // stream (msid naming nobody in the verified view) is shown as unverified, never with a name.
    await page.waitForSelector('[data-testid=tile][data-participant-id=room-a][data-kind=camera] video');
    expect(await page.textContent('[data-testid=tile][data-participant-id=room-a] figcaption')).toBe(
      'Huddle 2.01 · Example Corp',
    );
    expect(await page.textContent('[data-testid=tile][data-participant-id=ghost] figcaption')).toBe(
      'Unverified participant',
    );
    // The page's own counters and decoded frames per tile (window.sealroomWebStats, as the bench reads them).
    const stats = await pollPage(
      page,
      () => window.sealroomWebStats(),
      (s) => {
        const n = (k: string) => s.transform.streams[k];
        return (
          s.tiles.some((t) => t.participantId === 'room-a' && t.framesDecoded > 5) &&
          (n('send-camera')?.sent ?? 0) > 5 &&
          (n('send-microphone')?.sent ?? 0) > 5 &&
          (n('receive-audio')?.opened ?? 0) > 5
        );
      },
    );
    expect(stats.connectionState).toBe('connected');
    expect(stats.signallingErrors).toEqual([]);
    expect(stats.transform.streams['receive-video']?.opened).toBeGreaterThan(5);
    expect(stats.transform.streams['send-camera']?.sent).toBeGreaterThan(5);
    expect(stats.transform.streams['send-microphone']?.sent).toBeGreaterThan(5);
    expect(stats.transform.streams['receive-audio']?.opened).toBeGreaterThan(5);
    // The fake SFU opens the page's camera and microphone with the page's keys: they left sealed.
    await waitForSfu(
      page,
      (s) => (s.streams['receive-video']?.opened ?? 0) > 5 && (s.streams['receive-audio']?.opened ?? 0) > 5,
    );
    // A re-offer on the same relay connection (werift: a new random o= each time) renegotiates the
    // same RTCPeerConnection: the room's tile keeps decoding, its frame count does not start over.
    const before = stats.tiles.find((t) => t.participantId === 'room-a')?.framesDecoded ?? 0;
    await page.evaluate(() => (window as unknown as { __sfuReoffer: () => Promise<void> }).__sfuReoffer());
    await pollPage(
      page,
      () => window.sealroomWebStats(),
      (st) => {
        const n = st.tiles.find((t) => t.participantId === 'room-a')?.framesDecoded ?? 0;
        // A fresh connection would show a missing tile or a count starting again from 0.
        if (n < before) throw new Error(`the page started over on a re-offer: ${n} < ${before} frames`);
        return n > before + 20;
      },
    );
    expect((await page.evaluate(() => window.sealroomWebStats())).signallingErrors).toEqual([]);

    // An audio element plays the room.
    expect(await page.$$eval('audio[data-participant-id=room-a]', (els) => els.length)).toBe(1);

    // Share screen: getDisplayMedia → replaceTrack on the content line; the SFU opens it as content.
    await page.waitForSelector('[data-testid=share]:not([disabled])');
    await page.click('[data-testid=share]');
    await page.waitForSelector('[data-testid=self-screen] video');
    expect((await seen(page, 'share')).at(-1)).toEqual({ type: 'share', enabled: true });
    await waitForSfu(page, (s) => (s.streams['receive-content']?.opened ?? 0) > 3);
    expect(await page.getAttribute('[data-testid=share]', 'aria-pressed')).toBe('true');
    await emit(page, { type: 'view', view: view({ sharer: 'me-2' }) });
    await axeClean(page, 'meeting');
    expect(await findOverflows(page)).toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'meeting-sharing.png') });
    await page.click('[data-testid=share]');
    await page.waitForSelector('[data-testid=self-screen]', { state: 'detached' });
    expect((await seen(page, 'share')).at(-1)).toEqual({ type: 'share', enabled: false });

    // Someone else starts sharing: the relay ends ours; the page stops and says who took over.
    await page.click('[data-testid=share]');
    await page.waitForSelector('[data-testid=self-screen] video');
    await emit(page, { type: 'view', view: view({ sharer: 'me-2' }) });
    await emit(page, { type: 'view', view: view({ sharer: 'room-a' }) });
    await page.waitForSelector('[data-testid=self-screen]', { state: 'detached' });
    expect(await page.textContent('[data-testid=notice]')).toBe(
      'Huddle 2.01 started sharing; your screen is no longer shown.',
    );
    expect((await seen(page, 'share')).at(-1)).toEqual({ type: 'share', enabled: false });

    // The relay restarts: a new PeerConnection there (new o= session), new keys (epoch 2). The page
    // starts over on a fresh connection and decodes the room again.
    const epoch2 = keysFor(2);
    await givePageKeys(page, epoch2.page);
    await startFakeSfu(page, epoch2.sfu);
    await pollPage(
      page,
      () => window.sealroomWebStats(),
      (st) =>
        st.connectionState === 'connected' &&
        st.tiles.some((t) => t.participantId === 'room-a' && t.framesDecoded > 5),
    );
    expect((await page.evaluate(() => window.sealroomWebStats())).signallingErrors).toEqual([]);
    await waitForSfu(page, (st) => (st.streams['receive-video']?.opened ?? 0) > 5);

    // Mute and camera off reach the worker (for the view) and the buttons say so.
    await page.click('[data-testid=mute]');
    expect(await page.getAttribute('[data-testid=mute]', 'aria-pressed')).toBe('true');
    expect((await seen(page, 'mute')).at(-1)).toEqual({ type: 'mute', audio: true, video: false });
    await page.click('[data-testid=camera]');
    await page.waitForSelector('[data-testid=camera][aria-pressed=true]');
    expect((await seen(page, 'mute')).at(-1)).toEqual({ type: 'mute', audio: true, video: true });
    await page.waitForSelector('[data-testid=self-tile]', { state: 'detached' });

    // Keys changing: the view says sending is off, the page says so.
    await emit(page, { type: 'view', view: view({ sending: false }) });
    await page.waitForSelector('[data-testid=paused]');

    await page.click('[data-screen=meeting] [data-testid=leave]');
    await seen(page, 'leave');
    await page.waitForSelector('[data-screen=outcome] [data-testid=status][data-status=left]');
    await axeClean(page, 'left');
    expect(errors).toEqual([]);
  }, 120_000);

  it('denied and refused: the outcome screen, and joining again', async () => {
    const { page } = await open();
    await seedSignIn(page);
    await page.click('[data-testid=join]');
    await page.waitForSelector('[data-testid=status][data-status=waiting]');
    await emit(page, { type: 'status', status: 'denied', text: 'The room did not let you in' });
    await page.waitForSelector('[data-screen=outcome] [data-testid=status][data-status=denied]');
    expect(await page.textContent('h1')).toBe('The room did not let you in.');
    await page.screenshot({ path: join(ARTIFACTS, 'denied.png') });
    await page.click('[data-testid=rejoin]');
    await page.waitForSelector('[data-testid=status][data-status=waiting]');
    await emit(page, {
      type: 'status',
      status: 'refused',
      text: 'The relay refused your certificate (certificate-expired)',
    });
    await page.waitForSelector('[data-testid=status][data-status=refused]');
    expect(await page.textContent('[data-testid=status]')).toBe(
      'The relay refused your certificate (certificate-expired)',
    );
    await axeClean(page, 'refused');
  });

  it('an expired certificate is not offered: sign in again', async () => {
    const { page } = await open();
    await seedSignIn(page, new Date(Date.now() + 11.9 * 3600_000));
    // Same browser, the certificate now expired: the page asks for a new sign-in.
    await page.evaluate(async () => {
      const db = await new Promise<IDBDatabase>((resolve) => {
        const req = indexedDB.open('sealroom-web', 1);
        req.onsuccess = () => resolve(req.result);
      });
      await new Promise<void>((resolve) => {
        const tx = db.transaction('kv', 'readwrite');
        const store = tx.objectStore('kv');
        const get = store.get('person-certificate');
        get.onsuccess = () =>
          store.put(
            { ...get.result, notAfter: new Date(Date.now() - 1000).toISOString() },
            'person-certificate',
          );
        tx.oncomplete = () => resolve();
      });
      db.close();
    });
    await page.reload();
    await page.waitForSelector('[data-screen=sign-in]');
  });

  it('fits and stays readable on a small laptop window and a phone held sideways', async () => {
    for (const size of [
      { width: 1024, height: 640 },
      { width: 844, height: 390 },
    ]) {
      const { page } = await open(LINK, size);
      await seedSignIn(page);
      await page.click('[data-testid=join]');
      await page.waitForSelector('[data-testid=status][data-status=waiting]');
      await emit(page, { type: 'status', status: 'admitted', text: 'In the meeting' });
      await emit(page, { type: 'view', view: view() });
      await page.waitForSelector('[data-testid=security-code]');
      // Digits large enough to read aloud from a laptop screen.
      const digitPx = await page.$eval('[data-testid=security-code] .code-group', (e) =>
        Number.parseFloat(getComputedStyle(e).fontSize),
      );
      expect(digitPx).toBeGreaterThanOrEqual(24);
      // Every control reachable by keyboard.
      for (const id of ['mute', 'camera', 'leave']) {
        await page.focus(`[data-testid=${id}]`);
        expect(await page.evaluate(() => document.activeElement?.getAttribute('data-testid'))).toBe(id);
      }
      await page.screenshot({
        path: join(ARTIFACTS, `meeting-${size.width}x${size.height}.png`),
        fullPage: true,
      });
    }
  });
});

type PageKeys = {
  epoch: number;
  sendKid: string;
  sendKey: number[];
  receiveKeys: { kid: string; key: number[] }[];
  auth: { peerIndex: number; send: number[]; receive: number[] }[];
};

/** Fresh keys of one epoch for the page (sender index 2) and the fake SFU's room (index 1). */
function keysFor(epoch: number): { page: PageKeys; sfu: SfuKeys } {
  const kidRoom = String((BigInt(epoch) << 16n) | 1n);
  const kidPage = String((BigInt(epoch) << 16n) | 2n);
  const bytes = (): number[] => [...randomBytes(32)];
  const [kRoom, kPage, aRoomToPage, aPageToRoom] = [bytes(), bytes(), bytes(), bytes()];
  return {
    page: {
      epoch,
      sendKid: kidPage,
      sendKey: kPage,
      receiveKeys: [{ kid: kidRoom, key: kRoom }],
      auth: [{ peerIndex: 1, send: aPageToRoom, receive: aRoomToPage }],
    },
    sfu: {
      epoch,
      sendKid: kidRoom,
      sendKey: kRoom,
      receiveKeys: [{ kid: kidPage, key: kPage }],
      auth: [{ peerIndex: 2, send: aRoomToPage, receive: aPageToRoom }],
    },
  };
}

/** Keys for the page's transform worker, sent by the stub E2EE worker on its port (as the real one does). */
async function givePageKeys(page: Page, k: PageKeys): Promise<void> {
  await page.evaluate(
    (k) =>
      (window as unknown as { __bus: BroadcastChannel }).__bus.postMessage({
        cmd: 'keys',
        keys: {
          type: 'keys',
          epoch: k.epoch,
          sendKid: k.sendKid,
          sendKey: new Uint8Array(k.sendKey),
          receiveKeys: k.receiveKeys.map((r) => ({ kid: r.kid, key: new Uint8Array(r.key) })),
          auth: k.auth.map((a) => ({
            peerIndex: a.peerIndex,
            send: new Uint8Array(a.send),
            receive: new Uint8Array(a.receive),
          })),
          sending: true,
        },
      }),
    k,
  );
}

type SfuKeys = {
  epoch: number;
  sendKid: string;
  sendKey: number[];
  receiveKeys: { kid: string; key: number[] }[];
  auth: { peerIndex: number; send: number[]; receive: number[] }[];
};

/**
 * The relay's part, played in the page: offers m-lines in the SFU's order (audio, video, video
 * recvonly at the relay; then the room's audio and camera and a "ghost" camera, sendonly with msid),
 * seals what it sends and opens what it receives with a second transform worker.
 */
async function startFakeSfu(page: Page, keys: SfuKeys): Promise<void> {
  await page.evaluate(async (k) => {
    const w = window as unknown as {
      __bus: BroadcastChannel;
      __onSeen: ((m: unknown) => void)[];
      __sfu: { stats(): Promise<TransformStats> };
    };
    (w as unknown as { __sfuStop?: () => void }).__sfuStop?.();
    const worker = new Worker('/join/transform-worker.js', { type: 'module', name: 'fake-sfu' });
    const ch = new MessageChannel();
    worker.postMessage({ type: 'port', port: ch.port2 }, [ch.port2]);
    ch.port1.postMessage({
      type: 'keys',
      epoch: k.epoch,
      sendKid: k.sendKid,
      sendKey: new Uint8Array(k.sendKey),
      receiveKeys: k.receiveKeys.map((r) => ({ kid: r.kid, key: new Uint8Array(r.key) })),
      auth: k.auth.map((a) => ({
        peerIndex: a.peerIndex,
        send: new Uint8Array(a.send),
        receive: new Uint8Array(a.receive),
      })),
      sending: true,
    });
    await new Promise<void>((resolve) => {
      ch.port1.onmessage = () => resolve();
    });
    let statsId = 0;
    const pending = new Map<number, (s: TransformStats) => void>();
    worker.onmessage = (e: MessageEvent) => pending.get(e.data.id)?.(e.data.stats);
    w.__sfu = {
      stats: () =>
        new Promise((resolve) => {
          const id = ++statsId;
          pending.set(id, resolve);
          worker.postMessage({ type: 'stats', id });
        }),
    };

    const canvas = document.createElement('canvas');
    canvas.width = 320;
    canvas.height = 240;
    const ctx = canvas.getContext('2d')!;
    let frame = 0;
    setInterval(() => {
      ctx.fillStyle = `hsl(${(frame++ * 15) % 360} 80% 50%)`;
      ctx.fillRect(0, 0, 320, 240);
    }, 40);
    const camera = canvas.captureStream(25).getVideoTracks()[0]!;
    const audio = new AudioContext();
    const osc = audio.createOscillator();
    const dest = audio.createMediaStreamDestination();
    osc.connect(dest);
    osc.start();

    const pc = new RTCPeerConnection({ iceServers: [] });
    const vp8 = (RTCRtpReceiver.getCapabilities('video')?.codecs ?? []).filter(
      (c) => c.mimeType === 'video/VP8',
    );
    const lines: { t: RTCRtpTransceiver; msid?: string; source?: 'content' }[] = [
      { t: pc.addTransceiver('audio', { direction: 'recvonly' }) },
      { t: pc.addTransceiver('video', { direction: 'recvonly' }) },
      { t: pc.addTransceiver('video', { direction: 'recvonly' }), source: 'content' },
      {
        t: pc.addTransceiver(dest.stream.getAudioTracks()[0]!, { direction: 'sendonly' }),
        msid: 'room-a audio',
      },
      { t: pc.addTransceiver(camera, { direction: 'sendonly' }), msid: 'room-a video' },
      { t: pc.addTransceiver(camera.clone(), { direction: 'sendonly' }), msid: 'ghost video' },
    ];
    for (const { t, source } of lines) {
      const kind = t.receiver.track.kind as 'audio' | 'video';
      if (kind === 'video') t.setCodecPreferences(vp8);
      t.receiver.transform = new RTCRtpScriptTransform(worker, {
        side: 'receive',
        kind,
        ...(source ? { source } : {}),
      });
      t.sender.transform = new RTCRtpScriptTransform(worker, {
        side: 'send',
        kind,
        source: kind === 'audio' ? 'microphone' : 'camera',
      });
    }
    const emit = (message: unknown) => w.__bus.postMessage({ cmd: 'emit', message });
    pc.onicecandidate = (e) => {
      if (e.candidate?.candidate)
        emit({
          type: 'signal',
          payload: {
            kind: 'candidate',
            candidate: e.candidate.candidate,
            sdpMid: e.candidate.sdpMid,
            sdpMLineIndex: e.candidate.sdpMLineIndex,
          },
        });
    };
    const onSeen = (m: unknown) => {
      const s = m as {
        type: string;
        payload?: { kind: string; type?: string; sdp?: string; candidate?: string; sdpMid?: string };
      };
      if (s.type !== 'signal' || !s.payload) return;
      if (s.payload.kind === 'description')
        void pc.setRemoteDescription({ type: 'answer', sdp: s.payload.sdp! });
      else void pc.addIceCandidate({ candidate: s.payload.candidate!, sdpMid: s.payload.sdpMid ?? null });
    };
    w.__onSeen.push(onSeen);
    (w as unknown as { __sfuStop?: () => void }).__sfuStop = () => {
      w.__onSeen.splice(w.__onSeen.indexOf(onSeen), 1);
      pc.close();
      worker.terminate();
    };
    // Offers as the relay's werift makes them: msid `<participant id> <audio|video|content>`
    // (docs/relay.md) and a random o= session id in every offer, re-offers included.
    const offerToPage = async () => {
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      const [head = '', ...sections] = (pc.localDescription?.sdp ?? '').split(/\r\n(?=m=)/);
      const rewritten = sections.map((sec, i) => {
        const msid = lines[i]?.msid;
        const kept = sec
          .split('\r\n')
          .filter((l) => !l.startsWith('a=msid:') && !/^a=ssrc:\d+ msid:/.test(l));
        if (msid) kept.splice(1, 0, `a=msid:${msid}`);
        return kept.join('\r\n');
      });
      const session = String(Math.floor(Math.random() * 1e15));
      const header = head.replace(/^o=(\S+) \S+ /m, `o=$1 ${session} `);
      emit({
        type: 'signal',
        payload: { kind: 'description', type: 'offer', sdp: [header, ...rewritten].join('\r\n') },
      });
    };
    (w as unknown as { __sfuReoffer: () => Promise<void> }).__sfuReoffer = offerToPage;
    await offerToPage();
  }, keys);
}

/** Evaluates `read` in the page until `ok` holds (Playwright's waitForFunction does not await). */
async function pollPage<T>(
  page: Page,
  read: () => Promise<T>,
  ok: (v: T) => boolean,
  timeout = 20_000,
): Promise<T> {
  const deadline = Date.now() + timeout;
  let last: T | undefined;
  while (Date.now() < deadline) {
    last = await page.evaluate(read);
    if (ok(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`never happened; last seen: ${JSON.stringify(last)}`);
}

async function waitForSfu(page: Page, ok: (s: TransformStats) => boolean): Promise<void> {
  await pollPage(
    page,
    () => (window as unknown as { __sfu: { stats(): Promise<TransformStats> } }).__sfu.stats(),
    ok,
  );
}
