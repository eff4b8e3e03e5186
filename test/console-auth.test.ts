// The IT console's sign-in against the real dev OpenID Connect provider (oidc-provider): a real
// Chromium signing in (http and https), role mapping from the groups claim, and the attacker's side —
// forged, expired and revoked session cookies, missing or wrong CSRF tokens, a replayed or foreign
// callback, open redirects through `return`, users outside the console's groups. The store part
// (pending logins, sessions, purge) runs on SQLite and PostgreSQL.
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consoleFromFlags } from '../provisioning/cli.js';
import { hashSecret } from '../provisioning/console/session.js';
import { followSignInRedirects } from '../provisioning/oidc/dev-provider.js';
import { buildService } from '../provisioning/service/app.js';
import {
  getSession,
  insertLogin,
  insertSession,
  purgeConsole,
  revokeSession,
  takeLogin,
} from '../provisioning/store/console-store.js';
import { createDevelopmentCa } from '../src/relay/dev-pki.js';
import { type ConsoleStack, placeholderConsoleDir, startConsoleStack } from './console/stack.js';
import { launchChromium, runAxe } from './kiosk-browser.js';
import { backends, freshStore, PostgresCluster } from './provisioning-backends.js';

const ARTIFACTS = join(process.cwd(), 'test-artifacts', 'console');
mkdirSync(ARTIFACTS, { recursive: true });

const fixture = placeholderConsoleDir();
let stack: ConsoleStack;
beforeAll(async () => {
  stack = await startConsoleStack({ staticDir: fixture.dir });
}, 60_000);
afterAll(async () => {
  await stack?.close();
  fixture.remove();
});

const loginUrl = (ret: string) => `${stack.url}/console/auth/login?return=${encodeURIComponent(ret)}`;
const isCallback = (u: string) => u.startsWith(`${stack.url}/console/auth/callback`);
const me = (cookie?: string) => fetch(`${stack.url}/console/api/me`, { headers: cookie ? { cookie } : {} });
const claim = (headers: Record<string, string>) =>
  fetch(`${stack.url}/v1/claims`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ activationCode: 'ACDE-FGHJ', roomName: 'Lab', site: 'HQ' }),
  });

describe('console sign-in in Chromium', () => {
  let browser: Browser;
  beforeAll(async () => {
    browser = await launchChromium();
  }, 30_000);
  afterAll(async () => browser?.close());

  it('signs ivy in through the IdP and lands on the page asked for, as admin', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    const page = await context.newPage();
    await stack.signInConsole(page, 'ivy', '/console/#/devices');
    expect(page.url()).toBe(`${stack.url}/console/#/devices`);
    await page.waitForFunction(() => document.getElementById('who')?.textContent !== '…');
    expect(await page.textContent('#who')).toBe('Ivy Admin (admin)');
    // (127.0.0.1's cookies are shared by ports: the IdP's are there too.)
    const session = (await context.cookies(stack.url)).find((c) => c.name === 'sealroom-console');
    expect(session).toMatchObject({ name: 'sealroom-console', httpOnly: true, sameSite: 'Lax', path: '/' });
    await page.screenshot({ path: join(ARTIFACTS, 'auth-signed-in.png') });
    await context.close();
  }, 30_000);

  it('shows alice (no console group) a clear refusal page, axe-clean, and sets no session', async () => {
    const context = await browser.newContext({ bypassCSP: true });
    const page = await context.newPage();
    await stack.signInConsole(page, 'alice');
    expect(page.url()).toContain('/console/auth/callback');
    expect(await page.textContent('h1')).toBe('Not allowed');
    expect(await page.textContent('main')).toContain('alice@example.org is not in the console');
    expect((await context.cookies(stack.url)).map((c) => c.name)).not.toContain('sealroom-console');
    await page.screenshot({ path: join(ARTIFACTS, 'auth-not-allowed.png') });
    expect(await runAxe(page, { type: 'tag', values: ['wcag2a', 'wcag2aa', 'best-practice'] })).toEqual([]);
    await context.close();
  }, 30_000);

  it('over https: a __Host- cookie, Secure, HttpOnly', async () => {
    const secure = await startConsoleStack({ https: true, staticDir: fixture.dir });
    try {
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      const page = await context.newPage();
      await secure.signInConsole(page, 'hal');
      await page.waitForFunction(() => document.getElementById('who')?.textContent !== '…');
      expect(await page.textContent('#who')).toBe('Hal Helpdesk (helpdesk)');
      const cookies = await context.cookies(secure.url);
      expect(cookies.find((c) => c.name === '__Host-sealroom-console')).toMatchObject({
        secure: true,
        httpOnly: true,
        sameSite: 'Lax',
        path: '/',
      });
      await context.close();
    } finally {
      await secure.close();
    }
  }, 40_000);
});

