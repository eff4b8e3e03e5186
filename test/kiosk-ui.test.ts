// The room screen in real (headless Debian) Chromium against a running control server: every screen,
// the security code as the state holds it, clicks that reach RoomActions, layout at three
// resolutions (screenshots in test-artifacts/kiosk/) and colour contrast with axe-core.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { initialState, StateStore, type VerifiedIdentity } from '../device/daemon/state.js';
import { type ControlServer, createControlServer } from '../device/kiosk/control-server.js';
import { findPackageRoot } from '../device/kiosk/ui-dir.js';
import { silentLogger } from '../src/util/log.js';
import {
  buildKioskUi,
  collectPageErrors,
  decodeQrImage,
  digitInkHeights,
  findOverflows,
  launchChromium,
  runAxe,
} from './kiosk-browser.js';
import { RoomDouble, randomSecurityCode, SELF } from './kiosk-room-double.js';

const ARTIFACTS = join(findPackageRoot(), 'test-artifacts', 'kiosk');
const PARTNER: VerifiedIdentity = {
  participantId: 'p-partner',
  kind: 'room',
  email: '',
  deviceId: 'dev-0002',
  roomName: 'Huddle 2.01',
  org: 'Partner GmbH',
};
const LAB: VerifiedIdentity = {
  participantId: 'p-lab',
  kind: 'room',
  email: '',
  deviceId: 'dev-0003',
  roomName: 'Lab West',
  org: 'Example Corp',
};

let browser: Browser;
let ui: { dir: string; remove(): void };

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  ui = buildKioskUi();
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  ui?.remove();
});

interface Room {
  store: StateStore;
  room: RoomDouble;
  server: ControlServer;
}

async function startRoom(setup: (store: StateStore) => void = toIdle): Promise<Room> {
  const store = new StateStore(initialState('0.1.0-test'));
  setup(store);
  const room = new RoomDouble(store);
  const server = await createControlServer({ state: store, actions: room, log: silentLogger, uiDir: ui.dir });
  return { store, room, server };
}

function toIdle(store: StateStore): void {
  store.update((s) => {
    s.phase = 'idle';
    s.device = { ...s.device, roomName: SELF.roomName, org: SELF.org, deviceId: SELF.deviceId };
    delete s.enrollment;
    s.diagnostics = [];
  });
}

function toStartup(store: StateStore): void {
  store.update((s) => {
    s.phase = 'starting';
    s.diagnostics = [
      { name: 'Camera', ok: true, detail: '/dev/video0 (1280×720 MJPEG)' },
      { name: 'Microphone', ok: true, detail: 'USB speakerphone' },
      { name: 'Relay', ok: false, detail: 'connection refused: 127.0.0.1:8443' },
      { name: 'Clock', ok: true, detail: 'synchronised (NTP)' },
    ];
  });
}

function toEnrolling(store: StateStore): void {
  store.update((s) => {
    s.phase = 'enrolling';
    s.enrollment = {
      status: 'awaiting-claim',
      activationCode: 'K7PX-M3QD',
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
      claimUrl: 'http://127.0.0.1:8700/claim?code=K7PX-M3QD',
    };
  });
}

async function openPage(server: ControlServer, size = { width: 1920, height: 1080 }) {
  const context = await browser.newContext({ viewport: size, hasTouch: true });
  const page = await context.newPage();
  const errors = collectPageErrors(page);
  await page.goto(server.url);
  await page.waitForSelector('[data-screen]');
  return { context, page, errors };
}

async function codeOnScreen(page: Page): Promise<string> {
  const groups = await page.$$eval('[data-testid=security-code] .code-group', (els) =>
    els.map((el) => el.textContent ?? ''),
  );
  return groups.join(' ');
}

const open: { context: BrowserContext; room: Room }[] = [];

async function setUp(setup?: (store: StateStore) => void, size?: { width: number; height: number }) {
  const room = await startRoom(setup);
  const { context, page, errors } = await openPage(room.server, size);
  open.push({ context, room });
  return { ...room, page, errors };
}

beforeEach(() => {
  open.length = 0;
});

afterEach(async () => {
  for (const { context, room } of open) {
    await context.close();
    await room.server.close();
  }
});

