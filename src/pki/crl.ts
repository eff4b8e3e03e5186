// The organisation's certificate revocation list: a standard RFC 5280 X.509 CRL (v2) signed by the
// org CA (Ed25519), with thisUpdate/nextUpdate, a CRL number and the authority key identifier.
// It replaces the home-made signed JSON list, whose signature covered serials joined by commas (so
// [A, B] could be rewritten as one serial "A,B" and still verify). A CRL's revoked serials are DER
// INTEGERs inside the signed tbsCertList: nothing can be re-split without breaking the signature.
//
//   issueCrl(ca, { entries, crlNumber, thisUpdate, nextUpdate }) → { der, pem }     (service)
//   verifyCrl(pemOrDer, caCertPem) → { der, crlNumber, thisUpdate, nextUpdate, serials } (relay, device)
//   crlFreshness(crl, now, graceMs) → 'fresh' | 'stale' | 'expired'
//   compareCrl(candidate, held) → 'newer' | 'same' | 'older' (by CRL number; equal number but other
//     bytes → 'older', i.e. refused: one CA never signs two different CRLs with the same number)
//
// `openssl crl -inform DER -in x.crl -CAfile ca.pem -noout` prints "verify OK" for what issueCrl makes.
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList } from '@peculiar/asn1-x509';
import { type CertificateAuthority, loadCa, parseCertificate } from './ca.js';
import { PkiError } from './errors.js';
import type { RevocationStatus } from './revocation-source.js';
import { ED25519, subtle, x509 } from './provider.js';
import { normalizeSerial } from './verify.js';

export interface CrlEntry {
  /** Certificate serial, hex, any case. */
  serial: string;
  revokedAt: Date;
}

export interface IssueCrlOptions {
  entries: CrlEntry[];
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
}

export interface VerifiedCrl {
  der: Buffer;
  crlNumber: bigint;
  thisUpdate: Date;
  nextUpdate: Date;
  /** Revoked serials, normalised (lowercase hex, no leading zero bytes: normalizeSerial). */
  serials: ReadonlySet<string>;
}

/** nextUpdate − thisUpdate of the CRLs the provisioning service issues. */
export const CRL_VALIDITY_MS = 24 * 3600_000;
/** The service re-signs its CRL at least this often (and whenever the revoked set changes). */
export const CRL_REISSUE_MS = 3600_000;
/** How long past nextUpdate a CRL is still used ('stale') before failing closed ('expired'). */
export const DEFAULT_CRL_GRACE_MS = 24 * 3600_000;
/** Larger inputs are refused before parsing (a CRL of 100 000 entries is about 4 MB). */
export const MAX_CRL_BYTES = 8 * 1024 * 1024;

const OID_CRL_NUMBER = '2.5.29.20';
const OID_AUTHORITY_KEY_ID = '2.5.29.35';
/** CRL extensions we understand (RFC 5280 §5.2); any other critical one makes the CRL unusable. */
const KNOWN_CRL_EXTENSIONS = new Set([OID_CRL_NUMBER, OID_AUTHORITY_KEY_ID]);
/** Entry extensions we understand (reason code, invalidity date); others critical → refused. */
const KNOWN_ENTRY_EXTENSIONS = new Set(['2.5.29.21', '2.5.29.24']);
/** RFC 5280 §5.2.3: CRL numbers are at most 20 octets. */
const MAX_CRL_NUMBER = (1n << 159n) - 1n;

/** Thrown when a valid CRL is refused because it is older than (or conflicts with) the one held. */
export class CrlRefusedError extends Error {
  override readonly name = 'CrlRefusedError';
  constructor(
    readonly candidate: bigint,
    readonly held: bigint,
  ) {
    super(
      `CRL number ${candidate} refused: CRL number ${held} (or a different CRL with this number) is already in force`,
    );
  }
}

// --- DER INTEGER (the CRL number extension's value) -------------------------------------------

