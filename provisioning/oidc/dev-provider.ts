// A real OpenID Connect provider on loopback for tests, the demo and the benchmark: `oidc-provider`
// (the certified library) with one public client (no secret, authorization code + PKCE S256
// required, CORS for the web page's origin), fresh signing keys per instance (so a second instance
// is truly another issuer), and demo users whose name, email and email_verified go into the ID token
// itself. A second, confidential client (`sealroom-console`, secret fresh per instance) is the IT
// console's; its users ivy and hal carry a `groups` claim (scope "groups") that maps to a console
// role. Its sign-in is a small login form (fields `login` and `password`) on /interaction/<uid>;
// consent is granted without a prompt (a first-party org app). http is fine: loopback only.
//
// oidc-provider prints development notices (Node 20 "Unsupported runtime", defaults it would like
// us to change); we collect them into `warnings` instead of our logs (docs/people.md lists them).
// NOT for production: accounts are in memory, passwords are demo passwords.
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface DevUser {
  name: string;
  email: string;
  email_verified: boolean;
  password: string;
  /** Group names for the `groups` claim (scope "groups"): the IT console's roles. */
  groups?: string[];
}

/** The demo users (password for all: "demo"). eve's email is not verified: the service refuses her. */
export const DEV_USERS: Record<string, DevUser> = {
  alice: { name: 'Alice Smith', email: 'alice@example.org', email_verified: true, password: 'demo' },
  bob: { name: 'Bob Jones', email: 'bob@example.org', email_verified: true, password: 'demo' },
  eve: { name: 'Eve Unverified', email: 'eve@example.org', email_verified: false, password: 'demo' },
  ivy: {
    name: 'Ivy Admin',
    email: 'ivy@example.org',
    email_verified: true,
    password: 'demo',
    groups: ['sealroom-admins'],
  },
  hal: {
    name: 'Hal Helpdesk',
    email: 'hal@example.org',
    email_verified: true,
    password: 'demo',
    groups: ['sealroom-helpdesk'],
  },
};

export const DEV_CLIENT_ID = 'sealroom-web';
export const DEV_CONSOLE_CLIENT_ID = 'sealroom-console';

export interface DevOidcProviderOptions {
  host: string;
  port?: number;
  /** Where the provider may send codes: the web page's sign-in return URL(s). */
  redirectUris: string[];
  users?: Record<string, DevUser>;
  clientId?: string;
  /** Extra origins allowed to call the token endpoint (the redirect URIs' origins always are). */
  corsOrigins?: string[];
  /** ID token lifetime (default 600 s); tests use 1 s for a real expired token. */
  idTokenTtlSeconds?: number;
  /**
   * The IT console's redirect URIs (client `sealroom-console`); default: `/console/auth/callback`
   * on each origin of `redirectUris`.
   */
  consoleRedirectUris?: string[];
}

export interface DevOidcProvider {
  issuer: string;
  clientId: string;
  users: Record<string, DevUser>;
  /** The IT console's confidential client (the secret is new for every provider instance). */
  consoleClient: { id: string; secret: string; redirectUris: string[] };
  /** The notices oidc-provider printed (kept out of our logs). */
  warnings: string[];
  close(): Promise<void>;
}

/** Runs `fn` with oidc-provider's console notices captured instead of printed. */
async function capturingNotices<T>(warnings: string[], fn: () => Promise<T> | T): Promise<T> {
  const { warn, info } = console;
  const keep =
    (orig: (...a: unknown[]) => void) =>
    (...args: unknown[]) => {
      const text = args.map(String).join(' ');
      if (/oidc-provider (WARNING|NOTICE)/.test(text)) warnings.push(text.replace(/\x1b\[[0-9;]*m/g, ''));
      else orig.apply(console, args);
    };
  console.warn = keep(warn);
  console.info = keep(info);
  try {
    return await fn();
  } finally {
    console.warn = warn;
    console.info = info;
  }
}

const esc = (s: string) =>
  s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );

