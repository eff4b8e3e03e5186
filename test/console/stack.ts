// The IT console's stack for tests, in this process: the dev OpenID Connect provider (users ivy =
// admin, hal = helpdesk, alice = no console group; password "demo") and the provisioning service
// (buildService on 127.0.0.1, SQLite in a temp dir, http by default or https with the service's own
// TLS CA) with the console configured against that IdP. `signInConsole(page, user)` signs a real
// browser page in (playwright-core or puppeteer-core), `signInHeadless(user)` does the same over
// plain HTTP and returns the session cookie and CSRF token for fetch().
//
// The console files: `staticDir` if given, else a fresh build (scripts/build-console.mjs --outdir)
// when that script exists, else a three-file placeholder (for tests of the serving itself).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { findPackageRoot } from '../../device/kiosk/ui-dir.js';
import type { ConsoleOptions } from '../../provisioning/console/options.js';
import {
  type DevOidcProvider,
  followSignInRedirects,
  startDevOidcProvider,
} from '../../provisioning/oidc/dev-provider.js';
import { buildService, type ServiceOptions } from '../../provisioning/service/app.js';
import { loadOrCreateServiceTls } from '../../provisioning/service/serve.js';
import { openStore } from '../../provisioning/store/open.js';
import type { ProvisioningStore } from '../../provisioning/store/store.js';
import type { CertificateAuthority } from '../../src/pki/index.js';
import { createDevelopmentCa } from '../../src/relay/dev-pki.js';
import { freePort, seedToken } from '../provisioning-helpers.js';

export { freePort };

export const ORG = 'Example Corp';

export interface ConsoleStackOptions {
  /** Serve HTTPS (the service's own TLS CA; browsers need ignoreHTTPSErrors). Default http. */
  https?: boolean;
  /** Built console files; default: build them (or a placeholder, see above). */
  staticDir?: string;
  /** Overrides for the console options (issuer, client and directory are set by the stack). */
  console?: Partial<ConsoleOptions>;
  /** Overrides for buildService (e.g. `now`, `purgeIntervalMs`, `alerts`, `heartbeats`). */
  service?: Partial<ServiceOptions>;
  /** ID token lifetime at the IdP (default 600 s). */
  idTokenTtlSeconds?: number;
  /** A store to use instead of a fresh SQLite one (e.g. PostgreSQL); the stack does not close it. */
  store?: ProvisioningStore;
}

export interface ConsoleSession {
  /** `name=value` for a Cookie header. */
  cookie: string;
  cookieName: string;
  cookieValue: string;
  csrf: string;
  /** Where the sign-in ended (the return path). */
  finalUrl: string;
}

/** A page of playwright-core or puppeteer-core (only what sign-in needs). */
export interface SignInPage {
  goto(url: string): Promise<unknown>;
  waitForSelector(selector: string, options?: { timeout?: number }): Promise<unknown>;
  type(selector: string, text: string): Promise<void>;
  click(selector: string): Promise<void>;
  url(): string;
}

export interface ConsoleStack {
  /** The service origin, e.g. http://127.0.0.1:41234 (no trailing slash). */
  url: string;
  idp: DevOidcProvider;
  service: FastifyInstance;
  store: ProvisioningStore;
  ca: CertificateAuthority;
  /** An admin-scope API token (Bearer). */
  adminToken: string;
  /** A read-scope API token (Bearer). */
  readToken: string;
  dataDir: string;
  staticDir: string;
  /** The service's TLS CA (PEM) when https. */
  tlsCaPem?: string;
  /**
   * Signs `page` into the console as `user` (e.g. 'ivy'); ends on `returnPath` (default /console/),
   * or on the callback's refusal page for a user outside the console's groups (e.g. 'alice').
   */
  signInConsole(page: SignInPage, user: string, returnPath?: string): Promise<void>;
  /** The same over HTTP (no browser): the session cookie and its CSRF token. */
  signInHeadless(user: string, returnPath?: string): Promise<ConsoleSession>;
  close(): Promise<void>;
}

/** A minimal console (index.html, console.js, console.css) for tests of the serving and sign-in. */
export function placeholderConsoleDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'sealroom-console-fixture-'));
  writeFileSync(
    join(dir, 'index.html'),
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sealroom IT console</title>' +
      '<link rel="stylesheet" href="console.css"><script type="module" src="console.js"></script></head>' +
      '<body><main id="app"><h1>Sealroom IT console</h1><p id="who">…</p></main></body></html>\n',
  );
  writeFileSync(
    join(dir, 'console.js'),
    "fetch('/console/api/me').then(r => r.ok ? r.json() : null).then(me => {" +
      " document.getElementById('who').textContent = me ? me.name + ' (' + me.role + ')' : 'signed out'; });\n",
  );
  writeFileSync(join(dir, 'console.css'), 'body { font-family: sans-serif; }\n');
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

