// Who is on the other end of a relay connection: an X.509 device certificate from a trusted org CA
// (verified by src/pki), and an Ed25519 signature over the relay's fresh challenge with its key.
import { randomBytes, verify } from 'node:crypto';
import { authSignedBytes } from '../core/protocol/relay.js';
import { PkiError } from '../pki/errors.js';
import { type VerifiedDevice, verifyDeviceCertificate } from '../pki/verify.js';

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
  let lastError: unknown = new PkiError('bad-chain', 'no trusted org CA configured');
  for (const caPem of trust.caPems) {
    try {
      return await verifyDeviceCertificate(certPem, caPem, {
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
  device: VerifiedDevice,
  nonce: string,
  signatureBase64: string,
): boolean {
  try {
    return verify(null, authSignedBytes(nonce), device.publicKey, Buffer.from(signatureBase64, 'base64'));
  } catch {
    return false;
  }
}