describe('console sign-in over HTTP', () => {
  it('maps groups to roles: ivy admin, hal helpdesk; /console/api/me says so', async () => {
    for (const [user, role, email] of [
      ['ivy', 'admin', 'ivy@example.org'],
      ['hal', 'helpdesk', 'hal@example.org'],
    ] as const) {
      const s = await stack.signInHeadless(user);
      const res = await me(s.cookie);
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const body = (await res.json()) as Record<string, string>;
      expect(body).toMatchObject({ email, role, csrf: s.csrf, org: 'Example Corp' });
      expect(Date.parse(body.expiresAt ?? '') - Date.now()).toBeGreaterThan(7.9 * 3600_000);
    }
  });

  it('the cookie is HttpOnly, SameSite=Lax, Path=/, not Secure on http; the DB holds only its hash', async () => {
    const first = await followSignInRedirects({
      startUrl: loginUrl('/console/'),
      user: 'ivy',
      stopAt: isCallback,
    });
    const res = await fetch(first.url, {
      redirect: 'manual',
      headers: { cookie: [...first.jar].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/console/');
    const set = res.headers.getSetCookie().find((c) => c.startsWith('sealroom-console='));
    expect(set).toMatch(/; Path=\/; HttpOnly; SameSite=Lax; Max-Age=28800$/);
    const value = /^sealroom-console=([^;]+)/.exec(set ?? '')?.[1] ?? '';
    expect(value).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const rows = await stack.store.db.all('SELECT id_hash FROM console_sessions');
    expect(rows.map((r) => r.id_hash)).toContain(hashSecret(value));
    expect(JSON.stringify(rows)).not.toContain(value);
  });

  it('helpdesk reads but gets 403 on POST /v1/claims; admin needs the CSRF header', async () => {
    const hal = await stack.signInHeadless('hal');
    expect((await fetch(`${stack.url}/v1/devices`, { headers: { cookie: hal.cookie } })).status).toBe(200);
    const denied = await claim({ cookie: hal.cookie, 'x-sealroom-csrf': hal.csrf });
    expect(denied.status).toBe(403);
    expect(((await denied.json()) as { message: string }).message).toMatch(/helpdesk is read-only/);

    const ivy = await stack.signInHeadless('ivy');
    expect((await claim({ cookie: ivy.cookie })).status).toBe(403); // no CSRF header
    expect((await claim({ cookie: ivy.cookie, 'x-sealroom-csrf': hal.csrf })).status).toBe(403); // another's
    expect((await claim({ cookie: ivy.cookie, 'x-sealroom-csrf': '' })).status).toBe(403);
    // With it, auth passes and the claim itself answers (no such code).
    expect((await claim({ cookie: ivy.cookie, 'x-sealroom-csrf': ivy.csrf })).status).toBe(404);
  });

  it('forged, malformed, expired and revoked session cookies → 401', async () => {
    const forged = `sealroom-console=${randomBytes(32).toString('base64url')}`;
    for (const cookie of [
      forged,
      'sealroom-console=',
      "sealroom-console=' OR 1=1 --",
      `sealroom-console=${'A'.repeat(5000)}`,
    ]) {
      const res = await me(cookie);
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ statusCode: 401, error: 'sign-in-required' });
      expect((await fetch(`${stack.url}/v1/devices`, { headers: { cookie } })).status).toBe(401);
    }
    expect((await me()).status).toBe(401);

    // Expired: the row says so (the service's clock is real).
    const expired = await stack.signInHeadless('ivy');
    expect((await me(expired.cookie)).status).toBe(200);
    await stack.store.db.run('UPDATE console_sessions SET expires_at = ? WHERE id_hash = ?', [
      new Date(Date.now() - 1000).toISOString(),
      hashSecret(expired.cookieValue),
    ]);
    expect((await me(expired.cookie)).status).toBe(401);
    expect((await fetch(`${stack.url}/v1/devices`, { headers: { cookie: expired.cookie } })).status).toBe(
      401,
    );

    // Revoked (e.g. by another instance's sign-out): the next request is refused.
    const revoked = await stack.signInHeadless('hal');
    await revokeSession(stack.store.db, hashSecret(revoked.cookieValue), new Date().toISOString(), 'test');
    expect((await me(revoked.cookie)).status).toBe(401);
  });

  it('logout needs the CSRF header, revokes the session and clears the cookie', async () => {
    const s = await stack.signInHeadless('ivy');
    const logout = (headers: Record<string, string>) =>
      fetch(`${stack.url}/console/auth/logout`, { method: 'POST', headers });
    expect((await logout({ cookie: s.cookie })).status).toBe(403);
    expect((await logout({ cookie: s.cookie, 'x-sealroom-csrf': 'nope' })).status).toBe(403);
    expect((await me(s.cookie)).status).toBe(200);
    const out = await logout({ cookie: s.cookie, 'x-sealroom-csrf': s.csrf });
    expect(out.status).toBe(204);
    expect(out.headers.getSetCookie()[0]).toMatch(/^sealroom-console=; .*Max-Age=0/);
    expect((await me(s.cookie)).status).toBe(401);
    expect((await fetch(`${stack.url}/v1/devices`, { headers: { cookie: s.cookie } })).status).toBe(401);
    expect((await logout({ cookie: s.cookie, 'x-sealroom-csrf': s.csrf })).status).toBe(401);
    const row = await getSession(stack.store.db, hashSecret(s.cookieValue));
    expect(row?.revokedAt).toBeTruthy();
    const audit = await stack.store.listAudit({});
    expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining(['console.signin', 'console.signout']));
  });

  it('a callback works once: replaying it is refused and signs nobody in', async () => {
    const flow = await followSignInRedirects({
      startUrl: loginUrl('/console/'),
      user: 'ivy',
      stopAt: isCallback,
    });
    const cookie = [...flow.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const first = await fetch(flow.url, { redirect: 'manual', headers: { cookie } });
    expect(first.status).toBe(302);
    const again = await fetch(flow.url, { redirect: 'manual', headers: { cookie } });
    expect(again.status).toBe(400);
    expect(await again.text()).toContain('Sign-in expired');
    expect(again.headers.getSetCookie()).toEqual([]);
  });

  it('a callback from another browser (login CSRF) is refused; the starting browser still completes', async () => {
    const flow = await followSignInRedirects({
      startUrl: loginUrl('/console/'),
      user: 'alice',
      stopAt: isCallback,
    });
    // The attacker's own sign-in, delivered to a victim's browser that never started it.
    const victim = await fetch(flow.url, { redirect: 'manual' });
    expect(victim.status).toBe(400);
    expect(victim.headers.getSetCookie()).toEqual([]);
    const stranger = await fetch(flow.url, {
      redirect: 'manual',
      headers: { cookie: `sealroom-console-login=${randomBytes(32).toString('base64url')}` },
    });
    expect(stranger.status).toBe(400);
    // Not consumed by those attempts: the browser that started it finishes (alice → not allowed).
    const cookie = [...flow.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const own = await fetch(flow.url, { redirect: 'manual', headers: { cookie } });
    expect(own.status).toBe(403);
  });

  it('an expired pending login is refused', async () => {
    const flow = await followSignInRedirects({
      startUrl: loginUrl('/console/'),
      user: 'ivy',
      stopAt: isCallback,
    });
    await stack.store.db.run('UPDATE console_logins SET expires_at = ?', [
      new Date(Date.now() - 1000).toISOString(),
    ]);
    const cookie = [...flow.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(flow.url, { redirect: 'manual', headers: { cookie } });
    expect(res.status).toBe(400);
  });

  it('a callback with a forged code or state is refused', async () => {
    const flow = await followSignInRedirects({
      startUrl: loginUrl('/console/'),
      user: 'ivy',
      stopAt: isCallback,
    });
    const cookie = [...flow.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const forgedState = new URL(flow.url);
    forgedState.searchParams.set('state', randomBytes(16).toString('base64url'));
    expect((await fetch(forgedState, { redirect: 'manual', headers: { cookie } })).status).toBe(400);
    const forgedCode = new URL(flow.url);
    forgedCode.searchParams.set('code', randomBytes(32).toString('base64url'));
    const res = await fetch(forgedCode, { redirect: 'manual', headers: { cookie } });
    expect(res.status).toBe(401);
    expect(await res.text()).toContain('could not be verified');
    expect(res.headers.getSetCookie().some((c) => c.startsWith('sealroom-console='))).toBe(false);
  });

  it('`return` only goes to /console/ pages: open redirects are refused before the IdP', async () => {
    const before = (await stack.store.db.all('SELECT state_hash FROM console_logins')).length;
    for (const bad of [
      'https://evil.example/',
      '//evil.example/console/',
      '/\\evil.example',
      '/console/../admin',
      '/console/%2e%2e/x',
      '/console/auth/logout',
      'javascript:alert(1)',
      '/console/\nLocation: https://evil.example',
      '/join/',
    ]) {
      const res = await fetch(loginUrl(bad), { redirect: 'manual' });
      expect(res.status, bad).toBe(400);
      expect(res.headers.get('location'), bad).toBeNull();
    }
    expect((await stack.store.db.all('SELECT state_hash FROM console_logins')).length).toBe(before);
    // A good one keeps its hash route through the whole round trip.
    const s = await stack.signInHeadless('ivy', '/console/#/claim?code=ABCD-EFGH');
    expect(s.finalUrl).toBe(`${stack.url}/console/#/claim?code=ABCD-EFGH`);
  });

  it('refuses users outside the groups and unverified e-mail addresses', async () => {
    for (const user of ['alice', 'bob', 'eve']) {
      const res = await followSignInRedirects({ startUrl: loginUrl('/console/'), user });
      expect(res.status, user).toBe(403);
      expect(res.body).toContain('Not allowed');
      expect(res.jar.has('sealroom-console'), user).toBe(false);
    }
  });

  it('serves the console with a strict CSP; index.html no-store, assets revalidate', async () => {
    const index = await fetch(`${stack.url}/console/`);
    expect(index.status).toBe(200);
    const csp = index.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("img-src 'self' data:");
    expect(csp).not.toMatch(/unsafe-(inline|eval)/);
    expect(index.headers.get('cache-control')).toBe('no-store');
    const js = await fetch(`${stack.url}/console/console.js`);
    expect(js.status).toBe(200);
    expect(js.headers.get('cache-control')).toBe('no-cache');
    expect((await fetch(`${stack.url}/console/..%2f..%2fpackage.json`)).status).toBe(404);
  });

  it('/claim?code= leads to the console claim page when the console is on; the old page without', async () => {
    const res = await fetch(`${stack.url}/claim?code=ABCD-EFGH`, { redirect: 'manual' });
    expect(res.status).toBe(302);
    expect(res.headers.get('location')).toBe('/console/#/claim?code=ABCD-EFGH');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect((await fetch(`${stack.url}/claim?code=<script>`, { redirect: 'manual' })).status).toBe(400);

    const { store, cleanup } = await freshStore('sqlite', undefined);
    try {
      const bare = await buildService({
        store,
        ca: await createDevelopmentCa('Example Corp'),
        org: 'Example Corp',
        publicUrl: 'http://127.0.0.1:1',
        logger: false,
      });
      const page = await bare.inject({ url: '/claim?code=ABCD-EFGH' });
      expect(page.statusCode).toBe(200);
      expect(page.body).toContain('ABCD-EFGH');
      expect((await bare.inject({ url: '/console/api/me' })).statusCode).toBe(404);
      await bare.close();
    } finally {
      await cleanup();
    }
  });

  it('refuses a plain-http issuer that is not on loopback', async () => {
    const { store, cleanup } = await freshStore('sqlite', undefined);
    try {
      await expect(
        buildService({
          store,
          ca: await createDevelopmentCa('Example Corp'),
          org: 'Example Corp',
          publicUrl: 'https://sealroom.example',
          logger: false,
          console: { issuer: 'http://idp.example', clientId: 'x', staticDir: fixture.dir },
        }),
      ).rejects.toThrow(/https is required/);
    } finally {
      await cleanup();
    }
  });
});

const cluster = new PostgresCluster();
beforeAll(() => cluster.start(), 60_000);
afterAll(() => cluster.stop());

describe.each(backends)('console store on %s', (backend) => {
  const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();
  const login = (stateHash: string, expiresAt = at(600_000)) => ({
    stateHash,
    codeVerifier: 'v'.repeat(43),
    nonce: 'n',
    returnTo: '/console/',
    expiresAt,
  });

  it('a pending login is taken once, even by racing callbacks; an expired one never', async () => {
    const { store, cleanup } = await freshStore(backend, cluster);
    try {
      await insertLogin(store.db, login('a'));
      const taken = await Promise.all(Array.from({ length: 8 }, () => takeLogin(store.db, 'a', at(1000))));
      expect(taken.filter(Boolean)).toHaveLength(1);
      expect(taken.find(Boolean)).toMatchObject({ returnTo: '/console/', codeVerifier: 'v'.repeat(43) });
      expect(await takeLogin(store.db, 'a', at(2000))).toBeUndefined();
      await insertLogin(store.db, login('b', at(500)));
      expect(await takeLogin(store.db, 'b', at(500))).toBeUndefined();
      expect(await store.db.get('SELECT * FROM console_logins WHERE state_hash = ?', ['b'])).toBeUndefined();
    } finally {
      await cleanup();
    }
  });

  it('sessions: insert, replace, revoke once, purge the expired', async () => {
    const { store, cleanup } = await freshStore(backend, cluster);
    try {
      const base = {
        subject: 'ivy',
        email: 'ivy@example.org',
        name: 'Ivy',
        role: 'admin' as const,
        csrf: 'c',
        createdAt: at(0),
        expiresAt: at(3600_000),
      };
      await insertSession(store.db, { ...base, idHash: 's1' });
      await insertSession(store.db, { ...base, idHash: 's2', createdAt: at(10) }, 's1');
      expect((await getSession(store.db, 's1'))?.revokedAt).toBe(at(10));
      expect(await getSession(store.db, 's2')).toMatchObject({ role: 'admin', revokedAt: null });
      expect(await revokeSession(store.db, 's2', at(20), 'console:ivy@example.org')).toBe(true);
      expect(await revokeSession(store.db, 's2', at(30), 'console:ivy@example.org')).toBe(false);
      await insertSession(store.db, { ...base, idHash: 's3', expiresAt: at(7200_000) });
      await insertLogin(store.db, login('old', at(100)));
      expect(await purgeConsole(store.db, at(3600_000))).toEqual({ sessions: 2, logins: 1 });
      expect(await getSession(store.db, 's3')).toBeDefined();
      const actions = (await store.listAudit({})).map((a) => a.action);
      expect(actions.filter((a) => a === 'console.signin')).toHaveLength(3);
      expect(actions.filter((a) => a === 'console.signout')).toHaveLength(1);
    } finally {
      await cleanup();
    }
  });
});

// A hostile identity provider: its own discovery, keys and token endpoint, answering each sign-in
// with the ID token the test asks for. The service must refuse all but the honest one.
describe('secrets stay out of the request log', () => {
  it('neither the activation code of /claim nor the callback code and state are logged', async () => {
    const { pino } = await import('pino');
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) });
    const logged = await startConsoleStack({ staticDir: fixture.dir, service: { logger } });
    try {
      await fetch(`${logged.url}/claim?code=C4F3-WF4A`, { redirect: 'manual' });
      const flow = await followSignInRedirects({
        startUrl: `${logged.url}/console/auth/login?return=%2Fconsole%2F`,
        user: 'ivy',
        stopAt: (u) => u.startsWith(`${logged.url}/console/auth/callback`),
      });
      const callback = new URL(flow.url);
      const cookie = [...flow.jar].map(([k, v]) => `${k}=${v}`).join('; ');
      expect((await fetch(callback, { redirect: 'manual', headers: { cookie } })).status).toBe(302);
      await fetch(`${logged.url}/console/api/me`);
      const text = lines.join('');
      expect(text).toContain('/console/api/me'); // the log works…
      expect(text).not.toContain('C4F3-WF4A'); // …and holds none of these
      expect(text).not.toContain(callback.searchParams.get('code'));
      expect(text).not.toContain(callback.searchParams.get('state'));
    } finally {
      await logged.close();
    }
  }, 30_000);
});

describe('ID token verification against a hostile provider', () => {
  type Forge = (claims: Record<string, unknown>) => Record<string, unknown>;
  let forge: Forge = (c) => c;
  let signWith: 'own' | 'other' | 'none' = 'own';
  let hostile: { issuer: string; close(): Promise<void> };
  let service: ConsoleStack;

  beforeAll(async () => {
    const { SignJWT, exportJWK, generateKeyPair } = await import('jose');
    const { createServer } = await import('node:http');
    const own = await generateKeyPair('RS256');
    const other = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(own.publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
    const nonces = new Map<string, string>();
    let issuer = '';
    const server = createServer(async (req, res) => {
      const url = new URL(req.url ?? '/', issuer);
      const json = (o: unknown) =>
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(o));
      if (url.pathname === '/.well-known/openid-configuration')
        return json({
          issuer,
          authorization_endpoint: `${issuer}/auth`,
          token_endpoint: `${issuer}/token`,
          jwks_uri: `${issuer}/jwks`,
          response_types_supported: ['code'],
          subject_types_supported: ['public'],
          id_token_signing_alg_values_supported: ['RS256'],
        });
      if (url.pathname === '/jwks') return json({ keys: [jwk] });
      if (url.pathname === '/auth') {
        const code = randomBytes(16).toString('hex');
        nonces.set(code, url.searchParams.get('nonce') ?? '');
        const back = new URL(url.searchParams.get('redirect_uri') ?? '');
        back.searchParams.set('code', code);
        back.searchParams.set('state', url.searchParams.get('state') ?? '');
        return res.writeHead(302, { location: back.toString() }).end();
      }
      if (url.pathname === '/token') {
        let body = '';
        for await (const chunk of req) body += chunk;
        const code = new URLSearchParams(body).get('code') ?? '';
        const now = Math.floor(Date.now() / 1000);
        const claims = forge({
          iss: issuer,
          aud: 'hostile-client',
          sub: 'mallory',
          email: 'mallory@example.org',
          name: 'Mallory',
          groups: ['sealroom-admins'],
          nonce: nonces.get(code),
          iat: now,
          exp: now + 300,
        });
        let idToken: string;
        if (signWith === 'none') {
          const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
          idToken = `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
        } else
          idToken = await new SignJWT(claims)
            .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
            .sign(signWith === 'own' ? own.privateKey : other.privateKey);
        return json({ access_token: 'at', token_type: 'Bearer', expires_in: 300, id_token: idToken });
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    issuer = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    hostile = {
      issuer,
      close: () => new Promise<void>((r) => server.close(() => r())),
    };
    service = await startConsoleStack({
      staticDir: fixture.dir,
      console: { issuer, clientId: 'hostile-client', clientSecret: 'x' },
    });
  }, 60_000);
  afterAll(async () => {
    await service?.close();
    await hostile?.close();
  });

  const signIn = async () =>
    followSignInRedirects({
      startUrl: `${service.url}/console/auth/login?return=%2Fconsole%2F`,
      user: 'mallory',
    });

  it('accepts the honest token (so the refusals below are about the token)', async () => {
    forge = (c) => c;
    signWith = 'own';
    const res = await signIn();
    expect(res.url).toBe(`${service.url}/console/`);
    expect(res.jar.has('sealroom-console')).toBe(true);
  });

  it.each([
    ['another issuer', (c: Record<string, unknown>) => ({ ...c, iss: 'http://127.0.0.1:1' }), 'own'],
    ['another audience', (c: Record<string, unknown>) => ({ ...c, aud: 'sealroom-web' }), 'own'],
    ['another nonce', (c: Record<string, unknown>) => ({ ...c, nonce: 'replayed-nonce' }), 'own'],
    ['no nonce', (c: Record<string, unknown>) => ({ ...c, nonce: undefined }), 'own'],
    [
      'an expired token',
      (c: Record<string, unknown>) => ({ ...c, iat: Number(c.iat) - 3600, exp: Number(c.iat) - 1800 }),
      'own',
    ],
    ['a signature by another key', (c: Record<string, unknown>) => c, 'other'],
    ['alg none', (c: Record<string, unknown>) => c, 'none'],
  ] as const)('refuses %s', async (_what, f, key) => {
    forge = f;
    signWith = key;
    const res = await signIn();
    expect(res.status).toBe(401);
    expect(res.body).toContain('could not be verified');
    expect(res.jar.has('sealroom-console')).toBe(false);
  });

  it('refuses a token whose groups are not the console groups, or not strings', async () => {
    signWith = 'own';
    for (const groups of [
      [],
      ['sealroom-admins-not'],
      'Sealroom-Admins',
      [{ name: 'sealroom-admins' }],
      null,
    ]) {
      forge = (c) => ({ ...c, groups });
      const res = await signIn();
      expect(res.status, JSON.stringify(groups)).toBe(403);
      expect(res.jar.has('sealroom-console')).toBe(false);
    }
  });
});

describe('provisioning serve: console flags', () => {
  it('turns the console on with --console-client-id; issuer defaults to --oidc-issuer; secret from the env', () => {
    expect(consoleFromFlags({}, {})).toBeUndefined();
    expect(
      consoleFromFlags(
        { consoleClientId: 'sealroom-console', oidcIssuer: 'https://idp.example' },
        { SEALROOM_CONSOLE_CLIENT_SECRET: 's3cret' },
      ),
    ).toEqual({
      issuer: 'https://idp.example',
      clientId: 'sealroom-console',
      clientSecret: 's3cret',
      adminGroup: 'sealroom-admins',
      helpdeskGroup: 'sealroom-helpdesk',
      groupsClaim: 'groups',
      sessionHours: 8,
    });
    expect(
      consoleFromFlags(
        {
          consoleClientId: 'c',
          consoleIssuer: 'https://it.example',
          oidcIssuer: 'https://people.example',
          consoleClientSecret: 'flag',
          consoleAdminGroup: 'it-admins',
          consoleHelpdeskGroup: 'it-desk',
        },
        { SEALROOM_CONSOLE_CLIENT_SECRET: 'env' },
      ),
    ).toMatchObject({
      issuer: 'https://it.example',
      clientSecret: 'flag',
      adminGroup: 'it-admins',
      helpdeskGroup: 'it-desk',
    });
    expect(() => consoleFromFlags({ consoleClientId: 'c' }, {})).toThrow(/--console-issuer/);
    expect(() => consoleFromFlags({ consoleIssuer: 'https://x' }, {})).toThrow(/--console-client-id/);
    expect(() =>
      consoleFromFlags({ consoleClientId: 'c', oidcIssuer: 'https://x', consoleSessionHours: '0' }, {}),
    ).toThrow(/session-hours/);
  });
});
