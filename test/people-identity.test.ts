// Person certificates (src/pki/person.ts): issued by the org CA for a browser's Ed25519 key, verified
// by the relay (verifyPersonCertificate / verifyParticipantCertificatePem) and by rooms (TrustStore).
// A person certificate never passes as a room's and the reverse; > 12 h, a foreign or wrong-org CA,
// another key, revoked or expired: refused. The TrustStore bundles for the browser without node:.
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, sign, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { build } from 'esbuild';
import { browserCorePlugin } from '../scripts/esbuild-core-browser.mjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCa, randomSerial } from '../src/pki/ca.js';
import { backend as browserBackend } from '../src/core/e2ee/crypto/browser.js';
import { backend as nodeBackend } from '../src/core/e2ee/crypto/node.js';
import {
  type CertificateAuthority,
  CLIENT_AUTH_EKU,
  createCertificateAuthority,
  createCsr,
  deviceIdForPublicKey,
  ed25519Spki,
  generateIdentityKey,
  issueDeviceCertificateDetailed,
  issuePersonCertificate,
  PERSON_CERT_MAX_MS,
  PkiError,
  personKeyNonce,
  rawPublicKey,
  SEALROOM_PERSON_EKU,
  TrustStore,
  verifyDeviceCertificate,
  verifyPersonCertificate,
} from '../src/pki/index.js';
import { ED25519, x509 } from '../src/pki/provider.js';
import { utf8 } from '../src/pki/subject.js';
import { verifyDeviceCertificatePem, verifyParticipantCertificatePem } from '../src/relay/authenticate.js';

let orgCa: CertificateAuthority;
let partnerCa: CertificateAuthority;
let foreignCa: CertificateAuthority;
const dir = mkdtempSync(join(tmpdir(), 'sealroom-people-'));
const HOUR = 3600_000;

beforeAll(async () => {
  orgCa = await createCertificateAuthority({
    commonName: 'Example CA',
    org: 'Example Corp',
    validityDays: 30,
  });
  partnerCa = await createCertificateAuthority({
    commonName: 'Partner CA',
    org: 'Partner Ltd',
    validityDays: 30,
  });
  foreignCa = await createCertificateAuthority({
    commonName: 'Example CA',
    org: 'Example Corp',
    validityDays: 30,
  });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const alice = { name: 'Alice Smith', email: 'alice@example.org', org: 'Example Corp' };

async function person(
  ca: CertificateAuthority = orgCa,
  opts: { person?: typeof alice; now?: Date; validityMs?: number } = {},
) {
  const key = generateKeyPairSync('ed25519');
  const raw = rawPublicKey(key.publicKey);
  const issued = await issuePersonCertificate({
    ca,
    publicKeyRaw: raw,
    person: opts.person ?? alice,
    ...(opts.now ? { now: opts.now } : {}),
    ...(opts.validityMs ? { validityMs: opts.validityMs } : {}),
  });
  return { ...issued, raw, der: new Uint8Array(new X509Certificate(issued.certPem).raw) };
}

async function room(ca: CertificateAuthority = orgCa) {
  const key = generateIdentityKey();
  const deviceId = deviceIdForPublicKey(key.publicKey);
  const issued = await issueDeviceCertificateDetailed({
    ca,
    csrPem: await createCsr(key, { deviceId }),
    deviceId,
    roomName: 'Boardroom',
    org: 'Example Corp',
    site: 'Berlin',
    validityDays: 30,
  });
  return {
    ...issued,
    raw: rawPublicKey(key.publicKey),
    der: new Uint8Array(new X509Certificate(issued.certPem).raw),
  };
}

/** A certificate the issuer API would never make (too long, odd SANs): what a rogue tool could. */
async function crafted(opts: {
  lifetimeMs?: number;
  sans?: x509.JsonGeneralNames;
  ekus?: string[];
}): Promise<{ certPem: string; der: Uint8Array; raw: Uint8Array }> {
  const { cert: caCert, signingKey } = await loadCa(orgCa);
  const raw = rawPublicKey(generateKeyPairSync('ed25519').publicKey);
  const notBefore = new Date(Date.now() - 60_000);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: new x509.Name([{ CN: [utf8('Mallory')] }, { O: [utf8('Example Corp')] }]),
    issuer: caCert.subjectName,
    notBefore,
    notAfter: new Date(notBefore.getTime() + (opts.lifetimeMs ?? HOUR)),
    publicKey: new x509.PublicKey(ed25519Spki(raw)),
    signingKey,
    signingAlgorithm: ED25519,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(opts.ekus ?? [CLIENT_AUTH_EKU, SEALROOM_PERSON_EKU]),
      new x509.SubjectAlternativeNameExtension(
        opts.sans ?? [
          { type: 'email', value: 'mallory@example.org' },
          { type: 'url', value: 'urn:sealroom:person:mallory%40example.org' },
        ],
      ),
      await x509.AuthorityKeyIdentifierExtension.create(caCert),
    ],
  });
  const certPem = cert.toString('pem');
  return { certPem, der: new Uint8Array(cert.rawData), raw };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(PkiError);
    return (err as PkiError).code;
  }
  throw new Error('expected a PkiError');
}

