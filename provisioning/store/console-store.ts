// The IT console's sign-in state (migration 4): pending logins (console_logins, keyed by the hash of
// the OAuth `state`, single use) and sessions (console_sessions, keyed by the SHA-256 of the cookie
// value: a database leak gives no usable cookie). Plain functions over Db, for SQLite and PostgreSQL.
import type { ConsoleRole } from '../service/principal.js';
import type { Db } from './db.js';
import { insertAudit } from './store.js';

export interface PendingLogin {
  stateHash: string;
  codeVerifier: string;
  nonce: string;
  returnTo: string;
  expiresAt: string;
}

export interface ConsoleSessionRecord {
  idHash: string;
  subject: string;
  email: string;
  name: string;
  role: ConsoleRole;
  csrf: string;
  createdAt: string;
  expiresAt: string;
  revokedAt: string | null;
}

export async function insertLogin(db: Db, login: PendingLogin): Promise<void> {
  await db.run(
    'INSERT INTO console_logins (state_hash, code_verifier, nonce, return_to, expires_at) VALUES (?, ?, ?, ?, ?)',
    [login.stateHash, login.codeVerifier, login.nonce, login.returnTo, login.expiresAt],
  );
}

/**
 * Takes the pending login with this state hash: deleted in the same transaction, so a state works
 * once even when two callbacks race (only the one whose DELETE removed the row gets it). Expired →
 * undefined (and gone).
 */
export async function takeLogin(db: Db, stateHash: string, now: string): Promise<PendingLogin | undefined> {
  return db.transaction(async (tx) => {
    const row = await tx.get<{
      state_hash: string;
      code_verifier: string;
      nonce: string;
      return_to: string;
      expires_at: string;
    }>('SELECT * FROM console_logins WHERE state_hash = ?', [stateHash]);
    if (!row) return undefined;
    if ((await tx.run('DELETE FROM console_logins WHERE state_hash = ?', [stateHash])) !== 1)
      return undefined;
    if (row.expires_at <= now) return undefined;
    return {
      stateHash: row.state_hash,
      codeVerifier: row.code_verifier,
      nonce: row.nonce,
      returnTo: row.return_to,
      expiresAt: row.expires_at,
    };
  });
}

/** Stores a new session (and audits the sign-in); `replaces` is revoked in the same transaction. */
export async function insertSession(
  db: Db,
  s: Omit<ConsoleSessionRecord, 'revokedAt'>,
  replaces?: string,
): Promise<void> {
  await db.transaction(async (tx) => {
    if (replaces)
      await tx.run('UPDATE console_sessions SET revoked_at = ? WHERE id_hash = ? AND revoked_at IS NULL', [
        s.createdAt,
        replaces,
      ]);
    await tx.run(
      'INSERT INTO console_sessions (id_hash, subject, email, name, role, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      [s.idHash, s.subject, s.email, s.name, s.role, s.csrf, s.createdAt, s.expiresAt],
    );
    await insertAudit(tx, s.createdAt, `console:${s.email}`, 'console.signin', null, {
      role: s.role,
      subject: s.subject,
      expiresAt: s.expiresAt,
    });
  });
}

export async function getSession(db: Db, idHash: string): Promise<ConsoleSessionRecord | undefined> {
  const r = await db.get<Record<string, string | null>>('SELECT * FROM console_sessions WHERE id_hash = ?', [
    idHash,
  ]);
  if (!r) return undefined;
  return {
    idHash: String(r.id_hash),
    subject: String(r.subject),
    email: String(r.email),
    name: String(r.name),
    role: r.role === 'admin' ? 'admin' : 'helpdesk',
    csrf: String(r.csrf),
    createdAt: String(r.created_at),
    expiresAt: String(r.expires_at),
    revokedAt: r.revoked_at ?? null,
  };
}

/** Revokes a session (sign-out); false when it was unknown or revoked already. */
export async function revokeSession(db: Db, idHash: string, now: string, actor: string): Promise<boolean> {
  return db.transaction(async (tx) => {
    const n = await tx.run(
      'UPDATE console_sessions SET revoked_at = ? WHERE id_hash = ? AND revoked_at IS NULL',
      [now, idHash],
    );
    if (n === 1) await insertAudit(tx, now, actor, 'console.signout', null, {});
    return n === 1;
  });
}

/** Deletes expired sessions (revoked or not) and expired pending logins; returns how many. */
export async function purgeConsole(db: Db, now: string): Promise<{ sessions: number; logins: number }> {
  const sessions = await db.run('DELETE FROM console_sessions WHERE expires_at <= ?', [now]);
  const logins = await db.run('DELETE FROM console_logins WHERE expires_at <= ?', [now]);
  return { sessions, logins };
}
