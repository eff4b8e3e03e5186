// Claim from a phone, end to end with real parts: a device daemon enrolls against the provisioning
// service (HTTPS, its TLS CA pinned at first use) and its room screen (the kiosk UI in Chromium)
// shows the QR code; we decode that QR as drawn (jsQR), open the URL it holds in a phone-sized
// Chromium, sign in as ivy at the dev IdP, choose the site and room, claim — and the daemon's state
// and its screen reach idle within seconds. Then the attacker's and the helpdesk's side of the page.
// Screenshots: test-artifacts/console/claim-phone-*.png; axe-core must find nothing.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Daemon, startDaemon } from '../device/daemon/daemon.js';
import { findPackageRoot } from '../device/kiosk/ui-dir.js';
import { hashActivationCode } from '../provisioning/activation-code.js';
import { silentLogger } from '../src/util/log.js';
import { type ConsoleStack, startConsoleStack } from './console/stack.js';
import { expectAxeClean } from './browser-helpers.js';
import { buildKioskUi, collectPageErrors, decodeQrImage, launchChromium } from './kiosk-browser.js';

const ARTIFACTS = join(findPackageRoot(), 'test-artifacts', 'console');
const PHONE = { width: 390, height: 844 };
const AXE = { type: 'tag' as const, values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] };

let stack: ConsoleStack;
let browser: Browser;
let kioskUi: { dir: string; remove(): void };
let daemon: Daemon | undefined;
const contexts: BrowserContext[] = [];
const dirs: string[] = [];

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  kioskUi = buildKioskUi();
  // https: the device runner speaks https only (it pins the service's TLS CA).
  stack = await startConsoleStack({ https: true });
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await daemon?.stop();
  await stack?.close();
  kioskUi?.remove();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function newPage(viewport: { width: number; height: number }, phone: boolean) {
  const context = await browser.newContext({
    viewport,
    ...(phone ? { isMobile: true, hasTouch: true, deviceScaleFactor: 2 } : {}),
    ignoreHTTPSErrors: true, // the service's own TLS CA, which Chromium does not know
  });
  contexts.push(context);
  const page = await context.newPage();
  // A refused claim logs its 4xx as a console error in Chromium: that is the page working.
  const errors = collectPageErrors(page, /status of 4\d\d/);
  return { page, errors };
}

/** The IdP's login form: as a person types it. */
async function signInAtIdp(page: Page, user: string): Promise<void> {
  await page.waitForSelector('input[name="login"]', { timeout: 15_000 });
  await page.fill('input[name="login"]', user);
  await page.fill('input[name="password"]', 'demo');
  await page.click('button[type="submit"]');
}

const axeClean = (page: Page) => expectAxeClean(page, page.url(), AXE);

/** Nothing wider than the phone: no sideways scrolling on the claim page. */
async function fitsWidth(page: Page): Promise<void> {
  const widths = await page.evaluate(() => ({
    doc: document.documentElement.scrollWidth,
    view: window.innerWidth,
  }));
  expect(widths.doc).toBeLessThanOrEqual(widths.view);
}