describe('kiosk screens', () => {
  it('start-up shows each diagnostic with its result', async () => {
    const { page, errors } = await setUp(toStartup);
    await page.waitForSelector('[data-screen=startup]');
    const rows = await page.$$eval('[data-testid=diagnostics] li', (els) =>
      els.map((el) => ({ cls: el.className, text: el.textContent })),
    );
    expect(rows).toHaveLength(4);
    expect(rows[2]).toEqual({ cls: 'diag fail', text: 'FAILRelayconnection refused: 127.0.0.1:8443' });
    expect(await page.textContent('.startup p')).toContain('1 check failed');
    expect(errors).toEqual([]);
  });

  it('enrollment shows the activation code large, a scannable QR image and IT instructions', async () => {
    const { page, store } = await setUp(toEnrolling);
    await page.waitForSelector('[data-screen=enrollment]');
    expect(await page.textContent('[data-testid=activation-code]')).toBe(
      store.get().enrollment!.activationCode,
    );
    const qr = page.locator('[data-testid=claim-qr]');
    await qr.waitFor();
    await page.waitForFunction(() => {
      const img = document.querySelector<HTMLImageElement>('[data-testid=claim-qr]');
      return img?.complete && img.naturalWidth > 0;
    });
    const box = await qr.boundingBox();
    expect(box!.height).toBeGreaterThan(1080 * 0.4);
    // The code as drawn on the wall decodes (jsQR, a reader we did not write) to the claim URL.
    const decoded = await decodeQrImage(page, '[data-testid=claim-qr]');
    expect(decoded).toBe(store.get().enrollment!.claimUrl);
    const codeHeight = (await page.locator('[data-testid=activation-code]').boundingBox())!.height;
    expect(codeHeight).toBeGreaterThan(1080 * 0.08);
    expect(await page.textContent('.instructions')).toContain('provisioning console');
    // Claimed: the screen moves on by itself.
    toIdle(store);
    await page.waitForSelector('[data-screen=idle]');
  });

  it('idle: keypad join reaches RoomActions, then the admitted room shows the leader’s code', async () => {
    const { page, room, store } = await setUp();
    expect(await page.textContent('[data-testid=room-name]')).toBe(SELF.roomName);
    expect(await page.textContent('[data-testid=clock]')).toMatch(/\d{1,2}:\d{2}/);
    for (const key of ['k', '7', 'p', 'x', 'm', '3', 'q', 'd', 'z', 'back', 'a', '2', 'b', 'c']) {
      await page.click(`[data-key="${key}"]`);
    }
    expect(await page.textContent('[data-testid=keypad-display]')).toBe('k7px-m3qd-a2bc');
    await page.click('[data-testid=join-meeting]');
    await page.waitForSelector('[data-testid=meeting-status][data-status=waiting]');
    expect(room.calls).toEqual([{ action: 'joinMeeting', args: ['k7px-m3qd-a2bc'] }]);
    const leaderCode = randomSecurityCode();
    room.admittedBy(PARTNER, leaderCode, [LAB]);
    await page.waitForSelector('[data-testid=security-code]');
    expect(await codeOnScreen(page)).toBe(leaderCode);
    expect(await codeOnScreen(page)).toBe(store.get().meeting!.securityCode);
    expect(await page.textContent('[data-testid=leader]')).toContain(`${PARTNER.roomName}${PARTNER.org}`);
    const roster = await page.$$eval('[data-testid=roster] li', (els) =>
      els.map((el) => [
        el.querySelector('.identity-room')?.textContent,
        el.querySelector('.identity-org')?.textContent,
      ]),
    );
    expect(roster).toEqual([
      [PARTNER.roomName, PARTNER.org],
      [LAB.roomName, LAB.org],
      [SELF.roomName, SELF.org],
    ]);
    // A participant cannot admit anyone, so no waiting room panel.
    expect(await page.locator('[data-testid=waiting]').count()).toBe(0);
  });

  it('two rooms in one meeting show the same code, and the leader admits and denies by click', async () => {
    const leader = await setUp();
    const joiner = await setUp();
    await leader.page.click('[data-testid=start-meeting]');
    await leader.page.waitForSelector('[data-testid=security-code]');
    const meeting = leader.store.get().meeting!;
    expect(await codeOnScreen(leader.page)).toBe(meeting.securityCode);

    for (const key of [...meeting.meetingId.replaceAll('-', '')])
      await joiner.page.click(`[data-key="${key}"]`);
    await joiner.page.click('[data-testid=join-meeting]');
    await joiner.page.waitForSelector('[data-status=waiting]');

    leader.room.requestToJoin(PARTNER);
    leader.room.requestToJoin(LAB);
    await leader.page.click(`[data-waiting=${PARTNER.participantId}] [data-action=admit]`);
    await leader.page.waitForSelector(`[data-testid=roster] [data-participant=${PARTNER.participantId}]`);
    await leader.page.click(`[data-waiting=${LAB.participantId}] [data-action=deny]`);
    await leader.page.waitForSelector(`[data-waiting=${LAB.participantId}]`, { state: 'detached' });
    expect(leader.room.calls).toEqual([
      { action: 'startMeeting', args: [] },
      { action: 'admit', args: [PARTNER.participantId] },
      { action: 'deny', args: [LAB.participantId] },
    ]);
    expect(leader.store.get().meeting!.roster.map((r) => r.participantId)).toEqual([
      SELF.participantId,
      PARTNER.participantId,
    ]);

    // What the relay would deliver to the admitted room: the leader's code.
    joiner.room.admittedBy(SELF, meeting.securityCode!);
    await joiner.page.waitForSelector('[data-testid=security-code]');
    expect(await codeOnScreen(joiner.page)).toBe(await codeOnScreen(leader.page));
  });

  it('asks attendees to re-check the code when the leader changes', async () => {
    const { page, room } = await setUp();
    await page.click('[data-testid=start-meeting]');
    await page.waitForSelector('[data-testid=leader]');
    expect(await page.locator('[data-testid=leader-changed]').count()).toBe(0);
    const newCode = randomSecurityCode();
    room.leaderChangedTo(PARTNER, newCode);
    const prompt = page.locator('[data-testid=leader-changed]');
    await prompt.waitFor();
    expect(await prompt.textContent()).toContain(`${PARTNER.roomName} (${PARTNER.org})`);
    expect(await codeOnScreen(page)).toBe(newCode);
    await page.click('[data-testid=ack-leader]');
    await page.waitForSelector('[data-testid=leader]');
    expect(room.calls.at(-1)).toEqual({ action: 'acknowledgeLeaderChange', args: [] });
  });

  it('mute, camera, volume, lock and leave reach RoomActions and the screen follows the state', async () => {
    const { page, room } = await setUp();
    await page.click('[data-testid=start-meeting]');
    await page.waitForSelector('[data-testid=mute][aria-pressed=false]');
    await page.click('[data-testid=mute]');
    await page.waitForSelector('[data-testid=mute][aria-pressed=true]');
    await page.click('[data-testid=camera]');
    await page.waitForSelector('[data-testid=camera][aria-pressed=true]');
    await page.click('[data-testid=volume-up]');
    await page.waitForFunction(() => document.querySelector('[data-testid=volume]')?.textContent === '70%');
    await page.click('[data-testid=lock]');
    await page.waitForSelector('.badge-locked');
    await page.click('[data-testid=leave]');
    await page.waitForSelector('[data-screen=idle]');
    expect(room.calls.map((c) => [c.action, ...c.args])).toEqual([
      ['startMeeting'],
      ['setMicMuted', true],
      ['setCameraOff', true],
      ['setVolume', 70],
      ['lockMeeting', true],
      ['leaveMeeting'],
    ]);
  });

  it('shows alerts for missing camera and microphone, an unreachable relay and rekeying', async () => {
    const { page, store, room } = await setUp();
    await page.click('[data-testid=start-meeting]');
    await page.waitForSelector('[data-testid=security-code]');
    store.update((s) => {
      s.relay = { connected: true, url: 'wss://127.0.0.1:8443' };
    });
    await page.waitForSelector('[data-alert]', { state: 'detached' });
    store.update((s) => {
      s.media.camera = 'missing';
      s.media.microphone = 'missing';
      s.relay.connected = false;
      s.meeting!.rekeying = true;
    });
    store.raiseAlert('disk', 'warning', 'Disk almost full');
    await page.waitForSelector('[data-alert=disk]');
    const alerts = await page.$$eval('[data-alert]', (els) => els.map((el) => el.getAttribute('data-alert')));
    expect(alerts).toEqual(['camera', 'microphone', 'relay', 'rekeying', 'disk']);
    expect(room.calls).toHaveLength(1);
  });

  it('says when an unverified participant was refused, while rekeying and when the leader is lost', async () => {
    const { page, store } = await setUp();
    await page.click('[data-testid=start-meeting]');
    await page.waitForSelector('[data-testid=security-code]');
    store.raiseAlert('identity-refused', 'warning', 'An unverified participant was refused');
    store.update((s) => {
      s.meeting!.rekeying = true;
    });
    await page.waitForSelector('[data-testid=sending-paused][data-reason=rekeying]');
    expect(await page.textContent('[data-testid=sending-paused]')).toBe('Rekeying…');
    expect(await page.textContent('[data-alert=identity-refused]')).toBe(
      'An unverified participant was refused',
    );
    expect(await page.textContent('[data-alert=rekeying]')).toBe('Rekeying…');
    store.update((s) => {
      s.meeting!.rekeying = false;
      s.meeting!.leaderLost = true;
    });
    // The daemon raises the same alert: shown once.
    store.raiseAlert('leader-lost', 'warning', 'Lost contact with the meeting leader');
    await page.waitForSelector('[data-testid=sending-paused][data-reason=leader-lost]');
    expect(await page.$$eval('[data-alert=leader-lost]', (els) => els.map((el) => el.textContent))).toEqual([
      'Lost contact with the meeting leader',
    ]);
    expect(await page.$('[data-alert=rekeying]')).toBeNull();
    store.update((s) => {
      s.meeting!.leaderLost = false;
    });
    store.clearAlert('leader-lost');
    await page.waitForSelector('[data-testid=sending-paused]', { state: 'detached' });
  });

  it('shows why an action was refused', async () => {
    const { page, room } = await setUp();
    room.failNext = 'The meeting server is unreachable.';
    await page.click('[data-testid=start-meeting]');
    const toast = page.locator('.toast');
    await toast.waitFor();
    expect(await toast.textContent()).toBe('The meeting server is unreachable.');
    expect(await page.getAttribute('.app', 'data-screen')).toBe('idle');
  });
});

