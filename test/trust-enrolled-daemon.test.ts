// An enrolled daemon pins its anchors: after IT claims it (with partner CAs signed by the org CA in
// its config), the state directory holds the provisioning service's TLS CA (pinned at first use),
// ca.pem, the verified partner-CA bundle and the org's signed CRL — fetched over the pinned HTTPS
// link from the provisioning service the way the relay does.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Daemon, startDaemon } from '../device/daemon/daemon.js';
import { PARTNER_CAS_FILE } from '../device/enrollment/index.js';
import { requestJson } from '../provisioning/client/http.js';
import { certificateSha256, PROVISIONING_CA_FILE } from '../provisioning/client/tls-pin.js';
import { type RunningService, startProvisioningService } from '../provisioning/service/serve.js';
import { sameCertificate } from '../src/pki/ca-rollover.js';
import { createCertificateAuthority, signPartnerCas } from '../src/pki/index.js';
import { silentLogger } from '../src/util/log.js';
import { createPinnedFetch } from '../src/util/pinned-fetch.js';

let svc: RunningService;
let claim: (body: Record<string, unknown>) => Promise<unknown>;
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
  const token = readFileSync(svc.bootstrapTokenPath!, 'utf8').trim();
  const pinned = createPinnedFetch(svc.tls.caPem!);
  claim = async (body) =>
    (
      await requestJson(`${svc.url}/v1/claims`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
        fetch: pinned,
      })
    ).body;
});

afterAll(async () => {
  await daemon?.stop();
  await svc?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('an enrolled daemon', () => {
  it('pins the service TLS CA, the org CA, the partner CAs from signed config and the signed CRL', async () => {
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
    expect(svc.url).toMatch(/^https:/);
    expect(certificateSha256(readFileSync(join(stateDir, PROVISIONING_CA_FILE), 'utf8'))).toBe(
      svc.tls.caSha256,
    );
    await claim({
      activationCode: daemon.state.get().enrollment?.activationCode ?? '',
      roomName: 'Boardroom',
      site: 'HQ',
      config: { partnerCas },
    });
    await expect.poll(() => existsSync(join(stateDir, PARTNER_CAS_FILE)), { timeout: 10_000 }).toBe(true);
    expect(JSON.parse(readFileSync(join(stateDir, PARTNER_CAS_FILE), 'utf8')).caPems).toEqual([
      partner.certPem,
    ]);
    await expect.poll(() => existsSync(join(stateDir, 'crl.der')), { timeout: 10_000 }).toBe(true);
    expect(sameCertificate(readFileSync(join(stateDir, 'ca.pem'), 'utf8'), svc.ca.certPem)).toBe(true);
    expect(daemon.state.get().phase).toBe('idle');
  });
});
