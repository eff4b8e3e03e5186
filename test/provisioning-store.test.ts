// The store contract, run unchanged on SQLite and on a real PostgreSQL.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrate, migrations } from '../provisioning/store/migrations.js';
import { StoreConflict } from '../provisioning/store/store.js';
import { type BackendName, backends, freshStore, PostgresCluster } from './provisioning-backends.js';

const cluster = new PostgresCluster();
beforeAll(() => cluster.start(), 60_000);
afterAll(() => cluster.stop());

const t0 = '2026-01-01T00:00:00.000Z';
const t1 = '2026-01-01T00:10:00.000Z';
const later = '2026-01-01T01:00:00.000Z';

function enrollmentArgs(deviceId: string, enrollmentId: string, codeHash: string) {
  return {
    deviceId,
    publicKey: 'AAAA',
    csrPem: 'csr',
    inventory: { model: "O'Brien; DROP TABLE devices;--" },
    softwareVersion: '1.0.0',
    enrollmentId,
    codeHash,
    expiresAt: later,
    now: t0,
  };
}

const cert = (serial: string) => ({
  serial,
  certPem: 'pem',
  notBefore: t0,
  notAfter: '2027-01-01T00:00:00.000Z',
  issuedAt: t1,
});

describe.each(backends)('provisioning store on %s', (backend: BackendName) => {
  it('migrates once, idempotently', async () => {
    const { store, cleanup } = await freshStore(backend, cluster);
    try {
      expect(await migrate(store.db)).toEqual([]);
      const rows = await store.db.all('SELECT version FROM schema_migrations');
      expect(rows.map((r) => Number(r.version))).toEqual(migrations.map((m) => m.version));
    } finally {
      await cleanup();
    }
  });

  it('runs the device lifecycle: enroll, claim once, heartbeat, config, revoke, audit', async () => {
    const { store, cleanup } = await freshStore(backend, cluster);
    try {
      await store.registerEnrollment(enrollmentArgs('sr-a', 'e1', 'h1'));
      // Re-registering while pending replaces the code: the old one expires.
      await store.registerEnrollment(enrollmentArgs('sr-a', 'e2', 'h2'));
      expect((await store.findEnrollmentByCodeHash('h1'))?.expiresAt).toBe(t0);
      const e = await store.findEnrollmentByCodeHash('h2');
      expect(e?.deviceId).toBe('sr-a');
      expect((await store.getDevice('sr-a'))?.inventory).toEqual({ model: "O'Brien; DROP TABLE devices;--" });

      const claim = {
        enrollmentId: 'e2',
        deviceId: 'sr-a',
        roomName: 'Room 1',
        site: 'HQ',
        policy: 'default',
        config: { volume: 50 },
        cert: cert('0a'),
        actor: 'alice',
        now: t1,
      };
      await store.claim(claim);
      await expect(store.claim({ ...claim, cert: cert('0b') })).rejects.toBeInstanceOf(StoreConflict);
      const d = await store.getDevice('sr-a');
      expect(d).toMatchObject({ status: 'active', roomName: 'Room 1', certSerial: '0a', configVersion: 1 });

      await store.recordHeartbeat('sr-a', { loadPercent: 3 }, '1.0.1', t1);
      expect((await store.getDevice('sr-a'))?.health).toEqual({ loadPercent: 3 });
      expect(await store.setConfig('sr-a', { volume: 70 }, 'alice', t1)).toBe(2);

      expect(await store.useNonce('sr-a', 'n1', later)).toBe(true);
      expect(await store.useNonce('sr-a', 'n1', later)).toBe(false);
      expect(await store.purgeNonces('2026-01-02T00:00:00.000Z')).toBe(1);

      await store.revoke('sr-a', 'bob', 'stolen', later);
      await expect(store.revoke('sr-a', 'bob', 'again', later)).rejects.toBeInstanceOf(StoreConflict);
      expect(await store.listRevoked()).toEqual([{ serial: '0a', deviceId: 'sr-a', revokedAt: later }]);

      const audit = await store.listAudit();
      expect(audit.map((a) => a.action)).toEqual(['device.revoke', 'device.config', 'device.claim']);
      expect(await store.listAudit({ actor: 'bob' })).toHaveLength(1);
      expect(await store.listAudit({ since: later })).toHaveLength(1);
    } finally {
      await cleanup();
    }
  });

  it('filters the fleet safely (LIKE wildcards and quotes are literal)', async () => {
    const { store, cleanup } = await freshStore(backend, cluster);
    try {
      await store.seedActiveDevices(
        Array.from({ length: 450 }, (_, i) => ({
          id: `sr-${String(i).padStart(4, '0')}`,
          publicKey: 'AAAA',
          roomName: i === 7 ? "100% O'Hara_room" : `Room ${i}`,
          site: i % 2 ? 'Berlin' : 'Paris',
          serial: (1000 + i).toString(16),
          certPem: 'pem',
        })),
        t0,
      );
      expect((await store.listDevices({ limit: 1 })).total).toBe(450);
      expect((await store.listDevices({ site: 'Berlin', limit: 1000 })).items).toHaveLength(225);
      expect((await store.listDevices({ q: "100% o'hara" })).items.map((d) => d.id)).toEqual(['sr-0007']);
      expect((await store.listDevices({ q: '%' })).total).toBe(1);
      expect((await store.listDevices({ q: '_' })).total).toBe(1);
      expect((await store.listDevices({ status: 'pending' })).total).toBe(0);
    } finally {
      await cleanup();
    }
  });
});
