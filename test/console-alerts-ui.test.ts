// The console's incidents, alerts and profiles pages in real Chromium at desktop size, against the
// real service (SQLite) with the alert engine running: incidents seeded through the store the way
// the engine opens them, a webhook receiver that first fails (so deliveries really go dead) and
// then accepts (so Retry really delivers, signed). ivy (admin) acknowledges, edits rules, adds and
// deletes targets, retries, saves a profile; hal (helpdesk) sees it all without a change button.
// Screenshots: test-artifacts/console/{incidents,alerts,profiles}-*.png; axe-core must find nothing.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findPackageRoot } from '../device/kiosk/ui-dir.js';
import {
  acknowledgeIncident,
  type Incident,
  openIncident,
  resolveIncident,
} from '../provisioning/store/alerts-store.js';
import { type ConsoleStack, startConsoleStack } from './console/stack.js';
import { expectAxeClean } from './browser-helpers.js';
import { collectPageErrors, launchChromium } from './kiosk-browser.js';

const ARTIFACTS = join(findPackageRoot(), 'test-artifacts', 'console');
const DESKTOP = { width: 1440, height: 900 };
const AXE = { type: 'tag' as const, values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] };

let stack: ConsoleStack;
let browser: Browser;
let receiver: Server;
let receiverUrl = '';
// The webhook receiver: fails until told to accept; keeps what it was sent.
let accept = false;
const received: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];
const contexts: BrowserContext[] = [];
const devices = [
  { id: 'dev-alerts-ui-0001', roomName: 'Boardroom', site: 'HQ' },
  { id: 'dev-alerts-ui-0002', roomName: 'Huddle 2.01', site: 'HQ' },
  { id: 'dev-alerts-ui-0003', roomName: 'Lab West', site: 'Paris' },
];
let firstSecret = '';
const seeded: Record<string, Incident> = {};

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
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => {
      body += c.toString('utf8');
    });
    req.on('end', () => {
      received.push({ headers: req.headers, body });
      res.writeHead(accept ? 204 : 500).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const addr = receiver.address();
  receiverUrl = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}/hooks/sealroom`;

  stack = await startConsoleStack({
    // Fast delivery rounds and one quick retry, so failing deliveries reach the dead list in the test.
    service: { alerts: { deliveryIntervalMs: 100, retryBackoffMs: [20], evaluateIntervalMs: 3_600_000 } },
  });
  const now = new Date().toISOString();
  await stack.store.seedActiveDevices(
    devices.map((d, i) => ({ ...d, publicKey: `pk-${i}`, serial: `serial-${i}`, certPem: 'seed' })),
    now,
  );
  const created = await apiAsAdmin<{ secret: string }>('/v1/alerts/targets', {
    method: 'POST',
    body: { kind: 'webhook', name: 'On-call hook', url: receiverUrl },
  });
  firstSecret = created.secret;

  const db = stack.store.db;
  const open = async (key: string, rule: Incident['rule'], deviceId: string, summary: string) => {
    const i = await openIncident(db, {
      rule,
      deviceId,
      summary,
      details: {},
      nowIso: new Date().toISOString(),
    });
    seeded[key] = i!;
  };
  await open('hot', 'temperature', devices[0]!.id, 'Boardroom: 86 °C, above 80 °C');
  await open('camera', 'peripheral-missing', devices[1]!.id, 'Huddle 2.01: camera missing');
  await open('offline', 'offline', devices[2]!.id, 'Lab West: offline for 12 minutes');
  await open('selftest', 'selftest-failed', devices[0]!.id, 'Boardroom: self-test failed (microphone)');
  await acknowledgeIncident(db, seeded.offline!.id, new Date().toISOString(), {
    actor: 'oncall-cli',
    tokenId: null,
  });
  await resolveIncident(db, seeded.selftest!.id, new Date().toISOString());

  // The receiver refuses everything so far: wait until those deliveries are dead letters.
  const deadline = Date.now() + 15_000;
  while ((await apiAsAdmin<{ items: unknown[] }>('/v1/alerts/deliveries?status=dead')).items.length < 4) {
    if (Date.now() > deadline) throw new Error('the refused deliveries never reached the dead-letter list');
    await new Promise((r) => setTimeout(r, 100));
  }
  browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  for (const c of contexts) await c.close().catch(() => undefined);
  await browser?.close();
  await stack?.close();
  await new Promise<void>((r) => (receiver ? receiver.close(() => r()) : r()));
});

const sessions = new Map<string, { page: Page; errors: string[] }>();

/**
 * A page signed in as `user`, showing `hash`. One browser session per user for the whole file
 * (signing in through the IdP each time only costs seconds); its error list restarts per call.
 */
async function signedInPage(user: string, hash: string) {
  const open = sessions.get(user);
  if (open) {
    open.errors.length = 0;
    await open.page.goto(`${stack.url}/console/${hash}`);
    await open.page.reload(); // a fresh page: no state from the previous test
    return open;
  }
  const context = await browser.newContext({ viewport: DESKTOP });
  contexts.push(context);
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: stack.url });
  const page = await context.newPage();
  // A refused request logs its 4xx in Chromium's console: the tests provoke some on purpose.
  const errors = collectPageErrors(page, /status of 4\d\d/);
  await stack.signInConsole(page, user, `/console/${hash}`);
  sessions.set(user, { page, errors });
  return { page, errors };
}

const axeClean = (page: Page) => expectAxeClean(page, page.url(), AXE);

const row = (page: Page, id: string) => page.locator(`tr[data-incident="${id}"]`);

describe('incidents page', () => {
  it('ivy sees the unresolved incidents, acknowledges one, and the list follows the service', async () => {
    const { page, errors } = await signedInPage('ivy', '#/incidents');
    await page.waitForSelector('[data-testid=incidents]');
    for (const key of ['hot', 'camera', 'offline'])
      await expect(row(page, seeded[key]!.id).count()).resolves.toBe(1);
    expect(await row(page, seeded.selftest!.id).count()).toBe(0); // resolved: not in the default view
    expect(await row(page, seeded.offline!.id).textContent()).toContain('by oncall-cli');
    // Each incident links to its device page.
    expect(await row(page, seeded.hot!.id).locator('a').getAttribute('href')).toBe(
      `#/devices/${devices[0]!.id}`,
    );
    await page.screenshot({ path: join(ARTIFACTS, 'incidents-desktop.png'), fullPage: true });
    await axeClean(page);
    // On call, on a phone: rows become cards, nothing wider than the screen.
    await page.setViewportSize({ width: 390, height: 844 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.screenshot({ path: join(ARTIFACTS, 'incidents-phone.png'), fullPage: true });
    await axeClean(page);
    await page.setViewportSize(DESKTOP);

    await page.click(`[data-ack="${seeded.hot!.id}"]`);
    await expect.poll(() => row(page, seeded.hot!.id).textContent()).toContain('Acknowledged');
    const after = await apiAsAdmin<Incident>(`/v1/incidents/${seeded.hot!.id}`);
    expect(after).toMatchObject({ status: 'acknowledged', acknowledgedBy: 'console:ivy@example.org' });
    expect(await page.locator(`[data-ack="${seeded.hot!.id}"]`).count()).toBe(0);

    // Changes made elsewhere arrive with the next 10-second poll: one resolves, one opens.
    await resolveIncident(stack.store.db, seeded.camera!.id, new Date().toISOString());
    const fresh = await openIncident(stack.store.db, {
      rule: 'certificate-expiring',
      deviceId: devices[2]!.id,
      summary: 'Lab West: certificate expires in 9 days',
      details: {},
      nowIso: new Date().toISOString(),
    });
    await expect.poll(() => row(page, seeded.camera!.id).count(), { timeout: 16_000, interval: 250 }).toBe(0);
    await expect.poll(() => row(page, fresh!.id).count(), { timeout: 5_000 }).toBe(1);

    // The resolved filter shows what cleared, and the address remembers the choice.
    await page.selectOption('select[name=status]', 'resolved');
    await expect.poll(() => row(page, seeded.selftest!.id).count()).toBe(1);
    expect(await row(page, seeded.camera!.id).count()).toBe(1);
    expect(await row(page, seeded.hot!.id).count()).toBe(0);
    expect(new URL(page.url()).hash).toBe('#/incidents?status=resolved');
    expect(errors).toEqual([]);
  }, 60_000);
});

