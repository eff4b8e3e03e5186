// Verifying a device certificate against the org CA: chain (issuer name + signature), validity window,
// key type and usage, revocation. Errors are typed (PkiError.code) so callers can say precisely why.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { parseCertificate } from './ca.js';
import { PkiError } from './errors.js';
import { rawPublicKey } from './identity.js';
import { ekuHasPerson } from './person-profile.js';
import { x509 } from './provider.js';
import { normalizeSerial } from './serial.js';
import { singleField } from './subject.js';

export { normalizeSerial };

export interface VerifiedDevice {
  deviceId: string;
  roomName: string;
  org: string;
  site: string;
  publicKey: KeyObject;
  /** The raw 32-byte Ed25519 public key. */
  publicKeyRaw: Uint8Array;
  /** Hex, lowercase. */
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

export interface VerifyOptions {
  now?: Date;
  /** Called with the lowercase hex serial; true means revoked. */
  isRevoked?: (serial: string) => boolean | Promise<boolean>;
}

/**
 * The checks every certificate from an org CA gets, whatever it certifies: issued and signed by this
 * CA, inside its validity window and the CA's, an Ed25519 key allowed to sign.
 */
export async function verifyIssuedBy(
  certPem: string,
  caCertPem: string,
  now: Date,
): Promise<x509.X509Certificate> {
  const cert = parseCertificate(certPem);
  const caCert = parseCertificate(caCertPem);
  if (cert.issuer !== caCert.subject) {
    throw new PkiError('bad-chain', 'the certificate was not issued by this CA');
  }
  let signed = false;
  try {
    signed = await cert.verify({ publicKey: caCert.publicKey, signatureOnly: true });
  } catch {
    signed = false;
  }
  if (!signed) throw new PkiError('bad-chain', 'the certificate signature does not verify with the CA key');
  if (now < cert.notBefore) throw new PkiError('not-yet-valid', 'the certificate is not valid yet');
  if (now > cert.notAfter)
    throw new PkiError('expired', `the certificate expired at ${cert.notAfter.toISOString()}`);
  if (now < caCert.notBefore || now > caCert.notAfter) {
    throw new PkiError('bad-chain', 'the CA certificate is outside its validity period');
  }
  if (cert.publicKey.algorithm.name !== 'Ed25519') {
    throw new PkiError('wrong-key-type', 'the certificate key is not Ed25519');
  }
  const usage = cert.getExtension(x509.KeyUsagesExtension);
  if (!usage || (usage.usages & x509.KeyUsageFlags.digitalSignature) === 0) {
    throw new PkiError('bad-chain', 'the certificate does not allow digital signatures');
  }
  return cert;
}

export async function verifyDeviceCertificate(
  certPem: string,
  caCertPem: string,
  opts: VerifyOptions = {},
): Promise<VerifiedDevice> {
  const cert = await verifyIssuedBy(certPem, caCertPem, opts.now ?? new Date());
  // A person certificate never passes as a room's (src/pki/person.ts refuses the reverse).
  if (hasPersonEku(cert)) {
    throw new PkiError('wrong-kind', 'this is a person certificate, not a device certificate');
  }
  const deviceId = singleField(cert.subjectName, 'CN');
  const org = singleField(cert.subjectName, 'O');
  const roomName = singleField(cert.subjectName, 'OU');
  const site = singleField(cert.subjectName, 'L');
  if (deviceId === undefined || org === undefined || roomName === undefined || site === undefined) {
    throw new PkiError('bad-subject', 'the certificate subject lacks CN, O, OU or L');
  }
  const serial = normalizeSerial(cert.serialNumber);
  if (opts.isRevoked && (await opts.isRevoked(serial))) {
    throw new PkiError('revoked', `certificate ${serial} is revoked`);
  }
  const publicKey = createPublicKey({
    key: Buffer.from(cert.publicKey.rawData),
    format: 'der',
    type: 'spki',
  });
  return {
    deviceId,
    roomName,
    org,
    site,
    publicKey,
    publicKeyRaw: rawPublicKey(publicKey),
    serial,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}

/** True when the certificate's extended key usage names SEALROOM_PERSON_EKU (unreadable EKU: refused). */
export function hasPersonEku(cert: x509.X509Certificate): boolean {
  let eku: x509.ExtendedKeyUsageExtension | null;
  try {
    eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  } catch {
    throw new PkiError('malformed', 'unreadable extended key usage');
  }
  if (!eku) return false;
  const has = ekuHasPerson(new Uint8Array(eku.value));
  if (has === undefined) throw new PkiError('malformed', 'unreadable extended key usage');
  return has;
}