describe('claim from a phone, from the QR code on the room screen', () => {
  let claimUrl = '';
  let code = '';

  it('a daemon enrolls and its room screen shows a QR code that decodes to the claim URL', async () => {
    const stateDir = mkdtempSync(join(tmpdir(), 'sealroom-claim-e2e-device-'));
    dirs.push(stateDir);
    daemon = await startDaemon({
      relayUrl: 'ws://127.0.0.1:9/v1/ws',
      provisioningUrl: stack.url,
      stateDir,
      log: silentLogger,
      media: 'none',
      controlPort: 0,
      uiDir: kioskUi.dir,
      meetingTiming: { reconnectMinMs: 500, reconnectMaxMs: 1000 },
    });
    await expect.poll(() => daemon?.state.get().enrollment?.claimUrl, { timeout: 15_000 }).toBeTruthy();
    const enrollment = daemon.state.get().enrollment!;
    code = enrollment.activationCode!;
    expect(enrollment.claimUrl).toBe(`${stack.url}/claim?code=${code}`);

    const { page, errors } = await newPage({ width: 1920, height: 1080 }, false);
    await page.goto(daemon.controlUrl);
    await page.waitForSelector('[data-testid=claim-qr]');
    await page.waitForFunction(() => {
      const img = document.querySelector<HTMLImageElement>('[data-testid=claim-qr]');
      return !!img && img.complete && img.naturalWidth > 0;
    });
    await page.screenshot({ path: join(ARTIFACTS, 'claim-phone-0-room-screen.png') });
    // Decoded from the picture the screen drew, by a reader we did not write.
    claimUrl = (await decodeQrImage(page, '[data-testid=claim-qr]')) ?? '';
    expect(claimUrl).toBe(enrollment.claimUrl);
    expect(errors).toEqual([]);
  }, 40_000);

  it('ivy scans it on a phone, signs in, names the room and claims; the room reaches idle in seconds', async () => {
    expect(claimUrl).not.toBe('');
    const { page, errors } = await newPage(PHONE, true);
    // The QR's URL → /console/#/claim?code=… → not signed in → the IdP, and back with the hash.
    await page.goto(claimUrl);
    await page.waitForSelector('input[name="login"]', { timeout: 15_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'claim-phone-1-sign-in.png') });
    await signInAtIdp(page, 'ivy');
    await page.waitForSelector('form.claim-form', { timeout: 15_000 });
    expect(new URL(page.url()).hash).toBe(`#/claim?code=${code}`);
    expect(await page.textContent('[data-testid=claim-code]')).toBe(code);
    // The room screen shows the same code people read off the wall.
    expect(daemon!.state.get().enrollment?.activationCode).toBe(code);
    await page.fill('input[name=site]', 'HQ');
    await page.fill('input[name=room]', 'Boardroom');
    await fitsWidth(page);
    await page.screenshot({ path: join(ARTIFACTS, 'claim-phone-2-form.png'), fullPage: true });
    await axeClean(page);

    const clickedAt = Date.now();
    await page.click('button[type=submit]');
    await page.waitForSelector('[data-testid=claim-done]', { timeout: 10_000 });
    expect(await page.textContent('[data-testid=claim-done]')).toBe('Boardroom is enrolled');
    expect(await page.textContent('main')).toContain(
      'Boardroom is enrolled; its screen switches to idle in a few seconds.',
    );
    await fitsWidth(page);
    await page.screenshot({ path: join(ARTIFACTS, 'claim-phone-3-enrolled.png'), fullPage: true });
    await axeClean(page);

    // The device's own state: enrolled, idle, named as IT typed it — within seconds (poll 3 s).
    await expect.poll(() => daemon!.state.get().phase, { timeout: 10_000, interval: 100 }).toBe('idle');
    const idleAfterMs = Date.now() - clickedAt;
    expect(idleAfterMs).toBeLessThan(10_000);
    expect(daemon!.state.get().device).toMatchObject({ roomName: 'Boardroom', site: 'HQ' });
    console.log(`[claim-e2e] room screen idle ${idleAfterMs} ms after the Claim tap`);

    // And the room screen itself shows it.
    const wall = contexts[0]!.pages()[0]!;
    await wall.waitForSelector('[data-screen=idle]', { timeout: 10_000 });
    expect(await wall.textContent('[data-testid=room-name]')).toBe('Boardroom');
    await wall.screenshot({ path: join(ARTIFACTS, 'claim-phone-4-room-screen-idle.png') });

    // The service recorded who claimed it: the console user, not a token.
    const id = daemon!.state.get().device.deviceId!;
    const device = await stack.store.getDevice(id);
    expect(device).toMatchObject({ status: 'active', roomName: 'Boardroom', site: 'HQ' });
    expect(device?.claimedBy).toBe('console:ivy@example.org');
    expect(errors).toEqual([]);

    // The same QR scanned again: the code is used, and the page says so.
    await page.goto(claimUrl);
    await page.waitForSelector('form.claim-form');
    // Sites now known to the service are offered (and the only one is filled in).
    await expect
      .poll(() => page.$$eval('#claim-sites option', (os) => os.map((o) => (o as HTMLOptionElement).value)))
      .toEqual(['HQ']);
    expect(await page.inputValue('input[name=site]')).toBe('HQ');
    await page.fill('input[name=site]', 'HQ');
    await page.fill('input[name=room]', 'Boardroom again');
    await page.click('button[type=submit]');
    await page.waitForSelector('.claim-error [role=alert]');
    expect(await page.textContent('.claim-error')).toMatch(/already used/);
    // Keyboard and screen-reader users land on the message.
    expect(await page.evaluate(() => !!document.activeElement?.closest('.claim-error'))).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, 'claim-phone-5-used-code.png'), fullPage: true });
    await axeClean(page);
    expect((await stack.store.getDevice(id))?.roomName).toBe('Boardroom');
  }, 60_000);

  it('unknown and malformed codes get clear errors; markup in the address stays text', async () => {
    const { page, errors } = await newPage(PHONE, true);
    await page.goto(
      `${stack.url}/console/auth/login?return=${encodeURIComponent('/console/#/claim?code=KKKK-KKKK')}`,
    );
    await signInAtIdp(page, 'ivy');
    await page.waitForSelector('form.claim-form', { timeout: 15_000 });
    await page.fill('input[name=site]', 'HQ');
    await page.fill('input[name=room]', 'Nowhere');
    await page.click('button[type=submit]');
    await page.waitForSelector('.claim-error [role=alert]');
    expect(await page.textContent('.claim-error')).toMatch(/activation code is unknown/);
    expect(await page.getAttribute('.claim-error a', 'href')).toBe('#/claim');
    await page.screenshot({ path: join(ARTIFACTS, 'claim-phone-6-unknown-code.png'), fullPage: true });

    // An expired code (its enrollment's time ran out while nobody claimed it): say so, and what to do.
    const now = Date.now();
    await stack.store.registerEnrollment({
      deviceId: 'dev-claim-e2e-expired',
      publicKey: 'unused',
      csrPem: 'unused',
      inventory: {},
      softwareVersion: 'test',
      enrollmentId: 'enr-claim-e2e-expired',
      codeHash: hashActivationCode('CCCCDDDD'),
      expiresAt: new Date(now - 60_000).toISOString(),
      now: new Date(now - 3_600_000).toISOString(),
    });
    await page.goto(`${stack.url}/claim?code=CCCC-DDDD`);
    await page.waitForSelector('form.claim-form');
    await page.fill('input[name=site]', 'HQ');
    await page.fill('input[name=room]', 'Too late');
    await page.click('button[type=submit]');
    await page.waitForSelector('.claim-error [role=alert]');
    expect(await page.textContent('.claim-error')).toMatch(/has expired.*scan the new QR code/);
    await page.screenshot({ path: join(ARTIFACTS, 'claim-phone-6b-expired-code.png'), fullPage: true });
    expect((await stack.store.getDevice('dev-claim-e2e-expired'))?.status).toBe('pending');

    // An attacker's link: markup where the code goes. It lands in the code field as typed text only.
    const hostile = '<img src=x onerror=alert(1)>';
    await page.goto(`${stack.url}/console/#/claim?code=${encodeURIComponent(hostile)}`);
    await page.waitForSelector('form.claim-form');
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    expect(await page.locator('main img').count()).toBe(0);
    expect(await page.inputValue('input[name=code]')).toBe(hostile);
    await page.fill('input[name=site]', 'HQ');
    await page.fill('input[name=room]', 'Room');
    await page.click('button[type=submit]');
    await page.waitForSelector('.claim-error [role=alert]');
    expect(await page.textContent('.claim-error')).toMatch(/8 letters and digits/);
    expect(await page.getAttribute('input[name=code]', 'aria-invalid')).toBe('true');
    // A control character in the room name is refused before anything is sent.
    await page.fill('input[name=code]', 'KKKK-KKKK');
    await page.fill('input[name=room]', 'Room\u0007');
    await page.click('button[type=submit]');
    await expect.poll(() => page.textContent('.claim-error')).toMatch(/control characters/);
    await axeClean(page);
    expect(dialogs).toEqual([]);
    expect(errors).toEqual([]);
  }, 40_000);

  it('hal (helpdesk) is told he cannot claim, and gets no Claim button', async () => {
    const { page, errors } = await newPage(PHONE, true);
    await page.goto(`${stack.url}/claim?code=KKKK-KKKK`);
    await signInAtIdp(page, 'hal');
    await page.waitForSelector('.claim-page', { timeout: 15_000 });
    expect(await page.textContent('.claim-page')).toMatch(/Only an IT admin can claim a device/);
    expect(await page.locator('form.claim-form').count()).toBe(0);
    expect(await page.locator('button', { hasText: 'Claim' }).count()).toBe(0);
    await fitsWidth(page);
    await page.screenshot({ path: join(ARTIFACTS, 'claim-phone-7-helpdesk.png'), fullPage: true });
    await axeClean(page);
    expect(errors).toEqual([]);
  }, 40_000);
});
