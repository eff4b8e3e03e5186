// src/pki — Sealroom's X.509 module (Ed25519 everywhere, @peculiar/x509 on Node's WebCrypto).
//
// Organisation CA
//   createCertificateAuthority({ commonName, org, validityDays }) → { certPem, privateKeyPem }
//   loadCa(ca) → { cert, signingKey }   (cached per process)
// Device identity (private key never leaves the device)
//   generateIdentityKey() → { privateKey, publicKey } (node:crypto KeyObjects)
//   identityKeyToPem / identityKeyFromPem, rawPublicKey(publicKey) → 32 bytes
//   deviceIdForPublicKey(publicKey) → "sr-…" (the device id is derived from the key)
//   createCsr(identityKey, { deviceId }) → CSR PEM (subject CN = deviceId, signed by the key)
// Issuing (provisioning service)
//   issueDeviceCertificate({ ca, csrPem, deviceId, roomName, org, site, validityDays }) → certPem
//   issueDeviceCertificateDetailed(...) → { certPem, serial, notBefore, notAfter }
//   parseAndVerifyCsr(csrPem) → { csr, publicKey, commonName }  (throws PkiError)
// Verifying (relay, devices)
//   verifyDeviceCertificate(certPem, caCertPem, { now?, isRevoked? })
//     → { deviceId, roomName, org, site, publicKey, publicKeyRaw, serial, notBefore, notAfter }
//     throws PkiError with code 'malformed' | 'bad-chain' | 'expired' | 'not-yet-valid' | 'revoked' | …
// Certificate subject: CN = device id, O = organisation, OU = room name, L = site;
//   subjectAltName URI urn:sealroom:device:<id>; keyUsage digitalSignature (critical); EKU clientAuth;
//   random 128-bit serial (lowercase hex everywhere in our APIs). `openssl verify -CAfile ca.pem dev.pem` passes.
// Revocation (docs/revocation.md): an RFC 5280 X.509 CRL v2 signed by the org CA
//   issueCrl(ca, { entries, crlNumber, thisUpdate, nextUpdate }) → { der, pem }
//   verifyCrl(pemOrDer, caCertPem) → { der, crlNumber, thisUpdate, nextUpdate, serials }
//   crlFreshness(crl, now, graceMs) / compareCrl(candidate, held)
//   new RevocationFeed({ baseUrl, caCertPem, stateDir?, graceMs?, failClosed?, fetch? }) (a RevocationSource):
//     load()/refresh()/start()/stop(), isRevoked(serial), acceptsNewSessions(), status(), 'change';
//     polls GET /v1/revocations (DER), refuses older CRL numbers (persisted), fails closed when expired.
//   combineRevocationSources(feeds) → one RevocationSource (one feed per trusted CA)
// People (docs/people.md): short-lived person certificates for a browser's Ed25519 key
//   issuePersonCertificate({ ca, publicKeyRaw, person: { name, email, org }, validityMs? ≤ 12 h })
//   verifyPersonCertificate(certPem, caCertPem, opts?) → { kind: 'person', personId, name, email, org, … }
//   profile: CN name, O org, SAN email + urn:sealroom:person:<email>, EKU clientAuth + SEALROOM_PERSON_EKU;
//   device verifiers refuse the person EKU ('wrong-kind'); personKeyNonce / personCertRequestBytes
//   (src/pki/person-profile.ts, browser-safe) are the OIDC nonce and the proof statement.
// Device trust (the E2EE trust callback; synchronous; browser-safe: rooms and people)
//   new TrustStore({ orgCaPem, partnerCaPems?, revokedSerials? }).verify(der, identityKey?)
//     → { ok: true, identity } | { ok: false, reason: TrustFailure, detail }   (never throws; cached per DER)
//   signPartnerCas(ca, pems) / verifyPartnerCas(bundle, orgCaPem): partner-org CAs in signed config
export {
  type CertificateAuthority,
  type LoadedCa,
  createCertificateAuthority,
  loadCa,
  parseCertificate,
  randomSerial,
} from './ca.js';
export { PkiError, type PkiErrorCode } from './errors.js';
export {
  type IdentityKey,
  createCsr,
  deviceIdForPublicKey,
  generateIdentityKey,
  identityKeyFromPem,
  identityKeyToPem,
  rawPublicKey,
} from './identity.js';
export {
  type IssueRequest,
  type IssuedCertificate,
  type ParsedCsr,
  issueDeviceCertificate,
  issueDeviceCertificateDetailed,
  parseAndVerifyCsr,
} from './issue.js';
export {
  CRL_REISSUE_MS,
  CRL_VALIDITY_MS,
  type CrlEntry,
  CrlRefusedError,
  compareCrl,
  crlFreshness,
  crlToPem,
  DEFAULT_CRL_GRACE_MS,
  type IssueCrlOptions,
  issueCrl,
  MAX_CRL_BYTES,
  revocationStatusOf,
  type VerifiedCrl,
  verifyCrl,
} from './crl.js';
export {
  combineRevocationSources,
  crlStateFileName,
  RevocationFeed,
  type RevocationFeedOptions,
} from './revocation-feed.js';
export type { RevocationSource, RevocationState, RevocationStatus } from './revocation-source.js';
export { x509 } from './provider.js';
export { type DeviceSubject, deviceUri } from './subject.js';
export {
  type PartnerCaBundle,
  MAX_PARTNER_CAS,
  signPartnerCas,
  verifyPartnerCas,
} from './partner-cas.js';
export {
  type CertifiedIdentity,
  MAX_CERTIFICATE_DER_BYTES,
  type TrustAnchors,
  type TrustFailure,
  TrustStore,
  type TrustStoreOptions,
  type TrustVerdict,
} from './trust-store.js';
export {
  type VerifiedDevice,
  type VerifyOptions,
  normalizeSerial,
  verifyDeviceCertificate,
} from './verify.js';
export {
  ed25519Spki,
  issuePersonCertificate,
  type PersonClaims,
  personEmailOf,
  type VerifiedPerson,
  verifyPersonCertificate,
} from './person.js';
export {
  CLIENT_AUTH_EKU,
  PERSON_CERT_MAX_MS,
  PERSON_CERT_REQUEST_LABEL,
  PERSON_CERT_SLACK_MS,
  PERSON_KEY_LABEL,
  personCertRequestBytes,
  personIdOf,
  personKeyNonce,
  personUri,
  SEALROOM_PERSON_EKU,
} from './person-profile.js';
