// Sign-in from the web participant page, for real: headless Chromium on /join/ of a real provisioning
// service (buildService with people + web, the page built by scripts/build-web.mjs with the real E2EE
// worker) and the dev OpenID Connect provider (provisioning/oidc/dev-provider.ts, a real oidc-provider
// on loopback). The person fills the provider's login form; the page comes back with the join link
// intact and shows the certificate — which names the person and certifies exactly the page's own
// non-extractable key. Refusals driven from the page: a replayed ID token (the page's own request sent
// twice), an expired ID token, an unverified email, a wrong password (the IdP's form).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { findPackageRoot } from '../device/kiosk/ui-dir.js';
import { type DevOidcProvider, startDevOidcProvider } from '../provisioning/oidc/dev-provider.js';
import { buildService } from '../provisioning/service/app.js';
import { openStore } from '../provisioning/store/open.js';
import type { ProvisioningStore } from '../provisioning/store/store.js';
import type { CertificateAuthority } from '../src/pki/index.js';
import { verifyPersonCertificate } from '../src/pki/person.js';
import { createDevelopmentCa } from '../src/relay/dev-pki.js';
import { CHROMIUM_ARGS } from './browser/chromium.js';
import { HEADLESS_ARGS, launchChromium } from './kiosk-browser.js';

const root = findPackageRoot();
const ORG = 'Example Corp';
const RELAY = 'ws://127.0.0.1:9/v1/ws';
const LINK = `#meeting=abcd-1234&relay=${encodeURIComponent(RELAY)}`;

interface Stack {
  origin: string;
  ca: CertificateAuthority;
  idp: DevOidcProvider;
  close(): Promise<void>;
}

let webDir: string;
let browser: Browser;
let normal: Stack;
let shortTokens: Stack;
const contexts: BrowserContext[] = [];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
    srv.on('error', reject);
  });
}

async function startStack(opts: { idTokenTtlSeconds?: number } = {}): Promise<Stack> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sealroom-web-signin-'));
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const redirectUri = `${origin}/join/`;
  const idp = await startDevOidcProvider({
    host: '127.0.0.1',
    redirectUris: [redirectUri],
    ...(opts.idTokenTtlSeconds ? { idTokenTtlSeconds: opts.idTokenTtlSeconds } : {}),
  });
  const ca = await createDevelopmentCa(ORG);
  const store: ProvisioningStore = await openStore({ dataDir });
  const service: FastifyInstance = await buildService({
    store,
    ca,
    org: ORG,
    publicUrl: origin,
    logger: false,
    people: {
      issuer: idp.issuer,
      clientId: idp.clientId,
      redirectUri,
      relayUrl: RELAY,
      clockToleranceSeconds: 0,
    },
    web: { dir: webDir, relayUrls: [RELAY] },
  });
  await service.listen({ host: '127.0.0.1', port });
  return {
    origin,
    ca,
    idp,
    async close() {
      await service.close();
      await store.close();
      await idp.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

beforeAll(async () => {
  webDir = mkdtempSync(join(tmpdir(), 'sealroom-web-'));
  execFileSync(process.execPath, [join(root, 'scripts', 'build-web.mjs'), '--outdir', webDir], {
    cwd: root,
    stdio: 'pipe',
  });
  [normal, shortTokens] = await Promise.all([startStack(), startStack({ idTokenTtlSeconds: 1 })]);
  browser = await launchChromium(CHROMIUM_ARGS.filter((a) => !HEADLESS_ARGS.includes(a)));
}, 90_000);

afterEach(async () => {
  for (const c of contexts.splice(0)) await c.close().catch(() => undefined);
});

afterAll(async () => {
  await browser?.close();
  await normal?.close();
  await shortTokens?.close();
  if (webDir) rmSync(webDir, { recursive: true, force: true });
});

async function openJoin(stack: Stack): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(err.message));
  // A CSP violation is a console error: the page must work under its own policy.
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy/.test(msg.text())) errors.push(msg.text());
  });
  await page.goto(`${stack.origin}/join/${LINK}`);
  await page.waitForSelector('[data-screen=sign-in] [data-testid=sign-in]:not([disabled])');
  return { page, errors };
}

/** Clicks "Sign in", fills the provider's form (fields login, password) and submits. */
async function signInAs(page: Page, stack: Stack, user: string, password = 'demo'): Promise<void> {
  await page.click('[data-testid=sign-in]');
  await page.waitForURL((u) => u.origin === stack.idp.issuer);
  await page.fill('input[name=login]', user);
  await page.fill('input[name=password]', password);
  await page.click('button[type=submit]');
}

/** The page's IndexedDB record of the key pair and certificate (public parts only). */
function stored(page: Page) {
  return page.evaluate(async () => {
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const req = indexedDB.open('sealroom-web', 1);
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => reject(req.error);
    });
    const get = (key: string) =>
      new Promise<unknown>((resolve) => {
        const r = db.transaction('kv').objectStore('kv').get(key);
        r.onsuccess = () => resolve(r.result);
      });
    const pair = (await get('person-key')) as CryptoKeyPair;
    const cert = (await get('person-certificate')) as { certificate: string } | undefined;
    db.close();
    const raw = new Uint8Array(await crypto.subtle.exportKey('raw', pair.publicKey));
    let extractable = true;
    try {
      await crypto.subtle.exportKey('pkcs8', pair.privateKey);
    } catch {
      extractable = false;
    }
    return {
      publicKeyHex: [...raw].map((b) => b.toString(16).padStart(2, '0')).join(''),
      privateExtractable: pair.privateKey.extractable || extractable,
      certificate: cert?.certificate,
    };
  });
}

