// The IT console's HTTP side (docs/console.md): the built UI at /console/, sign-in with the org's
// OpenID Connect provider (/console/auth/login → IdP → /console/auth/callback), the session API
// (/console/api/me, /console/auth/logout), and /claim (the QR code's URL) which leads to the
// console's claim page when the console is configured.
//
// Sign-in: authorization code + PKCE S256 + nonce + state with openid-client. The pending login is
// stored under the hash of state+browser binding (a short-lived cookie set by /login), taken once at
// the callback: a replayed or foreign callback finds nothing. The ID token's signature, issuer,
// audience, expiry and nonce are checked by openid-client; the role comes from its groups claim.
import { join } from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import * as oidc from 'openid-client';
import { findPackageRoot } from '../../device/kiosk/ui-dir.js';
import { httpError, type ResolvedOptions, type ServiceOptions } from '../service/app.js';
import type { ConsoleRole } from '../service/principal.js';
import { serveBuiltPage } from '../service/static-page.js';
import {
  insertLogin,
  insertSession,
  purgeConsole,
  revokeSession,
  takeLogin,
} from '../store/console-store.js';
import {
  isLoopback,
  loginCookieName,
  type ResolvedConsoleOptions,
  resolveConsoleOptions,
  sessionCookieName,
} from './options.js';
import { consoleSessionFor, cookieOf, csrfMatches, hashSecret, randomSecret } from './session.js';

export function defaultConsoleDir(): string {
  return process.env.SEALROOM_CONSOLE_DIR ?? join(findPackageRoot(), 'dist', 'console');
}

/** The console page's policy: its own scripts, styles and API only; nothing inline, no eval. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'x-frame-options': 'DENY',
};

const esc = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

/** A small server page (sign-in refusals): no script, no style, nothing loaded. */
function sendPage(reply: FastifyReply, status: number, title: string, message: string) {
  return reply
    .code(status)
    .headers({
      ...PAGE_HEADERS,
      'content-security-policy': "default-src 'none'; base-uri 'none'; form-action 'none'",
      'cache-control': 'no-store',
    })
    .type('text/html; charset=utf-8')
    .send(
      `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width">` +
        `<title>${esc(title)} — Sealroom IT console</title><body><main><h1>${esc(title)}</h1><p>${esc(message)}</p>` +
        `<p><a href="/console/auth/login?return=%2Fconsole%2F">Sign in again</a></p></main></body></html>`,
    );
}

/**
 * The console path to go back to after sign-in, or undefined when `raw` is anything else (another
 * origin, `//host`, a backslash trick, a path outside /console/, the auth routes themselves).
 */
export function safeReturnPath(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return '/console/';
  if (raw.length > 2048 || !raw.startsWith('/console/') || /[\\\x00-\x1f\x7f]/.test(raw)) return undefined;
  const base = 'http://console.invalid';
  let u: URL;
  try {
    u = new URL(raw, base);
  } catch {
    return undefined;
  }
  if (u.origin !== base || !u.pathname.startsWith('/console/') || u.pathname.startsWith('/console/auth/'))
    return undefined;
  return `${u.pathname}${u.search}${u.hash}`;
}

/** The role the ID token's groups give, if any (admin wins when both). */
export function roleFromClaims(
  claims: Record<string, unknown>,
  c: ResolvedConsoleOptions,
): ConsoleRole | undefined {
  const raw = claims[c.groupsClaim];
  const groups = Array.isArray(raw)
    ? raw.filter((g): g is string => typeof g === 'string')
    : typeof raw === 'string'
      ? [raw]
      : [];
  if (groups.includes(c.adminGroup)) return 'admin';
  if (groups.includes(c.helpdeskGroup)) return 'helpdesk';
  return undefined;
}