describe('alerts page', () => {
  it('ivy edits rules, adds a webhook (secret shown once, copyable), retries a dead letter, deletes a target', async () => {
    const { page, errors } = await signedInPage('ivy', '#/alerts');
    await page.waitForSelector('form.rule[data-rule=offline]');
    expect(await page.locator('form.rule').count()).toBe(5);

    // Rules: offline after 15 minutes; the self-test rule off.
    const offline = page.locator('form.rule[data-rule=offline]');
    await offline.locator('input[name=minutes]').fill('0');
    await offline.locator('button[type=submit]').click();
    await expect.poll(() => offline.locator('.rule-status').textContent()).toMatch(/whole number from 1/);
    await offline.locator('input[name=minutes]').fill('15');
    await offline.locator('button[type=submit]').click();
    await expect
      .poll(() => page.locator('form.rule[data-rule=offline] .rule-status').textContent())
      .toContain('Saved');
    const selftest = page.locator('form.rule[data-rule=selftest-failed]');
    await selftest.locator('input[name=enabled]').uncheck();
    await selftest.locator('button[type=submit]').click();
    await expect
      .poll(() => page.locator('form.rule[data-rule=selftest-failed] .rule-status').textContent())
      .toContain('Saved');
    const rules = (
      await apiAsAdmin<{ items: { id: string; enabled: boolean; params: Record<string, unknown> }[] }>(
        '/v1/alerts/rules',
      )
    ).items;
    expect(rules.find((r) => r.id === 'offline')).toMatchObject({ enabled: true, params: { minutes: 15 } });
    expect(rules.find((r) => r.id === 'selftest-failed')?.enabled).toBe(false);

    // A webhook with credentials in its URL, or not http(s), is refused before anything is sent.
    const before = (await apiAsAdmin<{ items: unknown[] }>('/v1/alerts/targets')).items.length;
    const webhookForm = page.locator('form.target-form:has(#add-webhook)');
    await webhookForm.locator('input[name=name]').fill('Ops');
    await webhookForm.locator('input[name=url]').fill('https://ops:hunter2@hooks.example.org/x');
    await webhookForm.locator('button[type=submit]').click();
    await expect.poll(() => webhookForm.textContent()).toMatch(/no user name or password/);
    await webhookForm.locator('input[name=url]').fill('javascript:alert(1)');
    await webhookForm.locator('button[type=submit]').click();
    await expect.poll(() => webhookForm.textContent()).toMatch(/https:\/\//);
    expect((await apiAsAdmin<{ items: unknown[] }>('/v1/alerts/targets')).items.length).toBe(before);

    // A real one: its secret is shown once, and Copy puts exactly it on the clipboard.
    await webhookForm.locator('input[name=url]').fill('https://hooks.example.org/sealroom');
    await webhookForm.locator('button[type=submit]').click();
    const secretInput = page.locator('[data-testid=webhook-secret]');
    await secretInput.waitFor();
    const secret = await secretInput.inputValue();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{20,}$/);
    await page.click('button:has-text("Copy secret")');
    await expect.poll(() => page.locator('.copy-status').textContent()).toBe('Copied.');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(secret);
    const targets = (await apiAsAdmin<{ items: Record<string, unknown>[] }>('/v1/alerts/targets')).items;
    const ops = targets.find((t) => t.name === 'Ops')!;
    expect(ops).toMatchObject({ kind: 'webhook', url: 'https://hooks.example.org/sealroom' });
    expect(JSON.stringify(targets)).not.toContain(secret); // never listed again

    // An e-mail target.
    const emailForm = page.locator('form.target-form:has(#add-email)');
    await emailForm.locator('input[name=name]').fill('IT on call');
    await emailForm.locator('input[name=email]').fill('not-an-address');
    await emailForm.locator('button[type=submit]').click();
    await expect.poll(() => emailForm.textContent()).toMatch(/Enter an e-mail address/);
    await emailForm.locator('input[name=email]').fill('it-oncall@example.org');
    await emailForm.locator('button[type=submit]').click();
    await page.waitForSelector('[data-testid=targets] tr:has-text("it-oncall@example.org")');
    // Redrawn: the secret is gone from the page for good.
    expect(await page.locator('[data-testid=webhook-secret]').count()).toBe(0);

    // Dead letters: the receiver refused them; now it accepts, and Retry delivers one, signed.
    await page.waitForSelector('[data-testid=dead-letters]');
    const deadRows = page.locator('[data-testid=dead-letters] tbody tr');
    expect(await deadRows.count()).toBeGreaterThanOrEqual(4);
    expect(await deadRows.first().textContent()).toContain('On-call hook');
    // Each says what it was about: the incident's summary, not just an id.
    expect(await deadRows.first().textContent()).toMatch(/(Boardroom|Huddle 2\.01|Lab West): /);
    await page.screenshot({ path: join(ARTIFACTS, 'alerts-desktop.png'), fullPage: true });
    await axeClean(page);
    accept = true;
    const deliveryId = (await deadRows.first().getAttribute('data-delivery'))!;
    const seenBefore = received.length;
    await deadRows.first().locator('button', { hasText: 'Retry' }).click();
    await expect.poll(() => page.locator(`tr[data-delivery="${deliveryId}"]`).count()).toBe(0);
    await expect
      .poll(
        async () =>
          (
            await apiAsAdmin<{ items: { id: string }[] }>('/v1/alerts/deliveries?status=delivered')
          ).items.some((d) => d.id === deliveryId),
        { timeout: 10_000 },
      )
      .toBe(true);
    const hit = received.slice(seenBefore).find((r) => r.headers['x-sealroom-delivery'] === deliveryId)!;
    expect(hit).toBeDefined();
    const sig = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(String(hit.headers['x-sealroom-signature']))!;
    const mac = createHmac('sha256', firstSecret).update(`${sig[1]}.${hit.body}`).digest();
    expect(timingSafeEqual(mac, Buffer.from(sig[2]!, 'hex'))).toBe(true);

    // Delete asks first; Cancel keeps it, confirming removes it.
    const opsRow = page.locator(`[data-testid=targets] tr[data-target="${String(ops.id)}"]`);
    await opsRow.locator('button', { hasText: 'Delete' }).click();
    await page.locator('dialog button', { hasText: 'Cancel' }).click();
    expect(await opsRow.count()).toBe(1);
    await opsRow.locator('button', { hasText: 'Delete' }).click();
    await expect.poll(() => page.locator('dialog').textContent()).toContain('hooks.example.org');
    await axeClean(page); // with the modal open
    await page.locator('dialog button', { hasText: 'Delete target' }).click();
    await expect.poll(() => opsRow.count()).toBe(0);
    const left = (await apiAsAdmin<{ items: { id: string }[] }>('/v1/alerts/targets')).items;
    expect(left.some((t) => t.id === ops.id)).toBe(false);
    await axeClean(page);
    expect(errors).toEqual([]);
  }, 60_000);
});

