// The meeting screen with far video, in real (headless Debian) Chromium against a running control
// server and the room double: speaker view, galleries and the content layout at three resolutions
// (nothing overflows, tiles never overlap, labels are the roster's verified names and nothing else,
// the active speaker is highlighted, the code is a readable band or full size), how the code changes
// size (start, tap, leader change), and the wall client (token from the fragment, Bearer sessions,
// backoff, and a real WebRTC stream bound to its tile by mid). Screenshots in test-artifacts/kiosk/.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  initialState,
  StateStore,
  type VerifiedIdentity,
  type WallSlotView,
} from '../device/daemon/state.js';
import { type ControlServer, createControlServer } from '../device/kiosk/control-server.js';
import { findPackageRoot } from '../device/kiosk/ui-dir.js';
import { silentLogger } from '../src/util/log.js';
import {
  buildKioskUi,
  digitInkHeights,
  findOverflows,
  launchChromium,
  runAxe,
  WEBRTC_ARGS,
} from './kiosk-browser.js';
import { RoomDouble, SELF } from './kiosk-room-double.js';

const ARTIFACTS = join(findPackageRoot(), 'test-artifacts', 'kiosk');
const SIZES = [
  { width: 1280, height: 720 },
  { width: 1920, height: 1080 },
  { width: 3840, height: 2160 },
];

/** Nine far participants, sender indexes 1..9 (this room is 0); sender 1 is a signed-in person. */
const FAR: (VerifiedIdentity & { senderIndex: number })[] = [
  ['Alice Smith', 'Example Corp'],
  ['Lab West', 'Example Corp'],
  ['Boardroom Nord', 'Contoso Ltd'],
  ['Studio 5', 'Fabrikam'],
  ['Focus 3', 'Example Corp'],
  ['Atelier', 'Partner GmbH'],
  ['Harbour View', 'Northwind'],
  ['Sala Roma', 'Contoso Ltd'],
  ['Loft 12', 'Fabrikam'],
].map(([roomName, org], i) => ({
  participantId: `p-far-${i + 1}`,
  kind: i === 0 ? ('person' as const) : ('room' as const),
  email: i === 0 ? 'alice@example.org' : '',
  deviceId: i === 0 ? 'person:alice@example.org' : `dev-far-${i + 1}`,
  roomName: roomName!,
  org: org!,
  senderIndex: i + 1,
}));
/** A sender index no roster entry has: the worker (or anyone feeding it) names an unknown sender. */
const STRANGER = 77;
const SELF_INDEX = 0;

/** Slots as the worker reports them: mids 0..8 remote, 9 self, 10 content. */
function slots(remote: (number | undefined)[], content?: number): WallSlotView[] {
  return [
    ...Array.from({ length: 9 }, (_, i) => ({
      mid: String(i),
      kind: 'remote' as const,
      ...(remote[i] !== undefined ? { senderIndex: remote[i] } : {}),
    })),
    { mid: '9', kind: 'self' },
    { mid: '10', kind: 'content', ...(content !== undefined ? { senderIndex: content } : {}) },
  ];
}

interface Scenario {
  name: string;
  remote: (number | undefined)[];
  content?: number;
  active?: number;
  layout: 'speaker' | 'gallery' | 'content';
}

const SCENARIOS: Scenario[] = [
  { name: 'speaker-1', remote: [1], active: 1, layout: 'speaker' },
  { name: 'speaker-2', remote: [1, 2], active: 2, layout: 'speaker' },
  // The attacker's case: a slot names a sender the roster does not have, another names this room.
  { name: 'gallery-4', remote: [1, STRANGER, 3, SELF_INDEX], active: 3, layout: 'gallery' },
  { name: 'gallery-9', remote: [1, 2, 3, 4, 5, 6, 7, 8, 9], active: 5, layout: 'gallery' },
  { name: 'content', remote: [2, 3, 4, 5], content: 1, active: 4, layout: 'content' },
];

let browser: Browser;
let ui: { dir: string; remove(): void };
const open: { context: BrowserContext; server: ControlServer }[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  ui = buildKioskUi();
  browser = await launchChromium(WEBRTC_ARGS);
});

