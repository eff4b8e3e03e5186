// Who is making an IT request: an admin token (API, CLI) or a signed-in console user (session
// cookie, provisioning/console/). Both end up with a scope ('admin' or 'read'); the audit log names
// the token, or `console:<email>` for a console user.
import type { FastifyRequest } from 'fastify';
import type { TokenRecord } from '../store/store.js';

export type ConsoleRole = 'admin' | 'helpdesk';

/** A console user whose session the service verified (provisioning/console/session.ts). */
export interface ConsoleUser {
  /** The IdP's `sub`. */
  subject: string;
  email: string;
  name: string;
  role: ConsoleRole;
  /** The session's id hash (for sign-out and the audit trail). */
  sessionId: string;
  /** The anti-CSRF token a mutating request must echo in `x-sealroom-csrf`. */
  csrf: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    consoleUser?: ConsoleUser;
  }
}

/** Token scope a console role carries: helpdesk is read-only. */
export const scopeOfRole = (role: ConsoleRole): 'admin' | 'read' => (role === 'admin' ? 'admin' : 'read');

export function actorOf(req: FastifyRequest): string {
  if (req.consoleUser) return `console:${req.consoleUser.email}`;
  return (req.adminToken as TokenRecord | undefined)?.name ?? 'unknown';
}

export function tokenIdOf(req: FastifyRequest): string | null {
  return req.adminToken?.id ?? null;
}