describe('profiles page', () => {
  it('ivy saves a site profile as JSON (bad JSON refused in place), seeing how many devices get it', async () => {
    const { page, errors } = await signedInPage('ivy', '#/profiles');
    await page.click('button[aria-label="Edit the profile of HQ"]');
    const editor = page.locator('textarea.json-editor');
    await editor.waitFor();
    // Seeded devices never sent a heartbeat: both offline, so they get it when they come back.
    expect(await page.textContent('[data-testid=profile-reach]')).toBe(
      '2 devices at HQ get this profile; all are offline now: each gets it when it comes back.',
    );
    await editor.fill('{"volume": 15,');
    expect(await editor.getAttribute('aria-invalid')).toBe('true');
    expect(await page.textContent('.profile-problem')).toMatch(/Not valid JSON/);
    await editor.fill('["not", "an object"]');
    expect(await page.textContent('.profile-problem')).toMatch(/JSON object/);
    await editor.fill('{"volume": 15, "screen": {"brightness": 70}}');
    expect(await editor.getAttribute('aria-invalid')).toBeNull();
    await page.click('button:has-text("Save profile")');
    await expect
      .poll(() => page.textContent('.profile-result'))
      .toContain('Saved version 1 of the HQ profile');
    expect(new URL(page.url()).hash).toBe('#/profiles?site=HQ');
    // The sites table shows the new version too.
    expect(await page.textContent('table tr:has(th:text-is("HQ"))')).toContain('v1');
    await page.screenshot({ path: join(ARTIFACTS, 'profiles-desktop.png'), fullPage: true });
    await axeClean(page);
    const profile = await apiAsAdmin<{ config: unknown; version: number }>('/v1/sites/HQ/profile');
    expect(profile).toMatchObject({ version: 1, config: { volume: 15, screen: { brightness: 70 } } });
    expect(await stack.store.getConfig(devices[0]!.id)).toMatchObject({ volume: 15 });
    expect(errors).toEqual([]);
  }, 40_000);
});