afterEach(async () => {
  for (const { context, server } of open.splice(0)) {
    await context.close();
    await server.close();
  }
});

afterAll(async () => {
  await browser?.close();
  ui?.remove();
});

async function setUp(
  opts: { size?: { width: number; height: number }; hash?: string; clock?: boolean } = {},
) {
  const store = new StateStore(initialState('0.1.0-test'));
  store.update((s) => {
    s.phase = 'idle';
    s.device = { ...s.device, roomName: SELF.roomName, org: SELF.org, deviceId: SELF.deviceId };
    s.media.worker = 'running';
  });
  const room = new RoomDouble(store);
  const server = await createControlServer({ state: store, actions: room, log: silentLogger, uiDir: ui.dir });
  const context = await browser.newContext({ viewport: opts.size ?? SIZES[1]!, hasTouch: true });
  open.push({ context, server });
  const page = await context.newPage();
  // Fail a step with its own message well before the test's timeout.
  page.setDefaultTimeout(15_000);
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  if (opts.clock) await page.clock.install();
  await page.goto(server.url + (opts.hash ?? ''));
  await page.waitForSelector('[data-screen=idle]');
  return { store, room, server, page, errors };
}

/** An active meeting this room leads, with nine far rooms on the roster and this room as sender 0. */
async function meetingWithNine(room: RoomDouble): Promise<void> {
  await room.startMeeting();
  room.setSenderIndexes({ [SELF.participantId]: SELF_INDEX });
  room.addMembers(FAR);
}

interface Box {
  left: number;
  top: number;
  right: number;
  bottom: number;
}

interface TileInfo extends Box {
  kind: string;
  mid: string;
  sender: string | null;
  speaking: boolean;
  label: string | null;
  name: string | null;
  status: string | null;
  labelClipped: boolean;
  labelOutside: boolean;
}

function tiles(page: Page): Promise<TileInfo[]> {
  return page.$$eval('[data-testid=wall-tile]', (els) =>
    els.map((el) => {
      const r = el.getBoundingClientRect();
      const label = el.querySelector<HTMLElement>('[data-testid=tile-label]');
      const lr = label?.getBoundingClientRect();
      return {
        kind: el.getAttribute('data-kind') ?? '',
        mid: el.getAttribute('data-mid') ?? '',
        sender: el.getAttribute('data-sender-index'),
        speaking: el.getAttribute('data-speaking') === 'true',
        label: label?.textContent ?? null,
        name: label?.querySelector('.tile-name')?.textContent ?? null,
        status: el.querySelector('[data-testid=tile-status]')?.textContent ?? null,
        labelClipped: label
          ? label.scrollWidth > label.clientWidth + 1 || label.scrollHeight > label.clientHeight + 1
          : false,
        labelOutside: lr
          ? lr.left < r.left - 1 || lr.right > r.right + 1 || lr.top < r.top - 1 || lr.bottom > r.bottom + 1
          : false,
        left: r.left,
        top: r.top,
        right: r.right,
        bottom: r.bottom,
      };
    }),
  );
}

function box(page: Page, selector: string): Promise<Box> {
  return page.$eval(selector, (el) => {
    const r = el.getBoundingClientRect();
    return { left: r.left, top: r.top, right: r.right, bottom: r.bottom };
  });
}

const overlap = (a: Box, b: Box) =>
  Math.min(a.right, b.right) - Math.max(a.left, b.left) > 0.5 &&
  Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5;
const within = (a: Box, b: Box) =>
  a.left >= b.left - 1 && a.top >= b.top - 1 && a.right <= b.right + 1 && a.bottom <= b.bottom + 1;