describe('kiosk resilience', () => {
  it('works by touch: taps start a meeting and mute', async () => {
    const { page, room } = await setUp();
    await page.tap('[data-testid=start-meeting]');
    await page.waitForSelector('[data-testid=security-code]');
    await page.tap('[data-testid=mute]');
    await page.waitForSelector('[data-testid=mute][aria-pressed=true]');
    expect(room.calls.map((c) => c.action)).toEqual(['startMeeting', 'setMicMuted']);
  });

  it('keeps a scrolled roster where it was when unrelated state changes', async () => {
    const { page, store, room, server } = await setUp(toIdle, { width: 1280, height: 720 });
    await busyMeeting({ store, room, server });
    const roster = page.locator('[data-testid=roster]');
    await page.waitForSelector('[data-testid=roster] li:nth-child(25)');
    await roster.evaluate((el) => {
      el.scrollTop = 200;
    });
    const before = await roster.evaluate((el) => el.scrollTop);
    expect(before).toBeGreaterThan(100);
    store.update((s) => {
      s.media.volume = 35;
    });
    await page.waitForFunction(() => document.querySelector('[data-testid=volume]')?.textContent === '35%');
    expect(await roster.evaluate((el) => el.scrollTop)).toBe(before);
  });

  it('says when it lost the daemon and catches up after the daemon restarts', async () => {
    const first = await setUp();
    await first.page.click('[data-testid=start-meeting]');
    await first.page.waitForSelector('[data-testid=security-code]');
    const port = Number(new URL(first.server.url).port);
    await first.server.close();
    await first.page.waitForSelector('[data-alert=kiosk-link]', { timeout: 10_000 });
    // A restarted daemon starts over at a low revision, idle, and its screen must follow it anyway.
    const store = new StateStore(initialState('0.1.0-test'));
    toIdle(store);
    store.update((s) => {
      s.device.roomName = 'Boardroom (restarted)';
    });
    const again = await createControlServer({
      state: store,
      actions: new RoomDouble(store),
      log: silentLogger,
      uiDir: ui.dir,
      port,
    });
    open.push({
      context: await browser.newContext(),
      room: { store, room: new RoomDouble(store), server: again },
    });
    await first.page.waitForFunction(
      () => document.querySelector('[data-testid=room-name]')?.textContent === 'Boardroom (restarted)',
      undefined,
      { timeout: 15_000 },
    );
    expect(await first.page.getAttribute('.app', 'data-screen')).toBe('idle');
    await first.page.waitForSelector('[data-alert=kiosk-link]', { state: 'detached' });
  }, 60_000);
});