describe('sign-in from the page (dev IdP, real provisioning service)', () => {
  it('signs in with code + PKCE, comes back to the same link, shows the certificate for this key', async () => {
    const { page, errors } = await openJoin(normal);
    const authRequest = page.waitForRequest((r) => r.url().startsWith(`${normal.idp.issuer}/auth`));
    await signInAs(page, normal, 'alice');
    // The authorization request: code flow, S256 PKCE, a nonce, a state.
    const auth = new URL((await authRequest).url());
    expect(auth.searchParams.get('response_type')).toBe('code');
    expect(auth.searchParams.get('code_challenge_method')).toBe('S256');
    expect(auth.searchParams.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(auth.searchParams.get('state')).toBeTruthy();

    await page.waitForSelector('[data-screen=ready]');
    expect(await page.textContent('[data-testid=person-name]')).toBe('Alice Smith');
    expect(await page.textContent('[data-testid=person-email]')).toBe('alice@example.org');
    expect(await page.textContent('[data-testid=person-org]')).toBe(ORG);
    expect(await page.textContent('[data-testid=cert-expiry]')).toMatch(
      /Certificate valid until \d\d:\d\d \(in 1[01] h \d+ min\)/,
    );
    // The code left the address bar; the join link came back.
    const url = new URL(page.url());
    expect(url.search).toBe('');
    expect(url.hash).toBe(LINK);
    expect(await page.textContent('[data-testid=target]')).toContain('abcd-1234');

    // The certificate verifies under the org CA, names Alice and certifies the page's own key, which
    // the page cannot export.
    const s = await stored(page);
    expect(s.privateExtractable).toBe(false);
    const person = await verifyPersonCertificate(s.certificate ?? '', normal.ca.certPem);
    expect({ name: person.name, email: person.email, org: person.org }).toEqual({
      name: 'Alice Smith',
      email: 'alice@example.org',
      org: ORG,
    });
    expect(Buffer.from(person.publicKeyRaw).toString('hex')).toBe(s.publicKeyHex);
    // ≤ 12 h (the SPEC's 5 min slack covers a backdated notBefore).
    expect(person.notAfter.getTime() - person.notBefore.getTime()).toBeLessThanOrEqual(
      12 * 3600_000 + 5 * 60_000,
    );

    // A reload keeps the sign-in (the certificate and key are in IndexedDB).
    await page.reload();
    await page.waitForSelector('[data-screen=ready] [data-testid=person-name]');
    // Sign out forgets it.
    await page.click('[data-testid=sign-out]');
    await page.waitForSelector('[data-screen=sign-in]');
    await page.reload();
    await page.waitForSelector('[data-screen=sign-in]');
    expect(errors).toEqual([]);
  }, 60_000);

  it('a replayed ID token is refused with a clear message', async () => {
    const { page } = await openJoin(normal);
    // Let the page's own certificate request through once, then send it again (a replay); the page
    // gets the second answer.
    let first: number | undefined;
    await page.route('**/api/people/certificate', async (route) => {
      const once = await route.fetch();
      first = once.status();
      await route.fulfill({ response: await route.fetch() });
    });
    await signInAs(page, normal, 'bob');
    await page.waitForSelector('[data-testid=error][data-code=token-replayed]');
    expect(first).toBe(200);
    expect(await page.textContent('[data-testid=error]')).toContain(
      'That sign-in was already used once and cannot be used again.',
    );
    expect(await page.getAttribute('[data-screen]', 'data-screen')).toBe('sign-in');
  }, 60_000);

  it('an expired ID token is refused with a clear message', async () => {
    const { page } = await openJoin(shortTokens);
    // The provider's tokens live 1 s; this request reaches the service after they expired.
    await page.route('**/api/people/certificate', async (route) => {
      await new Promise((r) => setTimeout(r, 2500));
      await route.continue();
    });
    await signInAs(page, shortTokens, 'alice');
    await page.waitForSelector('[data-testid=error][data-code=token-expired]');
    expect(await page.textContent('[data-testid=error]')).toContain('Your sign-in expired');
  }, 60_000);

  it('an unverified email is refused with a clear message; a wrong password stays at the IdP', async () => {
    const { page } = await openJoin(normal);
    await signInAs(page, normal, 'alice', 'wrong');
    await page.waitForSelector('[role=alert]');
    expect(await page.textContent('[role=alert]')).toContain('Unknown user or wrong password.');
    await page.fill('input[name=login]', 'eve');
    await page.fill('input[name=password]', 'demo');
    await page.click('button[type=submit]');
    await page.waitForSelector('[data-testid=error][data-code=email-not-verified]');
    expect(await page.textContent('[data-testid=error]')).toContain('has not verified your email address');
  }, 60_000);
});