describe('person certificates', () => {
  it('issues a certificate naming the person that verifies (ours and openssl) with the profile of the spec', async () => {
    const p = await person();
    const v = await verifyPersonCertificate(p.certPem, orgCa.certPem);
    expect(v).toMatchObject({
      kind: 'person',
      personId: 'person:alice@example.org',
      name: 'Alice Smith',
      email: 'alice@example.org',
      org: 'Example Corp',
      serial: p.serial,
    });
    expect(Buffer.from(v.publicKeyRaw).equals(Buffer.from(p.raw))).toBe(true);
    expect(v.notAfter.getTime() - v.notBefore.getTime()).toBeLessThanOrEqual(PERSON_CERT_MAX_MS + 60_000);
    writeFileSync(join(dir, 'ca.pem'), orgCa.certPem);
    writeFileSync(join(dir, 'p.pem'), p.certPem);
    expect(
      execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), join(dir, 'p.pem')]).toString(),
    ).toMatch(/: OK/);
    const text = execFileSync('openssl', ['x509', '-noout', '-text', '-in', join(dir, 'p.pem')]).toString();
    expect(text).toContain('email:alice@example.org, URI:urn:sealroom:person:alice%40example.org');
    expect(text).toContain(`TLS Web Client Authentication, ${SEALROOM_PERSON_EKU}`);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature/);
    expect(text).toMatch(/CA:FALSE/);
    // Unicode names come back byte for byte (UTF8String), and commas cannot inject attributes.
    const odd = await person(orgCa, {
      person: { name: 'Zoë Ångström, O=Evil', email: 'z@example.org', org: 'Example Corp' },
    });
    expect((await verifyPersonCertificate(odd.certPem, orgCa.certPem)).name).toBe('Zoë Ångström, O=Evil');
    // What the relay's wire allows: name and org ≤ 128 characters, email ≤ 254; control characters never.
    for (const bad of [
      { ...alice, name: 'x'.repeat(129) },
      { ...alice, org: 'x'.repeat(129) },
      { ...alice, email: `${'x'.repeat(250)}@example.org` },
      { ...alice, email: 'no-at-sign' },
      { ...alice, name: 'Alice\nSmith' },
    ])
      expect(await codeOf(person(orgCa, { person: bad }))).toBe('bad-subject');
  });

  it('the relay tells the kinds apart: a person certificate is refused as a device certificate and the reverse', async () => {
    const p = await person();
    const r = await room();
    expect(await codeOf(verifyDeviceCertificate(p.certPem, orgCa.certPem))).toBe('wrong-kind');
    expect(await codeOf(verifyDeviceCertificatePem(p.certPem, { caPems: [orgCa.certPem] }))).toBe(
      'wrong-kind',
    );
    expect(await codeOf(verifyPersonCertificate(r.certPem, orgCa.certPem))).toBe('wrong-kind');
    const asPerson = await verifyParticipantCertificatePem(p.certPem, {
      caPems: [foreignCa.certPem, orgCa.certPem],
    });
    expect(asPerson).toMatchObject({ kind: 'person', email: 'alice@example.org', name: 'Alice Smith' });
    const asRoom = await verifyParticipantCertificatePem(r.certPem, { caPems: [orgCa.certPem] });
    expect(asRoom).toMatchObject({
      kind: 'room',
      roomName: 'Boardroom',
      deviceId: expect.stringMatching(/^sr-/),
    });
    // A person certificate from a CA the relay does not trust (same names): refused.
    const ghost = await person(foreignCa);
    expect(await codeOf(verifyParticipantCertificatePem(ghost.certPem, { caPems: [orgCa.certPem] }))).toBe(
      'bad-chain',
    );
    // The rooms' TrustStore accepts both, each with its kind.
    const store = new TrustStore({ orgCaPem: orgCa.certPem });
    expect(store.verify(p.der, p.raw)).toMatchObject({ ok: true, identity: { kind: 'person' } });
    expect(store.verify(r.der, r.raw)).toMatchObject({
      ok: true,
      identity: { kind: 'room', site: 'Berlin' },
    });
  });

  it('refuses a lifetime over 12 hours at issuance and at every verifier', async () => {
    expect(await codeOf(person(orgCa, { validityMs: PERSON_CERT_MAX_MS + 1 }))).toBe('bad-lifetime');
    const long = await crafted({ lifetimeMs: 13 * HOUR });
    expect(await codeOf(verifyPersonCertificate(long.certPem, orgCa.certPem))).toBe('bad-lifetime');
    expect(await codeOf(verifyParticipantCertificatePem(long.certPem, { caPems: [orgCa.certPem] }))).toBe(
      'bad-lifetime',
    );
    expect(new TrustStore({ orgCaPem: orgCa.certPem }).verify(long.der, long.raw)).toMatchObject({
      ok: false,
      reason: 'bad-lifetime',
    });
    // 12 h exactly (+ the one-minute back-date) is fine.
    const ok = await crafted({ lifetimeMs: 12 * HOUR + 60_000 });
    expect(new TrustStore({ orgCaPem: orgCa.certPem }).verify(ok.der, ok.raw).ok).toBe(true);
  });

  it('refuses a person certificate whose SAN does not name exactly one email with its matching URI', async () => {
    const store = new TrustStore({ orgCaPem: orgCa.certPem });
    const cases: x509.JsonGeneralNames[] = [
      [
        { type: 'email', value: 'mallory@example.org' },
        { type: 'url', value: 'urn:sealroom:person:alice%40example.org' },
      ],
      [
        { type: 'email', value: 'mallory@example.org' },
        { type: 'email', value: 'alice@example.org' },
        { type: 'url', value: 'urn:sealroom:person:mallory%40example.org' },
      ],
      [{ type: 'url', value: 'urn:sealroom:person:mallory%40example.org' }],
    ];
    for (const sans of cases) {
      const c = await crafted({ sans });
      expect(store.verify(c.der, c.raw)).toMatchObject({ ok: false, reason: 'bad-subject' });
      expect(await codeOf(verifyPersonCertificate(c.certPem, orgCa.certPem))).toBe('bad-subject');
    }
  });
});

