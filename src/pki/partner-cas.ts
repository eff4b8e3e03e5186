// Partner-org CAs for cross-organisation meetings, delivered to devices inside their provisioning
// config (key `partnerCas`) and signed with the org CA key, like the revocation list: a device that
// pinned the org CA at enrollment accepts only partner CAs its own org vouched for, and a newer
// bundle replaces an older one (never the reverse).
//
// Signed bytes: UTF-8 of `sealroom-partner-cas-v1\n<issuedAt>\n<sha256 hex of each PEM, in order, joined by ,>`;
// `signature` is base64 Ed25519 by the org CA key.
import { createHash, createPublicKey, X509Certificate, verify as edVerify } from 'node:crypto';
import { type CertificateAuthority, parseCertificate, signWithCa } from './ca.js';
import { PkiError } from './errors.js';

export interface PartnerCaBundle {
  issuedAt: string;
  caPems: string[];
  signature: string;
}

/** At most this many partner CAs (each a few hundred bytes of PEM). */
export const MAX_PARTNER_CAS = 32;

function signedBytes(issuedAt: string, caPems: readonly string[]): Buffer {
  const digests = caPems.map((pem) => createHash('sha256').update(pem, 'utf8').digest('hex'));
  return Buffer.from(`sealroom-partner-cas-v1\n${issuedAt}\n${digests.join(',')}`, 'utf8');
}

export async function signPartnerCas(
  ca: CertificateAuthority,
  caPems: string[],
  issuedAt = new Date().toISOString(),
): Promise<PartnerCaBundle> {
  const sig = await signWithCa(ca, signedBytes(issuedAt, caPems));
  return { issuedAt, caPems, signature: Buffer.from(sig).toString('base64') };
}

/** Checks shape and the org CA's signature, and that each entry is a CA certificate; returns the PEMs. */
export function verifyPartnerCas(bundle: unknown, orgCaPem: string): PartnerCaBundle {
  const b = bundle as Partial<PartnerCaBundle> | null;
  if (
    !b ||
    typeof b !== 'object' ||
    typeof b.issuedAt !== 'string' ||
    Number.isNaN(Date.parse(b.issuedAt)) ||
    typeof b.signature !== 'string' ||
    !Array.isArray(b.caPems) ||
    b.caPems.length > MAX_PARTNER_CAS ||
    !b.caPems.every((p) => typeof p === 'string')
  ) {
    throw new PkiError('malformed', 'not a partner CA bundle');
  }
  const caCert = parseCertificate(orgCaPem);
  const key = createPublicKey({ key: Buffer.from(caCert.publicKey.rawData), format: 'der', type: 'spki' });
  const ok = edVerify(null, signedBytes(b.issuedAt, b.caPems), key, Buffer.from(b.signature, 'base64'));
  if (!ok) throw new PkiError('bad-signature', 'the partner CA bundle is not signed by the org CA');
  for (const pem of b.caPems) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(pem);
    } catch {
      throw new PkiError('malformed', 'a partner CA is not a PEM certificate');
    }
    if (!cert.ca) throw new PkiError('bad-chain', 'a partner CA entry is not a CA certificate');
  }
  return { issuedAt: b.issuedAt, caPems: [...b.caPems], signature: b.signature };
}