const SIZES = [
  { width: 1280, height: 720 },
  { width: 1920, height: 1080 },
  { width: 3840, height: 2160 },
];

/** A busy meeting: long names, many participants, several waiting, alerts and the re-check prompt. */
async function busyMeeting(room: Room): Promise<void> {
  await room.room.startMeeting();
  room.room.requestToJoin({ ...PARTNER, roomName: 'Executive Boardroom — North Tower, Floor 27' });
  room.room.requestToJoin(LAB);
  room.room.requestToJoin({ participantId: 'p-x', deviceId: 'd-x', roomName: 'Focus 3', org: 'Contoso Ltd' });
  // A signed-in person (issue 12): name · email · org · signed in, with a long address.
  room.room.requestToJoin({
    participantId: 'p-alice',
    kind: 'person',
    deviceId: 'person:alexandra.featherstonehaugh@subsidiary.example.org',
    roomName: 'Alexandra Featherstonehaugh',
    org: 'Example Corp',
    email: 'alexandra.featherstonehaugh@subsidiary.example.org',
  });
  room.store.update((s) => {
    s.meeting!.roster.push({
      participantId: 'p-bob',
      kind: 'person',
      deviceId: 'person:bob@example.org',
      roomName: 'Bob Jones',
      org: 'Example Corp',
      email: 'bob@example.org',
      isLeader: false,
      isSelf: false,
    });
  });
  for (let i = 0; i < 24; i++) {
    room.store.update((s) => {
      s.meeting!.roster.push({
        participantId: `p-${i}`,
        kind: 'room',
        email: '',
        deviceId: `d-${i}`,
        roomName: `Meeting room ${i + 1}`,
        org: i % 2 ? 'Example Corp' : 'A Rather Long Organisation Name International',
        isLeader: false,
        isSelf: false,
      });
    });
  }
  room.store.update((s) => {
    s.media.camera = 'missing';
    s.meeting!.rekeying = true;
  });
}