describe('helpdesk', () => {
  it('hal sees incidents, alerts and profiles without a single change button', async () => {
    const { page, errors } = await signedInPage('hal', '#/incidents');
    await page.waitForSelector('[data-testid=incidents]');
    expect(await page.locator('[data-ack]').count()).toBe(0);
    await page.screenshot({ path: join(ARTIFACTS, 'incidents-helpdesk-desktop.png'), fullPage: true });
    await axeClean(page);

    await page.goto(`${stack.url}/console/#/alerts`);
    await page.waitForSelector('[data-testid=dead-letters], form.rule');
    await page.waitForSelector('[data-testid=targets]');
    expect(await page.locator('main button').count()).toBe(0);
    expect(await page.locator('form.target-form').count()).toBe(0);
    expect(await page.locator('form.rule input:not([disabled])').count()).toBe(0);
    expect(await page.textContent('main')).toContain('Read only');
    await page.screenshot({ path: join(ARTIFACTS, 'alerts-helpdesk-desktop.png'), fullPage: true });
    await axeClean(page);

    await page.goto(`${stack.url}/console/#/profiles?site=HQ`);
    await page.waitForSelector('textarea.json-editor');
    expect(await page.locator('textarea.json-editor').getAttribute('readonly')).not.toBeNull();
    expect(await page.locator('button:has-text("Save profile")').count()).toBe(0);
    await axeClean(page);

    // The service, not the page, is the authority: hal's session cannot acknowledge either.
    // (From hal's own browser session, CSRF header and all, as a crafted request would be.)
    const status = await page.evaluate(async (id) => {
      const me = (await (await fetch('/console/api/me')).json()) as { csrf: string };
      const res = await fetch(`/v1/incidents/${id}/acknowledge`, {
        method: 'POST',
        headers: { 'x-sealroom-csrf': me.csrf },
      });
      return res.status;
    }, seeded.offline!.id);
    expect(status).toBe(403);
    expect((await apiAsAdmin<Incident>(`/v1/incidents/${seeded.offline!.id}`)).acknowledgedBy).toBe(
      'oncall-cli',
    );
    expect(errors).toEqual([]);
  }, 40_000);
});
