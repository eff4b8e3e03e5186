// The anchors an enrolled device pins (device/enrollment/trust-anchors.ts): ca.pem from enrollment,
// partner CAs from signed config, the newest signed revocation list — verified with the org CA,
// saved atomically, reloaded after a restart, and never replaced by an older or forged one.
import { createServer, type Server } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeviceTrustAnchors, PARTNER_CAS_FILE, REVOCATIONS_FILE } from '../device/enrollment/index.js';
import {
  type CertificateAuthority,
  createCertificateAuthority,
  type RevocationList,
  signPartnerCas,
  signRevocationList,
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

const revoked = (serial: string) => [{ serial, deviceId: 'sr-x', revokedAt: new Date().toISOString() }];

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

  it('fetches the signed revocation list, refuses an older or forged one, and reloads the newest', async () => {
    let served: RevocationList = await signRevocationList(orgCa, revoked('aa01'), '2026-01-02T00:00:00.000Z');
    const server: Server = createServer((_req, res) => res.end(JSON.stringify(served)));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    try {
      const dir = stateDir();
      const anchors = await DeviceTrustAnchors.load(dir);
      const changes: number[] = [];
      anchors.on('change', (a) => changes.push(a.revokedSerials?.size ?? 0));
      expect(await anchors.refreshRevocations(url)).toBe(true);
      expect([...(anchors.anchors().revokedSerials ?? [])]).toEqual(['aa01']);
      served = await signRevocationList(orgCa, [], '2026-01-01T00:00:00.000Z'); // a replayed old list
      await expect(anchors.refreshRevocations(url)).rejects.toThrow(/older/);
      served = await signRevocationList(foreignCa, [], '2026-01-03T00:00:00.000Z');
      await expect(anchors.refreshRevocations(url)).rejects.toThrow(/not signed by the CA/);
      expect([...(anchors.anchors().revokedSerials ?? [])]).toEqual(['aa01']);
      served = await signRevocationList(
        orgCa,
        [...revoked('aa01'), ...revoked('bb02')],
        '2026-01-04T00:00:00.000Z',
      );
      expect(await anchors.refreshRevocations(url)).toBe(true);
      expect(changes).toEqual([1, 2]);
      const reloaded = await DeviceTrustAnchors.load(dir);
      expect([...(reloaded.anchors().revokedSerials ?? [])].sort()).toEqual(['aa01', 'bb02']);
      expect(reloaded.revocationsIssuedAt).toBe('2026-01-04T00:00:00.000Z');
      expect(JSON.parse(readFileSync(join(dir, REVOCATIONS_FILE), 'utf8')).issuedAt).toBe(
        '2026-01-04T00:00:00.000Z',
      );
    } finally {
      server.close();
    }
  });
});