function encodeDerInteger(n: bigint): Buffer {
  if (n < 0n) throw new RangeError('negative integer');
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  let body = Buffer.from(hex, 'hex');
  if ((body[0] ?? 0) & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  if (body.length > 126) throw new RangeError('integer too large');
  return Buffer.concat([Buffer.from([0x02, body.length]), body]);
}

function decodeDerNonNegativeInteger(der: Uint8Array): bigint {
  const b = Buffer.from(der);
  const len = b[1] ?? 0;
  if (b.length < 3 || b[0] !== 0x02 || len & 0x80 || len === 0 || b.length !== 2 + len) {
    throw new PkiError('malformed', 'the CRL number is not a DER INTEGER');
  }
  const body = b.subarray(2);
  if ((body[0] ?? 0) & 0x80) throw new PkiError('malformed', 'the CRL number is negative');
  if (body.length > 1 && body[0] === 0 && !((body[1] ?? 0) & 0x80)) {
    throw new PkiError('malformed', 'the CRL number is not minimally encoded');
  }
  const n = BigInt(`0x${body.toString('hex')}`);
  if (n > MAX_CRL_NUMBER) throw new PkiError('malformed', 'the CRL number is longer than 20 octets');
  return n;
}

/** Hex serial → the form X509CrlGenerator writes as a positive DER INTEGER. */
function serialForDer(serial: string): string {
  if (!/^[0-9a-fA-F]+$/.test(serial))
    throw new PkiError('malformed', `not a hex serial: ${JSON.stringify(serial)}`);
  let hex = normalizeSerial(serial.length % 2 ? `0${serial}` : serial);
  if (Number.parseInt(hex.slice(0, 2), 16) & 0x80) hex = `00${hex}`;
  return hex;
}

// --- issuing -------------------------------------------------------------------------------

/** Signs a CRL v2 with the org CA. Entries are de-duplicated and sorted by serial (deterministic). */
export async function issueCrl(
  ca: CertificateAuthority,
  o: IssueCrlOptions,
): Promise<{ der: Buffer; pem: string }> {
  if (o.crlNumber < 0n || o.crlNumber > MAX_CRL_NUMBER) throw new RangeError('CRL number out of range');
  if (!(o.nextUpdate.getTime() > o.thisUpdate.getTime()))
    throw new RangeError('nextUpdate must be after thisUpdate');
  const { cert, signingKey } = await loadCa(ca);
  const bySerial = new Map<string, Date>();
  for (const e of o.entries) {
    const hex = serialForDer(e.serial);
    const prev = bySerial.get(hex);
    if (!prev || e.revokedAt < prev) bySerial.set(hex, e.revokedAt);
  }
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension);
  const aki = ski
    ? new x509.AuthorityKeyIdentifierExtension(ski.keyId, false)
    : await x509.AuthorityKeyIdentifierExtension.create(cert.publicKey, false);
  const crl = await x509.X509CrlGenerator.create({
    issuer: cert.subjectName,
    thisUpdate: o.thisUpdate,
    nextUpdate: o.nextUpdate,
    signingAlgorithm: ED25519,
    signingKey,
    extensions: [
      new x509.Extension(OID_CRL_NUMBER, false, new Uint8Array(encodeDerInteger(o.crlNumber))),
      aki,
    ],
    entries: [...bySerial.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([serialNumber, revocationDate]) => ({ serialNumber, revocationDate })),
  });
  // The generator writes an empty crlEntryExtensions SEQUENCE in every entry, which RFC 5280's
  // ASN.1 does not allow (SIZE (1..MAX)): drop them and sign the clean tbsCertList again.
  const asn = AsnConvert.parse(crl.rawData, CertificateList);
  for (const e of asn.tbsCertList.revokedCertificates ?? []) {
    if (e.crlEntryExtensions?.length === 0) e.crlEntryExtensions = undefined;
  }
  asn.tbsCertListRaw = undefined;
  asn.signature = await subtle.sign(ED25519, signingKey, AsnConvert.serialize(asn.tbsCertList));
  const der = Buffer.from(AsnConvert.serialize(asn));
  return { der, pem: crlToPem(der) };
}

// --- verifying -----------------------------------------------------------------------------

function toDer(input: string | Uint8Array): Buffer {
  if (typeof input === 'string') {
    if (input.length > MAX_CRL_BYTES * 2) throw new PkiError('malformed', 'the CRL is too large');
    const m = /-----BEGIN (X509 )?CRL-----([A-Za-z0-9+/=\s]+)-----END \1CRL-----/.exec(input);
    if (!m?.[2]) throw new PkiError('malformed', 'not a PEM X.509 CRL');
    return Buffer.from(m[2].replace(/\s+/g, ''), 'base64');
  }
  return Buffer.from(input);
}

/**
 * Verifies a CRL (PEM or DER) against the org CA certificate. Throws PkiError 'malformed' (not a
 * CRL v2, no CRL number / nextUpdate, unknown critical extension, not Ed25519), 'bad-chain' (issuer
 * or authority key identifier ≠ the CA) or 'bad-signature'.
 */
