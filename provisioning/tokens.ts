// Admin API tokens: "srt_" + 32 random bytes (base64url). Only SHA-256 hashes are stored, so a
// leaked database does not leak working tokens. Scopes: 'read' (list, show, audit) and 'admin'
// (everything). Every token expires (default DEFAULT_TOKEN_DAYS, at most MAX_TOKEN_DAYS) and can be
// revoked; a token never mints one with a wider scope or a later expiry than its own. Pure.
import { createHash, randomBytes } from 'node:crypto';

export function generateAdminToken(): string {
  return `srt_${randomBytes(32).toString('base64url')}`;
}

export function hashAdminToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Lifetime of a token when none is asked for. */
export const DEFAULT_TOKEN_DAYS = 90;
/** The longest lifetime a token can be given. */
export const MAX_TOKEN_DAYS = 365;

const RANK: Record<'read' | 'admin', number> = { read: 0, admin: 1 };

/**
 * Why `parent` may not mint a token with this scope and expiry, or undefined when it may: never a
 * wider scope, never a later expiry than its own, never more than MAX_TOKEN_DAYS from now.
 */
export function mintRefusal(
  parent: { scope: 'read' | 'admin'; expiresAt: string },
  child: { scope: 'read' | 'admin'; expiresAt: Date },
  now: Date,
): string | undefined {
  if (RANK[child.scope] > RANK[parent.scope])
    return `a ${parent.scope} token cannot create a ${child.scope} token`;
  if (child.expiresAt.getTime() <= now.getTime()) return 'the expiry must be in the future';
  if (child.expiresAt.getTime() > now.getTime() + MAX_TOKEN_DAYS * 86_400_000)
    return `a token lives at most ${MAX_TOKEN_DAYS} days`;
  if (child.expiresAt.getTime() > Date.parse(parent.expiresAt))
    return `a token cannot outlive the token that creates it (${parent.expiresAt})`;
  return undefined;
}
