// The IT console's shell, fleet list and device page in real headless Chromium against the real
// service (test/console/stack.ts: dev IdP + provisioning service with the console, SQLite): desktop
// and phone sizes with screenshots kept in test-artifacts/console/, axe-core (WCAG 2 A/AA) clean,
// no CSP violation (Chart.js included), server-side paging, the helpdesk's read-only view, the
// typed confirmation before revoking, and the sign-in redirect keeping the page asked for.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPackageRoot } from '../device/kiosk/ui-dir.js';
import { recordActionResult, takeQueuedActions } from '../provisioning/store/fleet-store.js';
import { type ConsoleStack, startConsoleStack } from './console/stack.js';
import { expectAxeClean } from './browser-helpers.js';
import { launchChromium } from './kiosk-browser.js';

const ARTIFACTS = join(findPackageRoot(), 'test-artifacts', 'console');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const DEVICES = 64; // more than one page of 50
const B32 = 'abcdefghijklmnopqrstuvwxyz234567';
const deviceId = () => `sr-${Array.from(randomBytes(20), (b) => B32[b % 32]).join('')}`;

let stack: ConsoleStack;
let browser: Browser;
const contexts: BrowserContext[] = [];
/** ids by room name, "Room 001" … */
const ids: string[] = [];
const room = (i: number) => `Room ${String(i + 1).padStart(3, '0')}`;
const HOSTILE = `Room 063 <img src=x onerror="document.title='pwned'">`;

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  stack = await startConsoleStack();
  const now = Date.now();
  const iso = (ms: number) => new Date(ms).toISOString();
  for (let i = 0; i < DEVICES; i++) ids.push(deviceId());
  await stack.store.seedActiveDevices(
    ids.map((id, i) => ({
      id,
      publicKey: 'AAAA',
      roomName: room(i),
      site: i % 2 ? 'Berlin' : 'Paris',
      serial: (0x1000 + i).toString(16),
      certPem: 'pem',
    })),
    iso(now - 30 * 86_400_000),
  );
  const db = stack.store.db;
  // Heartbeat state as the pipeline writes it: the first 40 rooms online (two in a meeting), the
  // rest last seen hours ago; Room 001 has a peripheral missing and one changed, a certificate that
  // expires in 9 days and a day of health samples for the charts.
  const health = {
    loadPercent: 37,
    temperatureC: 61.5,
    memory: { usedBytes: 2.1e9, totalBytes: 8e9 },
    disk: { usedBytes: 12e9, totalBytes: 64e9 },
    peripherals: {
      present: ['camera', 'speaker', 'display', 'hid'],
      missing: ['microphone'],
      names: {
        camera: 'Logitech Brio',
        speaker: 'Jabra Speak 750',
        display: 'LG 55UL3J',
        hid: 'Sealroom buttons',
      },
    },
    selfTest: { ok: true, failed: [], at: iso(now - 3 * 3600_000) },
  };
  for (let i = 0; i < DEVICES; i++) {
    await db.run(
      `UPDATE devices SET last_seen_at = ?, software_version = ?, meeting_state = ?, health = ?,
         reported_config_version = config_version, peripherals_baseline = ? WHERE id = ?`,
      [
        iso(i < 40 ? now - 10_000 : now - (i + 1) * 3600_000),
        i % 3 ? '0.13.0' : '0.12.4',
        i === 2 || i === 5 ? 'in-meeting' : 'idle',
        JSON.stringify(health),
        JSON.stringify({
          camera: 'Logitech MeetUp',
          microphone: 'Jabra Speak 750',
          speaker: 'Jabra Speak 750',
          display: 'LG 55UL3J',
          hid: 'Sealroom buttons',
        }),
        ids[i]!,
      ],
    );
  }
  // Hostile text where IT types it (room names): shown as text, never parsed as markup.
  await db.run('UPDATE devices SET room_name = ? WHERE id = ?', [HOSTILE, ids[62]!]);
  await db.run('UPDATE devices SET cert_not_after = ? WHERE id = ?', [
    iso(now + 9 * 86_400_000 + 3600_000),
    ids[0]!,
  ]);
  await db.run('UPDATE certificates SET not_after = ? WHERE device_id = ?', [
    iso(now + 9 * 86_400_000 + 3600_000),
    ids[0]!,
  ]);
  for (let k = 95; k >= 0; k--) {
    const wave = Math.sin(k / 8);
    await db.run(
      `INSERT INTO health_samples (device_id, at, load_percent, temperature_c, memory_used, memory_total, disk_used, disk_total)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        ids[0]!,
        iso(now - k * 15 * 60_000),
        35 + 25 * wave,
        58 + 6 * wave,
        2e9 + 5e8 * wave,
        8e9,
        12e9 + k * 1e6,
        64e9,
      ],
    );
  }
  browser = await launchChromium();
}, 90_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await stack?.close();
});

interface Opened {
  page: Page;
  /** Console errors and CSP violations seen by the page. */
  problems: string[];
}

/** Signed-in browser state per user: one real sign-in through the IdP each, then reused. */
const signedIn = new Map<string, Awaited<ReturnType<BrowserContext['storageState']>>>();

async function open(user: string, hash: string, size = DESKTOP, fakeClock = false): Promise<Opened> {
  const state = signedIn.get(user);
  const context = await browser.newContext({ viewport: size, ...(state ? { storageState: state } : {}) });
  contexts.push(context);
  const page = await context.newPage();
  if (fakeClock) await page.clock.install();
  page.setDefaultTimeout(10_000);
  const problems: string[] = [];
  page.on('console', (m) => {
    // Only the console's own (the IdP's sign-in pages are not under test here).
    if (m.type() === 'error' && page.url().startsWith(`${stack.url}/console/`))
      problems.push(`${m.text()} ${m.location().url}`);
  });
  page.on('pageerror', (e) => problems.push(e.message));
  page.on('response', (r) => {
    if (r.status() >= 400 && r.url().startsWith(stack.url)) problems.push(`${r.status()} ${r.url()}`);
  });
  // A blocked inline style or script (Chart.js included) becomes a console error, so a problem.
  await page.addInitScript(() =>
    document.addEventListener('securitypolicyviolation', (e) =>
      console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`),
    ),
  );
  if (state) await page.goto(`${stack.url}/console/${hash}`);
  else {
    await stack.signInConsole(page, user, `/console/${hash}`);
    signedIn.set(user, await context.storageState());
  }
  await page.waitForSelector('main#main h1');
  return { page, problems };
}