async function checkScreen(
  page: Page,
  scenario: Scenario,
  mode: 'band' | 'full',
  what: string,
): Promise<void> {
  const viewport = page.viewportSize()!;
  await page.waitForSelector(`.meeting-video[data-layout=${scenario.layout}][data-code=${mode}]`);
  // The previous scenario may share layout and mode: wait for this one's slots to be drawn.
  const senders = scenario.remote.filter((x) => x !== undefined).join(',');
  await page.waitForFunction(
    ({ senders, content }) =>
      [...document.querySelectorAll('[data-testid=wall-tile][data-kind=remote]')]
        .map((el) => el.getAttribute('data-sender-index'))
        .join(',') === senders &&
      document.querySelectorAll('[data-testid=wall-tile][data-kind=content]').length === content,
    { senders, content: scenario.content === undefined ? 0 : 1 },
  );
  expect(await findOverflows(page), what).toEqual([]);

  const shown = await tiles(page);
  const remote = shown.filter((t) => t.kind === 'remote');
  const wanted = scenario.remote.filter((s) => s !== undefined);
  expect(
    remote.map((t) => Number(t.sender)),
    what,
  ).toEqual(wanted);
  expect(
    shown.filter((t) => t.kind === 'self'),
    `${what}: self-view`,
  ).toHaveLength(1);
  expect(
    shown.filter((t) => t.kind === 'content'),
    what,
  ).toHaveLength(scenario.content === undefined ? 0 : 1);

  // Labels: the verified roster name of the matching sender, and nothing for a sender the roster lacks.
  for (const t of [...remote, ...shown.filter((x) => x.kind === 'content')]) {
    const far = FAR.find((f) => f.senderIndex === Number(t.sender));
    if (far) {
      expect(t.name, `${what}: tile ${t.mid}`).toBe(far.roomName);
      expect(t.status, `${what}: tile ${t.mid}`).toBe('Waiting for video…');
    } else {
      expect(t.label, `${what}: unknown sender ${t.sender} must not be named`).toBeNull();
      expect(t.status).toBe('Connecting…');
    }
    expect(t.labelClipped, `${what}: label of tile ${t.mid} clipped`).toBe(false);
    expect(t.labelOutside, `${what}: label of tile ${t.mid} outside its tile`).toBe(false);
  }
  // No name on the wall that is not a roster name (the stranger's index appears nowhere as text).
  const wallText = await page.$eval('[data-testid=stage]', (el) => el.textContent ?? '');
  expect(wallText, what).not.toMatch(new RegExp(`Unverified|undefined|null|NaN|${STRANGER}`));

  // The active speaker (and only it) is highlighted, visibly.
  const speaking = shown.filter((t) => t.speaking);
  expect(
    speaking.map((t) => Number(t.sender)),
    what,
  ).toEqual([scenario.active]);
  const ring = await page.$eval(
    '[data-speaking=true]',
    (el) => getComputedStyle(el, '::after').borderTopColor,
  );
  expect(ring).toBe('rgb(255, 200, 61)');

  // Tiles never overlap; the self-view lies over the stage only (picture-in-picture allowed).
  const stage = await box(page, '[data-testid=stage]');
  const regions = await Promise.all(
    ['.side-panel', '.code-region', '.controls-slot', '.topbar'].map((s) => box(page, s)),
  );
  const people = shown.filter((t) => t.kind !== 'self');
  for (let i = 0; i < people.length; i++) {
    for (let j = i + 1; j < people.length; j++) {
      expect(overlap(people[i]!, people[j]!), `${what}: tiles ${people[i]!.mid} and ${people[j]!.mid}`).toBe(
        false,
      );
    }
  }
  // The self-view never hides a far room's name.
  const selfTile = shown.find((t) => t.kind === 'self')!;
  const labels = await page.$$eval(
    '[data-kind=remote] [data-testid=tile-label], [data-kind=content] [data-testid=tile-label]',
    (els) =>
      els.map((el) => {
        const r = el.getBoundingClientRect();
        return { left: r.left, top: r.top, right: r.right, bottom: r.bottom };
      }),
  );
  for (const l of labels) expect(overlap(selfTile, l), `${what}: self-view over a label`).toBe(false);
  for (const t of shown) {
    expect(within(t, stage), `${what}: tile ${t.mid} inside the stage`).toBe(true);
    // 16:9 frames (the picture is letterboxed inside).
    expect((t.right - t.left) / (t.bottom - t.top)).toBeCloseTo(16 / 9, 1);
    for (const r of regions) expect(overlap(t, r), `${what}: tile ${t.mid} over a panel`).toBe(false);
  }
  for (let i = 0; i < regions.length; i++) {
    expect(overlap(stage, regions[i]!)).toBe(false);
    for (let j = i + 1; j < regions.length; j++) expect(overlap(regions[i]!, regions[j]!)).toBe(false);
  }

  // The code: 40 digits in view; full size ≥ 6 % of the height, the band still readable (≥ 3.3 %).
  const digits = await digitInkHeights(page);
  expect(digits).toHaveLength(40);
  const codeBox = await box(page, '[data-testid=security-code]');
  expect(within(codeBox, { left: 0, top: 0, right: viewport.width, bottom: viewport.height })).toBe(true);
  for (const d of digits) {
    expect(d.ink / d.viewport, `${what}: digit ink`).toBeGreaterThanOrEqual(mode === 'full' ? 0.06 : 0.033);
  }
  // The E2EE badge and the roster are on screen too.
  expect(await page.isVisible('[data-testid=e2ee-badge]')).toBe(true);
  expect(await page.$$eval('[data-testid=roster] li', (els) => els.length)).toBe(10);
}

