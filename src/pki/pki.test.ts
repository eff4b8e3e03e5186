import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CertificateAuthority,
  createCertificateAuthority,
  createCsr,
  deviceIdForPublicKey,
  generateIdentityKey,
  identityKeyFromPem,
  identityKeyToPem,
  issueDeviceCertificate,
  issueCrl,
  issueDeviceCertificateDetailed,
  PkiError,
  rawPublicKey,
  verifyCrl,
  verifyDeviceCertificate,
} from './index.js';

let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
const dir = mkdtempSync(join(tmpdir(), 'sealroom-pki-'));

beforeAll(async () => {
  ca = await createCertificateAuthority({ commonName: 'Acme Rooms CA', org: 'Acme', validityDays: 3650 });
  otherCa = await createCertificateAuthority({ commonName: 'Evil CA', org: 'Acme', validityDays: 3650 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function enroll(roomName = 'Boardroom, 4th floor', site = 'Berlin HQ') {
  const key = generateIdentityKey();
  const deviceId = deviceIdForPublicKey(key.publicKey);
  const csrPem = await createCsr(key, { deviceId });
  const issued = await issueDeviceCertificateDetailed({
    ca,
    csrPem,
    deviceId,
    roomName,
    org: 'Acme',
    site,
    validityDays: 30,
  });
  return { key, deviceId, csrPem, ...issued };
}

function pkiCode(err: unknown): string {
  expect(err).toBeInstanceOf(PkiError);
  return (err as PkiError).code;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return pkiCode(err);
  }
  throw new Error('expected a PkiError');
}

describe('src/pki', () => {
  it('issues a certificate that the openssl binary verifies against the CA', async () => {
    const { certPem } = await enroll();
    writeFileSync(join(dir, 'ca.pem'), ca.certPem);
    writeFileSync(join(dir, 'dev.pem'), certPem);
    const out = execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), join(dir, 'dev.pem')], {
      encoding: 'utf8',
    });
    expect(out.trim()).toBe(`${join(dir, 'dev.pem')}: OK`);
    const subject = execFileSync(
      'openssl',
      ['x509', '-noout', '-subject', '-nameopt', 'RFC2253', '-in', join(dir, 'dev.pem')],
      {
        encoding: 'utf8',
      },
    );
    expect(subject).toContain('OU=Boardroom\\, 4th floor');
    expect(subject).toContain('L=Berlin HQ');
  });

  it('openssl rejects the certificate against another CA', async () => {
    const { certPem } = await enroll();
    writeFileSync(join(dir, 'other.pem'), otherCa.certPem);
    writeFileSync(join(dir, 'dev2.pem'), certPem);
    expect(() =>
      execFileSync('openssl', ['verify', '-CAfile', join(dir, 'other.pem'), join(dir, 'dev2.pem')], {
        stdio: 'pipe',
      }),
    ).toThrow();
  });

  it('verifies back the identity that was issued, with the device key', async () => {
    const e = await enroll('Room "A"=1+2; DROP TABLE devices;--', 'Site\u00e9');
    const v = await verifyDeviceCertificate(e.certPem, ca.certPem);
    expect(v.deviceId).toBe(e.deviceId);
    expect(v.roomName).toBe('Room "A"=1+2; DROP TABLE devices;--');
    expect(v.site).toBe('Site\u00e9');
    expect(v.org).toBe('Acme');
    expect(v.serial).toBe(e.serial);
    expect(Buffer.from(v.publicKeyRaw)).toEqual(Buffer.from(rawPublicKey(e.key.publicKey)));
  });

  it('refuses another CA, expiry, not-yet-valid and revocation with typed errors', async () => {
    const e = await enroll();
    expect(await codeOf(verifyDeviceCertificate(e.certPem, otherCa.certPem))).toBe('bad-chain');
    expect(
      await codeOf(
        verifyDeviceCertificate(e.certPem, ca.certPem, { now: new Date(Date.now() + 31 * 86_400_000) }),
      ),
    ).toBe('expired');
    expect(
      await codeOf(verifyDeviceCertificate(e.certPem, ca.certPem, { now: new Date(Date.now() - 3_600_000) })),
    ).toBe('not-yet-valid');
    expect(
      await codeOf(verifyDeviceCertificate(e.certPem, ca.certPem, { isRevoked: (s) => s === e.serial })),
    ).toBe('revoked');
    expect(await codeOf(verifyDeviceCertificate('garbage', ca.certPem))).toBe('malformed');
  });

  it('refuses a malformed CSR, a CSR whose signature was tampered with, and a CN that is not the device id', async () => {
    const key = generateIdentityKey();
    const deviceId = deviceIdForPublicKey(key.publicKey);
    const base = { ca, deviceId, roomName: 'r', org: 'Acme', site: 's', validityDays: 1 };
    expect(await codeOf(issueDeviceCertificate({ ...base, csrPem: 'not a csr' }))).toBe('malformed');
    const csrPem = await createCsr(key, { deviceId });
    // Flip one byte of the signature (the last bytes of the DER).
    const der = Buffer.from(csrPem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
    der[der.length - 5] = (der[der.length - 5] ?? 0) ^ 0xff;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----`;
    expect(await codeOf(issueDeviceCertificate({ ...base, csrPem: tampered }))).toBe('bad-signature');
    const other = await createCsr(key, { deviceId: 'sr-someoneelse' });
    expect(await codeOf(issueDeviceCertificate({ ...base, csrPem: other }))).toBe('bad-subject');
  });

  it('round-trips identity keys through PEM', () => {
    const key = generateIdentityKey();
    const back = identityKeyFromPem(identityKeyToPem(key));
    expect(deviceIdForPublicKey(back.publicKey)).toBe(deviceIdForPublicKey(key.publicKey));
    expect(deviceIdForPublicKey(key.publicKey)).toMatch(/^sr-[a-z2-7]{20}$/);
  });

  it('revokes real device certificates through an X.509 CRL signed by the CA', async () => {
    const [e1, e2] = [await enroll(), await enroll()];
    const now = new Date();
    const { pem } = await issueCrl(ca, {
      entries: [{ serial: e1.serial.toUpperCase(), revokedAt: now }],
      crlNumber: 1n,
      thisUpdate: now,
      nextUpdate: new Date(now.getTime() + 86_400_000),
    });
    const crl = await verifyCrl(pem, ca.certPem);
    const isRevoked = (s: string) => crl.serials.has(s);
    expect(await codeOf(verifyDeviceCertificate(e1.certPem, ca.certPem, { isRevoked }))).toBe('revoked');
    expect((await verifyDeviceCertificate(e2.certPem, ca.certPem, { isRevoked })).serial).toBe(e2.serial);
    expect(await codeOf(verifyCrl(pem, otherCa.certPem))).toBe('bad-chain');
  });
});
