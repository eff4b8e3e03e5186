// Activation codes: what IT types after reading the room screen. 8 characters from an alphabet
// without look-alikes (no 0/O, 1/I/L, 2/Z, 5/S, 8/B, U/V), shown as XXXX-XXXX. 23^8 ≈ 7.8e10
// codes, single-use, expiring, claimable only with an admin token and rate-limited: guessing is
// hopeless. Stored only as a SHA-256 hash. Pure.
import { createHash, randomInt } from 'node:crypto';

export const CODE_ALPHABET = 'ACDEFGHJKMNPQRTWXY34679';
const CODE_LENGTH = 8;

export function generateActivationCode(): string {
  let code = '';
  for (let i = 0; i < CODE_LENGTH; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
  return `${code.slice(0, 4)}-${code.slice(4)}`;
}

/** Uppercases, drops spaces/dashes; undefined when it cannot be a code (wrong length or letters). */
export function normalizeActivationCode(input: string): string | undefined {
  const s = input.toUpperCase().replace(/[\s-]/g, '');
  if (s.length !== CODE_LENGTH) return undefined;
  for (const c of s) if (!CODE_ALPHABET.includes(c)) return undefined;
  return s;
}

export function hashActivationCode(normalized: string): string {
  return createHash('sha256').update(`sealroom-activation-v1:${normalized}`).digest('hex');
}