describe('wall layouts', () => {
  for (const size of SIZES) {
    it(`speaker, gallery and content layouts at ${size.width}×${size.height}`, async () => {
      const { page, room, errors } = await setUp({ size });
      await meetingWithNine(room);
      // The meeting just started: the code is full size, with or without video.
      await page.waitForSelector('[data-testid=security-code]');
      for (const [i, scenario] of SCENARIOS.entries()) {
        room.setWall(slots(scenario.remote, scenario.content), scenario.active);
        const what = `${scenario.name} at ${size.width}×${size.height}`;
        if (i === 0) {
          // Still the meeting's first seconds: full size. A tap on it gives the picture back.
          await checkScreen(page, scenario, 'full', `${what} (start)`);
          await page.tap('[data-testid=code-full]');
        }
        await checkScreen(page, scenario, 'band', `${what} band`);
        await page.screenshot({
          path: join(ARTIFACTS, `wall-${scenario.name}-${size.width}x${size.height}.png`),
        });
        const wcag = await runAxe(page, { type: 'tag', values: ['wcag2a', 'wcag2aa'] });
        expect(wcag, `${what}: WCAG 2 A/AA`).toEqual([]);
        // A tap on the band: the code full size, the video still there (smaller).
        await page.tap('[data-testid=code-band]');
        await checkScreen(page, scenario, 'full', `${what} full`);
        await page.screenshot({
          path: join(ARTIFACTS, `wall-${scenario.name}-full-${size.width}x${size.height}.png`),
        });
        if (i === 0 || scenario.layout === 'content') {
          const axe = await runAxe(page, { type: 'tag', values: ['wcag2a', 'wcag2aa'] });
          expect(axe, `${what} full: WCAG 2 A/AA`).toEqual([]);
        }
        await page.tap('[data-testid=code-full]');
      }
      expect(errors).toEqual([]);
    }, 240_000);
  }
});

