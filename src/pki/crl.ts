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
import { createPublicKey, verify as edVerify } from 'node:crypto';
import { AsnConvert, type IAsnParseOptions, OctetString } from '@peculiar/asn1-schema';
import {
  AlgorithmIdentifier,
  AuthorityKeyIdentifier,
  CertificateList,
  Extension,
  KeyIdentifier,
  Name,
  RevokedCertificate,
  TBSCertList,
  Time,
  Version,
} from '@peculiar/asn1-x509';
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

const OID_ED25519 = '1.3.101.112';
const OID_CRL_NUMBER = '2.5.29.20';
const OID_AUTHORITY_KEY_ID = '2.5.29.35';
/** asn1js refuses more than 10 000 nodes by default (~3 300 CRL entries); a CRL of MAX_CRL_BYTES has
 * at most ~8 MiB / 3 bytes per node. */
const PARSE_OPTIONS: IAsnParseOptions = {
  berOptions: { maxNodes: Math.ceil(MAX_CRL_BYTES / 3), maxContentLength: MAX_CRL_BYTES, maxDepth: 32 },
};
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
  const ski =
    cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId ??
    (await x509.AuthorityKeyIdentifierExtension.create(cert.publicKey, false)).keyId ??
    '';
  const ext = (extnID: string, value: Uint8Array | ArrayBuffer) =>
    new Extension({ extnID, critical: false, extnValue: new OctetString(value) });
  const entries = [...bySerial.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  // Built with the ASN.1 classes directly (not X509CrlGenerator, which re-parses what it made with
  // asn1js's default limit of 10 000 nodes, i.e. about 3 300 entries).
  const tbs = new TBSCertList({
    version: Version.v2,
    signature: new AlgorithmIdentifier({ algorithm: OID_ED25519 }),
    issuer: AsnConvert.parse(cert.subjectName.toArrayBuffer(), Name),
    thisUpdate: new Time(o.thisUpdate),
    nextUpdate: new Time(o.nextUpdate),
    ...(entries.length > 0
      ? {
          revokedCertificates: entries.map(
            ([hex, revokedAt]) =>
              new RevokedCertificate({
                userCertificate: new Uint8Array(Buffer.from(hex, 'hex')).buffer,
                revocationDate: new Time(revokedAt),
              }),
          ),
        }
      : {}),
    crlExtensions: [
      ext(OID_CRL_NUMBER, new Uint8Array(encodeDerInteger(o.crlNumber))),
      ext(
        OID_AUTHORITY_KEY_ID,
        AsnConvert.serialize(
          new AuthorityKeyIdentifier({
            keyIdentifier: new KeyIdentifier(new Uint8Array(Buffer.from(ski, 'hex'))),
          }),
        ),
      ),
    ],
  });
  const tbsDer = AsnConvert.serialize(tbs);
  const signature = await subtle.sign(ED25519, signingKey, tbsDer);
  const der = Buffer.from(
    AsnConvert.serialize(
      new CertificateList({
        tbsCertList: tbs,
        signatureAlgorithm: new AlgorithmIdentifier({ algorithm: OID_ED25519 }),
        signature,
      }),
    ),
  );
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
  // Only DER: the envelope around the signed part (outer tags, the signature BIT STRING) is not
  // signed, so a lenient parse would accept many encodings of one CRL. Re-encoding must give the input.
  let asn: CertificateList;
  let tbsDer: Buffer;
  try {
    asn = AsnConvert.parse(new Uint8Array(der), CertificateList, PARSE_OPTIONS);
    asn.tbsCertListRaw = undefined;
    if (!Buffer.from(AsnConvert.serialize(asn)).equals(der)) {
      throw new PkiError('malformed', 'the CRL is not DER-encoded');
    }
    tbsDer = Buffer.from(AsnConvert.serialize(asn.tbsCertList));
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw new PkiError('malformed', 'not a DER X.509 CRL');
  }
  const caCert = parseCertificate(caCertPem);
  const tbs = asn.tbsCertList;
  let crlNumber: bigint | undefined;
  let akiKeyId: string | undefined;
  const serials = new Set<string>();
  let thisUpdate: Date;
  let nextUpdate: Date;
  try {
    if (tbs.version !== Version.v2) throw new PkiError('malformed', 'not a version 2 CRL');
    for (const alg of [tbs.signature, asn.signatureAlgorithm]) {
      if (alg.algorithm !== OID_ED25519 || alg.parameters !== undefined) {
        throw new PkiError('malformed', 'the CRL is not signed with Ed25519');
      }
    }
    thisUpdate = tbs.thisUpdate.getTime();
    if (!tbs.nextUpdate) throw new PkiError('malformed', 'the CRL has no nextUpdate');
    nextUpdate = tbs.nextUpdate.getTime();
    const seen = new Set<string>();
    for (const e of tbs.crlExtensions ?? []) {
      if (seen.has(e.extnID)) throw new PkiError('malformed', `duplicate CRL extension ${e.extnID}`);
      seen.add(e.extnID);
      if (e.extnID === OID_CRL_NUMBER)
        crlNumber = decodeDerNonNegativeInteger(new Uint8Array(e.extnValue.buffer));
      else if (e.extnID === OID_AUTHORITY_KEY_ID) {
        const aki = AsnConvert.parse(e.extnValue.buffer, AuthorityKeyIdentifier);
        if (aki.keyIdentifier) akiKeyId = Buffer.from(aki.keyIdentifier.buffer).toString('hex');
      } else if (e.critical)
        throw new PkiError('malformed', `unsupported critical CRL extension ${e.extnID}`);
    }
    if (crlNumber === undefined) throw new PkiError('malformed', 'the CRL has no CRL number extension');
    for (const entry of tbs.revokedCertificates ?? []) {
      for (const ext of entry.crlEntryExtensions ?? []) {
        if (ext.critical && !KNOWN_ENTRY_EXTENSIONS.has(ext.extnID)) {
          throw new PkiError('malformed', `unsupported critical CRL entry extension ${ext.extnID}`);
        }
      }
      const hex = Buffer.from(entry.userCertificate).toString('hex');
      if (hex.length === 0) throw new PkiError('malformed', 'a CRL entry has an empty serial');
      serials.add(normalizeSerial(hex));
    }
  } catch (err) {
    if (err instanceof PkiError) throw err;
    throw new PkiError('malformed', `the CRL cannot be parsed: ${(err as Error).message}`);
  }
  if (!(nextUpdate.getTime() > thisUpdate.getTime())) {
    throw new PkiError('malformed', 'the CRL nextUpdate is not after thisUpdate');
  }
  if (
    !Buffer.from(AsnConvert.serialize(tbs.issuer)).equals(Buffer.from(caCert.subjectName.toArrayBuffer()))
  ) {
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
    const key = createPublicKey({ key: Buffer.from(caCert.publicKey.rawData), format: 'der', type: 'spki' });
    signed = key.asymmetricKeyType === 'ed25519' && edVerify(null, tbsDer, key, Buffer.from(asn.signature));
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
