// The org's revocation list is an RFC 5280 X.509 CRL signed by the org CA (src/pki/crl.ts). These
// tests play the attacker against it: the old list's comma-join forgery, tampering with any byte,
// removing or merging entries, a CRL from another CA (also one with the same name), a CRL without a
// number. And the real `openssl crl -CAfile` verifies what we issue.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AsnConvert } from '@peculiar/asn1-schema';
import { CertificateList } from '@peculiar/asn1-x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type CertificateAuthority,
  CRL_VALIDITY_MS,
  compareCrl,
  crlFreshness,
  createCertificateAuthority,
  issueCrl,
  loadCa,
  PkiError,
  verifyCrl,
  x509,
} from '../src/pki/index.js';

let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let sameNameCa: CertificateAuthority;
let dir: string;
const thisUpdate = new Date('2026-03-01T10:00:00Z');
const nextUpdate = new Date(thisUpdate.getTime() + CRL_VALIDITY_MS);
const A = '4a1b2c3d4e5f60718293a4b5c6d7e8f9';
const B = '5b2c3d4e5f60718293a4b5c6d7e8f90a';

beforeAll(async () => {
  ca = await createCertificateAuthority({ commonName: 'Acme Rooms CA', org: 'Acme', validityDays: 3650 });
  otherCa = await createCertificateAuthority({
    commonName: 'Mallory CA',
    org: 'Mallory',
    validityDays: 3650,
  });
  sameNameCa = await createCertificateAuthority({
    commonName: 'Acme Rooms CA',
    org: 'Acme',
    validityDays: 3650,
  });
  dir = mkdtempSync(join(tmpdir(), 'sealroom-crl-'));
  writeFileSync(join(dir, 'ca.pem'), ca.certPem);
  writeFileSync(join(dir, 'other-ca.pem'), otherCa.certPem);
}, 30_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const issue = (entries: string[], crlNumber = 7n, authority = ca) =>
  issueCrl(authority, {
    entries: entries.map((serial) => ({ serial, revokedAt: new Date('2026-02-27T09:00:00Z') })),
    crlNumber,
    thisUpdate,
    nextUpdate,
  });

async function rejected(p: Promise<unknown>): Promise<PkiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PkiError);
  return err as PkiError;
}

/** Re-encodes a CRL after `edit` changed its tbsCertList, keeping the original signature. */
function reencode(der: Buffer, edit: (list: CertificateList) => void): Buffer {
  const list = AsnConvert.parse(der, CertificateList);
  edit(list);
  list.tbsCertListRaw = undefined;
  return Buffer.from(AsnConvert.serialize(list));
}

function opensslVerify(crlDer: Buffer, caFile: string): { ok: boolean; out: string } {
  const file = join(dir, `c-${Math.random().toString(36).slice(2)}.crl`);
  writeFileSync(file, crlDer);
  const r = spawnSync('openssl', ['crl', '-inform', 'DER', '-in', file, '-CAfile', caFile, '-noout'], {
    encoding: 'utf8',
  });
  const out = `${r.stdout}${r.stderr}`;
  return { ok: r.status === 0 && /verify OK/.test(out), out };
}

