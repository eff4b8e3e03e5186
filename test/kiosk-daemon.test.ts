// The room screen against the real device daemon: two daemons (meeting client, no media) meet through
// a real relay with certificates from a development org CA; each room's kiosk runs in Chromium. The
// leader starts by touch, the other room joins with the on-screen keyboard, the leader admits it by
// click, and both walls show the same security code as both daemons hold. Each page is opened as the
// kiosk launcher opens it, with the daemon's kiosk token in the fragment; the roster names senders.
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Daemon, startDaemon } from '../device/daemon/daemon.js';
import { createDevelopmentCa, issueDevelopmentDevice } from '../src/relay/dev-pki.js';
import { type Relay, startRelay } from '../src/relay/server.js';
import { silentLogger } from '../src/util/log.js';
import { buildKioskUi, launchChromium } from './kiosk-browser.js';

let relay: Relay;
let browser: Browser;
let ui: { dir: string; remove(): void };
const daemons: Daemon[] = [];

async function room(roomName: string, ca: Awaited<ReturnType<typeof createDevelopmentCa>>) {
  const device = await issueDevelopmentDevice(ca, { roomName, org: 'Example Corp' });
  const daemon = await startDaemon({
    relayUrl: relay.url,
    certificatePem: device.certificatePem,
    identityKeyPem: device.identityKeyPem,
    trustAnchors: { orgCaPem: ca.certPem },
    log: silentLogger,
    media: 'none',
    loopbackOnly: true,
    controlPort: 0,
    uiDir: ui.dir,
  });
  daemons.push(daemon);
  const page = await browser.newPage({ viewport: { width: 1920, height: 1080 } });
  await page.goto(`${daemon.controlUrl}/#wall=${daemon.kioskToken}`);
  // The page keeps the token for its wall requests and drops it from the address (SPEC).
  await expect.poll(() => page.evaluate(() => location.hash)).toBe('');
  expect(await page.evaluate(() => sessionStorage.getItem('sealroom.wallToken'))).toBe(daemon.kioskToken);
  return { daemon, page };
}

async function codeOnScreen(page: Page): Promise<string> {
  const groups = await page.$$eval('[data-testid=security-code] .code-group', (els) =>
    els.map((e) => e.textContent),
  );
  return groups.join(' ');
}

beforeAll(async () => {
  ui = buildKioskUi();
  browser = await launchChromium();
});

afterAll(async () => {
  await browser?.close();
  await Promise.all(daemons.map((d) => d.stop()));
  await relay?.close();
  ui?.remove();
});

describe('kiosk on the real daemon', () => {
  it('two rooms meet by touch and click, and both walls show the code both daemons hold', async () => {
    const ca = await createDevelopmentCa('Example Corp');
    relay = await startRelay({ log: silentLogger, trust: { caPems: [ca.certPem] }, port: 0 });
    const boardroom = await room('Boardroom', ca);
    const huddle = await room('Huddle Room', ca);

    await boardroom.page.waitForSelector('[data-screen=idle]');
    expect(await boardroom.page.textContent('[data-testid=room-name]')).toBe('Boardroom');
    await boardroom.page.click('[data-testid=start-meeting]');
    await boardroom.page.waitForSelector('[data-testid=security-code]', { timeout: 20_000 });
    const meetingId = boardroom.daemon.state.get().meeting!.meetingId;
    expect(meetingId).toMatch(/^[a-z0-9]{4}-[a-z0-9]{4}-[a-z0-9]{4}$/);

    await huddle.page.waitForSelector('[data-screen=idle]');
    for (const key of meetingId.replaceAll('-', '')) await huddle.page.click(`[data-key="${key}"]`);
    expect(await huddle.page.textContent('[data-testid=keypad-display]')).toBe(meetingId);
    await huddle.page.click('[data-testid=join-meeting]');

    // The leader's wall lists the waiting room by its certificate identity; admit by click.
    const waiting = boardroom.page.locator('[data-testid=waiting] li', { hasText: 'Huddle Room' });
    await waiting.waitFor({ timeout: 20_000 });
    expect(await waiting.textContent()).toContain('Example Corp');
    await waiting.locator('[data-action=admit]').click();

    await huddle.page.waitForSelector('[data-testid=security-code]', { timeout: 20_000 });
    // Both daemons agree on the code (after any rekey), and both walls show it.
    await expect
      .poll(
        () => {
          const a = boardroom.daemon.state.get().meeting?.securityCode;
          const b = huddle.daemon.state.get().meeting?.securityCode;
          return a !== undefined && a === b;
        },
        { timeout: 20_000 },
      )
      .toBe(true);
    const code = boardroom.daemon.state.get().meeting!.securityCode!;
    expect(code).toMatch(/^(\d{5} ){7}\d{5}$/);
    await expect.poll(() => codeOnScreen(boardroom.page), { timeout: 10_000 }).toBe(code);
    await expect.poll(() => codeOnScreen(huddle.page), { timeout: 10_000 }).toBe(code);

    expect(await huddle.page.textContent('[data-testid=leader]')).toContain('BoardroomExample Corp');
    // Every roster entry carries its member's sender index (what the wall's slots name), distinct.
    const roster = boardroom.daemon.state.get().meeting!.roster;
    const indexes = roster.map((r) => r.senderIndex);
    expect(indexes.every((i) => Number.isInteger(i))).toBe(true);
    expect(new Set(indexes).size).toBe(roster.length);
    expect(
      huddle.daemon.state
        .get()
        .meeting!.roster.map((r) => [r.roomName, r.senderIndex])
        .sort(),
    ).toEqual(roster.map((r) => [r.roomName, r.senderIndex]).sort());
    await expect
      .poll(() =>
        boardroom.page.$$eval('[data-testid=roster] .identity-room', (els) => els.map((e) => e.textContent)),
      )
      .toEqual(expect.arrayContaining(['Boardroom', 'Huddle Room']));

    // The joined room leaves by touch; the leader's roster follows.
    await huddle.page.click('[data-testid=leave]');
    await huddle.page.waitForSelector('[data-screen=idle]', { timeout: 20_000 });
    await expect
      .poll(() => boardroom.page.$$eval('[data-testid=roster] li', (els) => els.length), { timeout: 20_000 })
      .toBe(1);
  }, 120_000);
});
