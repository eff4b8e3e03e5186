// The kiosk token: what lets the room screen's page, and nothing else on the box, open the wall
// connection (decrypted video over loopback). The daemon makes a fresh one at every start, keeps it
// in memory for the control API and writes it to a file only the kiosk user can read; the kiosk
// launcher hands it to the page in the URL fragment (never sent to a server, never logged) through
// a start page in its own state directory (a command-line URL would show in /proc/<pid>/cmdline to
// every local user). The page sends it as `Authorization: Bearer <token>`.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod } from 'node:fs/promises';
import { readTextIfExists, writeFileAtomic } from '../../src/util/atomic-file.js';

/** 32 random bytes, base64url (43 characters). */
export const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

export function createKioskToken(): string {
  return randomBytes(32).toString('base64url');
}

/**
 * Writes the token atomically. `mode` is applied after the rename as well, because the process
 * umask (0077 under systemd) narrows the mode given to open(): the deployed unit asks for 0640 so
 * the kiosk user (group member) can read it.
 */
export async function writeKioskToken(path: string, token: string, mode = 0o600): Promise<void> {
  await writeFileAtomic(path, `${token}\n`, mode);
  await chmod(path, mode);
}

/** The token in a file, or undefined when the file is missing or does not hold a well-formed token. */
export async function readKioskToken(path: string): Promise<string | undefined> {
  const text = (await readTextIfExists(path))?.trim();
  return text !== undefined && TOKEN_PATTERN.test(text) ? text : undefined;
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer[ ]+([^\s]+)[ ]*$/i.exec(header);
  return m?.[1];
}

/**
 * Constant-time comparison of a presented token with the expected one. Both are hashed first, so
 * neither the length nor the position of the first differing byte shows in the timing.
 */
export function tokenMatches(presented: string | undefined, expected: string): boolean {
  if (presented === undefined) return false;
  const a = createHash('sha256').update(presented, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** The room-screen URL with the token in its fragment (`#wall=<token>`). */
export function wallUrl(url: string, token: string | undefined): string {
  const u = new URL(url);
  u.hash = token ? `wall=${token}` : '';
  return u.toString();
}

function htmlAttribute(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/**
 * A local page that sends Chromium on to the room screen with the token in the fragment. Chromium
 * opens this file (its path is all the command line shows); no script, no referrer.
 */
export function kioskStartPage(url: string, token: string | undefined): string {
  const target = htmlAttribute(wallUrl(url, token));
  return [
    '<!doctype html>',
    '<html><head><meta charset="utf-8">',
    '<meta name="referrer" content="no-referrer">',
    `<meta http-equiv="refresh" content="0; url=${target}">`,
    '<title>Sealroom</title>',
    '<style>html{background:#0b0f14}</style>',
    '</head><body></body></html>',
    '',
  ].join('\n');
}
