// Who is on the other end of a relay connection: an X.509 device certificate (a room) or person
// certificate (a signed-in person, src/pki/person.ts) from a trusted org CA, and an Ed25519 signature
// over the relay's fresh challenge with its key. The kind comes from the certificate's extended key
// usage, and each kind's verifier refuses the other, so a person can never pass as a room.
import { type KeyObject, randomBytes, verify } from 'node:crypto';
import { authSignedBytes } from '../core/protocol/relay.js';
import { parseCertificate } from '../pki/ca.js';
import { PkiError } from '../pki/errors.js';
import { type VerifiedPerson, verifyPersonCertificate } from '../pki/person.js';
import {
  hasPersonEku,
  type VerifiedDevice,
  type VerifyOptions,
  verifyDeviceCertificate,
} from '../pki/verify.js';

export type { VerifiedPerson };

/** A verified room (device certificate) or person (person certificate). */
export type VerifiedParticipant = ({ kind: 'room' } & VerifiedDevice) | VerifiedPerson;

export interface TrustOptions {
  /** PEM of each trusted org CA. */
  caPems: string[];
  /**
   * Lowercase hex serial → true when revoked. The relay prefers `startRelay({ revocation })` (a
   * RevocationSource, whose 'change' ends running sessions); this one is still honoured at every
   * authentication and re-checked on every message and every session check.
   */
  isRevoked?: (serial: string) => boolean;
  now?: () => Date;
}

export function newChallenge(): string {
  return randomBytes(32).toString('base64');
}

/** Verifies the certificate against each trusted CA in turn; throws the most telling PkiError. */
export async function verifyDeviceCertificatePem(
  certPem: string,
  trust: TrustOptions,
): Promise<VerifiedDevice> {
  return tryEachCa(trust, (caPem, opts) => verifyDeviceCertificate(certPem, caPem, opts));
}

/** A room or a person: decided by the person EKU, then verified by that kind's verifier only. */
export async function verifyParticipantCertificatePem(
  certPem: string,
  trust: TrustOptions,
): Promise<VerifiedParticipant> {
  if (hasPersonEku(parseCertificate(certPem))) {
    return tryEachCa(trust, (caPem, opts) => verifyPersonCertificate(certPem, caPem, opts));
  }
  const device = await verifyDeviceCertificatePem(certPem, trust);
  return { kind: 'room', ...device };
}

async function tryEachCa<T>(
  trust: TrustOptions,
  verifyWith: (caPem: string, opts: VerifyOptions) => Promise<T>,
): Promise<T> {
  let lastError: unknown = new PkiError('bad-chain', 'no trusted org CA configured');
  for (const caPem of trust.caPems) {
    try {
      return await verifyWith(caPem, {
        ...(trust.now ? { now: trust.now() } : {}),
        ...(trust.isRevoked ? { isRevoked: trust.isRevoked } : {}),
      });
    } catch (err) {
      lastError = err;
      // A chain error means "try the next CA"; anything else (revoked, expired) is final.
      if (!(err instanceof PkiError) || err.code !== 'bad-chain') throw err;
    }
  }
  throw lastError;
}

/** Checks the challenge signature with the certificate's Ed25519 key. */
export function verifyChallengeSignature(
  device: { publicKey: KeyObject },
  nonce: string,
  signatureBase64: string,
): boolean {
  try {
    return verify(null, authSignedBytes(nonce), device.publicKey, Buffer.from(signatureBase64, 'base64'));
  } catch {
    return false;
  }
}