function cookie(name: string, value: string, maxAgeSeconds: number, secure: boolean): string {
  return [
    `${name}=${value}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Lax',
    `Max-Age=${maxAgeSeconds}`,
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}

export async function registerConsole(
  app: FastifyInstance,
  options: ServiceOptions,
  opts: ResolvedOptions,
): Promise<void> {
  registerClaimRoute(app, opts);
  if (!options.console) return;
  const c = resolveConsoleOptions(options.console, opts.publicUrl, defaultConsoleDir);
  const sessionCookie = sessionCookieName(c.secureCookies);
  const loginCookie = loginCookieName(c.secureCookies);

  // Discovery once (retried after a failure): the IdP's endpoints and keys.
  let configuration: Promise<oidc.Configuration> | undefined;
  const config = () => {
    configuration ??= (async () => {
      const cfg = await oidc.discovery(
        new URL(c.issuer),
        c.clientId,
        undefined,
        c.clientSecret ? oidc.ClientSecretBasic(c.clientSecret) : oidc.None(),
        {
          timeout: 5,
          ...(new URL(c.issuer).protocol === 'http:' && isLoopback(new URL(c.issuer).hostname)
            ? { execute: [oidc.allowInsecureRequests] }
            : {}),
        },
      );
      // Check the ID token's signature too (the code flow alone would trust the TLS channel).
      oidc.enableNonRepudiationChecks(cfg);
      return cfg;
    })();
    configuration.catch(() => {
      configuration = undefined;
    });
    return configuration;
  };

  const noStore = { 'cache-control': 'no-store', ...PAGE_HEADERS };

  app.get<{ Querystring: { return?: string } }>(
    '/console/auth/login',
    {
      schema: {
        hide: true,
        querystring: {
          type: 'object',
          properties: { return: { type: 'string', maxLength: 2048 } },
          additionalProperties: false,
        },
      },
      // Every call stores a pending login: bounded per client address.
      config: { rateLimit: { max: 60, timeWindow: 60_000 } },
    },
    async (req, reply) => {
      const returnTo = safeReturnPath(req.query.return);
      if (!returnTo)
        return sendPage(
          reply,
          400,
          'Not a console address',
          'After sign-in the console can only return to one of its own pages (/console/…).',
        );
      let cfg: oidc.Configuration;
      try {
        cfg = await config();
      } catch (err) {
        req.log.warn({ err: (err as Error).message }, 'console: identity provider discovery failed');
        return sendPage(
          reply,
          502,
          'Identity provider unavailable',
          'The sign-in service of your organisation did not answer. Try again in a moment.',
        );
      }
      // Reuse this browser's binding if it has one (two tabs signing in at once both work).
      const existing = cookieOf(req, loginCookie);
      const binding = existing && /^[A-Za-z0-9_-]{43}$/.test(existing) ? existing : randomSecret();
      const state = oidc.randomState();
      const nonce = oidc.randomNonce();
      const codeVerifier = oidc.randomPKCECodeVerifier();
      await insertLogin(opts.store.db, {
        stateHash: hashSecret(`${state}.${binding}`),
        codeVerifier,
        nonce,
        returnTo,
        expiresAt: new Date(opts.now().getTime() + c.loginTtlSeconds * 1000).toISOString(),
      });
      const url = oidc.buildAuthorizationUrl(cfg, {
        redirect_uri: c.redirectUri,
        scope: c.scopes,
        state,
        nonce,
        code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: 'S256',
      });
      return reply
        .headers(noStore)
        .header('set-cookie', cookie(loginCookie, binding, c.loginTtlSeconds, c.secureCookies))
        .redirect(url.toString(), 302);
    },
  );

  app.get<{ Querystring: Record<string, string> }>(
    '/console/auth/callback',
    {
      // The query carries the authorization code and state: keep it out of the request log.
      logLevel: 'warn',
      schema: {
        hide: true,
        querystring: {
          type: 'object',
          properties: {
            code: { type: 'string', maxLength: 4096 },
            state: { type: 'string', maxLength: 512 },
            error: { type: 'string', maxLength: 256 },
            error_description: { type: 'string', maxLength: 1024 },
            iss: { type: 'string', maxLength: 1024 },
          },
          // IdPs add their own parameters (session_state, scope, …): allowed, bounded.
          additionalProperties: { type: 'string', maxLength: 2048 },
        },
      },
      config: { rateLimit: { max: 60, timeWindow: 60_000 } },
    },
    async (req, reply) => {
      const { state, error } = req.query;
      const binding = cookieOf(req, loginCookie) ?? '';
      const pending = state
        ? await takeLogin(opts.store.db, hashSecret(`${state}.${binding}`), opts.now().toISOString())
        : undefined;
      if (!pending)
        return sendPage(
          reply,
          400,
          'Sign-in expired',
          'This sign-in was used already, has expired, or was started in another browser. Start again.',
        );
      if (error)
        return sendPage(
          reply,
          401,
          'Sign-in refused',
          `Your identity provider refused the sign-in (${error}).`,
        );
      let claims: Record<string, unknown>;
      try {
        const cfg = await config();
        const current = new URL(c.redirectUri);
        current.search = new URLSearchParams(req.query).toString();
        const tokens = await oidc.authorizationCodeGrant(cfg, current, {
          pkceCodeVerifier: pending.codeVerifier,
          expectedState: state,
          expectedNonce: pending.nonce,
          idTokenExpected: true,
        });
        claims = (tokens.claims() ?? {}) as Record<string, unknown>;
      } catch (err) {
        req.log.warn({ err: (err as Error).message }, 'console: sign-in verification failed');
        return sendPage(
          reply,
          401,
          'Sign-in failed',
          'The answer of the identity provider could not be verified. Start again.',
        );
      }
      const email = typeof claims.email === 'string' ? claims.email : '';
      const subject = typeof claims.sub === 'string' ? claims.sub : '';
      if (!email || !subject || claims.email_verified === false)
        return sendPage(
          reply,
          403,
          'Not allowed',
          'Your account has no verified e-mail address at the identity provider.',
        );
      const role = roleFromClaims(claims, c);
      if (!role)
        return sendPage(
          reply,
          403,
          'Not allowed',
          `${email} is not in the console's groups (${c.adminGroup} or ${c.helpdeskGroup}). Ask IT to add you.`,
        );
      const value = randomSecret();
      const now = opts.now();
      const previous = cookieOf(req, sessionCookie);
      await insertSession(
        opts.store.db,
        {
          idHash: hashSecret(value),
          subject,
          email,
          name: typeof claims.name === 'string' && claims.name ? claims.name : email,
          role,
          csrf: randomSecret(),
          createdAt: now.toISOString(),
          expiresAt: new Date(now.getTime() + c.sessionHours * 3600_000).toISOString(),
        },
        // A new sign-in replaces this browser's old session (no fixation, no stale session left).
        previous ? hashSecret(previous) : undefined,
      );
      return reply
        .headers(noStore)
        .header('set-cookie', [
          cookie(sessionCookie, value, Math.round(c.sessionHours * 3600), c.secureCookies),
          cookie(loginCookie, '', 0, c.secureCookies),
        ])
        .redirect(pending.returnTo, 302);
    },
  );

  const signedIn = async (req: FastifyRequest) => {
    const s = await consoleSessionFor(req, opts);
    if (!s) throw Object.assign(httpError(401, 'sign in to the console first'), { code: 'sign-in-required' });
    return s;
  };

  app.get('/console/api/me', { schema: { hide: true } }, async (req, reply) => {
    const { user, expiresAt } = await signedIn(req);
    return reply.headers(noStore).send({
      email: user.email,
      name: user.name,
      role: user.role,
      csrf: user.csrf,
      expiresAt,
      org: opts.org,
    });
  });

  app.post('/console/auth/logout', { schema: { hide: true } }, async (req, reply) => {
    const { user } = await signedIn(req);
    if (!csrfMatches(req, user))
      throw Object.assign(httpError(403, 'missing or wrong x-sealroom-csrf header: reload the console'), {
        code: 'csrf',
      });
    await revokeSession(opts.store.db, user.sessionId, opts.now().toISOString(), `console:${user.email}`);
    return reply
      .headers(noStore)
      .header('set-cookie', cookie(sessionCookie, '', 0, c.secureCookies))
      .code(204)
      .send();
  });

  // Expired sessions and pending logins go away on the service's purge period.
  const purge = setInterval(() => {
    purgeConsole(opts.store.db, opts.now().toISOString()).catch((err) =>
      app.log.warn({ err }, 'purge of expired console sessions failed'),
    );
  }, opts.purgeIntervalMs);
  purge.unref();
  app.addHook('onClose', async () => clearInterval(purge));

  await registerStatic(app, c.staticDir);
}

