// Set-up shared by the provisioning service tests: a service on a test store, admin tokens seeded
// straight into the store, devices enrolled and claimed through the API, and device-signed requests.
import { createServer } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import { signDeviceRequest } from '../provisioning/device-auth.js';
import { buildService, type ServiceOptions } from '../provisioning/service/app.js';
import type { ProvisioningStore } from '../provisioning/store/open.js';
import { generateAdminToken, hashAdminToken } from '../provisioning/tokens.js';
import { createCsr, deviceIdForPublicKey, generateIdentityKey } from '../src/pki/index.js';

/** A free TCP port on 127.0.0.1 (for parts that must know each other's address before they start). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
    srv.on('error', reject);
  });
}

export type TestDevice = { key: ReturnType<typeof generateIdentityKey>; deviceId: string };

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/** Enrolment and claim limits high enough that a test never meets them. */
export const OPEN_LIMITS = { enrollmentsPerMinute: 1e6, claimsPerMinute: 1e6 } as const;

/** buildService for org Acme at https://prov.test, without a logger, unless `options` says otherwise. */
export function testService(
  options: Pick<ServiceOptions, 'store' | 'ca'> & Partial<ServiceOptions>,
): Promise<FastifyInstance> {
  return buildService({ org: 'Acme', publicUrl: 'https://prov.test', logger: false, ...options });
}

/** An admin token written into the store (no API call, no audit row); returns the secret and id. */
export async function seedToken(
  store: ProvisioningStore,
  t: { id?: string; name: string; scope: 'read' | 'admin'; now: number; expiresAt?: number },
): Promise<{ token: string; id: string }> {
  const token = generateAdminToken();
  const rec = await store.createToken({
    id: t.id ?? t.name,
    name: t.name,
    tokenHash: hashAdminToken(token),
    scope: t.scope,
    actor: 'test',
    now: new Date(t.now).toISOString(),
    ...(t.expiresAt ? { expiresAt: new Date(t.expiresAt).toISOString() } : {}),
  });
  return { token, id: rec.id };
}

/** A device enrolled through the API (not claimed yet); returns its key, id, CSR and activation code. */
export async function enrollDevice(
  app: FastifyInstance,
  softwareVersion = '1.0.0',
): Promise<TestDevice & { csr: string; activationCode: string }> {
  const key = generateIdentityKey();
  const deviceId = deviceIdForPublicKey(key.publicKey);
  const csr = await createCsr(key, { deviceId });
  const enrolled = await app.inject({
    method: 'POST',
    url: '/v1/enrollments',
    payload: { csr, softwareVersion, inventory: {} },
  });
  expect(enrolled.statusCode, enrolled.body).toBe(201);
  return { key, deviceId, csr, activationCode: enrolled.json().activationCode };
}

/** A device enrolled and claimed through the API; returns what signed calls need. */
export async function enrollAndClaim(
  app: FastifyInstance,
  adminToken: string,
  claim: { roomName: string; site: string; config?: Record<string, unknown>; softwareVersion?: string },
): Promise<TestDevice & { csr: string; certSerial: string }> {
  const { key, deviceId, csr, activationCode } = await enrollDevice(app, claim.softwareVersion);
  const claimed = await app.inject({
    method: 'POST',
    url: '/v1/claims',
    headers: bearer(adminToken),
    payload: {
      activationCode,
      roomName: claim.roomName,
      site: claim.site,
      ...(claim.config ? { config: claim.config } : {}),
    },
  });
  expect(claimed.statusCode, claimed.body).toBe(201);
  return { key, deviceId, csr, certSerial: String(claimed.json().certSerial) };
}

/** A device-signed request signed at `now`; `raw` sends that body as is instead of `payload` as JSON. */
export function signedRequest(
  app: FastifyInstance,
  dev: TestDevice,
  now: number,
  method: 'GET' | 'POST',
  path: string,
  payload?: unknown,
  raw?: string,
) {
  const body = raw ?? (payload === undefined ? '' : JSON.stringify(payload));
  const headers = signDeviceRequest({
    privateKey: dev.key.privateKey,
    deviceId: dev.deviceId,
    method,
    path,
    body,
    now,
  });
  return app.inject({
    method,
    url: path,
    headers: { ...headers, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { payload: body } : {}),
  });
}
