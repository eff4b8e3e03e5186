// The device's synchronous certificate check (src/pki/trust-store.ts) with real certificates from
// src/pki: the org CA, a partner CA, a foreign CA that copies the org's names, expired, revoked,
// mismatched keys, garbage and empty input; and the signed partner-CA bundle.
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  type CertificateAuthority,
  createCertificateAuthority,
  createCsr,
  deviceIdForPublicKey,
  generateIdentityKey,
  issueDeviceCertificateDetailed,
  rawPublicKey,
  signPartnerCas,
  TrustStore,
  verifyPartnerCas,
} from '../src/pki/index.js';

let orgCa: CertificateAuthority;
let partnerCa: CertificateAuthority;
let foreignCa: CertificateAuthority;

beforeAll(async () => {
  orgCa = await createCertificateAuthority({ commonName: 'Acme Rooms CA', org: 'Acme', validityDays: 365 });
  partnerCa = await createCertificateAuthority({
    commonName: 'Partner CA',
    org: 'Partner Ltd',
    validityDays: 365,
  });
  // Same subject as the org CA: only the signature tells them apart.
  foreignCa = await createCertificateAuthority({
    commonName: 'Acme Rooms CA',
    org: 'Acme',
    validityDays: 365,
  });
});

async function issue(
  ca: CertificateAuthority,
  opts: { org?: string; roomName?: string; now?: Date; validityDays?: number } = {},
) {
  const key = generateIdentityKey();
  const deviceId = deviceIdForPublicKey(key.publicKey);
  const issued = await issueDeviceCertificateDetailed({
    ca,
    csrPem: await createCsr(key, { deviceId }),
    deviceId,
    roomName: opts.roomName ?? 'Boardroom',
    org: opts.org ?? 'Acme',
    site: 'Berlin',
    validityDays: opts.validityDays ?? 30,
    ...(opts.now ? { now: opts.now } : {}),
  });
  return {
    der: new Uint8Array(new X509Certificate(issued.certPem).raw),
    raw: rawPublicKey(key.publicKey),
    ...issued,
  };
}

