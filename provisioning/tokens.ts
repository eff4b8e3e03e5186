// Admin API tokens: "srt_" + 32 random bytes (base64url). Only SHA-256 hashes are stored, so a
// leaked database does not leak working tokens. Scopes: 'read' (list, show, audit) and 'admin'
// (everything). Pure.
import { createHash, randomBytes } from 'node:crypto';

export function generateAdminToken(): string {
  return `srt_${randomBytes(32).toString('base64url')}`;
}

export function hashAdminToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
