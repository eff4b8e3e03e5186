// The web participant's page at /join/ (static files built by scripts/build-web.mjs into dist/web/).
// The page holds the person's key and runs the E2EE protocol, so its code must come from this trusted
// origin and nowhere else: a strict Content-Security-Policy (scripts and workers only from here, no
// inline script, no eval), connections only to this origin, the identity provider and the
// configured relays; index.html is never cached, so a fixed page reaches everyone on the next load.
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { findPackageRoot } from '../../device/kiosk/ui-dir.js';
import { serveBuiltPage } from './static-page.js';

export interface WebOptions {
  /** The built page; default <package>/dist/web (or $SEALROOM_WEB_DIR). */
  dir?: string;
  /** Relays the page may connect to (ws:// or wss:// URLs): CSP connect-src and the page's allow-list. */
  relayUrls?: string[];
}

/** The parts of the service options this plugin reads (ServiceOptions has both). */
export interface JoinServiceOptions {
  web?: WebOptions;
  people?: { issuer: string; relayUrl?: string };
}

export function defaultWebDir(): string {
  return process.env.SEALROOM_WEB_DIR ?? join(findPackageRoot(), 'dist', 'web');
}

/** scheme://host[:port] of a URL, for a CSP source expression (the path would narrow it further). */
function origin(url: string): string | undefined {
  try {
    const u = new URL(url);
    if (!['http:', 'https:', 'ws:', 'wss:'].includes(u.protocol)) return undefined;
    return `${u.protocol}//${u.host}`;
  } catch {
    return undefined;
  }
}

export function joinCsp(opts: { issuer?: string; relayUrls: string[] }): string {
  const connect = new Set(["'self'"]);
  const idp = opts.issuer ? origin(opts.issuer) : undefined;
  if (idp) connect.add(idp);
  for (const r of opts.relayUrls) {
    const o = origin(r);
    if (o) connect.add(o);
  }
  return [
    "default-src 'none'",
    "script-src 'self'",
    "worker-src 'self'",
    `connect-src ${[...connect].join(' ')}`,
    "style-src 'self'",
    "img-src 'self' data:",
    "media-src 'self' blob: mediastream:",
    "font-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Relay URLs as the page compares them (URL-normalised, valid ws:/wss: only). */
export function relayAllowList(options: JoinServiceOptions): string[] {
  const all = [
    ...(options.web?.relayUrls ?? []),
    ...(options.people?.relayUrl ? [options.people.relayUrl] : []),
  ];
  const out = new Set<string>();
  for (const r of all) {
    try {
      const u = new URL(r);
      if (u.protocol === 'ws:' || u.protocol === 'wss:') out.add(u.toString());
    } catch {
      // ignored: not a URL
    }
  }
  return [...out];
}

/**
 * Serves /join/ when people can sign in (options.people set). Registered by buildService
 * (provisioning/service/app.ts).
 */
export async function registerJoinRoutes(app: FastifyInstance, options: JoinServiceOptions): Promise<void> {
  if (!options.people) return;
  const dir = options.web?.dir ?? defaultWebDir();
  const relayUrls = relayAllowList(options);
  const csp = joinCsp({ issuer: options.people.issuer, relayUrls });
  const headers = {
    'content-security-policy': csp,
    'x-content-type-options': 'nosniff',
    // The page's address carries the sign-in code for a moment: never send it anywhere as a referrer.
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'permissions-policy': 'camera=(self), microphone=(self), display-capture=(self)',
  };

  // The page asks which relays this organisation uses, to refuse a link to another one clearly.
  app.get('/join/relays.json', { schema: { hide: true } }, async (_req, reply) =>
    reply.headers({ ...headers, 'cache-control': 'no-store' }).send({ relayUrls }),
  );

  if (await serveBuiltPage(app, { dir, prefix: '/join/', headers })) return;
  app.log.warn({ dir }, 'web participant page not built; run `node scripts/build-web.mjs`');
  app.get('/join/*', { schema: { hide: true } }, async (_req, reply) =>
    reply
      .code(503)
      .type('text/plain; charset=utf-8')
      .send('The web participant page is not built. Run: node scripts/build-web.mjs'),
  );
}