describe('X.509 CRL (RFC 5280) signed by the org CA', () => {
  it('round-trips: number, dates, serials (normalised), PEM and DER, deterministic', async () => {
    const { der, pem } = await issue([A.toUpperCase(), B, `00${A}`]);
    expect(pem).toMatch(/^-----BEGIN X509 CRL-----\n/);
    for (const input of [der, pem, new Uint8Array(der)]) {
      const v = await verifyCrl(input, ca.certPem);
      expect(v.crlNumber).toBe(7n);
      expect(v.thisUpdate.toISOString()).toBe(thisUpdate.toISOString());
      expect(v.nextUpdate.toISOString()).toBe(nextUpdate.toISOString());
      expect([...v.serials].sort()).toEqual([A, B]);
      expect(v.der.equals(der)).toBe(true);
    }
    expect((await issue([B, A])).der.equals((await issue([A, B])).der)).toBe(true);
    // A serial with the high bit set stays positive (and equal to the certificate's serial).
    const high = await verifyCrl((await issue(['ff01'])).der, ca.certPem);
    expect([...high.serials]).toEqual(['ff01']);
  });

  it('is a v2 CRL with CRL number and authority key identifier extensions, signed Ed25519', async () => {
    const { der } = await issue([A], 12345678901234567890n);
    const crl = new x509.X509Crl(new Uint8Array(der));
    expect(crl.version).toBe(1);
    expect(crl.signatureAlgorithm.name).toBe('Ed25519');
    expect(crl.extensions.map((e) => e.type).sort()).toEqual(['2.5.29.20', '2.5.29.35']);
    const { cert } = await loadCa(ca);
    const aki = crl.getExtension(x509.AuthorityKeyIdentifierExtension);
    expect(aki?.keyId).toBe(cert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId);
    expect((await verifyCrl(der, ca.certPem)).crlNumber).toBe(12345678901234567890n);
  });

  it('the real openssl binary verifies it with -CAfile, and refuses it with another CA', async () => {
    const { der } = await issue([A, B], 42n);
    const ok = opensslVerify(der, join(dir, 'ca.pem'));
    expect(ok.out).toContain('verify OK');
    expect(ok.ok).toBe(true);
    expect(opensslVerify(der, join(dir, 'other-ca.pem')).ok).toBe(false);
    const text = execFileSync('openssl', ['crl', '-inform', 'DER', '-noout', '-text'], {
      input: der,
    }).toString();
    expect(text).toMatch(/Version 2/);
    expect(text).toMatch(/X509v3 CRL Number:\s*\n\s*42/);
    expect(text).toContain(A.toUpperCase());
    expect(text).toContain(B.toUpperCase());
    // An empty CRL (nothing revoked) is valid too.
    expect(opensslVerify((await issue([], 43n)).der, join(dir, 'ca.pem')).ok).toBe(true);
  });

  it('regression: the comma-join forgery of the old JSON list is impossible', async () => {
    // The old list signed `…\n${serials.sort().join(',')}`: [A, B] and the single serial "A,B"
    // had the same signed bytes, so an attacker turned two revocations into none.
    const oldSignedBytes = (serials: string[]) =>
      `sealroom-revocations-v1\nT\n${[...serials].sort().join(',')}`;
    expect(oldSignedBytes([A, B])).toBe(oldSignedBytes([`${A},${B}`]));
    // A CRL serial is a DER INTEGER: "A,B" is not a serial at all …
    expect((await rejected(issue([`${A},${B}`]))).code).toBe('malformed');
    // … and merging the two signed entries into one (A‖B) or dropping either breaks the signature.
    const { der } = await issue([A, B]);
    const merged = reencode(der, (l) => {
      const [ea, eb] = l.tbsCertList.revokedCertificates ?? [];
      if (!ea || !eb) throw new Error('two entries expected');
      ea.userCertificate = Buffer.concat([
        Buffer.from(ea.userCertificate),
        Buffer.from(eb.userCertificate),
      ]).buffer;
      l.tbsCertList.revokedCertificates = [ea];
    });
    expect((await rejected(verifyCrl(merged, ca.certPem))).code).toBe('bad-signature');
    for (const keep of [0, 1]) {
      const dropped = reencode(der, (l) => {
        l.tbsCertList.revokedCertificates = [l.tbsCertList.revokedCertificates?.[keep]].filter(
          (e) => e !== undefined,
        );
      });
      expect((await rejected(verifyCrl(dropped, ca.certPem))).code).toBe('bad-signature');
    }
    const emptied = reencode(der, (l) => {
      l.tbsCertList.revokedCertificates = undefined;
    });
    expect((await rejected(verifyCrl(emptied, ca.certPem))).code).toBe('bad-signature');
  });

  it('no single-byte change anywhere yields a CRL that verifies', async () => {
    const { der } = await issue([A, B]);
    let refused = 0;
    for (let i = 0; i < der.length; i++) {
      for (const flip of [0x01, 0x80]) {
        const t = Buffer.from(der);
        t[i] = (t[i] ?? 0) ^ flip;
        await rejected(verifyCrl(t, ca.certPem));
        refused++;
      }
    }
    expect(refused).toBe(der.length * 2);
    // Truncated or padded.
    await rejected(verifyCrl(der.subarray(0, der.length - 1), ca.certPem));
    await rejected(verifyCrl(Buffer.concat([der, Buffer.from([0])]), ca.certPem));
  });

  it('random mutations (insert, delete, overwrite, truncate) are refused with a typed error, never verified', async () => {
    const { der } = await issue([A, B]);
    let seed = 12345;
    const rnd = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let i = 0; i < 1500; i++) {
      let m = Buffer.from(der);
      for (let k = 0, edits = 1 + rnd(4); k < edits; k++) {
        const at = rnd(m.length);
        const op = rnd(4);
        if (op === 0) m = Buffer.concat([m.subarray(0, at), Buffer.from([rnd(256)]), m.subarray(at)]);
        else if (op === 1) m = Buffer.concat([m.subarray(0, at), m.subarray(at + 1)]);
        else if (op === 2) m[at] = rnd(256);
        else m = m.subarray(0, at);
      }
      if (m.equals(der)) continue;
      const err = await verifyCrl(m, ca.certPem).then(
        () => new Error(`mutation ${i} verified`),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(PkiError);
    }
  }, 60_000);

  it('refuses a CRL from another CA, even one with the same name, and nonsense', async () => {
    const foreign = await issue([A], 99n, otherCa);
    expect((await rejected(verifyCrl(foreign.der, ca.certPem))).code).toBe('bad-chain');
    // Same subject name, other key: the authority key identifier (and the signature) give it away.
    const twin = await issue([A], 99n, sameNameCa);
    expect(['bad-chain', 'bad-signature']).toContain((await rejected(verifyCrl(twin.der, ca.certPem))).code);
    expect((await rejected(verifyCrl(twin.pem, ca.certPem))).code).toBe('bad-chain');
    // A certificate is not a CRL; garbage, empty, a PEM of something else.
    const { cert } = await loadCa(ca);
    for (const bad of [Buffer.from(cert.rawData), Buffer.alloc(0), Buffer.from('hello'), ca.certPem, '']) {
      expect((await rejected(verifyCrl(bad, ca.certPem))).code).toBe('malformed');
    }
  });

  it('refuses a CRL without a CRL number or nextUpdate (signed by the right CA)', async () => {
    const { cert, signingKey } = await loadCa(ca);
    const noNumber = await x509.X509CrlGenerator.create({
      issuer: cert.subjectName,
      thisUpdate,
      nextUpdate,
      signingAlgorithm: { name: 'Ed25519' },
      signingKey,
    });
    const e1 = await rejected(verifyCrl(new Uint8Array(noNumber.rawData), ca.certPem));
    expect(e1.code).toBe('malformed');
    expect(e1.message).toMatch(/CRL number/);
    const noNext = await x509.X509CrlGenerator.create({
      issuer: cert.subjectName,
      thisUpdate,
      signingAlgorithm: { name: 'Ed25519' },
      signingKey,
      extensions: [new x509.Extension('2.5.29.20', false, new Uint8Array([2, 1, 9]))],
    });
    expect((await rejected(verifyCrl(new Uint8Array(noNext.rawData), ca.certPem))).code).toBe('malformed');
    // An unknown critical extension (e.g. a delta CRL indicator) makes it unusable.
    const delta = await x509.X509CrlGenerator.create({
      issuer: cert.subjectName,
      thisUpdate,
      nextUpdate,
      signingAlgorithm: { name: 'Ed25519' },
      signingKey,
      extensions: [
        new x509.Extension('2.5.29.20', false, new Uint8Array([2, 1, 9])),
        new x509.Extension('2.5.29.27', true, new Uint8Array([2, 1, 8])),
      ],
    });
    expect((await rejected(verifyCrl(new Uint8Array(delta.rawData), ca.certPem))).message).toMatch(
      /critical/,
    );
  });

  it('handles large CRLs (beyond asn1js default limit of 10 000 nodes, ~3 300 entries)', async () => {
    const serials = Array.from({ length: 5000 }, (_, i) => `4${i.toString(16).padStart(31, '0')}`);
    const { der } = await issue(serials, 77n);
    const v = await verifyCrl(der, ca.certPem);
    expect(v.serials.size).toBe(5000);
    expect(v.serials.has(serials[4321] ?? '')).toBe(true);
    expect(opensslVerify(der, join(dir, 'ca.pem')).ok).toBe(true);
  }, 60_000);

  it('freshness: fresh until nextUpdate, stale within the grace, then expired', () => {
    const grace = 3600_000;
    const at = (ms: number) => new Date(nextUpdate.getTime() + ms);
    expect(crlFreshness({ nextUpdate }, thisUpdate, grace)).toBe('fresh');
    expect(crlFreshness({ nextUpdate }, at(0), grace)).toBe('fresh');
    expect(crlFreshness({ nextUpdate }, at(1), grace)).toBe('stale');
    expect(crlFreshness({ nextUpdate }, at(grace), grace)).toBe('stale');
    expect(crlFreshness({ nextUpdate }, at(grace + 1), grace)).toBe('expired');
    expect(crlFreshness({ nextUpdate }, at(1), 0)).toBe('expired');
  });

  it('ordering: by CRL number; the same number with other bytes is refused as older', async () => {
    const v7 = await verifyCrl((await issue([A], 7n)).der, ca.certPem);
    const v8 = await verifyCrl((await issue([], 8n)).der, ca.certPem);
    const v7again = await verifyCrl((await issue([A], 7n)).der, ca.certPem);
    const v7other = await verifyCrl((await issue([], 7n)).der, ca.certPem);
    expect(compareCrl(v7, undefined)).toBe('newer');
    expect(compareCrl(v8, v7)).toBe('newer');
    expect(compareCrl(v7, v8)).toBe('older');
    expect(compareCrl(v7again, v7)).toBe('same');
    expect(compareCrl(v7other, v7)).toBe('older');
  });
});
