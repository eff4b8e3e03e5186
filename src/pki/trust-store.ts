// The device's synchronous certificate check for the E2EE trust callback: is this certificate DER,
// presented inside a signed key binding, a valid room or person certificate from one of the trust
// anchors this device pinned (its org CA, partner-org CAs from signed config), not on the org's CRL
// (refused outright while that CRL is out of date: 'revocation-stale'), and is its Ed25519 key the
// binding's identity key? The E2EE core calls it synchronously while it handles a message, so
// everything here is sync.
//
// It runs in the browser too (the web participant verifies rooms and people with it), so it imports no
// node: module itself: @peculiar/asn1-x509 parses, a small DER reader (./der.ts) takes the exact
// signed bytes, and the E2EE core's crypto backend verifies and hashes — node:crypto on Node, @noble
// in a browser bundle (scripts/esbuild-core-browser.mjs swaps it, as for the rest of the core).
//
// Only direct issuance is accepted (anchor → certificate), as src/pki issues. The kind is the person
// EKU (src/pki/person-profile.ts): with it, a person certificate (CN name, O org, SAN email + person
// URI, ≤ 12 h); without it, a room certificate (CN device id, O, OU room, L site). A partner CA may
// only certify rooms and people of its own organisation (subject O must equal the CA's O), so it
// cannot put our org's name on the wall. The org's revocation list names org serials only, so it
// is checked for certificates of the org CA.
import { AsnConvert } from '@peculiar/asn1-schema';
import {
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  id_ce_authorityKeyIdentifier,
  id_ce_basicConstraints,
  id_ce_extKeyUsage,
  id_ce_keyUsage,
  id_ce_subjectAltName,
  id_ce_subjectKeyIdentifier,
  KeyUsage,
  KeyUsageFlags,
  type Name,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
} from '@peculiar/asn1-x509';
import { bytesToHex } from '@noble/hashes/utils.js';
import { backend } from '../core/e2ee/crypto/backend.js';
import { bytesEqual, children, readTlv } from './der.js';
import {
  ekuHasPerson,
  isPlausibleEmail,
  MAX_PERSON_NAME_LENGTH,
  personIdOf,
  personLifetimeOk,
  personUri,
} from './person-profile.js';
import { normalizeSerial } from './serial.js';

/** A certificate larger than this is refused before parsing (the E2EE wire allows 2048 bytes). */
export const MAX_CERTIFICATE_DER_BYTES = 2048;

export interface TrustAnchors {
  /** The org CA pinned at enrollment (PEM). */
  orgCaPem: string;
  /** Partner-org CAs (PEM) from signed config, for cross-organisation meetings. */
  partnerCaPems?: readonly string[];
  /** The serials on the org's verified CRL (src/pki/crl.ts), any case. */
  revokedSerials?: ReadonlySet<string>;
  /**
   * True when the device cannot tell whether org certificates are revoked: polling is configured
   * and the CRL in force is past nextUpdate + grace, or none arrived within the grace. Org-CA
   * certificates are then refused ('revocation-stale'): fail closed.
   */
  revocationStale?: boolean;
}

export type TrustFailure =
  | 'empty'
  | 'too-large'
  | 'malformed'
  | 'unknown-issuer'
  | 'bad-signature'
  | 'issuer-expired'
  | 'not-yet-valid'
  | 'expired'
  | 'is-ca'
  | 'wrong-key-type'
  | 'no-digital-signature'
  | 'bad-subject'
  | 'org-mismatch'
  | 'revoked'
  | 'revocation-stale'
  | 'key-mismatch'
  /** A person certificate valid for longer than 12 h (+ slack). */
  | 'bad-lifetime';

/**
 * What the wall may show about a participant: read from a certificate verified on this device.
 * For a person: deviceId = 'person:' + email, roomName = the person's name, site = ''.
 */
export interface CertifiedIdentity {
  kind: 'room' | 'person';
  deviceId: string;
  roomName: string;
  org: string;
  site: string;
  /** Only for kind 'person'. */
  person?: { name: string; email: string };
  /** Lowercase hex, no leading zero bytes. */
  serial: string;
  /** Which anchor issued it. */
  issuer: 'org' | 'partner';
  /** The raw 32-byte Ed25519 key of the certificate. */
  publicKeyRaw: Uint8Array;
  notBefore: Date;
  notAfter: Date;
}

export type TrustVerdict =
  | { ok: true; identity: CertifiedIdentity }
  | { ok: false; reason: TrustFailure; detail: string };

interface Anchor {
  /** DER of its subject Name: a certificate's issuer must be these bytes. */
  subject: Uint8Array;
  /** Its subjectKeyIdentifier, when it has one. */
  keyId: Uint8Array | undefined;
  /** Raw 32-byte Ed25519 key, or undefined when the CA key is not Ed25519 (nothing verifies). */
  publicKeyRaw: Uint8Array | undefined;
  org: string | undefined;
  kind: 'org' | 'partner';
  notBefore: Date;
  notAfter: Date;
}

