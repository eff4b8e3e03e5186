// Issuing device certificates from CSRs. The CSR's own signature proves the requester holds the key;
// the subject comes from what IT assigned at claim time, never from the CSR.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { type CertificateAuthority, loadCa, randomSerial } from './ca.js';
import { PkiError } from './errors.js';
import { ED25519, x509 } from './provider.js';
import { deviceSubjectName, deviceUri, singleField } from './subject.js';

const DAY_MS = 86_400_000;

export interface ParsedCsr {
  csr: x509.Pkcs10CertificateRequest;
  publicKey: KeyObject;
  commonName: string | undefined;
}

/** Parses a PEM CSR, checks it is Ed25519 and that it is signed by its own key. */
export async function parseAndVerifyCsr(csrPem: string): Promise<ParsedCsr> {
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch {
    throw new PkiError('malformed', 'not a PEM PKCS#10 certificate request');
  }
  if (csr.publicKey.algorithm.name !== 'Ed25519') {
    throw new PkiError('wrong-key-type', 'the CSR key must be Ed25519');
  }
  let ok = false;
  try {
    ok = await csr.verify();
  } catch {
    ok = false;
  }
  if (!ok) throw new PkiError('bad-signature', 'the CSR is not signed by its own key');
  const publicKey = createPublicKey({ key: Buffer.from(csr.publicKey.rawData), format: 'der', type: 'spki' });
  return { csr, publicKey, commonName: singleField(csr.subjectName, 'CN') };
}

export interface IssueRequest {
  ca: CertificateAuthority;
  csrPem: string;
  deviceId: string;
  roomName: string;
  org: string;
  site: string;
  validityDays: number;
  now?: Date;
  /** Hex serial; random when absent. */
  serial?: string;
}

export interface IssuedCertificate {
  certPem: string;
  serial: string;
  notBefore: Date;
  notAfter: Date;
}

/** Issues and returns the full record; `issueDeviceCertificate` returns only the PEM. */
export async function issueDeviceCertificateDetailed(req: IssueRequest): Promise<IssuedCertificate> {
  const { csr, commonName } = await parseAndVerifyCsr(req.csrPem);
  if (commonName !== req.deviceId) {
    throw new PkiError('bad-subject', 'the CSR common name must be the device id');
  }
  const { cert: caCert, signingKey } = await loadCa(req.ca);
  const serial = req.serial ?? randomSerial();
  // Back-date a minute: device clocks drift, and a certificate "not yet valid" for seconds helps nobody.
  const notBefore = new Date((req.now ?? new Date()).getTime() - 60_000);
  const notAfter = new Date(
    Math.min(notBefore.getTime() + req.validityDays * DAY_MS, caCert.notAfter.getTime()),
  );
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serial,
    subject: deviceSubjectName({
      deviceId: req.deviceId,
      org: req.org,
      roomName: req.roomName,
      site: req.site,
    }),
    issuer: caCert.subjectName,
    notBefore,
    notAfter,
    publicKey: csr.publicKey,
    signingKey,
    signingAlgorithm: ED25519,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: deviceUri(req.deviceId) }]),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
      await x509.SubjectKeyIdentifierExtension.create(csr.publicKey),
    ],
  });
  return { certPem: cert.toString('pem'), serial, notBefore, notAfter };
}

export async function issueDeviceCertificate(req: IssueRequest): Promise<string> {
  return (await issueDeviceCertificateDetailed(req)).certPem;
}