describe('the security code while video plays', () => {
  it('is full size for the first ~20 s of the meeting, then a band; a tap enlarges it for ~20 s', async () => {
    const { page, room } = await setUp({ clock: true });
    await meetingWithNine(room);
    room.setWall(slots([1, 2]), 1);
    await page.waitForSelector('.meeting-video[data-code=full]');
    await page.clock.fastForward(15_000);
    expect(await page.getAttribute('.meeting-video', 'data-code')).toBe('full');
    await page.clock.fastForward(6_000);
    await page.waitForSelector('.meeting-video[data-code=band]');
    await page.tap('[data-testid=code-band]');
    await page.waitForSelector('.meeting-video[data-code=full]');
    const digits = await digitInkHeights(page);
    for (const d of digits) expect(d.ink / d.viewport).toBeGreaterThanOrEqual(0.06);
    await page.clock.fastForward(21_000);
    await page.waitForSelector('.meeting-video[data-code=band]');
  });

  it('is full size when the leader changes, until the room confirms the code', async () => {
    const { page, room } = await setUp();
    await meetingWithNine(room);
    room.setWall(slots([1, 2, 3, 4]), 2);
    await page.waitForSelector('[data-testid=code-full]');
    await page.tap('[data-testid=code-full]');
    await page.waitForSelector('.meeting-video[data-code=band]');
    room.leaderChangedTo(FAR[1]!, '11111 22222 33333 44444 55555 66666 77777 88888');
    await page.waitForSelector('.meeting-video[data-code=full] [data-testid=leader-changed]');
    expect(await page.textContent('[data-testid=security-code]')).toContain('1111122222');
    // Tapping does not hide it: the room must compare it first.
    expect(await page.$('[data-testid=code-full]')).toBeNull();
    for (const d of await digitInkHeights(page)) expect(d.ink / d.viewport).toBeGreaterThanOrEqual(0.06);
    expect(await findOverflows(page)).toEqual([]);
    await page.screenshot({ path: join(ARTIFACTS, 'wall-leader-changed-1920x1080.png') });
    await page.tap('[data-testid=ack-leader]');
    await page.waitForSelector('.meeting-video[data-code=band]');
    expect(room.calls.at(-1)).toEqual({ action: 'acknowledgeLeaderChange', args: [] });
  });

  it('keeps the big-code layout without far video, and names nobody the roster does not', async () => {
    const { page, room } = await setUp();
    await meetingWithNine(room);
    // Slots without senders (the worker has nothing to forward yet): no video layout.
    room.setWall(slots([]));
    await page.waitForSelector('[data-testid=security-code]');
    expect(await page.$('.meeting-video')).toBeNull();
    expect(await page.$('[data-testid=wall-tile]')).toBeNull();
    // Only a stranger's slot: a tile that says "Connecting…" and no name.
    room.setWall(slots([STRANGER]), STRANGER);
    await page.waitForSelector('[data-testid=wall-tile][data-kind=remote]');
    const [tile] = (await tiles(page)).filter((t) => t.kind === 'remote');
    expect(tile).toMatchObject({
      sender: String(STRANGER),
      label: null,
      status: 'Connecting…',
      speaking: true,
    });
    // Without the kiosk link's key: a quiet hint for developers.
    expect(await page.textContent('[data-testid=wall-hint]')).toBe('Video needs the kiosk link with its key');
  });
});

describe('the side panel over video', () => {
  it('shows who waits only when someone does; Admit and Mute reach RoomActions', async () => {
    const { page, room } = await setUp({ size: SIZES[0]! });
    await meetingWithNine(room);
    room.setWall(slots([1, 2, 3]), 1);
    await page.waitForSelector('.meeting-video[data-layout=gallery]');
    expect(await page.$('.side-panel [aria-label="Waiting to join"]')).toBeNull();
    const guest = {
      participantId: 'p-guest',
      deviceId: 'dev-guest',
      roomName: 'Visitor Lounge',
      org: 'Guest Org',
    };
    room.requestToJoin(guest);
    await page.click('.side-panel [data-waiting=p-guest] [data-action=admit]');
    await page.waitForSelector('.side-panel [data-testid=roster] [data-participant=p-guest]');
    await page.click('.controls-slot [data-testid=mute]');
    await page.waitForSelector('[data-testid=mute][aria-pressed=true]');
    expect(room.calls.map((c) => c.action)).toEqual(['startMeeting', 'admit', 'setMicMuted']);
    expect(await findOverflows(page)).toEqual([]);
  });
});