describe('TrustStore with person certificates', () => {
  it('accepts a person of the org CA with the right key and reads name, email, org', async () => {
    const p = await person();
    const verdict = new TrustStore({ orgCaPem: orgCa.certPem }).verify(p.der, p.raw);
    expect(verdict).toMatchObject({
      ok: true,
      identity: {
        kind: 'person',
        deviceId: 'person:alice@example.org',
        roomName: 'Alice Smith',
        org: 'Example Corp',
        site: '',
        person: { name: 'Alice Smith', email: 'alice@example.org' },
        issuer: 'org',
        serial: p.serial,
      },
    });
  });

  it('refuses another key, another org’s partner CA, a foreign CA, revoked and expired', async () => {
    const p = await person();
    const other = await person();
    const store = new TrustStore({ orgCaPem: orgCa.certPem, partnerCaPems: [partnerCa.certPem] });
    expect(store.verify(p.der, other.raw)).toMatchObject({ ok: false, reason: 'key-mismatch' });
    // A partner CA may certify its own people…
    const theirs = await person(partnerCa, {
      person: { name: 'Pat', email: 'pat@partner.example', org: 'Partner Ltd' },
    });
    expect(store.verify(theirs.der, theirs.raw)).toMatchObject({
      ok: true,
      identity: { kind: 'person', issuer: 'partner', org: 'Partner Ltd' },
    });
    // …but not put our org's name on someone.
    const posing = await person(partnerCa);
    expect(store.verify(posing.der, posing.raw)).toMatchObject({ ok: false, reason: 'org-mismatch' });
    const ghost = await person(foreignCa);
    expect(store.verify(ghost.der, ghost.raw)).toMatchObject({ ok: false, reason: 'unknown-issuer' });
    expect(store.verify(p.der, p.raw).ok).toBe(true);
    store.setRevoked(new Set([p.serial]));
    expect(store.verify(p.der, p.raw)).toMatchObject({ ok: false, reason: 'revoked' });
    const old = await person(orgCa, { now: new Date(Date.now() - 13 * HOUR) });
    expect(store.verify(old.der, old.raw)).toMatchObject({ ok: false, reason: 'expired' });
    expect(await codeOf(verifyPersonCertificate(old.certPem, orgCa.certPem))).toBe('expired');
    // The verdict is cached, the clock is not: the same certificate expires in a long-lived store.
    const later = new TrustStore(
      { orgCaPem: orgCa.certPem },
      { now: () => new Date(Date.now() + 13 * HOUR) },
    );
    expect(later.verify(p.der, p.raw)).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('bundles for the browser without node builtins, and the bundle verifies a person in a bare context', async () => {
    const result = await build({
      entryPoints: [join(import.meta.dirname, '../src/pki/trust-store.ts')],
      bundle: true,
      write: false,
      platform: 'browser',
      format: 'iife',
      globalName: 'TrustStoreBundle',
      metafile: true,
      plugins: [browserCorePlugin()],
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(
      inputs.filter(
        (i) => i.startsWith('node:') || /(^|\/)node_modules\/(buffer|crypto-browserify)\//.test(i),
      ),
    ).toEqual([]);
    const code = result.outputFiles[0]?.text ?? '';
    expect(code).not.toMatch(/require\(["']node:/);
    const p = await person();
    // A context with only what browsers have (no Buffer, process, require).
    const sandbox: Record<string, unknown> = {
      atob,
      btoa,
      TextEncoder,
      TextDecoder,
      anchorPem: orgCa.certPem,
      derB64: Buffer.from(p.der).toString('base64'),
      rawB64: Buffer.from(p.raw).toString('base64'),
    };
    runInNewContext(
      `${code}
      const bytes = (b64) => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const store = new TrustStoreBundle.TrustStore({ orgCaPem: anchorPem });
      const v = store.verify(bytes(derB64), bytes(rawB64));
      globalThis.out = JSON.stringify({ ok: v.ok, kind: v.ok && v.identity.kind, email: v.ok && v.identity.person.email, reason: v.reason });
      const bad = bytes(derB64); bad[bad.length - 3] ^= 1;
      globalThis.outBad = store.verify(bad, bytes(rawB64)).reason;`,
      sandbox,
    );
    expect(JSON.parse(sandbox.out as string)).toMatchObject({
      ok: true,
      kind: 'person',
      email: 'alice@example.org',
    });
    expect(sandbox.outBad).toBe('bad-signature');
  });
});

describe('Ed25519 verification for the TrustStore', () => {
  it('gives the same answers through node:crypto and @noble/curves (the browser path)', () => {
    const a = generateKeyPairSync('ed25519');
    const b = generateKeyPairSync('ed25519');
    const msg = new TextEncoder().encode('tbs bytes');
    const sig = new Uint8Array(sign(null, msg, a.privateKey));
    const flipped = Uint8Array.from(sig);
    flipped[10] = (flipped[10] ?? 0) ^ 1;
    // s ≥ L (non-canonical): RFC 8032 and OpenSSL refuse it.
    const bigS = Uint8Array.from(sig);
    bigS.fill(0xff, 32, 63);
    bigS[63] = 0x1f;
    const cases: [Uint8Array, Uint8Array, boolean][] = [
      [sig, rawPublicKey(a.publicKey), true],
      [flipped, rawPublicKey(a.publicKey), false],
      [sig, rawPublicKey(b.publicKey), false],
      [bigS, rawPublicKey(a.publicKey), false],
      [sig.subarray(0, 63), rawPublicKey(a.publicKey), false],
    ];
    for (const [s, pub, expected] of cases) {
      expect(nodeBackend.ed25519Verify(pub, msg, s)).toBe(expected);
      expect(browserBackend.ed25519Verify(pub, msg, s)).toBe(expected);
    }
  });
});

describe('person-key nonce', () => {
  it('is base64url SHA-256 over the canonical encoding of the key, one per key', () => {
    const a = rawPublicKey(generateKeyPairSync('ed25519').publicKey);
    const b = rawPublicKey(generateKeyPairSync('ed25519').publicKey);
    expect(personKeyNonce(a)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(personKeyNonce(a)).toBe(personKeyNonce(Uint8Array.from(a)));
    expect(personKeyNonce(a)).not.toBe(personKeyNonce(b));
  });
});