describe('kiosk layout', () => {
  for (const size of SIZES) {
    it(`nothing overflows at ${size.width}×${size.height}, digits are large enough, contrast passes`, async () => {
      const { page, store, room, server, errors } = await setUp(toStartup, size);
      const roomHandle = { store, room, server };
      const screens: [string, () => Promise<void> | void, string][] = [
        ['startup', () => {}, '[data-screen=startup]'],
        ['enrollment', () => toEnrolling(store), '[data-screen=enrollment] [data-testid=claim-qr]'],
        ['idle', () => toIdle(store), '[data-screen=idle]'],
        ['meeting', () => busyMeeting(roomHandle), '[data-testid=security-code]'],
        [
          'leader-changed',
          () => room.leaderChangedTo(PARTNER, randomSecurityCode()),
          '[data-testid=leader-changed]',
        ],
        [
          'waiting-to-join',
          async () => {
            await room.leaveMeeting();
            await room.joinMeeting('k7px-m3qd-a2bc');
          },
          '[data-testid=meeting-status][data-status=waiting]',
        ],
        [
          'startup-failing',
          () =>
            store.update((s) => {
              s.phase = 'error';
              delete s.meeting;
              s.diagnostics = Array.from({ length: 16 }, (_, i) => ({
                name: `Check ${i + 1}`,
                ok: i % 3 !== 0,
                detail: `a long explanation of what was checked and what came back, number ${i + 1}, `.repeat(
                  2,
                ),
              }));
            }),
          '[data-screen=startup] .diag:nth-child(16)',
        ],
      ];
      for (const [name, enter, ready] of screens) {
        await enter();
        await page.waitForSelector(ready);
        await page.waitForFunction(() => [...document.images].every((img) => img.complete));
        await page.screenshot({ path: join(ARTIFACTS, `${name}-${size.width}x${size.height}.png`) });
        expect(await findOverflows(page), `${name} at ${size.width}×${size.height}`).toEqual([]);
        const contrast = await runAxe(page, { type: 'rule', values: ['color-contrast'] });
        expect(contrast, `${name} contrast`).toEqual([]);
        const wcag = await runAxe(page, { type: 'tag', values: ['wcag2a', 'wcag2aa'] });
        expect(wcag, `${name} WCAG 2 A/AA`).toEqual([]);
        if (name === 'meeting' || name === 'leader-changed') {
          const digits = await digitInkHeights(page);
          expect(digits).toHaveLength(40);
          for (const d of digits) {
            expect(d.ink / d.viewport).toBeGreaterThanOrEqual(0.06);
            expect(d.box / d.viewport).toBeGreaterThanOrEqual(0.06);
          }
        }
      }
      expect(errors).toEqual([]);
    }, 120_000);
  }
});
