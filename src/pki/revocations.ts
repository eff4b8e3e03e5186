// The signed revocation list the provisioning service publishes at GET /v1/revocations and the
// relay polls. It is signed with the CA key itself, so whoever trusts the CA certificate can check
// it without another secret, and a man in the middle can neither drop nor add entries.
//
// Signed bytes: UTF-8 of `sealroom-revocations-v1\n<issuedAt>\n<serial>,<serial>,...` with serials
// lowercase hex, sorted. `signature` is base64 Ed25519.
import { createPublicKey, verify as edVerify } from 'node:crypto';
import { type CertificateAuthority, parseCertificate, signWithCa } from './ca.js';
import { PkiError } from './errors.js';

export interface RevokedEntry {
  serial: string;
  deviceId: string;
  revokedAt: string;
}

export interface RevocationList {
  issuedAt: string;
  revoked: RevokedEntry[];
  signature: string;
}

function signedBytes(issuedAt: string, serials: string[]): Buffer {
  return Buffer.from(`sealroom-revocations-v1\n${issuedAt}\n${[...serials].sort().join(',')}`, 'utf8');
}

export async function signRevocationList(
  ca: CertificateAuthority,
  revoked: RevokedEntry[],
  issuedAt = new Date().toISOString(),
): Promise<RevocationList> {
  const sig = await signWithCa(
    ca,
    signedBytes(
      issuedAt,
      revoked.map((r) => r.serial),
    ),
  );
  return { issuedAt, revoked, signature: Buffer.from(sig).toString('base64') };
}

/** Checks the list's signature with the CA certificate; returns the set of revoked serials. */
export function verifyRevocationList(list: RevocationList, caCertPem: string): Set<string> {
  const caCert = parseCertificate(caCertPem);
  const key = createPublicKey({ key: Buffer.from(caCert.publicKey.rawData), format: 'der', type: 'spki' });
  const serials = list.revoked.map((r) => r.serial.toLowerCase());
  const ok = edVerify(null, signedBytes(list.issuedAt, serials), key, Buffer.from(list.signature, 'base64'));
  if (!ok) throw new PkiError('bad-signature', 'the revocation list is not signed by the CA');
  return new Set(serials);
}