function builtConsoleDir(): { dir: string; remove(): void } {
  const root = findPackageRoot();
  const script = join(root, 'scripts', 'build-console.mjs');
  if (!existsSync(script)) return placeholderConsoleDir();
  const dir = mkdtempSync(join(tmpdir(), 'sealroom-console-'));
  execFileSync(process.execPath, [script, '--outdir', dir], { cwd: root, stdio: 'pipe' });
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The session cookie's name: `__Host-` only over https (browsers refuse it on http). */
export const consoleCookieName = (https: boolean) => (https ? '__Host-sealroom-console' : 'sealroom-console');

export async function startConsoleStack(opts: ConsoleStackOptions = {}): Promise<ConsoleStack> {
  const cleanup: (() => Promise<unknown> | unknown)[] = [];
  const close = async () => {
    for (const c of cleanup.reverse()) await Promise.resolve(c()).catch(() => undefined);
  };
  try {
    const https = opts.https ?? false;
    const ca = await createDevelopmentCa(ORG);
    const dataDir = mkdtempSync(join(tmpdir(), 'sealroom-console-stack-'));
    cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));

    // The service's origin is the IdP's redirect URI, and the IdP's issuer is the service's config:
    // the port is picked first.
    const port = await freePort();
    const url = `${https ? 'https' : 'http'}://127.0.0.1:${port}`;
    const idp = await startDevOidcProvider({
      host: '127.0.0.1',
      redirectUris: [`${url}/join/`],
      consoleRedirectUris: [`${url}/console/auth/callback`],
      ...(opts.idTokenTtlSeconds ? { idTokenTtlSeconds: opts.idTokenTtlSeconds } : {}),
    });
    cleanup.push(() => idp.close());

    let staticDir = opts.staticDir;
    if (!staticDir) {
      const built = builtConsoleDir();
      cleanup.push(() => built.remove());
      staticDir = built.dir;
    }

    const store = opts.store ?? (await openStore({ dataDir }));
    if (!opts.store) cleanup.push(() => store.close());
    const tls = https ? await loadOrCreateServiceTls({ dataDir, org: ORG, publicUrl: url }) : undefined;
    const service = await buildService({
      store,
      ca,
      org: ORG,
      publicUrl: url,
      logger: false,
      ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}),
      ...opts.service,
      console: {
        issuer: idp.issuer,
        clientId: idp.consoleClient.id,
        clientSecret: idp.consoleClient.secret,
        staticDir,
        ...opts.console,
      },
    });
    cleanup.push(() => service.close());
    await service.listen({ host: '127.0.0.1', port });

    // Unique ids and names: the store may be shared (opts.store).
    const mint = async (name: string, scope: 'admin' | 'read') =>
      (
        await seedToken(store, {
          id: randomBytes(8).toString('hex'),
          name: `${name}-${randomBytes(4).toString('hex')}`,
          scope,
          now: Date.now(),
        })
      ).token;
    const adminToken = await mint('console-stack-admin', 'admin');
    const readToken = await mint('console-stack-read', 'read');
    const loginUrl = (returnPath: string) =>
      `${url}/console/auth/login?return=${encodeURIComponent(returnPath)}`;

    return {
      url,
      idp,
      service,
      store,
      ca,
      adminToken,
      readToken,
      dataDir,
      staticDir,
      ...(tls?.caPem ? { tlsCaPem: tls.caPem } : {}),
      async signInConsole(page, user, returnPath = '/console/') {
        await page.goto(loginUrl(returnPath));
        await page.waitForSelector('input[name="login"]', { timeout: 15_000 });
        await page.type('input[name="login"]', user);
        await page.type('input[name="password"]', 'demo');
        await page.click('button[type="submit"]');
        // Back on the service: the console page asked for, or a refusal page at the callback.
        const deadline = Date.now() + 15_000;
        while (!page.url().startsWith(`${url}/`) || page.url().includes('/console/auth/login')) {
          if (Date.now() > deadline) throw new Error(`console sign-in as ${user} ended at ${page.url()}`);
          await new Promise((r) => setTimeout(r, 50));
        }
        await page.waitForSelector('body', { timeout: 15_000 });
      },
      async signInHeadless(user, returnPath = '/console/') {
        if (https) throw new Error('signInHeadless: http stacks only (fetch does not trust the test CA)');
        const res = await followSignInRedirects({ startUrl: loginUrl(returnPath), user });
        const cookieName = consoleCookieName(false);
        const cookieValue = res.jar.get(cookieName);
        if (!cookieValue)
          throw new Error(`console sign-in as ${user} failed (${res.status}): ${res.body.slice(0, 200)}`);
        const cookie = `${cookieName}=${cookieValue}`;
        const me = await fetch(`${url}/console/api/me`, { headers: { cookie } });
        if (!me.ok) throw new Error(`/console/api/me after sign-in: ${me.status}`);
        const { csrf } = (await me.json()) as { csrf: string };
        return { cookie, cookieName, cookieValue, csrf, finalUrl: res.url };
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
