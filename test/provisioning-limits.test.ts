// Rate limits on enrollment and on claiming codes (per client address), independent of the store.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildService } from '../provisioning/service/app.js';
import { openStore, type ProvisioningStore } from '../provisioning/store/open.js';
import { generateAdminToken, hashAdminToken } from '../provisioning/tokens.js';
import { createCertificateAuthority } from '../src/pki/index.js';

describe('provisioning rate limits', () => {
  let dir: string;
  let store: ProvisioningStore;
  const token = generateAdminToken();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sealroom-limits-'));
    store = await openStore({ dataDir: dir });
    await store.createToken({
      id: 't',
      name: 'it',
      tokenHash: hashAdminToken(token),
      scope: 'admin',
      actor: 'test',
      now: new Date().toISOString(),
    });
  });
  afterAll(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 429 after the configured number of enrollments and claims per minute', async () => {
    const ca = await createCertificateAuthority({ commonName: 'CA', org: 'O', validityDays: 10 });
    const app = await buildService({
      store,
      ca,
      org: 'O',
      publicUrl: 'http://127.0.0.1',
      logger: false,
      rateLimits: { enrollmentsPerMinute: 3, claimsPerMinute: 2 },
    });
    try {
      const enroll = () =>
        app.inject({
          method: 'POST',
          url: '/v1/enrollments',
          payload: { csr: 'x', softwareVersion: '1', inventory: {} },
        });
      expect([(await enroll()).statusCode, (await enroll()).statusCode, (await enroll()).statusCode]).toEqual(
        [400, 400, 400],
      );
      const limited = await enroll();
      expect(limited.statusCode).toBe(429);
      expect(limited.json().message).toMatch(/rate limit/i);
      const claim = () =>
        app.inject({
          method: 'POST',
          url: '/v1/claims',
          headers: { authorization: `Bearer ${token}` },
          payload: { activationCode: 'AAAA-AAAA', roomName: 'R', site: 'S' },
        });
      expect([(await claim()).statusCode, (await claim()).statusCode, (await claim()).statusCode]).toEqual([
        404, 404, 429,
      ]);
      // Heartbeats and reads are not limited by these.
      expect((await app.inject({ method: 'GET', url: '/v1/revocations' })).statusCode).toBe(200);
    } finally {
      await app.close();
    }
  });
});