describe('wall client', () => {
  const TOKEN = 'A'.repeat(20) + '-_' + 'b'.repeat(21);

  it('moves the token from the fragment to sessionStorage and retries refused sessions with backoff', async () => {
    const store = new StateStore(initialState('0.1.0-test'));
    const room = new RoomDouble(store);
    store.update((s) => {
      s.phase = 'idle';
      s.media.worker = 'running';
    });
    const server = await createControlServer({
      state: store,
      actions: room,
      log: silentLogger,
      uiDir: ui.dir,
    });
    const context = await browser.newContext({ viewport: SIZES[0]! });
    open.push({ context, server });
    const page = await context.newPage();
    const posts: { at: number; auth: string | undefined }[] = [];
    await page.route('**/api/wall/sessions', (route) => {
      posts.push({ at: Date.now(), auth: route.request().headers().authorization });
      return route.fulfill({ status: 503, contentType: 'application/json', body: '{"error":"no worker"}' });
    });
    // A malformed token is dropped (and the fragment still removed).
    await page.goto(`${server.url}#wall=not%20a%20token`);
    await page.waitForSelector('[data-screen=idle]');
    expect(await page.evaluate(() => [location.hash, sessionStorage.getItem('sealroom.wallToken')])).toEqual([
      '',
      null,
    ]);
    await page.goto('about:blank');
    await page.goto(`${server.url}#wall=${TOKEN}`);
    await page.waitForSelector('[data-screen=idle]');
    expect(await page.evaluate(() => location.hash)).toBe('');
    expect(await page.evaluate(() => location.href)).not.toContain(TOKEN);
    expect(await page.evaluate(() => sessionStorage.getItem('sealroom.wallToken'))).toBe(TOKEN);
    // No meeting, no session.
    expect(posts).toHaveLength(0);
    await room.startMeeting();
    await page.waitForSelector('[data-testid=security-code]');
    expect(await page.$('[data-testid=wall-hint]')).toBeNull();
    await expect.poll(() => posts.length, { timeout: 15_000 }).toBeGreaterThanOrEqual(3);
    expect(posts.every((p) => p.auth === `Bearer ${TOKEN}`)).toBe(true);
    const gaps = posts.slice(1).map((p, i) => p.at - posts[i]!.at);
    expect(gaps[0]).toBeGreaterThanOrEqual(900);
    expect(gaps[1]).toBeGreaterThanOrEqual(1800);
    // A reload keeps the token (sessionStorage), without the fragment.
    await page.reload();
    await page.waitForSelector('[data-testid=security-code]');
    expect(await page.evaluate(() => sessionStorage.getItem('sealroom.wallToken'))).toBe(TOKEN);
    // The worker came back from a restart: a new session at once, without waiting for the backoff.
    await expect.poll(() => posts.length, { timeout: 10_000 }).toBeGreaterThanOrEqual(5);
    store.update((s) => {
      s.media.worker = 'restarting';
    });
    await new Promise((r) => setTimeout(r, 300));
    const before = posts.length;
    store.update((s) => {
      s.media.worker = 'running';
    });
    await expect.poll(() => posts.length, { timeout: 900 }).toBeGreaterThan(before);
  }, 60_000);

  it('binds a real WebRTC stream to its tile by mid, and closes the session when the page goes', async () => {
    const { page: kiosk, room, server } = await setUp({ hash: `#wall=${TOKEN}` });
    // The far side: a page that offers three sendonly video m-lines (mids 0, 1, 2) as the worker
    // does; m-line 0 carries a red picture, m-line 1 (the self-view) a blue one.
    const offerer = await (await browser.newContext()).newPage();
    await offerer.goto(`${server.url}/healthz`);
    await offerer.evaluate(() => {
      const colourTrack = (colour: string) => {
        const canvas = document.createElement('canvas');
        canvas.width = 320;
        canvas.height = 180;
        const ctx = canvas.getContext('2d')!;
        setInterval(() => {
          ctx.fillStyle = colour;
          ctx.fillRect(0, 0, 320, 180);
        }, 40);
        return canvas.captureStream(25).getVideoTracks()[0]!;
      };
      const pc = new RTCPeerConnection({ iceServers: [] });
      pc.addTransceiver(colourTrack('#e01010'), { direction: 'sendonly' });
      pc.addTransceiver(colourTrack('#1020e0'), { direction: 'sendonly' });
      pc.addTransceiver('video', { direction: 'sendonly' });
      (window as unknown as { pc: RTCPeerConnection }).pc = pc;
    });
    const calls: string[] = [];
    await kiosk.route('**/api/wall/sessions**', async (route) => {
      const req = route.request();
      calls.push(
        `${req.method()} ${new URL(req.url()).pathname} ${req.headers().authorization === `Bearer ${TOKEN}`}`,
      );
      if (req.method() === 'POST' && req.url().endsWith('/api/wall/sessions')) {
        const sdp = await offerer.evaluate(async () => {
          const pc = (window as unknown as { pc: RTCPeerConnection }).pc;
          await pc.setLocalDescription(await pc.createOffer());
          await new Promise<void>((resolve) => {
            if (pc.iceGatheringState === 'complete') resolve();
            pc.addEventListener('icegatheringstatechange', () => {
              if (pc.iceGatheringState === 'complete') resolve();
            });
          });
          return pc.localDescription!.sdp;
        });
        return route.fulfill({
          status: 201,
          contentType: 'application/json',
          body: JSON.stringify({ sessionId: 's-1', sdp }),
        });
      }
      if (req.method() === 'POST' && req.url().endsWith('/s-1/answer')) {
        const { sdp } = req.postDataJSON() as { sdp: string };
        await offerer.evaluate(
          (answer) =>
            (window as unknown as { pc: RTCPeerConnection }).pc.setRemoteDescription({
              type: 'answer',
              sdp: answer,
            }),
          sdp,
        );
        return route.fulfill({ status: 200, contentType: 'application/json', body: '{"ok":true}' });
      }
      return route.fulfill({ status: 200, contentType: 'application/json', body: '{"ok":true}' });
    });
    await meetingWithNine(room);
    room.setWall(
      [
        { mid: '0', kind: 'remote', senderIndex: 2 },
        { mid: '1', kind: 'self' },
        { mid: '2', kind: 'content' },
      ],
      2,
    );
    await kiosk.waitForSelector('[data-testid=wall-tile][data-mid="0"].playing', { timeout: 20_000 });
    await kiosk.waitForSelector('[data-testid=wall-tile][data-mid="1"].playing', { timeout: 20_000 });
    expect(calls.slice(0, 2)).toEqual([
      'POST /api/wall/sessions true',
      'POST /api/wall/sessions/s-1/answer true',
    ]);
    // The pictures, sampled from the page's own <video> elements: red in the far room's tile (named
    // from the roster), blue in the self-view.
    const sample = (mid: string) =>
      kiosk.$eval(`[data-mid="${mid}"] video`, (v) => {
        const video = v as HTMLVideoElement;
        const canvas = document.createElement('canvas');
        canvas.width = video.videoWidth;
        canvas.height = video.videoHeight;
        const ctx = canvas.getContext('2d')!;
        ctx.drawImage(video, 0, 0);
        return [...ctx.getImageData(video.videoWidth / 2, video.videoHeight / 2, 1, 1).data.slice(0, 3)];
      });
    const [r, g, b] = await sample('0');
    expect(r).toBeGreaterThan(150);
    expect(g! + b!).toBeLessThan(120);
    const [r2, , b2] = await sample('1');
    expect(b2).toBeGreaterThan(150);
    expect(r2).toBeLessThan(80);
    expect(await kiosk.textContent('[data-mid="0"] .tile-name')).toBe(FAR[1]!.roomName);
    // A state push (volume) redraws the screen: the same <video> keeps playing.
    const frames = () =>
      kiosk.$eval(
        '[data-mid="0"] video',
        (v) => (v as HTMLVideoElement).getVideoPlaybackQuality().totalVideoFrames,
      );
    await kiosk.evaluate(() => {
      (window as unknown as { marked: Element | null }).marked =
        document.querySelector('[data-mid="0"] video');
    });
    room.store.update((s) => {
      s.media.volume = 40;
    });
    await kiosk.waitForFunction(() => document.querySelector('[data-testid=volume]')?.textContent === '40%');
    expect(
      await kiosk.evaluate(
        () =>
          (window as unknown as { marked: Element | null }).marked ===
          document.querySelector('[data-mid="0"] video'),
      ),
    ).toBe(true);
    const before = await frames();
    await expect.poll(frames, { timeout: 5000 }).toBeGreaterThan(before);
    // Leaving the meeting closes the session.
    await room.leaveMeeting();
    await expect
      .poll(() => calls.includes('DELETE /api/wall/sessions/s-1 true'), { timeout: 5000 })
      .toBe(true);
    await offerer.context().close();
  }, 90_000);
});