describe('TrustStore', () => {
  it('accepts a room certificate of the org CA whose key is the identity key, and reads its names', async () => {
    const room = await issue(orgCa, { roomName: 'Boardroom, 4th floor' });
    const store = new TrustStore({ orgCaPem: orgCa.certPem });
    const verdict = store.verify(room.der, room.raw);
    expect(verdict).toMatchObject({
      ok: true,
      identity: {
        roomName: 'Boardroom, 4th floor',
        org: 'Acme',
        site: 'Berlin',
        issuer: 'org',
        serial: room.serial,
      },
    });
  });

  it('refuses a certificate from a foreign CA with the same names (the ghost room)', async () => {
    const ghost = await issue(foreignCa, { roomName: 'Room C', org: 'Example Corp' });
    const store = new TrustStore({ orgCaPem: orgCa.certPem });
    // Its authority key identifier names another key: refused before the signature is even tried.
    expect(store.verify(ghost.der, ghost.raw)).toMatchObject({ ok: false, reason: 'unknown-issuer' });
    const other = await issue(partnerCa, { org: 'Partner Ltd' });
    expect(store.verify(other.der, other.raw)).toMatchObject({ ok: false, reason: 'unknown-issuer' });
  });

  it('accepts a partner CA only for rooms of its own organisation', async () => {
    const store = new TrustStore({ orgCaPem: orgCa.certPem, partnerCaPems: [partnerCa.certPem] });
    const theirs = await issue(partnerCa, { org: 'Partner Ltd', roomName: 'Their room' });
    expect(store.verify(theirs.der, theirs.raw)).toMatchObject({
      ok: true,
      identity: { issuer: 'partner', org: 'Partner Ltd', roomName: 'Their room' },
    });
    const posing = await issue(partnerCa, { org: 'Acme', roomName: 'Boardroom' });
    expect(store.verify(posing.der, posing.raw)).toMatchObject({ ok: false, reason: 'org-mismatch' });
  });

  it('refuses an expired certificate and a not-yet-valid one', async () => {
    const old = await issue(orgCa, { now: new Date(Date.now() - 40 * 86_400_000), validityDays: 30 });
    expect(new TrustStore({ orgCaPem: orgCa.certPem }).verify(old.der, old.raw)).toMatchObject({
      ok: false,
      reason: 'expired',
    });
    const room = await issue(orgCa);
    const past = new TrustStore(
      { orgCaPem: orgCa.certPem },
      { now: () => new Date(Date.now() - 86_400_000) },
    );
    expect(past.verify(room.der, room.raw)).toMatchObject({ ok: false, reason: 'not-yet-valid' });
  });

  it('refuses a revoked org certificate, also after a verdict was cached', async () => {
    const room = await issue(orgCa);
    const store = new TrustStore({ orgCaPem: orgCa.certPem });
    expect(store.verify(room.der, room.raw).ok).toBe(true);
    store.setRevoked(new Set([room.serial.toUpperCase()]));
    expect(store.verify(room.der, room.raw)).toMatchObject({ ok: false, reason: 'revoked' });
  });

  it("fails closed for org certificates while the org's CRL is out of date (revocation-stale), not for partners", async () => {
    const room = await issue(orgCa);
    const partnerRoom = await issue(partnerCa, { org: 'Partner Ltd' });
    const store = new TrustStore({ orgCaPem: orgCa.certPem, partnerCaPems: [partnerCa.certPem] });
    expect(store.verify(room.der, room.raw).ok).toBe(true);
    store.setAnchors({ orgCaPem: orgCa.certPem, partnerCaPems: [partnerCa.certPem], revocationStale: true });
    const verdict = store.verify(room.der, room.raw);
    expect(verdict).toMatchObject({ ok: false, reason: 'revocation-stale' });
    expect(verdict.ok ? '' : verdict.detail).toMatch(/revocation list is out of date/);
    expect(store.verify(partnerRoom.der, partnerRoom.raw).ok).toBe(true);
    store.setAnchors({ orgCaPem: orgCa.certPem, partnerCaPems: [partnerCa.certPem], revocationStale: false });
    expect(store.verify(room.der, room.raw).ok).toBe(true);
  });

  it("refuses a binding whose identity key is not the certificate's key", async () => {
    const room = await issue(orgCa);
    const other = await issue(orgCa);
    const store = new TrustStore({ orgCaPem: orgCa.certPem });
    expect(store.verify(room.der, other.raw)).toMatchObject({ ok: false, reason: 'key-mismatch' });
    expect(store.verify(room.der, room.raw.subarray(0, 31))).toMatchObject({
      ok: false,
      reason: 'key-mismatch',
    });
  });

  it('refuses garbage, empty, oversized and CA certificates without throwing', async () => {
    const store = new TrustStore({ orgCaPem: orgCa.certPem });
    expect(store.verify(new Uint8Array(0))).toMatchObject({ ok: false, reason: 'empty' });
    expect(store.verify(new Uint8Array(4096))).toMatchObject({ ok: false, reason: 'too-large' });
    expect(store.verify(Uint8Array.from([0x30, 0x82, 0xff, 0xff, 1, 2, 3]))).toMatchObject({
      ok: false,
      reason: 'malformed',
    });
    const room = await issue(orgCa);
    const truncated = room.der.subarray(0, room.der.length - 10);
    expect(store.verify(truncated, room.raw)).toMatchObject({ ok: false, reason: 'malformed' });
    const flipped = Uint8Array.from(room.der);
    flipped[flipped.length - 5] = (flipped[flipped.length - 5] ?? 0) ^ 1; // inside the signature
    expect(store.verify(flipped, room.raw)).toMatchObject({ ok: false, reason: 'bad-signature' });
    const caDer = new Uint8Array(new X509Certificate(orgCa.certPem).raw);
    expect(store.verify(caDer).ok).toBe(false);
  });

  it('keeps a bounded cache of verdicts', async () => {
    const store = new TrustStore({ orgCaPem: orgCa.certPem }, { cacheSize: 2 });
    const rooms = await Promise.all([issue(orgCa), issue(orgCa), issue(orgCa)]);
    for (const r of rooms) expect(store.verify(r.der, r.raw).ok).toBe(true);
    expect(store.cachedVerdicts).toBe(2);
    // A cached verdict still checks the key every time.
    const [first, second] = rooms.slice(1);
    expect(store.verify(first!.der, second!.raw)).toMatchObject({ ok: false, reason: 'key-mismatch' });
  });
});

describe('partner CA bundle', () => {
  it('verifies with the org CA and refuses tampering or another signer', async () => {
    const bundle = await signPartnerCas(orgCa, [partnerCa.certPem]);
    expect(verifyPartnerCas(JSON.parse(JSON.stringify(bundle)), orgCa.certPem).caPems).toEqual([
      partnerCa.certPem,
    ]);
    expect(() => verifyPartnerCas({ ...bundle, caPems: [foreignCa.certPem] }, orgCa.certPem)).toThrow(
      /not signed/,
    );
    const forged = await signPartnerCas(foreignCa, [foreignCa.certPem]);
    expect(() => verifyPartnerCas(forged, orgCa.certPem)).toThrow(/not signed/);
    expect(() => verifyPartnerCas({ issuedAt: 'x' }, orgCa.certPem)).toThrow(/not a partner CA bundle/);
  });
});
