// The security code people read off the wall: 40 decimal digits in 8 groups of 5, derived from the
// leader's identity key, the meeting id and the meeting's creation nonce (so it changes when the
// leader changes, and differs between two meetings of the same leader).
//
// Digits come from a SHA-256 stream, block_i = SHA-256(encode(label, meetingId, leaderIdentityKey,
// creationNonce, i)), i = 0, 1, …, read byte by byte: a byte b < 250 yields the digit b mod 10, a
// byte ≥ 250 is skipped. 250 is the largest multiple of 10 ≤ 256, so every accepted byte is uniform
// over 0..249 and every digit uniform over 0..9 (plain `b mod 10` would favour 0–5 by 1/256 each).
// 40 digits carry 132.9 bits; two blocks almost always suffice (a third: P ≈ 3e-24).
import { backend } from './crypto/backend.js';
import { encodeCanonical } from './canonical.js';
import { LABELS } from './labels.js';

export const SECURITY_CODE_DIGITS = 40;
export const SECURITY_CODE_GROUP = 5;

export interface SecurityCodeInput {
  meetingId: string;
  leaderIdentityKey: Uint8Array;
  creationNonce: Uint8Array;
}

/** The 40 digits as one string, e.g. "0123456789…". */
export function securityCodeDigits(input: SecurityCodeInput): string {
  let digits = '';
  for (let block = 0; digits.length < SECURITY_CODE_DIGITS; block++) {
    const bytes = backend.sha256(
      encodeCanonical(
        LABELS.securityCode,
        input.meetingId,
        input.leaderIdentityKey,
        input.creationNonce,
        block,
      ),
    );
    for (const b of bytes) {
      if (b < 250 && digits.length < SECURITY_CODE_DIGITS) digits += String(b % 10);
    }
  }
  return digits;
}

/** The code as shown: 8 groups of 5 digits separated by single spaces. */
export function securityCode(input: SecurityCodeInput): string {
  return formatSecurityCode(securityCodeDigits(input));
}

export function formatSecurityCode(digits: string): string {
  return (digits.match(/\d{5}/g) ?? []).join(' ');
}
