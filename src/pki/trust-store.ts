// The device's synchronous certificate check for the E2EE trust callback: is this certificate DER,
// presented inside a signed key binding, a valid room certificate from one of the trust anchors this
// device pinned (its org CA, partner-org CAs from signed config), not on the org's CRL (refused
// outright while that CRL is out of date: 'revocation-stale'),
// and is its Ed25519 key the binding's identity key? The E2EE core calls it synchronously while it
// handles a message, so everything here is sync: node:crypto's X509Certificate checks the signature,
// @peculiar/x509 only parses (subject fields, key usage).
//
// Only direct issuance is accepted (anchor → room certificate), as src/pki issues. A partner CA may
// only certify rooms of its own organisation (subject O must equal the CA's O), so it cannot put our
// org's name on the wall. The org's revocation list names org serials only, so it is checked for
// certificates of the org CA.
import { createHash, X509Certificate } from 'node:crypto';
import { rawPublicKey } from './identity.js';
import { x509 } from './provider.js';
import { singleField } from './subject.js';
import { normalizeSerial } from './verify.js';

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
  | 'key-mismatch';

/** What the wall may show about a participant: read from a certificate verified on this device. */
export interface CertifiedIdentity {
  deviceId: string;
  roomName: string;
  org: string;
  site: string;
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
  cert: X509Certificate;
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
    const hash = createHash('sha256').update(der).digest('hex');
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

  /** The time-independent part: parse, chain, key, usage, subject, revocation. */
  #check(der: Uint8Array): CachedCheck {
    let cert: X509Certificate;
    let parsed: x509.X509Certificate;
    try {
      cert = new X509Certificate(der);
      parsed = new x509.X509Certificate(Uint8Array.from(der).buffer);
    } catch {
      return fail('malformed', 'not a DER X.509 certificate');
    }
    const anchor = this.#anchors.find((a) => cert.checkIssued(a.cert));
    if (!anchor) return fail('unknown-issuer', `issued by "${oneLine(cert.issuer)}", not a pinned CA`);
    let signed = false;
    try {
      signed = cert.verify(anchor.cert.publicKey);
    } catch {
      signed = false;
    }
    if (!signed) return fail('bad-signature', 'the signature does not verify with the issuing CA key');
    if (cert.ca) return fail('is-ca', 'a CA certificate is not a room certificate');
    if (cert.publicKey.asymmetricKeyType !== 'ed25519')
      return fail('wrong-key-type', 'the key is not Ed25519');
    let usage: x509.KeyUsagesExtension | null;
    try {
      usage = parsed.getExtension(x509.KeyUsagesExtension);
    } catch {
      return fail('malformed', 'unreadable key usage');
    }
    if (!usage || (usage.usages & x509.KeyUsageFlags.digitalSignature) === 0)
      return fail('no-digital-signature', 'the certificate does not allow digital signatures');
    let subject: { deviceId?: string; org?: string; roomName?: string; site?: string };
    try {
      subject = {
        deviceId: singleField(parsed.subjectName, 'CN'),
        org: singleField(parsed.subjectName, 'O'),
        roomName: singleField(parsed.subjectName, 'OU'),
        site: singleField(parsed.subjectName, 'L'),
      };
    } catch {
      return fail('bad-subject', 'unreadable subject');
    }
    const { deviceId, org, roomName, site } = subject;
    if (deviceId === undefined || org === undefined || roomName === undefined || site === undefined)
      return fail('bad-subject', 'the subject lacks CN, O, OU or L');
    if (anchor.kind === 'partner' && org !== anchor.org)
      return fail('org-mismatch', `a partner CA of "${anchor.org ?? ''}" certified a room of "${org}"`);
    const serial = normalizeSerial(cert.serialNumber);
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
        deviceId,
        roomName,
        org,
        site,
        serial,
        issuer: anchor.kind,
        publicKeyRaw: rawPublicKey(cert.publicKey),
        notBefore: new Date(cert.validFrom),
        notAfter: new Date(cert.validTo),
      },
      caNotBefore: anchor.notBefore,
      caNotAfter: anchor.notAfter,
    };
  }
}

function parseAnchor(pem: string, kind: 'org' | 'partner'): Anchor {
  const cert = new X509Certificate(pem);
  if (!cert.ca) throw new Error(`a ${kind} trust anchor must be a CA certificate`);
  let org: string | undefined;
  try {
    org = singleField(new x509.X509Certificate(pem).subjectName, 'O');
  } catch {
    org = undefined;
  }
  return { cert, org, kind, notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) };
}

function fail(reason: TrustFailure, detail: string): { ok: false; reason: TrustFailure; detail: string } {
  return { ok: false, reason, detail };
}

function oneLine(s: string): string {
  return s.replace(/\s+/g, ', ').slice(0, 200);
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}
