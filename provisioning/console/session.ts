// The console session behind a request's cookie. The cookie holds 32 random bytes (base64url); the
// database holds only their SHA-256 (console_sessions.id_hash), so a leaked table signs nobody in.
// Every request reads the row (one primary-key lookup): a sign-out or a revocation takes effect on
// the next request, on every instance of the service.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import type { ResolvedOptions } from '../service/app.js';
import type { ConsoleUser } from '../service/principal.js';
import { getSession } from '../store/console-store.js';
import { sessionCookieName } from './options.js';

/** A cookie value the service could have made: 32 bytes base64url (43 characters). */
const SESSION_VALUE = /^[A-Za-z0-9_-]{43}$/;

export const hashSecret = (value: string) => createHash('sha256').update(value).digest('hex');
export const randomSecret = () => randomBytes(32).toString('base64url');

/** The named cookie of a request (first occurrence), without a cookie library. */
export function cookieOf(req: FastifyRequest, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The request's x-sealroom-csrf equals the session's token (compared in constant time). */
export function csrfMatches(req: FastifyRequest, user: ConsoleUser): boolean {
  const given = req.headers['x-sealroom-csrf'];
  if (typeof given !== 'string') return false;
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(given), digest(user.csrf));
}

export const secureCookies = (opts: ResolvedOptions) => opts.publicUrl.startsWith('https:');

export interface ConsoleSessionView {
  user: ConsoleUser;
  expiresAt: string;
}

// One lookup per request even when both the auth hook and the route ask.
const memo = new WeakMap<FastifyRequest, Promise<ConsoleSessionView | undefined>>();

/** The valid (known, unexpired, unrevoked) session of this request with its expiry, if any. */
export function consoleSessionFor(
  req: FastifyRequest,
  opts: ResolvedOptions,
): Promise<ConsoleSessionView | undefined> {
  let p = memo.get(req);
  if (!p) {
    p = lookup(req, opts);
    memo.set(req, p);
  }
  return p;
}

async function lookup(req: FastifyRequest, opts: ResolvedOptions): Promise<ConsoleSessionView | undefined> {
  if (!opts.console) return undefined;
  const value = cookieOf(req, sessionCookieName(secureCookies(opts)));
  if (!value || !SESSION_VALUE.test(value)) return undefined;
  const s = await getSession(opts.store.db, hashSecret(value));
  if (!s || s.revokedAt) return undefined;
  if (Date.parse(s.expiresAt) <= opts.now().getTime()) return undefined;
  return {
    user: {
      subject: s.subject,
      email: s.email,
      name: s.name,
      role: s.role,
      sessionId: s.idHash,
      csrf: s.csrf,
    },
    expiresAt: s.expiresAt,
  };
}

/** The signed-in console user of this request (valid, unexpired, unrevoked session), if any. */
export async function consoleUserFor(
  req: FastifyRequest,
  opts: ResolvedOptions,
): Promise<ConsoleUser | undefined> {
  return (await consoleSessionFor(req, opts))?.user;
}
