// The anchors an enrolled device pins (device/enrollment/trust-anchors.ts): ca.pem from enrollment,
// partner CAs from signed config, the newest X.509 CRL (crl.der) — verified with the org CA, saved
// atomically, reloaded after a restart, never replaced by an older or forged one; and failing closed
// (revocation-stale) when polling is configured and the CRL is out of date.
import { X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRL_FILE, DeviceTrustAnchors } from '../device/enrollment/trust-anchors.js';
import { PARTNER_CAS_FILE } from '../device/enrollment/index.js';
import {
  type CertificateAuthority,
  CrlRefusedError,
  createCertificateAuthority,
  createCsr,
  deviceIdForPublicKey,
  generateIdentityKey,
  issueCrl,
  issueDeviceCertificateDetailed,
  signPartnerCas,
  TrustStore,
} from '../src/pki/index.js';

let orgCa: CertificateAuthority;
let partnerCa: CertificateAuthority;
let foreignCa: CertificateAuthority;
const dirs: string[] = [];

beforeAll(async () => {
  orgCa = await createCertificateAuthority({ commonName: 'Org CA', org: 'Acme', validityDays: 30 });
  partnerCa = await createCertificateAuthority({
    commonName: 'Partner CA',
    org: 'Partner',
    validityDays: 30,
  });
  foreignCa = await createCertificateAuthority({ commonName: 'Org CA', org: 'Acme', validityDays: 30 });
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function stateDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sealroom-anchors-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'ca.pem'), orgCa.certPem);
  return dir;
}

const HOUR = 3600_000;
const t0 = new Date('2026-06-01T08:00:00Z');

async function crl(serials: string[], crlNumber: bigint, authority = orgCa, thisUpdate = t0) {
  return issueCrl(authority, {
    entries: serials.map((serial) => ({ serial, revokedAt: thisUpdate })),
    crlNumber,
    thisUpdate,
    nextUpdate: new Date(thisUpdate.getTime() + 24 * HOUR),
  });
}