function loginPage(uid: string, error?: string): string {
  return `<!doctype html><html lang="en"><meta charset="utf-8"><title>Sign in — Sealroom dev IdP</title>
<body style="font-family:sans-serif;max-width:24em;margin:3em auto">
<h1>Sign in</h1><p>Sealroom development identity provider (demo users: alice, bob; IT console: ivy
(admin), hal (helpdesk); password: demo).</p>
${error ? `<p role="alert" style="color:#b00">${esc(error)}</p>` : ''}
<form method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
<label>User <input name="login" required autofocus></label><br>
<label>Password <input name="password" type="password" required></label><br>
<button type="submit">Sign in</button></form></body></html>`;
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let body = '';
  for await (const chunk of req) {
    body += chunk;
    if (body.length > 4096) throw new Error('form too large');
  }
  return new URLSearchParams(body);
}

export async function startDevOidcProvider(opts: DevOidcProviderOptions): Promise<DevOidcProvider> {
  const warnings: string[] = [];
  const users = opts.users ?? DEV_USERS;
  const clientId = opts.clientId ?? DEV_CLIENT_ID;
  const origins = new Set([...opts.redirectUris.map((u) => new URL(u).origin), ...(opts.corsOrigins ?? [])]);
  const consoleRedirectUris = opts.consoleRedirectUris ?? [
    ...new Set(opts.redirectUris.map((u) => `${new URL(u).origin}/console/auth/callback`)),
  ];
  const consoleSecret = randomBytes(32).toString('base64url');
  const { default: Provider } = await capturingNotices(warnings, () => import('oidc-provider'));

  // Listen first: the issuer URL carries the port.
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.writeHead(503).end();
  const server: Server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host, resolve);
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const issuer = `http://${host}:${port}`;

  const jwk = {
    ...generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' }),
    kid: randomBytes(8).toString('hex'),
    use: 'sig',
    alg: 'RS256',
  };
  const ttl = opts.idTokenTtlSeconds ?? 600;
  const provider = await capturingNotices(
    warnings,
    () =>
      new Provider(issuer, {
        clients: [
          {
            client_id: clientId,
            token_endpoint_auth_method: 'none',
            redirect_uris: opts.redirectUris,
            response_types: ['code'],
            grant_types: ['authorization_code'],
            application_type: 'web',
          },
          {
            // The console exchanges its code server-side, so it can keep a secret.
            client_id: DEV_CONSOLE_CLIENT_ID,
            client_secret: consoleSecret,
            token_endpoint_auth_method: 'client_secret_basic',
            redirect_uris: consoleRedirectUris,
            response_types: ['code'],
            grant_types: ['authorization_code'],
            application_type: 'web',
          },
        ],
        jwks: { keys: [jwk as never] },
        cookies: { keys: [randomBytes(32).toString('hex')] },
        pkce: { required: () => true },
        // name and email in the ID token itself: the service reads them from the verified token only.
        conformIdTokenClaims: false,
        claims: {
          openid: ['sub'],
          email: ['email', 'email_verified'],
          profile: ['name'],
          groups: ['groups'],
        },
        findAccount: async (_ctx: unknown, sub: string) => {
          const user = Object.hasOwn(users, sub) ? users[sub] : undefined;
          if (!user) return undefined;
          return {
            accountId: sub,
            claims: async () => ({
              sub,
              name: user.name,
              email: user.email,
              email_verified: user.email_verified,
              ...(user.groups ? { groups: user.groups } : {}),
            }),
          };
        },
        clientBasedCORS: (_ctx: unknown, origin: string) => origins.has(origin),
        interactions: {
          url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}`,
        },
        features: { devInteractions: { enabled: false } },
        ttl: {
          AccessToken: 600,
          AuthorizationCode: 60,
          IdToken: ttl,
          Interaction: 600,
          Session: 3600,
          Grant: 3600,
        },
        renderError: async (ctx: { type: string; body: string }, out: Record<string, string>) => {
          ctx.type = 'html';
          ctx.body = `<!doctype html><title>Sign-in error</title><p>${esc(out.error ?? 'error')}: ${esc(out.error_description ?? '')}</p>`;
        },
      }),
  );
  const callback = provider.callback();

  const interaction = async (req: IncomingMessage, res: ServerResponse, uid: string, action?: string) => {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) throw new Error('interaction mismatch');
    if (details.prompt.name === 'consent') {
      // First-party app: grant what it asked for (openid email profile) without a page.
      const grant = details.grantId
        ? await provider.Grant.find(details.grantId)
        : new provider.Grant({
            accountId: details.session?.accountId,
            clientId: String(details.params.client_id),
          });
      if (!grant) throw new Error('grant not found');
      const missing = details.prompt.details as { missingOIDCScope?: string[]; missingOIDCClaims?: string[] };
      if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
      if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
      const grantId = await grant.save();
      await provider.interactionFinished(
        req,
        res,
        { consent: { grantId } },
        { mergeWithLastSubmission: true },
      );
      return;
    }
    if (details.prompt.name !== 'login') throw new Error(`unsupported prompt ${details.prompt.name}`);
    if (req.method === 'GET' && !action) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(loginPage(uid));
      return;
    }
    if (req.method !== 'POST' || action !== 'login') return void res.writeHead(405).end();
    const form = await readForm(req);
    const login = form.get('login') ?? '';
    const user = Object.hasOwn(users, login) ? users[login] : undefined;
    const given = createHash('sha256')
      .update(form.get('password') ?? '')
      .digest();
    const expected = createHash('sha256')
      .update(user?.password ?? randomBytes(16))
      .digest();
    if (!user || !given.equals(expected)) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(loginPage(uid, 'Unknown user or wrong password.'));
      return;
    }
    await provider.interactionFinished(
      req,
      res,
      { login: { accountId: login } },
      { mergeWithLastSubmission: false },
    );
  };

  handler = (req, res) => {
    const m = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login))?$/.exec((req.url ?? '').split('?')[0] ?? '');
    if (!m?.[1]) return callback(req, res);
    interaction(req, res, m[1], m[2]).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`sign-in failed: ${err.message}`);
    });
  };

  return {
    issuer,
    clientId,
    users,
    consoleClient: { id: DEV_CONSOLE_CLIENT_ID, secret: consoleSecret, redirectUris: consoleRedirectUris },
    warnings,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface HeadlessSignIn {
  issuer: string;
  clientId: string;
  redirectUri: string;
  /** A login of the provider (e.g. 'alice'). */
  user: string;
  /** Default 'demo'. */
  password?: string;
  /** The OIDC nonce (for Sealroom: personKeyNonce(publicKeyRaw)). */
  nonce: string;
}

type BrowserRequest = (url: string, init?: RequestInit) => Promise<Response>;

/**
 * fetch as a browser on one loopback host: redirects not followed, cookies kept in `jar` (one jar is
 * enough), an expired or emptied cookie deleted (sign-out); every URL asked for is added to `hops`.
 */
function browserFetch(jar: Map<string, string>, hops: string[] = []): BrowserRequest {
  return async (url, init = {}) => {
    hops.push(url);
    const cookie = [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const res = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers as Record<string, string>), ...(cookie ? { cookie } : {}) },
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair?.indexOf('=') ?? -1;
      if (!pair || eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      if (value === '' || /;\s*max-age=0/i.test(c) || /expires=Thu, 01 Jan 1970/i.test(c)) jar.delete(name);
      else jar.set(name, value);
    }
    return res;
  };
}

/** Submits this provider's login form (fields `login` and `password`) to `url`. */
function postLogin(
  request: BrowserRequest,
  url: string,
  who: { user: string; password?: string },
): Promise<Response> {
  return request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ login: who.user, password: who.password ?? 'demo' }).toString(),
  });
}

/**
 * Signs in over HTTP as a browser would — authorization request with PKCE S256, the login form,
 * the redirect back with the code, the token request — and returns the ID token. Works against any
 * provider whose login form has `login` and `password` fields (this one).
 */
export async function signInHeadless(o: HeadlessSignIn): Promise<string> {
  const discovery = (await (await fetch(new URL('/.well-known/openid-configuration', o.issuer))).json()) as {
    authorization_endpoint: string;
    token_endpoint: string;
  };
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const state = randomBytes(16).toString('base64url');
  const auth = new URL(discovery.authorization_endpoint);
  for (const [k, v] of Object.entries({
    client_id: o.clientId,
    redirect_uri: o.redirectUri,
    response_type: 'code',
    scope: 'openid email profile',
    nonce: o.nonce,
    state,
    code_challenge: challenge,
    code_challenge_method: 'S256',
  }))
    auth.searchParams.set(k, v);

  const request = browserFetch(new Map());

  let url = auth.toString();
  let res = await request(url);
  for (let hops = 0; hops < 20; hops++) {
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      url = new URL(location, url).toString();
      if (url.startsWith(o.redirectUri)) {
        const back = new URL(url);
        if (back.searchParams.get('error'))
          throw new Error(
            `sign-in refused: ${back.searchParams.get('error')} ${back.searchParams.get('error_description') ?? ''}`,
          );
        if (back.searchParams.get('state') !== state) throw new Error('sign-in: state mismatch');
        const code = back.searchParams.get('code');
        if (!code) throw new Error('sign-in: no code in the redirect');
        const token = await fetch(discovery.token_endpoint, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({
            grant_type: 'authorization_code',
            code,
            redirect_uri: o.redirectUri,
            client_id: o.clientId,
            code_verifier: verifier,
          }),
        });
        const body = (await token.json()) as {
          id_token?: string;
          error?: string;
          error_description?: string;
        };
        if (!token.ok || !body.id_token)
          throw new Error(
            `token request failed: ${body.error ?? token.status} ${body.error_description ?? ''}`,
          );
        return body.id_token;
      }
      res = await request(url);
      continue;
    }
    const html = await res.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    if (res.status !== 200 || !action || !/name="login"/.test(html))
      throw new Error(`sign-in: unexpected page (${res.status}): ${html.slice(0, 200)}`);
    if (/role="alert"/.test(html)) throw new Error('sign-in refused: unknown user or wrong password');
    url = new URL(action.replace(/&amp;/g, '&'), url).toString();
    res = await postLogin(request, url, o);
  }
  throw new Error('sign-in: too many redirects');
}

export interface RedirectSignIn {
  /** Where a browser would start, e.g. `<service>/console/auth/login?return=/console/`. */
  startUrl: string;
  /** A login of the provider (e.g. 'ivy'). */
  user: string;
  /** Default 'demo'. */
  password?: string;
  /** Cookies to send from the start (name → value), e.g. a forged session; updated in place. */
  jar?: Map<string, string>;
  /** Stop before requesting a URL for which this is true (e.g. the service's callback). */
  stopAt?: (url: string) => boolean;
}

export interface RedirectSignInResult {
  /** The URL of the last response (no further redirect). */
  url: string;
  status: number;
  body: string;
  /** Every URL the browser was sent to, in order (the IdP's and the service's). */
  hops: string[];
  /** All cookies set on the way (name → value; one loopback host, so one jar is enough). */
  jar: Map<string, string>;
}

/**
 * Follows a server-driven sign-in (the IT console's: service → IdP login form → service callback →
 * the page) over HTTP as a browser would: redirects, the login form, cookies. Stops at the first
 * response that is neither a redirect nor this provider's login form, or before a `stopAt` URL
 * (then `url` is that URL, not yet requested).
 */
export async function followSignInRedirects(o: RedirectSignIn): Promise<RedirectSignInResult> {
  const jar = o.jar ?? new Map<string, string>();
  const hops: string[] = [];
  const request = browserFetch(jar, hops);
  let url = o.startUrl;
  let res = await request(url);
  let posted = false;
  for (let n = 0; n < 20; n++) {
    const location = res.headers.get('location');
    if (res.status >= 300 && res.status < 400 && location) {
      url = new URL(location, url).toString();
      if (o.stopAt?.(url)) return { url, status: res.status, body: '', hops, jar };
      res = await request(url);
      continue;
    }
    const body = await res.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(body)?.[1];
    const loginForm = res.status === 200 && action && /name="login"/.test(body);
    if (!loginForm) return { url, status: res.status, body, hops, jar };
    if (posted && /role="alert"/.test(body))
      throw new Error('sign-in refused: unknown user or wrong password');
    posted = true;
    url = new URL(action.replace(/&amp;/g, '&'), url).toString();
    res = await postLogin(request, url, o);
  }
  throw new Error('sign-in: too many redirects');
}