export async function verifyCrl(input: string | Uint8Array, caCertPem: string): Promise<VerifiedCrl> {
  const der = toDer(input);
  if (der.length === 0 || der.length > MAX_CRL_BYTES)
    throw new PkiError('malformed', 'the CRL is empty or too large');
  let crl: x509.X509Crl;
  try {
    crl = new x509.X509Crl(new Uint8Array(der));
  } catch {
    throw new PkiError('malformed', 'not a DER X.509 CRL');
  }
  // Only DER: the envelope around the signed part (outer tags, the signature BIT STRING) is not
  // signed, so a lenient parse would accept many encodings of one CRL. Re-encoding must give the input.
  let canonical: Buffer;
  try {
    const asn = AsnConvert.parse(new Uint8Array(der), CertificateList);
    asn.tbsCertListRaw = undefined;
    canonical = Buffer.from(AsnConvert.serialize(asn));
  } catch {
    throw new PkiError('malformed', 'not a DER X.509 CRL');
  }
  if (!canonical.equals(der)) throw new PkiError('malformed', 'the CRL is not DER-encoded');
  const caCert = parseCertificate(caCertPem);
  // Everything read below is parsed lazily by @peculiar/x509: turn its exceptions into 'malformed'.
  let crlNumber: bigint;
  let serials: Set<string>;
  let thisUpdate: Date;
  let nextUpdate: Date | undefined;
  let issuerDer: Buffer;
  let akiKeyId: string | undefined;
  try {
    if (crl.version !== 1) throw new PkiError('malformed', 'not a version 2 CRL');
    if (crl.signatureAlgorithm.name !== 'Ed25519')
      throw new PkiError('malformed', 'the CRL is not signed with Ed25519');
    thisUpdate = crl.thisUpdate;
    nextUpdate = crl.nextUpdate;
    if (!nextUpdate) throw new PkiError('malformed', 'the CRL has no nextUpdate');
    issuerDer = Buffer.from(crl.issuerName.toArrayBuffer());
    const numbers = crl.extensions.filter((e) => e.type === OID_CRL_NUMBER);
    if (numbers.length !== 1 || !numbers[0])
      throw new PkiError('malformed', 'the CRL has no (or several) CRL number extension');
    crlNumber = decodeDerNonNegativeInteger(new Uint8Array(numbers[0].value));
    const seen = new Set<string>();
    for (const e of crl.extensions) {
      if (seen.has(e.type)) throw new PkiError('malformed', `duplicate CRL extension ${e.type}`);
      seen.add(e.type);
      if (e.critical && !KNOWN_CRL_EXTENSIONS.has(e.type)) {
        throw new PkiError('malformed', `unsupported critical CRL extension ${e.type}`);
      }
      if (e.type === OID_AUTHORITY_KEY_ID)
        akiKeyId = new x509.AuthorityKeyIdentifierExtension(e.rawData).keyId;
    }
    serials = new Set();
    for (const entry of crl.entries) {
      for (const ext of entry.extensions) {
        if (ext.critical && !KNOWN_ENTRY_EXTENSIONS.has(ext.type)) {
          throw new PkiError('malformed', `unsupported critical CRL entry extension ${ext.type}`);
        }
      }
      serials.add(normalizeSerial(entry.serialNumber));
    }
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw new PkiError('malformed', `the CRL cannot be parsed: ${(err as Error).message}`);
  }
  if (!nextUpdate) throw new PkiError('malformed', 'the CRL has no nextUpdate');
  if (!(nextUpdate.getTime() > thisUpdate.getTime()))
    throw new PkiError('malformed', 'the CRL nextUpdate is not after thisUpdate');
  if (!issuerDer.equals(Buffer.from(caCert.subjectName.toArrayBuffer()))) {
    throw new PkiError('bad-chain', 'the CRL was not issued by this CA');
  }
  const caSki = caCert.getExtension(x509.SubjectKeyIdentifierExtension);
  if (akiKeyId !== undefined && caSki && akiKeyId.toLowerCase() !== caSki.keyId.toLowerCase()) {
    throw new PkiError('bad-chain', 'the CRL authority key identifier is not this CA key');
  }
  const usage = caCert.getExtension(x509.KeyUsagesExtension);
  if (usage && (usage.usages & x509.KeyUsageFlags.cRLSign) === 0) {
    throw new PkiError('bad-chain', 'the CA certificate does not allow signing CRLs');
  }
  let signed = false;
  try {
    signed = await crl.verify({ publicKey: caCert.publicKey });
  } catch {
    signed = false;
  }
  if (!signed) throw new PkiError('bad-signature', 'the CRL signature does not verify with the CA key');
  return { der, crlNumber, thisUpdate, nextUpdate, serials };
}

// --- freshness and ordering ----------------------------------------------------------------

export function crlFreshness(
  crl: { nextUpdate: Date },
  now: Date,
  graceMs: number,
): 'fresh' | 'stale' | 'expired' {
  const next = crl.nextUpdate.getTime();
  const t = now.getTime();
  if (t <= next) return 'fresh';
  if (t <= next + graceMs) return 'stale';
  return 'expired';
}

/** By CRL number. The same number with different bytes is 'older' (refused). */
export function compareCrl(
  candidate: VerifiedCrl,
  held: VerifiedCrl | undefined,
): 'newer' | 'same' | 'older' {
  if (!held) return 'newer';
  if (candidate.crlNumber > held.crlNumber) return 'newer';
  if (candidate.crlNumber === held.crlNumber && candidate.der.equals(held.der)) return 'same';
  return 'older';
}

export function crlToPem(der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  return `-----BEGIN X509 CRL-----\n${b64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END X509 CRL-----\n`;
}

/** The RevocationStatus for a CRL in force (or none), as the relay's /healthz and the device report it. */
export function revocationStatusOf(
  crl: VerifiedCrl | undefined,
  now: Date,
  graceMs: number,
  failClosed: boolean,
): RevocationStatus {
  if (!crl) return { state: 'none', revoked: 0, acceptingNewSessions: !failClosed };
  const state = crlFreshness(crl, now, graceMs);
  return {
    state,
    crlNumber: crl.crlNumber.toString(),
    thisUpdate: crl.thisUpdate.toISOString(),
    nextUpdate: crl.nextUpdate.toISOString(),
    revoked: crl.serials.size,
    acceptingNewSessions: !failClosed || state !== 'expired',
  };
}