/** A cached check: everything but the clock and the identity key (rechecked per call). */
type CachedCheck =
  | { ok: true; identity: CertifiedIdentity; caNotBefore: Date; caNotAfter: Date }
  | { ok: false; reason: TrustFailure; detail: string };

export interface TrustStoreOptions {
  now?: () => Date;
  /** Verdicts kept, by certificate hash (default 256); the oldest goes first. */
  cacheSize?: number;
}

export class TrustStore {
  #anchors: Anchor[] = [];
  #revoked: ReadonlySet<string> = new Set();
  #revocationStale = false;
  readonly #cache = new Map<string, CachedCheck>();
  readonly #now: () => Date;
  readonly #cacheSize: number;

  constructor(anchors: TrustAnchors, opts: TrustStoreOptions = {}) {
    this.#now = opts.now ?? (() => new Date());
    this.#cacheSize = Math.max(1, opts.cacheSize ?? 256);
    this.setAnchors(anchors);
  }

  /** Replaces the anchors (new partner CAs, a newer revocation list): every cached verdict goes. */
  setAnchors(anchors: TrustAnchors): void {
    const list: Anchor[] = [parseAnchor(anchors.orgCaPem, 'org')];
    for (const pem of anchors.partnerCaPems ?? []) list.push(parseAnchor(pem, 'partner'));
    this.#anchors = list;
    this.#revoked = new Set([...(anchors.revokedSerials ?? [])].map(normalizeSerial));
    this.#revocationStale = anchors.revocationStale ?? false;
    this.#cache.clear();
  }

  /** Only the revocation list changed. */
  setRevoked(serials: ReadonlySet<string>): void {
    this.#revoked = new Set([...serials].map(normalizeSerial));
    this.#cache.clear();
  }

  get cachedVerdicts(): number {
    return this.#cache.size;
  }

  /**
   * Verifies `der` and, when given, that its Ed25519 key is `identityKey`. Never throws: any input
   * (garbage, empty, huge) is a typed refusal.
   */
  verify(der: Uint8Array, identityKey?: Uint8Array): TrustVerdict {
    if (der.length === 0) return fail('empty', 'no certificate');
    if (der.length > MAX_CERTIFICATE_DER_BYTES)
      return fail('too-large', `certificate of ${der.length} bytes (at most ${MAX_CERTIFICATE_DER_BYTES})`);
    const hash = bytesToHex(backend.sha256(der));
    let check = this.#cache.get(hash);
    if (check) {
      // Most recently used last, so the bound drops the least recently used.
      this.#cache.delete(hash);
    } else {
      check = this.#check(der);
    }
    this.#cache.set(hash, check);
    while (this.#cache.size > this.#cacheSize) {
      const oldest = this.#cache.keys().next().value;
      if (oldest === undefined) break;
      this.#cache.delete(oldest);
    }
    if (!check.ok) return check;
    const now = this.#now();
    const id = check.identity;
    if (now < id.notBefore) return fail('not-yet-valid', `valid from ${id.notBefore.toISOString()}`);
    if (now > id.notAfter) return fail('expired', `expired at ${id.notAfter.toISOString()}`);
    if (now < check.caNotBefore || now > check.caNotAfter)
      return fail('issuer-expired', 'the issuing CA is outside its validity period');
    if (identityKey !== undefined && !bytesEqual(id.publicKeyRaw, identityKey))
      return fail('key-mismatch', "the identity key is not the certificate's key");
    return { ok: true, identity: id };
  }