const axeClean = (page: Page, label: string) => expectAxeClean(page, label);

const rowRooms = (page: Page) =>
  page.$$eval('table.devices tbody tr .room-link', (els) => els.map((e) => e.textContent ?? ''));

async function noHorizontalScroll(page: Page): Promise<void> {
  const wide = await page.evaluate(() =>
    [...document.querySelectorAll('body *')]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1)
      .map(
        (e) => `${e.tagName}.${e.getAttribute('class') ?? ''} ${Math.round(e.getBoundingClientRect().right)}`,
      ),
  );
  expect(wide).toEqual([]);
  const { scroll, width } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    width: window.innerWidth,
  }));
  expect(scroll).toBeLessThanOrEqual(width);
}

describe('IT console: shell, fleet and device pages', () => {
  it('fleet at desktop size: tiles, badges, paging with Next/Previous, filters kept in the hash', async () => {
    const { page, problems } = await open('ivy', '#/devices');
    const csp = (await page.request.get(`${stack.url}/console/`)).headers()['content-security-policy'];
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain('unsafe');
    await page.waitForSelector('table.devices tbody tr');
    await page.waitForSelector('.tile-list');
    expect(await page.textContent('.topbar')).toContain('Ivy Admin');
    expect(await page.textContent('.topbar')).toContain('Admin');
    expect(await page.getAttribute('a.nav-link[href="#/devices"]', 'aria-current')).toBe('page');
    const tiles = await page.$$eval('.tile', (els) => els.map((e) => e.textContent ?? ''));
    expect(tiles).toContain(`${DEVICES}Active devices`);
    expect(tiles).toContain('0Waiting for claim');
    expect(tiles).toContain('40Online');
    expect(tiles).toContain(`${DEVICES - 40}Offline`);
    expect(tiles).toContain('2In a meeting');

    const first = await rowRooms(page);
    expect(first).toHaveLength(50);
    expect(first[0]).toBe('Room 001');
    const row3 = await page.textContent('table.devices tbody tr:nth-child(3)');
    expect(row3).toContain('Online');
    expect(row3).toContain('In meeting');
    expect(await page.textContent('table.devices tbody tr:nth-child(50)')).toContain('Offline');
    expect(await page.textContent('.count')).toContain(`Showing 1–50 of ${DEVICES}`);
    await page.screenshot({ path: join(ARTIFACTS, 'fleet-desktop.png'), fullPage: true });
    await axeClean(page, 'fleet desktop');

    // Next: the server's cursor gives the rest, none of which was on page one.
    expect(await page.isDisabled('.pager button:has-text("Previous")')).toBe(true);
    await page.click('.pager button:has-text("Next")');
    await page.waitForFunction(() => document.querySelector('.count')?.textContent?.startsWith('Showing 51'));
    const second = await rowRooms(page);
    expect(second).toHaveLength(DEVICES - 50);
    expect(second[0]).toBe('Room 051');
    expect(second.filter((r) => first.includes(r))).toEqual([]);
    expect(await page.isDisabled('.pager button:has-text("Next")')).toBe(true);
    expect(page.url()).toContain('cursor=');
    await page.click('.pager button:has-text("Previous")');
    await page.waitForFunction(() => document.querySelector('.count')?.textContent?.startsWith('Showing 1–'));
    expect(await rowRooms(page)).toEqual(first);

    // Filters: site and offline, in the hash; a reload of that address shows the same list.
    await page.selectOption('select[name=site]', 'Berlin');
    await page.selectOption('select[name=online]', 'false');
    await page.waitForFunction(
      () => location.hash.includes('site=Berlin') && location.hash.includes('online=false'),
    );
    await page.waitForFunction(() => document.querySelector('.count')?.textContent?.includes('of 12'));
    const berlinOffline = await rowRooms(page);
    // Rooms 41…64 are offline; the odd indexes (even room numbers) are in Berlin.
    expect(berlinOffline).toEqual(Array.from({ length: 12 }, (_, k) => room(41 + 2 * k)));
    await page.reload();
    await page.waitForFunction(() => document.querySelector('.count')?.textContent?.includes('of 12'));
    expect(await page.inputValue('select[name=site]')).toBe('Berlin');
    expect(await rowRooms(page)).toEqual(berlinOffline);

    // Search (debounced) by room name.
    await page.selectOption('select[name=site]', '');
    await page.selectOption('select[name=online]', '');
    await page.fill('input[name=q]', 'room 007');
    await page.waitForFunction(() => document.querySelector('.count')?.textContent?.includes('of 1 device'));
    expect(await rowRooms(page)).toEqual(['Room 007']);
    await page.fill('input[name=q]', '<img');
    await page.waitForFunction(() => document.querySelector('.room-link')?.textContent?.includes('<img'));
    expect(await page.textContent('.count')).toContain('of 1 device');
    expect(await rowRooms(page)).toEqual([HOSTILE]);
    expect(await page.$$('table.devices img')).toHaveLength(0);
    // A forged device id in the address is just an unknown device.
    await page.goto(`${stack.url}/console/#/devices/${encodeURIComponent('<svg onload=alert(1)>')}`);
    await page.waitForSelector('h1:text("Device not found")');
    expect(await page.$$('main svg')).toHaveLength(0);
    expect(await page.title()).not.toContain('pwned');
    expect(problems.filter((p) => !p.includes('404') && !p.includes('400'))).toEqual([]);
  });

  it('device page at desktop size: peripherals flagged, certificate warning, charts under the CSP, audit, actions', async () => {
    const { page, problems } = await open('ivy', `#/devices/${ids[0]}`);
    await page.waitForSelector('.chart canvas');
    expect(await page.textContent('h1')).toBe('Room 001');
    const peripherals = await page.textContent('.card:has(h2:text("Peripherals"))');
    expect(peripherals).toMatch(/Microphone.*Missing/);
    expect(peripherals).toMatch(/Camera.*Logitech Brio.*expected Logitech MeetUp.*Changed/);
    expect(await page.textContent('.cert-state')).toMatch(/Expires in 9 days/);
    // Four charts, each drawn by Chart.js (a sized canvas with pixels on it).
    await page.waitForFunction(() => document.querySelectorAll('.chart canvas').length === 4);
    const drawn = await page.$$eval('.chart canvas', (els) =>
      (els as HTMLCanvasElement[]).map((c) => {
        const ctx = c.getContext('2d')!;
        const data = ctx.getImageData(0, 0, c.width, c.height).data;
        let ink = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i]! > 0) ink++;
        return { w: c.width, ink };
      }),
    );
    for (const c of drawn) {
      expect(c.w).toBeGreaterThan(100);
      expect(c.ink).toBeGreaterThan(500);
    }
    expect(await page.getAttribute('.chart canvas', 'aria-label')).toMatch(/CPU load .* 96 samples/);
    for (const kind of ['restart', 'renew-certificate', 'collect-logs', 'revoke', 'decommission']) {
      expect(await page.isVisible(`button[data-action="${kind}"]`)).toBe(true);
    }
    expect(await page.isVisible('form.override textarea')).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, 'device-desktop.png'), fullPage: true });
    await axeClean(page, 'device desktop');

    // Collect logs: queued, listed with its status (the device picks it up at its next heartbeat).
    await page.click('button[data-action="collect-logs"]');
    await page.waitForSelector('.actions-table tbody tr');
    expect(await page.textContent('.actions-table tbody tr')).toMatch(/Collect logs\s*queued/);
    // The device's side (its signed routes are H-device's tests): the heartbeat hands the action
    // out, the device uploads the bundle. The page follows by polling, then offers the download.
    const [sent] = await takeQueuedActions(stack.store.db, ids[0]!, new Date().toISOString());
    expect(sent?.kind).toBe('collect-logs');
    await page.waitForSelector('.actions-table tbody tr .badge:text("sent")');
    const bundle = gzipSync(Buffer.from('daemon.log: all good\n'.repeat(200)));
    await recordActionResult(stack.store.db, {
      deviceId: ids[0]!,
      actionId: sent!.id,
      status: 'done',
      message: 'logs collected',
      bundle,
      now: new Date().toISOString(),
    });
    await page.waitForSelector('.actions-table a.download');
    expect(await page.textContent('.actions-table tbody tr')).toMatch(
      /done.*logs collected.*Download log bundle/s,
    );
    const got = await page.evaluate(async () => {
      const href = document.querySelector<HTMLAnchorElement>('.actions-table a.download')!.href;
      const r = await fetch(href);
      return { type: r.headers.get('content-type'), bytes: (await r.arrayBuffer()).byteLength };
    });
    expect(got).toEqual({ type: 'application/gzip', bytes: bundle.length });
    // Override saved through the API with the CSRF header; the effective config shows it.
    await page.fill('form.override textarea', '{"display": {"brightness": 70}}');
    await page.click('form.override button[type=submit]');
    await page.waitForSelector('.notice-ok:has-text("Saved")');
    expect(await page.textContent('pre[aria-label="Effective configuration"]')).toContain('"brightness": 70');
    // The audit trail lists both.
    await page.reload();
    await page.waitForSelector('table.audit');
    const audit = await page.textContent('table.audit');
    expect(audit).toContain('console:ivy@example.org');
    expect(audit).toContain('device.config');
    expect(problems).toEqual([]);
  });

  it('revoke asks for the room name first', async () => {
    const { page, problems } = await open('ivy', `#/devices/${ids[63]}`);
    await page.click('button[data-action="revoke"]');
    await page.waitForSelector('dialog[open]');
    await axeClean(page, 'revoke dialog');
    const confirm = 'dialog button[type=submit]';
    expect(await page.isDisabled(confirm)).toBe(true);
    await page.fill('dialog input', 'Room 06');
    expect(await page.isDisabled(confirm)).toBe(true);
    // Enter on a disabled confirmation does nothing.
    await page.press('dialog input', 'Enter');
    expect(await page.isVisible('dialog[open]')).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, 'revoke-dialog.png') });
    await page.fill('dialog input', room(63));
    await page.click(confirm);
    await page.waitForSelector('.device-head .badge:has-text("Revoked")');
    expect((await stack.store.getDevice(ids[63]!))?.status).toBe('revoked');
    // Cancel keeps the device as it is.
    await page.click('button[data-action="decommission"]');
    await page.click('dialog button:has-text("Cancel")');
    expect((await stack.store.getDevice(ids[63]!))?.status).toBe('revoked');
    expect(problems).toEqual([]);
  });

  it('phone size: header wraps, the list becomes cards, nothing scrolls sideways', async () => {
    const { page, problems } = await open('ivy', '#/devices', PHONE);
    await page.waitForSelector('table.devices tbody tr');
    await noHorizontalScroll(page);
    // Cards: rows are blocks, the header row is hidden from view.
    expect(await page.$eval('table.devices tbody tr', (el) => getComputedStyle(el).display)).toBe('block');
    await page.screenshot({ path: join(ARTIFACTS, 'fleet-phone.png') });
    await page.$eval('.count', (el) => el.scrollIntoView());
    await page.screenshot({ path: join(ARTIFACTS, 'fleet-phone-list.png') });
    await axeClean(page, 'fleet phone');
    await page.click('table.devices tbody tr:first-child .room-link');
    await page.waitForSelector('.chart canvas');
    expect(await page.evaluate(() => document.activeElement?.tagName)).toBe('H1');
    await noHorizontalScroll(page);
    await page.screenshot({ path: join(ARTIFACTS, 'device-phone.png'), fullPage: true });
    await axeClean(page, 'device phone');
    expect(problems).toEqual([]);
  });

  it('helpdesk sees everything but no button that changes anything', async () => {
    const { page, problems } = await open('hal', `#/devices/${ids[1]}`);
    await page.waitForSelector('.card:has(h2:text("Remote actions"))');
    expect(await page.textContent('.topbar')).toContain('Helpdesk (read-only)');
    expect(await page.$$('button[data-action]')).toHaveLength(0);
    expect(await page.$$('form.override')).toHaveLength(0);
    expect(await page.isVisible('pre[aria-label="Device override"]')).toBe(true);
    await page.screenshot({ path: join(ARTIFACTS, 'device-helpdesk.png'), fullPage: true });
    await axeClean(page, 'device helpdesk');
    // And the service refuses hal's change even with the CSRF token (read scope).
    const status = await page.evaluate(async (id) => {
      const me = await (await fetch('/console/api/me')).json();
      const r = await fetch(`/v1/devices/${id}/actions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-sealroom-csrf': me.csrf },
        body: JSON.stringify({ kind: 'restart' }),
      });
      return r.status;
    }, ids[1]!);
    expect(status).toBe(403);
    expect(problems.filter((p) => !p.includes('403'))).toEqual([]);
  });

  it('the fleet list refreshes itself every 30 s (a device that went offline shows it)', async () => {
    const { page, problems } = await open('ivy', '#/devices', DESKTOP, true);
    await page.waitForSelector('table.devices tbody tr');
    const row = 'table.devices tbody tr:nth-child(2)';
    expect(await page.textContent(row)).toContain('Online');
    const before = await stack.store.getDevice(ids[1]!);
    await stack.store.db.run('UPDATE devices SET last_seen_at = ? WHERE id = ?', [
      new Date(Date.now() - 3600_000).toISOString(),
      ids[1]!,
    ]);
    try {
      await page.clock.fastForward(31_000);
      await page.waitForFunction((sel) => document.querySelector(sel)?.textContent?.includes('Offline'), row);
      expect(await page.textContent('.tile-list')).toContain('39Online');
    } finally {
      await stack.store.db.run('UPDATE devices SET last_seen_at = ? WHERE id = ?', [
        before!.lastSeenAt,
        ids[1]!,
      ]);
    }
    expect(problems).toEqual([]);
  });

  it('not signed in: sign-in first, then back on the page asked for; sign out ends the session', async () => {
    const context = await browser.newContext({ viewport: DESKTOP });
    contexts.push(context);
    const page = await context.newPage();
    await page.goto(`${stack.url}/console/#/devices?site=Paris`);
    await page.waitForSelector('input[name="login"]');
    expect(new URL(page.url()).origin).toBe(new URL(stack.idp.issuer).origin);
    await page.fill('input[name="login"]', 'ivy');
    await page.fill('input[name="password"]', 'demo');
    await page.click('button[type="submit"]');
    await page.waitForURL(`${stack.url}/console/#/devices?site=Paris`);
    await page.waitForSelector('table.devices tbody tr');
    expect(await page.inputValue('select[name=site]')).toBe('Paris');
    await page.click('button.signout');
    await page.waitForSelector('h1:text("You are signed out")');
    await axeClean(page, 'signed out');
    const me = await page.evaluate(async () => (await fetch('/console/api/me')).status);
    expect(me).toBe(401);
  });
});
