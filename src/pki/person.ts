// Person certificates: short-lived X.509 certificates the org CA issues to a signed-in person's
// browser key (profile in ./person-profile.ts). The provisioning service issues them only after it
// verified an OIDC ID token bound to the key (provisioning/service/routes-people.ts); the relay
// verifies them here; rooms verify them in the TrustStore.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { type CertificateAuthority, loadCa, randomSerial } from './ca.js';
import { PkiError } from './errors.js';
import type { IssuedCertificate } from './issue.js';
import {
  CLIENT_AUTH_EKU,
  isPlausibleEmail,
  MAX_PERSON_NAME_LENGTH,
  PERSON_CERT_MAX_MS,
  personIdOf,
  personLifetimeOk,
  personUri,
  SEALROOM_PERSON_EKU,
} from './person-profile.js';
import { ED25519, x509 } from './provider.js';
import { normalizeSerial } from './serial.js';
import { singleField, utf8 } from './subject.js';
import { hasPersonEku, type VerifyOptions, verifyIssuedBy } from './verify.js';

export interface PersonClaims {
  name: string;
  email: string;
  org: string;
}

export interface VerifiedPerson {
  kind: 'person';
  /** 'person:' + email */
  personId: string;
  name: string;
  email: string;
  org: string;
  publicKey: KeyObject;
  publicKeyRaw: Uint8Array;
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

const ED25519_SPKI_PREFIX = Uint8Array.from([
  0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
]);

/** The SPKI DER of a raw 32-byte Ed25519 public key. */
export function ed25519Spki(publicKeyRaw: Uint8Array): Uint8Array<ArrayBuffer> {
  if (publicKeyRaw.length !== 32) throw new PkiError('wrong-key-type', 'an Ed25519 key is 32 bytes');
  const out = new Uint8Array(ED25519_SPKI_PREFIX.length + 32);
  out.set(ED25519_SPKI_PREFIX);
  out.set(publicKeyRaw, ED25519_SPKI_PREFIX.length);
  return out;
}

function checkClaims(person: PersonClaims): void {
  if (!isPlausibleEmail(person.email)) throw new PkiError('bad-subject', 'not a usable email address');
  for (const [what, value] of [
    ['name', person.name],
    ['org', person.org],
  ] as const) {
    if (value.length === 0 || value.length > MAX_PERSON_NAME_LENGTH || /[\u0000-\u001f\u007f]/.test(value))
      throw new PkiError('bad-subject', `the person's ${what} is empty, too long or has control characters`);
  }
}

/** Issues a person certificate for `publicKeyRaw` (the caller verified who the person is). */
export async function issuePersonCertificate(req: {
  ca: CertificateAuthority;
  publicKeyRaw: Uint8Array;
  person: PersonClaims;
  validityMs?: number;
  now?: Date;
}): Promise<IssuedCertificate> {
  checkClaims(req.person);
  const validityMs = req.validityMs ?? PERSON_CERT_MAX_MS;
  if (!(validityMs > 0 && validityMs <= PERSON_CERT_MAX_MS))
    throw new PkiError('bad-lifetime', `a person certificate is valid at most ${PERSON_CERT_MAX_MS} ms`);
  const { cert: caCert, signingKey } = await loadCa(req.ca);
  const serial = randomSerial();
  // Back-date a minute like device certificates (clock drift); the lifetime check allows for it.
  const notBefore = new Date((req.now ?? new Date()).getTime() - 60_000);
  const notAfter = new Date(Math.min(notBefore.getTime() + 60_000 + validityMs, caCert.notAfter.getTime()));
  const publicKey = new x509.PublicKey(ed25519Spki(req.publicKeyRaw));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: new x509.Name([{ CN: [utf8(req.person.name)] }, { O: [utf8(req.person.org)] }]),
    issuer: caCert.subjectName,
    notBefore,
    notAfter,
    publicKey,
    signingKey,
    signingAlgorithm: ED25519,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([CLIENT_AUTH_EKU, SEALROOM_PERSON_EKU]),
      new x509.SubjectAlternativeNameExtension([
        { type: 'email', value: req.person.email },
        { type: 'url', value: personUri(req.person.email) },
      ]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
    ],
  });
  // The certificate's own times (whole seconds), so what callers report is what verifiers see.
  return { certPem: cert.toString('pem'), serial, notBefore: cert.notBefore, notAfter: cert.notAfter };
}

/** Reads the email from the SAN: exactly one rfc822Name, and the matching person URI. */
export function personEmailOf(cert: x509.X509Certificate): string {
  let san: x509.SubjectAlternativeNameExtension | null;
  try {
    san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  } catch {
    throw new PkiError('malformed', 'unreadable subject alternative name');
  }
  const emails = san?.names.items.filter((n) => n.type === 'email').map((n) => n.value) ?? [];
  const uris = san?.names.items.filter((n) => n.type === 'url').map((n) => n.value) ?? [];
  const email = emails.length === 1 ? emails[0] : undefined;
  if (email === undefined || !isPlausibleEmail(email))
    throw new PkiError('bad-subject', 'a person certificate names exactly one email address');
  if (uris.length !== 1 || uris[0] !== personUri(email))
    throw new PkiError('bad-subject', 'the person URI does not match the email address');
  return email;
}

/** Verifies a person certificate against one CA: chain, validity, lifetime, key, usage, names, revocation. */
export async function verifyPersonCertificate(
  certPem: string,
  caCertPem: string,
  opts: VerifyOptions = {},
): Promise<VerifiedPerson> {
  const cert = await verifyIssuedBy(certPem, caCertPem, opts.now ?? new Date());
  if (!hasPersonEku(cert))
    throw new PkiError('wrong-kind', 'this is not a person certificate (no person extended key usage)');
  if (!personLifetimeOk(cert.notBefore, cert.notAfter))
    throw new PkiError('bad-lifetime', 'a person certificate may be valid for at most 12 hours');
  const basic = cert.getExtension(x509.BasicConstraintsExtension);
  if (basic?.ca) throw new PkiError('bad-chain', 'a CA certificate is not a person certificate');
  const usage = cert.getExtension(x509.KeyUsagesExtension);
  if (!usage || (usage.usages & x509.KeyUsageFlags.digitalSignature) === 0)
    throw new PkiError('bad-chain', 'the certificate does not allow digital signatures');
  const name = singleField(cert.subjectName, 'CN');
  const org = singleField(cert.subjectName, 'O');
  if (name === undefined || org === undefined)
    throw new PkiError('bad-subject', 'the person certificate subject lacks CN or O');
  const email = personEmailOf(cert);
  const serial = normalizeSerial(cert.serialNumber);
  if (opts.isRevoked && (await opts.isRevoked(serial)))
    throw new PkiError('revoked', `certificate ${serial} is revoked`);
  const spki = new Uint8Array(cert.publicKey.rawData);
  const publicKey = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' });
  return {
    kind: 'person',
    personId: personIdOf(email),
    name,
    email,
    org,
    publicKey,
    publicKeyRaw: spki.slice(spki.length - 32),
    serial,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}