/** A stand-in for GET /v1/revocations serving `served.der`. */
async function crlService(served: {
  der: Buffer;
  status?: number;
}): Promise<{ url: string; server: Server }> {
  const server: Server = createServer((req, res) => {
    if (req.url !== '/v1/revocations') return void res.writeHead(404).end();
    res.writeHead(served.status ?? 200, { 'content-type': 'application/pkix-crl' }).end(served.der);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

describe('DeviceTrustAnchors', () => {
  it('takes partner CAs only signed by the org CA and newer than the ones held, and keeps them across a restart', async () => {
    const dir = stateDir();
    const anchors = await DeviceTrustAnchors.load(dir);
    expect(anchors.anchors().partnerCaPems).toEqual([]);
    const forged = await signPartnerCas(foreignCa, [partnerCa.certPem]);
    await expect(anchors.applyPartnerCas(forged)).rejects.toThrow(/not signed by the org CA/);
    const bundle = await signPartnerCas(orgCa, [partnerCa.certPem], '2026-01-02T00:00:00.000Z');
    expect(await anchors.applyPartnerCas(bundle)).toBe(true);
    expect(anchors.anchors().partnerCaPems).toEqual([partnerCa.certPem]);
    const older = await signPartnerCas(orgCa, [], '2026-01-01T00:00:00.000Z');
    expect(await anchors.applyPartnerCas(older)).toBe(false);
    expect((await DeviceTrustAnchors.load(dir)).anchors().partnerCaPems).toEqual([partnerCa.certPem]);
    // A tampered file on disk is ignored, not trusted.
    const saved = JSON.parse(readFileSync(join(dir, PARTNER_CAS_FILE), 'utf8'));
    writeFileSync(join(dir, PARTNER_CAS_FILE), JSON.stringify({ ...saved, caPems: [foreignCa.certPem] }));
    expect((await DeviceTrustAnchors.load(dir)).anchors().partnerCaPems).toEqual([]);
  });

  it('fetches the CRL, refuses an older, forged or tampered one, and reloads the newest after a restart', async () => {
    const served = { der: (await crl(['aa01'], 2n)).der };
    const { url, server } = await crlService(served);
    try {
      const dir = stateDir();
      const anchors = await DeviceTrustAnchors.load(dir, undefined, { now: () => t0 });
      const changes: number[] = [];
      anchors.on('change', (a) => changes.push(a.revokedSerials?.size ?? 0));
      expect(await anchors.refreshRevocations(url)).toBe(true);
      expect([...(anchors.anchors().revokedSerials ?? [])]).toEqual(['aa01']);
      expect(anchors.isRevoked('AA01')).toBe(true);
      expect(await anchors.refreshRevocations(url)).toBe(false); // the same one
      const replay = (await crl([], 1n)).der; // an older CRL that did not list aa01
      served.der = replay;
      await expect(anchors.refreshRevocations(url)).rejects.toBeInstanceOf(CrlRefusedError);
      served.der = (await crl([], 3n, foreignCa)).der; // same names, other key
      await expect(anchors.refreshRevocations(url)).rejects.toMatchObject({ name: 'PkiError' });
      const tampered = Buffer.from((await crl([], 3n)).der);
      tampered[tampered.length - 3] = (tampered[tampered.length - 3] ?? 0) ^ 4;
      served.der = tampered;
      await expect(anchors.refreshRevocations(url)).rejects.toMatchObject({ code: 'bad-signature' });
      expect([...(anchors.anchors().revokedSerials ?? [])]).toEqual(['aa01']);
      served.der = (await crl(['aa01', 'bb02'], 4n)).der;
      expect(await anchors.refreshRevocations(url)).toBe(true);
      expect(changes).toEqual([1, 2]);
      expect(readFileSync(join(dir, CRL_FILE)).equals(served.der)).toBe(true);

      // Restart: the newest CRL is in force from disk, and the replay is still refused.
      const reloaded = await DeviceTrustAnchors.load(dir, undefined, { now: () => t0 });
      expect([...(reloaded.anchors().revokedSerials ?? [])].sort()).toEqual(['aa01', 'bb02']);
      expect(reloaded.crl?.crlNumber).toBe(4n);
      expect(reloaded.crlStatus()).toMatchObject({ state: 'fresh', crlNumber: '4', revoked: 2 });
      await expect(reloaded.applyCrl(replay)).rejects.toThrow(/CRL number 1 refused/);
      // Another instance (the enrollment runner's) sees the disk too: no going back through it.
      await expect(anchors.applyCrl((await crl([], 3n)).pem)).rejects.toBeInstanceOf(CrlRefusedError);
      // The runner's instance saves a newer CRL (#6, proof of this device's revocation): the daemon's
      // instance adopts it at its next apply (and says so), even when what it fetched is older.
      await (await DeviceTrustAnchors.load(dir)).applyCrl((await crl(['aa01', 'bb02', 'cc03'], 6n)).der);
      const before = changes.length;
      await expect(anchors.applyCrl((await crl([], 5n)).der)).rejects.toBeInstanceOf(CrlRefusedError);
      expect(anchors.crl?.crlNumber).toBe(6n);
      expect(anchors.isRevoked('cc03')).toBe(true);
      expect(changes.length).toBe(before + 1);
      // A tampered crl.der on disk is ignored, not trusted.
      const bytes = readFileSync(join(dir, CRL_FILE));
      bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 1;
      writeFileSync(join(dir, CRL_FILE), bytes);
      expect((await DeviceTrustAnchors.load(dir)).crl).toBeUndefined();
    } finally {
      server.close();
    }
  });

  it('fails closed when polling and the CRL is past nextUpdate + grace, or none arrives within the grace', async () => {
    const served: { der: Buffer; status?: number } = { der: Buffer.alloc(0), status: 503 };
    const { url, server } = await crlService(served);
    const clock = { now: t0 };
    try {
      const dir = stateDir();
      const anchors = await DeviceTrustAnchors.load(dir, undefined, {
        now: () => clock.now,
        graceMs: 2 * HOUR,
      });
      // Not polling (no provisioning configured): never stale.
      clock.now = new Date(t0.getTime() + 1000 * HOUR);
      expect(anchors.revocationStale).toBe(false);
      clock.now = t0;
      const stale: boolean[] = [];
      anchors.on('change', (a) => stale.push(a.revocationStale ?? false));
      anchors.pollRevocations(url, 60_000);
      expect(anchors.revocationStale).toBe(false); // within the grace since polling started
      expect(anchors.crlStatus()).toMatchObject({ state: 'none', acceptingNewSessions: true });
      clock.now = new Date(t0.getTime() + 2 * HOUR + 1);
      expect(anchors.revocationStale).toBe(true); // none arrived within the grace
      expect(anchors.anchors().revocationStale).toBe(true);
      expect(anchors.crlStatus()).toMatchObject({ state: 'none', acceptingNewSessions: false });
      // The daemon's TrustStore refuses org certificates now.
      const store = new TrustStore(anchors.anchors());
      const key = generateIdentityKey();
      const deviceId = deviceIdForPublicKey(key.publicKey);
      const issued = await issueDeviceCertificateDetailed({
        ca: orgCa,
        csrPem: await createCsr(key, { deviceId }),
        deviceId,
        roomName: 'Boardroom',
        org: 'Acme',
        site: 'Berlin',
        validityDays: 30,
      });
      const room = new Uint8Array(new X509Certificate(issued.certPem).raw);
      // (The certificate's own validity is checked against the real clock.)
      expect(store.verify(room)).toMatchObject({ ok: false, reason: 'revocation-stale' });

      // A current CRL arrives: accepted again, and 'change' carries revocationStale false.
      served.status = 200;
      served.der = (await crl([], 1n, orgCa, clock.now)).der;
      expect(await anchors.refreshRevocations(url)).toBe(true);
      expect(anchors.revocationStale).toBe(false);
      expect(stale.at(-1)).toBe(false);
      store.setAnchors(anchors.anchors());
      expect(store.verify(room).ok).toBe(true);
      // nextUpdate passes: stale but within the grace — still accepted; beyond — refused.
      clock.now = new Date(clock.now.getTime() + 25 * HOUR);
      expect(anchors.crlStatus()).toMatchObject({ state: 'stale', acceptingNewSessions: true });
      expect(anchors.revocationStale).toBe(false);
      clock.now = new Date(clock.now.getTime() + 1 * HOUR + 1);
      expect(anchors.crlStatus()).toMatchObject({ state: 'expired', acceptingNewSessions: false });
      expect(anchors.revocationStale).toBe(true);
      anchors.stop();
    } finally {
      server.close();
    }
  });
});
