// The person-certificate profile and the statements around its issuance, shared by the issuer
// (src/pki/person.ts, the provisioning service), the verifiers (relay, TrustStore) and the web page.
// Pure: no node: imports, so it bundles for the browser.
//
// A person certificate: CN = display name, O = org, SAN rfc822Name = email and
// URI urn:sealroom:person:<encodeURIComponent(email)>, EKU clientAuth + SEALROOM_PERSON_EKU, Ed25519,
// valid at most 12 h. Device certificates never carry the person EKU, and every verifier decides the
// kind by it, so neither kind can pass as the other.
import { sha256 } from '@noble/hashes/sha2.js';
import { encodeCanonical } from '../core/e2ee/canonical.js';
import { bytesEqual, ekuOids, oidContent } from './der.js';

/** A UUID-based OID (2.25.<uuid as integer>): ours, no registration needed. */
export const SEALROOM_PERSON_EKU = '2.25.193304170911372207592617391094373386721';
export const CLIENT_AUTH_EKU = '1.3.6.1.5.5.7.3.2';
const PERSON_EKU_CONTENT = oidContent(SEALROOM_PERSON_EKU);

/**
 * Whether an ExtendedKeyUsage extnValue (DER) names the person EKU; undefined when malformed.
 * Compared as DER bytes: the arc is too large for the parsers' number-based OID strings.
 */
export function ekuHasPerson(extnValue: Uint8Array): boolean | undefined {
  const oids = ekuOids(extnValue);
  return oids?.some((o) => bytesEqual(o, PERSON_EKU_CONTENT));
}
/** The longest lifetime a person certificate may have. */
export const PERSON_CERT_MAX_MS = 12 * 3600_000;
/** Verifiers allow this much on top (issuers back-date notBefore a minute against clock drift). */
export const PERSON_CERT_SLACK_MS = 5 * 60_000;
/** RFC 5321 path limit: longer addresses are refused everywhere. */
export const MAX_EMAIL_LENGTH = 254;
/** Names and org in a person certificate (the relay wire allows 128). */
export const MAX_PERSON_NAME_LENGTH = 128;

export const PERSON_KEY_LABEL = 'sealroom/v1/person-key';
export const PERSON_CERT_REQUEST_LABEL = 'sealroom/v1/person-cert-request';

export function personUri(email: string): string {
  return `urn:sealroom:person:${encodeURIComponent(email)}`;
}

export function personIdOf(email: string): string {
  return `person:${email}`;
}

/**
 * The OIDC nonce that binds an ID token to one person key:
 * base64url(SHA-256(encode("sealroom/v1/person-key", publicKeyRaw))).
 */
export function personKeyNonce(publicKeyRaw: Uint8Array): string {
  return base64url(sha256(encodeCanonical(PERSON_KEY_LABEL, publicKeyRaw)));
}

/** What the page signs with the person key to prove possession: encode(label, idToken, publicKeyRaw). */
export function personCertRequestBytes(idToken: string, publicKeyRaw: Uint8Array): Uint8Array {
  return encodeCanonical(PERSON_CERT_REQUEST_LABEL, idToken, publicKeyRaw);
}

/** True when notAfter − notBefore is within the person limit (plus slack). */
export function personLifetimeOk(notBefore: Date, notAfter: Date): boolean {
  return notAfter.getTime() - notBefore.getTime() <= PERSON_CERT_MAX_MS + PERSON_CERT_SLACK_MS;
}

/** A plausible email for a certificate: one '@', no spaces or controls, bounded. */
export function isPlausibleEmail(email: string): boolean {
  return (
    email.length >= 3 &&
    email.length <= MAX_EMAIL_LENGTH &&
    /^[^\s@\u0000-\u001f\u007f]+@[^\s@\u0000-\u001f\u007f]+$/.test(email)
  );
}

export function base64url(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** Strict base64url decoding (no padding, no other characters); undefined when malformed. */
export function fromBase64url(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return undefined;
  const bin = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  // Reject non-canonical trailing bits (two encodings of the same bytes).
  return base64url(out) === text ? out : undefined;
}