  /** The time-independent part: parse, chain, key, usage, kind, subject, revocation. */
  #check(der: Uint8Array): CachedCheck {
    const cert = parseCertificateDer(der);
    if (!cert) return fail('malformed', 'not a DER X.509 certificate');
    const { tbs, ext } = cert;
    const issuer = AsnConvert.serialize(tbs.issuer);
    const aki = ext.get(id_ce_authorityKeyIdentifier);
    let akiId: Uint8Array | undefined;
    if (aki) {
      const parsed = parseExt(aki, AuthorityKeyIdentifier);
      if (!parsed) return fail('malformed', 'unreadable authority key identifier');
      akiId = parsed.keyIdentifier ? new Uint8Array(parsed.keyIdentifier.buffer) : undefined;
    }
    // As OpenSSL's check_issued: the issuer name, and the key identifier when both sides name one.
    const anchor = this.#anchors.find(
      (a) =>
        bytesEqual(a.subject, new Uint8Array(issuer)) &&
        (akiId === undefined || a.keyId === undefined || bytesEqual(akiId, a.keyId)),
    );
    if (!anchor) return fail('unknown-issuer', `issued by "${nameText(tbs.issuer)}", not a pinned CA`);
    let signed = false;
    try {
      signed =
        anchor.publicKeyRaw !== undefined &&
        cert.signatureAlgorithm === ED25519_OID &&
        tbs.signature.algorithm === ED25519_OID &&
        // RFC 8032 strict (not ZIP-215), as OpenSSL verifies.
        backend.ed25519Verify(anchor.publicKeyRaw, cert.tbsRaw, cert.signature);
    } catch {
      signed = false;
    }
    if (!signed) return fail('bad-signature', 'the signature does not verify with the issuing CA key');
    const basic = ext.get(id_ce_basicConstraints);
    if (basic) {
      const bc = parseExt(basic, BasicConstraints);
      if (!bc) return fail('malformed', 'unreadable basic constraints');
      if (bc.cA) return fail('is-ca', 'a CA certificate is not a room or person certificate');
    }
    const spki = tbs.subjectPublicKeyInfo;
    if (spki.algorithm.algorithm !== ED25519_OID || spki.subjectPublicKey.byteLength !== 32)
      return fail('wrong-key-type', 'the key is not Ed25519');
    const ku = ext.get(id_ce_keyUsage);
    const usage = ku ? parseExt(ku, KeyUsage) : undefined;
    if (ku && !usage) return fail('malformed', 'unreadable key usage');
    if (!usage || (usage.toNumber() & KeyUsageFlags.digitalSignature) === 0)
      return fail('no-digital-signature', 'the certificate does not allow digital signatures');
    const ekuValue = ext.get(id_ce_extKeyUsage);
    const isPerson = ekuValue ? ekuHasPerson(ekuValue) : false;
    if (isPerson === undefined) return fail('malformed', 'unreadable extended key usage');
    const notBefore = tbs.validity.notBefore.getTime();
    const notAfter = tbs.validity.notAfter.getTime();
    const fields = nameFields(tbs.subject);
    const cn = fields.get(OID_CN);
    const org = fields.get(OID_O);
    let who: Pick<CertifiedIdentity, 'kind' | 'deviceId' | 'roomName' | 'site' | 'person'>;
    if (isPerson) {
      if (!personLifetimeOk(notBefore, notAfter))
        return fail('bad-lifetime', 'a person certificate may be valid for at most 12 hours');
      if (cn === undefined || org === undefined) return fail('bad-subject', 'the subject lacks CN or O');
      if (cn.length > MAX_PERSON_NAME_LENGTH || org.length > MAX_PERSON_NAME_LENGTH)
        return fail(
          'bad-subject',
          `a person's name and org are at most ${MAX_PERSON_NAME_LENGTH} characters`,
        );
      const san = ext.get(id_ce_subjectAltName);
      const names = san ? parseExt(san, SubjectAlternativeName) : undefined;
      if (san && !names) return fail('malformed', 'unreadable subject alternative name');
      const emails = names?.filter((n) => n.rfc822Name !== undefined) ?? [];
      const uris = names?.filter((n) => n.uniformResourceIdentifier !== undefined) ?? [];
      const email = emails.length === 1 ? emails[0]?.rfc822Name : undefined;
      if (email === undefined || !isPlausibleEmail(email))
        return fail('bad-subject', 'a person certificate names exactly one email address');
      if (uris.length !== 1 || uris[0]?.uniformResourceIdentifier !== personUri(email))
        return fail('bad-subject', 'the person URI does not match the email address');
      who = {
        kind: 'person',
        deviceId: personIdOf(email),
        roomName: cn,
        site: '',
        person: { name: cn, email },
      };
    } else {
      const roomName = fields.get(OID_OU);
      const site = fields.get(OID_L);
      if (cn === undefined || org === undefined || roomName === undefined || site === undefined)
        return fail('bad-subject', 'the subject lacks CN, O, OU or L');
      who = { kind: 'room', deviceId: cn, roomName, site };
    }
    if (anchor.kind === 'partner' && org !== anchor.org)
      return fail(
        'org-mismatch',
        `a partner CA of "${anchor.org ?? ''}" certified a ${who.kind} of "${org ?? ''}"`,
      );
    const serial = normalizeSerial(bytesToHex(new Uint8Array(tbs.serialNumber)));
    if (anchor.kind === 'org' && this.#revoked.has(serial))
      return fail('revoked', `certificate ${serial} is revoked`);
    if (anchor.kind === 'org' && this.#revocationStale)
      return fail(
        'revocation-stale',
        "the org's certificate revocation list is out of date (past nextUpdate + grace, or none received): org certificates are refused until a current one arrives",
      );
    return {
      ok: true,
      identity: {
        ...who,
        org: org as string,
        serial,
        issuer: anchor.kind,
        publicKeyRaw: new Uint8Array(spki.subjectPublicKey),
        notBefore,
        notAfter,
      },
      caNotBefore: anchor.notBefore,
      caNotAfter: anchor.notAfter,
    };
  }
}

