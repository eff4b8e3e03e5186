// A signed org-CA rollover: the only way a device replaces the org CA it pinned at first enrollment
// (<stateDir>/ca.pem). IT signs the new CA certificate with the OLD CA key and delivers the document
// in the device's provisioning config under the key `caRollover` (like `partnerCas`); the device
// verifies it with the CA it holds and only then pins the new one. A CA that arrives any other way
// (a certificate reply carrying a different caCertPem, a replaced service) is refused.
//
// Signed bytes: UTF-8 of `sealroom-ca-rollover-v1\n<issuedAt>\n<sha256 hex of the old CA DER>\n<sha256 hex of the new CA DER>`;
// `signature` is base64 Ed25519 by the old org CA key. Binding the old CA's digest means a document
// can only move a device off the CA it was made for (no replay after a later rollover).
import { createHash, createPublicKey, verify as edVerify, X509Certificate } from 'node:crypto';
import { type CertificateAuthority, parseCertificate, signWithCa } from './ca.js';
import { PkiError } from './errors.js';

export interface CaRollover {
  version: 1;
  issuedAt: string;
  /** The new org CA certificate (PEM). */
  newCaPem: string;
  /** base64 Ed25519 signature by the old org CA key. */
  signature: string;
}

function derDigest(pem: string): string {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    throw new PkiError('malformed', 'not a PEM X.509 certificate');
  }
  return createHash('sha256').update(cert.raw).digest('hex');
}

function signedBytes(issuedAt: string, oldCaPem: string, newCaPem: string): Buffer {
  return Buffer.from(
    `sealroom-ca-rollover-v1\n${issuedAt}\n${derDigest(oldCaPem)}\n${derDigest(newCaPem)}`,
    'utf8',
  );
}

/** Same CA certificate (by DER), whatever the PEM line breaks. */
export function sameCertificate(a: string, b: string): boolean {
  try {
    return new X509Certificate(a).raw.equals(new X509Certificate(b).raw);
  } catch {
    return false;
  }
}

export async function signCaRollover(
  oldCa: CertificateAuthority,
  newCaCertPem: string,
  issuedAt = new Date().toISOString(),
): Promise<CaRollover> {
  checkNewCa(newCaCertPem);
  const sig = await signWithCa(oldCa, signedBytes(issuedAt, oldCa.certPem, newCaCertPem));
  return { version: 1, issuedAt, newCaPem: newCaCertPem, signature: Buffer.from(sig).toString('base64') };
}

function checkNewCa(pem: string): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch {
    throw new PkiError('malformed', 'the new CA is not a PEM certificate');
  }
  if (!cert.ca) throw new PkiError('bad-chain', 'the new CA is not a CA certificate');
  if (!cert.checkIssued(cert) || !cert.verify(cert.publicKey))
    throw new PkiError('bad-chain', 'the new CA certificate is not self-signed');
  if (cert.publicKey.asymmetricKeyType !== 'ed25519')
    throw new PkiError('wrong-key-type', 'the new CA key is not Ed25519');
  return cert;
}

/** Checks shape, the old CA's signature and the new CA certificate; returns the new CA PEM. */
export function verifyCaRollover(doc: unknown, oldCaPem: string, now = new Date()): string {
  const d = doc as Partial<CaRollover> | null;
  if (
    !d ||
    typeof d !== 'object' ||
    d.version !== 1 ||
    typeof d.issuedAt !== 'string' ||
    Number.isNaN(Date.parse(d.issuedAt)) ||
    typeof d.newCaPem !== 'string' ||
    d.newCaPem.length > 16_384 ||
    typeof d.signature !== 'string'
  ) {
    throw new PkiError('malformed', 'not a CA rollover document');
  }
  const newCa = checkNewCa(d.newCaPem);
  if (now.getTime() > Date.parse(newCa.validTo))
    throw new PkiError('expired', 'the new CA certificate has expired');
  const oldCert = parseCertificate(oldCaPem);
  const key = createPublicKey({ key: Buffer.from(oldCert.publicKey.rawData), format: 'der', type: 'spki' });
  let ok = false;
  try {
    ok = edVerify(
      null,
      signedBytes(d.issuedAt, oldCaPem, d.newCaPem),
      key,
      Buffer.from(d.signature, 'base64'),
    );
  } catch {
    ok = false;
  }
  if (!ok) throw new PkiError('bad-signature', 'the CA rollover is not signed by the pinned org CA');
  return d.newCaPem;
}
