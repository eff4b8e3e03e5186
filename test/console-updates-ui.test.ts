// The console's update views in real Chromium, against the real service (SQLite): the Updates
// (rollout) page per channel with the devices that failed or rolled back, an admin assigning a
// site's channel and window; a device page's Update card with the download progress, an admin
// changing that device's channel; helpdesk sees the same without a form. axe-core must find nothing.
// Screenshots: test-artifacts/console/updates-*.png.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPackageRoot } from '../device/kiosk/ui-dir.js';
import { recordUpdateState } from '../provisioning/store/update-store.js';
import { expectAxeClean } from './browser-helpers.js';
import { type ConsoleStack, startConsoleStack } from './console/stack.js';
import { collectPageErrors, launchChromium } from './kiosk-browser.js';

const ARTIFACTS = join(findPackageRoot(), 'test-artifacts', 'console');
const DESKTOP = { width: 1440, height: 900 };
const AXE = { type: 'tag' as const, values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] };

const id = (n: number) => `sr-updatesui${'a'.repeat(10)}${'bcdefghijk'[n]}`;
const devices = [
  { id: id(0), roomName: 'Boardroom', site: 'HQ' },
  { id: id(1), roomName: 'Huddle <b>2.01</b>', site: 'HQ' },
  { id: id(2), roomName: 'Lab West', site: 'Paris' },
];

let stack: ConsoleStack;
let browser: Browser;
const contexts: BrowserContext[] = [];