const ED25519_OID = '1.3.101.112';
const OID_CN = '2.5.4.3';
const OID_O = '2.5.4.10';
const OID_OU = '2.5.4.11';
const OID_L = '2.5.4.7';

interface ParsedCert {
  tbs: Certificate['tbsCertificate'];
  /** The exact TBSCertificate bytes the signature covers. */
  tbsRaw: Uint8Array;
  signatureAlgorithm: string;
  signature: Uint8Array;
  /** extnValue by extension OID (a repeated extension makes the certificate malformed). */
  ext: Map<string, Uint8Array>;
}

/** Parses a DER certificate strictly enough to trust what it says: undefined when malformed. */
function parseCertificateDer(der: Uint8Array): ParsedCert | undefined {
  try {
    const outer = readTlv(der, 0);
    if (outer?.tag !== 0x30 || outer.end !== der.length) return undefined;
    const parts = children(der, outer);
    const tbsTlv = parts?.[0];
    if (parts?.length !== 3 || !tbsTlv || tbsTlv.tag !== 0x30) return undefined;
    const cert = AsnConvert.parse(der, Certificate);
    const ext = new Map<string, Uint8Array>();
    for (const e of cert.tbsCertificate.extensions ?? []) {
      if (ext.has(e.extnID)) return undefined;
      ext.set(e.extnID, new Uint8Array(e.extnValue.buffer));
    }
    return {
      tbs: cert.tbsCertificate,
      tbsRaw: der.subarray(tbsTlv.start, tbsTlv.end),
      signatureAlgorithm: cert.signatureAlgorithm.algorithm,
      signature: new Uint8Array(cert.signatureValue),
      ext,
    };
  } catch {
    return undefined;
  }
}

function parseExt<T>(value: Uint8Array, type: new () => T): T | undefined {
  try {
    return AsnConvert.parse(value, type);
  } catch {
    return undefined;
  }
}

/** Single-valued subject attributes by OID (an attribute present twice is left out: ambiguous). */
function nameFields(name: Name): Map<string, string> {
  const out = new Map<string, string>();
  const seen = new Set<string>();
  for (const rdn of name) {
    for (const atv of rdn) {
      if (seen.has(atv.type)) out.delete(atv.type);
      else out.set(atv.type, atv.value.toString());
      seen.add(atv.type);
    }
  }
  return out;
}

function nameText(name: Name): string {
  const short: Record<string, string> = { [OID_CN]: 'CN', [OID_O]: 'O', [OID_OU]: 'OU', [OID_L]: 'L' };
  const parts: string[] = [];
  for (const rdn of name)
    for (const atv of rdn) parts.push(`${short[atv.type] ?? atv.type}=${atv.value.toString()}`);
  return parts
    .join(', ')
    .replace(/[\u0000-\u001f\u007f]/g, ' ')
    .slice(0, 200);
}

function pemToDer(pem: string): Uint8Array {
  const m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]+)-----END CERTIFICATE-----/.exec(pem);
  if (!m?.[1]) throw new Error('not a PEM certificate');
  const bin = atob(m[1].replace(/\s+/g, ''));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function parseAnchor(pem: string, kind: 'org' | 'partner'): Anchor {
  const cert = parseCertificateDer(pemToDer(pem));
  if (!cert) throw new Error(`a ${kind} trust anchor is not a valid certificate`);
  const basic = cert.ext.get(id_ce_basicConstraints);
  if (!basic || !parseExt(basic, BasicConstraints)?.cA)
    throw new Error(`a ${kind} trust anchor must be a CA certificate`);
  const ski = cert.ext.get(id_ce_subjectKeyIdentifier);
  const keyId = ski ? parseExt(ski, SubjectKeyIdentifier) : undefined;
  const spki = cert.tbs.subjectPublicKeyInfo;
  return {
    subject: new Uint8Array(AsnConvert.serialize(cert.tbs.subject)),
    keyId: keyId ? new Uint8Array(keyId.buffer) : undefined,
    publicKeyRaw:
      spki.algorithm.algorithm === ED25519_OID && spki.subjectPublicKey.byteLength === 32
        ? new Uint8Array(spki.subjectPublicKey)
        : undefined,
    org: nameFields(cert.tbs.subject).get(OID_O),
    kind,
    notBefore: cert.tbs.validity.notBefore.getTime(),
    notAfter: cert.tbs.validity.notAfter.getTime(),
  };
}

function fail(reason: TrustFailure, detail: string): { ok: false; reason: TrustFailure; detail: string } {
  return { ok: false, reason, detail };
}