async function registerStatic(app: FastifyInstance, dir: string): Promise<void> {
  const headers = { ...PAGE_HEADERS, 'content-security-policy': CONSOLE_CSP };
  if (await serveBuiltPage(app, { dir, prefix: '/console/', headers })) return;
  app.log.warn({ dir }, 'IT console not built; run `node scripts/build-console.mjs`');
  app.get('/console/', { schema: { hide: true } }, async (_req, reply) =>
    reply
      .code(503)
      .headers({ ...headers, 'cache-control': 'no-store' })
      .type('text/plain; charset=utf-8')
      .send('The IT console is not built. Run: node scripts/build-console.mjs'),
  );
}

/**
 * Where the QR code on a room screen leads: with the console, its claim page (phone layout, sign-in
 * first); without, a page showing the code and how to claim it with an admin token. Nothing secret
 * is shown (the code alone claims nothing).
 */
function registerClaimRoute(app: FastifyInstance, opts: ResolvedOptions): void {
  app.get<{ Querystring: { code?: string } }>(
    '/claim',
    {
      // The URL carries an activation code: keep it out of the request log.
      logLevel: 'warn',
      schema: {
        hide: true,
        querystring: {
          type: 'object',
          properties: { code: { type: 'string', pattern: '^[A-Za-z0-9 -]{0,16}$' } },
          additionalProperties: false,
        },
      },
    },
    async (req, reply) => {
      const code = req.query.code ?? '';
      if (opts.console) {
        // The code goes in the fragment: it stays in the browser (not sent on to any server again).
        return reply
          .headers({ 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' })
          .redirect(`/console/#/claim?code=${encodeURIComponent(code)}`, 302);
      }
      return reply
        .type('text/html; charset=utf-8')
        .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'")
        .send(
          `<!doctype html><html lang="en"><meta charset="utf-8"><meta name="viewport" content="width=device-width">` +
            `<title>Claim a Sealroom device</title><body style="font-family:sans-serif;max-width:40em;margin:2em auto">` +
            `<h1>Claim a Sealroom device</h1><p>Activation code: <strong style="font-size:2em">${code}</strong></p>` +
            `<p>With an admin token, run:</p><pre>sealroom admin --url ${opts.publicUrl} claim ${code} --room "ROOM" --site "SITE"</pre>` +
            `<p>or <code>POST ${opts.publicUrl}/v1/claims</code> (see <a href="/openapi.json">the API</a>).</p></body></html>`,
        );
    },
  );
}