async function apiAsAdmin<T>(path: string, init: { method?: string; body?: unknown } = {}): Promise<T> {
  const res = await fetch(`${stack.url}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      authorization: `Bearer ${stack.adminToken}`,
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

beforeAll(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  stack = await startConsoleStack();
  const now = Date.now();
  await stack.store.seedActiveDevices(
    devices.map((d, i) => ({ ...d, publicKey: `pk-${i}`, serial: `serial-${i}`, certPem: 'seed' })),
    new Date(now).toISOString(),
  );
  await apiAsAdmin('/v1/sites/Paris/update-policy', { method: 'PUT', body: { channel: 'canary' } });
  const report = (deviceId: string, r: Parameters<typeof recordUpdateState>[1]['report']) =>
    recordUpdateState(stack.store.db, { deviceId, report: r, now: new Date().toISOString() });
  await report(devices[0]!.id, {
    at: new Date(now - 60_000).toISOString(),
    state: 'downloading',
    current: '2.0.0',
    target: '2.1.0',
    channel: 'stable',
    progress: 0.42,
  });
  await report(devices[1]!.id, {
    at: new Date(now - 3600_000).toISOString(),
    state: 'rolled-back',
    current: '2.0.0',
    target: '2.1.0',
    channel: 'stable',
    error: 'health gate: <img src=x onerror=alert(1)> relay not connected',
  });
  await report(devices[2]!.id, {
    at: new Date(now - 120_000).toISOString(),
    state: 'committed',
    current: '2.2.0-rc.1',
    channel: 'canary',
  });
  browser = await launchChromium();
}, 90_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await stack?.close();
});

async function signedInPage(user: string, hash: string): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: DESKTOP });
  contexts.push(context);
  const page = await context.newPage();
  const errors = collectPageErrors(page, /status of 4\d\d/);
  await stack.signInConsole(page, user, `/console/${hash}`);
  return { page, errors };
}

describe('the console shows updates', () => {
  it('ivy sees the rollout per channel and the failed device, and moves a site to canary', async () => {
    const { page, errors } = await signedInPage('ivy', '#/updates');
    await page.waitForSelector('[data-testid=rollout]');
    const stable = page.locator('tr[data-channel=stable]');
    await expect(stable.textContent()).resolves.toMatch(/2/);
    expect(await stable.textContent()).toContain('Downloading');
    expect(await stable.textContent()).toContain('Rolled back');
    expect(await page.locator('tr[data-channel=canary]').textContent()).toContain('2.2.0-rc.1');
    const problem = page.locator(`tr[data-problem="${devices[1]!.id}"]`);
    // Hostile text from a room name and a device's error stays text.
    expect(await problem.textContent()).toContain('Huddle <b>2.01</b>');
    expect(await problem.textContent()).toContain('<img src=x onerror=alert(1)>');
    expect(await page.locator('img').count()).toBe(0);
    expect(await problem.locator('a').getAttribute('href')).toBe(`#/devices/${devices[1]!.id}`);
    await page.screenshot({ path: join(ARTIFACTS, 'updates-desktop.png'), fullPage: true });
    await expectAxeClean(page, page.url(), AXE);

    // Assign HQ to canary, installing only at night.
    await page.getByLabel('Site', { exact: true }).last().selectOption('HQ');
    await page.getByLabel('Channel', { exact: true }).fill('canary');
    await page.getByLabel('Only install in a maintenance window').check();
    await page.getByLabel('From').fill('23:00');
    await page.getByLabel('Until').fill('04:30');
    await page.getByRole('button', { name: 'Save for the site' }).click();
    await page.getByText('Saved for HQ: 2 devices').waitFor();
    const profile = await apiAsAdmin<{ config: Record<string, unknown> }>('/v1/sites/HQ/profile');
    expect(profile.config).toEqual({
      update: { channel: 'canary', window: { start: '23:00', end: '04:30' }, paused: false },
    });
    // Picking another site shows what that site has (Paris was moved to canary before).
    await page.getByLabel('Site', { exact: true }).last().selectOption('Paris');
    await expect.poll(() => page.getByLabel('Channel', { exact: true }).inputValue()).toBe('canary');
    expect(await page.getByLabel('Only install in a maintenance window').isChecked()).toBe(false);
    await page.getByLabel('Site', { exact: true }).last().selectOption('HQ');
    await expect.poll(() => page.getByLabel('Only install in a maintenance window').isChecked()).toBe(true);
    expect(await page.getByLabel('Until').inputValue()).toBe('04:30');
    // A bad channel name is caught before asking the service.
    await page.getByLabel('Channel', { exact: true }).fill('Canary!');
    await page.getByRole('button', { name: 'Save for the site' }).click();
    await page.getByText('A channel is lower-case letters').waitFor();
    expect(errors).toEqual([]);
  }, 60_000);

  it("ivy sees a device's download progress and pauses that device", async () => {
    const { page, errors } = await signedInPage('ivy', `#/devices/${devices[0]!.id}`);
    const card = page.locator('[data-testid=update-card]');
    await card.waitFor();
    expect(await card.textContent()).toContain('Downloading');
    expect(await card.locator('progress').getAttribute('value')).toBe('42');
    expect(await card.textContent()).toContain('2.1.0');
    await page.screenshot({ path: join(ARTIFACTS, 'updates-device.png'), fullPage: true });
    await expectAxeClean(page, page.url(), AXE);
    await card.getByText('Change for this device').click();
    await card.getByLabel('Pause updates').check();
    await card.getByRole('button', { name: 'Save for this device' }).click();
    await card.getByText('Saved: the device gets it').waitFor();
    await expect.poll(async () => card.textContent()).toContain('Paused');
    const d = await apiAsAdmin<{ update: { paused: boolean; channel: string } }>(
      `/v1/devices/${devices[0]!.id}`,
    );
    expect(d.update).toMatchObject({ paused: true, channel: 'canary' });
    expect(errors).toEqual([]);
  }, 60_000);

  it('hal (helpdesk) sees the same, with no way to change it', async () => {
    const { page, errors } = await signedInPage('hal', '#/updates');
    await page.waitForSelector('[data-testid=rollout]');
    // Everyone is on canary now (the site and the device moved above).
    expect(await page.locator('tr[data-channel=canary]').textContent()).toContain('3');
    expect(await page.locator(`tr[data-problem="${devices[1]!.id}"]`).count()).toBe(1);
    expect(await page.getByRole('button', { name: 'Save for the site' }).count()).toBe(0);
    await expectAxeClean(page, page.url(), AXE);
    await page.goto(`${stack.url}/console/#/devices/${devices[2]!.id}`);
    const card = page.locator('[data-testid=update-card]');
    await card.waitFor();
    expect(await card.textContent()).toContain('Updated');
    expect(await card.getByText('Change for this device').count()).toBe(0);
    await page.screenshot({ path: join(ARTIFACTS, 'updates-helpdesk.png'), fullPage: true });
    await expectAxeClean(page, page.url(), AXE);
    expect(errors).toEqual([]);
  }, 60_000);
});
