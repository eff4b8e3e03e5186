// An enrolled daemon pins its anchors: after IT claims it (with partner CAs signed by the org CA in
// its config), the state directory holds ca.pem, the verified partner-CA bundle and the org's signed
// revocation list — fetched from the provisioning service the way the relay does.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Daemon, startDaemon } from '../device/daemon/daemon.js';
import { PARTNER_CAS_FILE, REVOCATIONS_FILE } from '../device/enrollment/index.js';
import { AdminClient } from '../provisioning/client/admin-client.js';
import { type RunningService, startProvisioningService } from '../provisioning/service/serve.js';
import { createCertificateAuthority, signPartnerCas } from '../src/pki/index.js';
import { silentLogger } from '../src/util/log.js';

let svc: RunningService;
let admin: AdminClient;
let daemon: Daemon | undefined;
const dirs: string[] = [];
const tmp = (p: string) => {
  const d = mkdtempSync(join(tmpdir(), p));
  dirs.push(d);
  return d;
};

beforeAll(async () => {
  svc = await startProvisioningService({
    dataDir: tmp('sealroom-prov-'),
    port: 0,
    org: 'Acme',
    logger: false,
    rateLimits: { enrollmentsPerMinute: 1000, claimsPerMinute: 1000 },
  });
  admin = new AdminClient(svc.url, readFileSync(svc.bootstrapTokenPath!, 'utf8').trim());
});

afterAll(async () => {
  await daemon?.stop();
  await svc?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('an enrolled daemon', () => {
  it('pins the org CA, the partner CAs from signed config and the signed revocation list', async () => {
    const stateDir = tmp('sealroom-device-');
    daemon = await startDaemon({
      relayUrl: 'ws://127.0.0.1:9/v1/ws',
      provisioningUrl: svc.url,
      stateDir,
      log: silentLogger,
      media: 'none',
      controlPort: 0,
      revocationPollMs: 200,
      meetingTiming: { reconnectMinMs: 500, reconnectMaxMs: 1000 },
    });
    await expect
      .poll(() => daemon?.state.get().enrollment?.activationCode, { timeout: 10_000 })
      .toBeDefined();
    const partner = await createCertificateAuthority({
      commonName: 'Partner CA',
      org: 'Partner',
      validityDays: 30,
    });
    const partnerCas = await signPartnerCas(svc.ca, [partner.certPem]);
    await admin.claim({
      activationCode: daemon.state.get().enrollment?.activationCode ?? '',
      roomName: 'Boardroom',
      site: 'HQ',
      config: { partnerCas },
    });
    await expect.poll(() => existsSync(join(stateDir, PARTNER_CAS_FILE)), { timeout: 10_000 }).toBe(true);
    expect(JSON.parse(readFileSync(join(stateDir, PARTNER_CAS_FILE), 'utf8')).caPems).toEqual([
      partner.certPem,
    ]);
    await expect.poll(() => existsSync(join(stateDir, REVOCATIONS_FILE)), { timeout: 10_000 }).toBe(true);
    expect(readFileSync(join(stateDir, 'ca.pem'), 'utf8')).toBe(svc.ca.certPem);
    expect(daemon.state.get().phase).toBe('idle');
  });
});
