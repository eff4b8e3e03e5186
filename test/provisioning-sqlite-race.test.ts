// The SQLite store must serialise ALL access: a plain statement (a nonce insert) must never run
// inside another caller's open transaction, or that caller's rollback silently loses it — and a lost
// nonce lets the same signed device request be replayed.
//
// The race: a plain statement checked "no transaction open" and was then scheduled (a few microtask
// ticks later); meanwhile a transaction began, and the statement ran inside it. The test starts a
// transaction that fails (a claim of a used code → rollback) and, `d` microtask ticks later for every
// d in 0..40, records a nonce. Every nonce acknowledged as new must be remembered: using it again
// must be refused. On the old code some d lands inside the transaction and the replay is accepted
// (measured: d = 0). PostgreSQL runs the same test (a transaction has its own connection there).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProvisioningStore } from '../provisioning/store/open.js';
import { StoreConflict } from '../provisioning/store/store.js';
import { type BackendName, backends, freshStore, PostgresCluster } from './provisioning-backends.js';

const cluster = new PostgresCluster();
beforeAll(() => cluster.start(), 60_000);
afterAll(() => cluster.stop());

const t0 = '2026-01-01T00:00:00.000Z';
const later = '2027-01-01T00:00:00.000Z';

async function ticks(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve();
}

describe.each(backends)(
  "%s store: no statement runs inside another caller's transaction",
  (backend: BackendName) => {
    let store: ProvisioningStore;
    let cleanup: () => Promise<void>;

    beforeAll(async () => {
      ({ store, cleanup } = await freshStore(backend, cluster));
    });
    afterAll(() => cleanup());

    it('a nonce recorded while another request rolls back is never lost (no replay)', async () => {
      const lost: number[] = [];
      for (let d = 0; d <= 40; d++) {
        // A transaction that opens, runs a statement, and rolls back (no such enrollment).
        const failing = store
          .claim({
            enrollmentId: `missing-${d}`,
            deviceId: 'sr-nobody',
            roomName: 'R',
            site: 'S',
            policy: 'default',
            config: {},
            cert: { serial: `0${d}`, certPem: 'pem', notBefore: t0, notAfter: later, issuedAt: t0 },
            actor: 'test',
            now: t0,
          })
          .then(
            () => 'committed',
            (err) => (err instanceof StoreConflict ? 'rolled back' : `error ${String(err)}`),
          );
        const nonce = ticks(d).then(() => store.useNonce('sr-device', `nonce-${d}`, later));
        const [outcome, fresh] = await Promise.all([failing, nonce]);
        expect(outcome).toBe('rolled back');
        expect(fresh).toBe(true);
        // The same signed request again: its nonce must be known now.
        if (await store.useNonce('sr-device', `nonce-${d}`, later)) lost.push(d);
      }
      expect(lost, `nonce inserts lost to another caller's rollback at delays ${lost.join(', ')}`).toEqual(
        [],
      );
    });

    it('a plain write during a long transaction waits for it and survives its rollback', async () => {
      let inside!: () => void;
      const entered = new Promise<void>((r) => {
        inside = r;
      });
      const tx = store.db
        .transaction(async (t) => {
          await t.run("INSERT INTO device_nonces (device_id, nonce, expires_at) VALUES ('x', 'tx-row', ?)", [
            later,
          ]);
          inside();
          await new Promise((r) => setTimeout(r, 50));
          throw new Error('roll back');
        })
        .catch((err: Error) => err.message);
      await entered;
      const plain = store.useNonce('sr-device', 'during-long-tx', later);
      expect(await tx).toBe('roll back');
      expect(await plain).toBe(true);
      expect(await store.useNonce('sr-device', 'during-long-tx', later)).toBe(false);
      expect(await store.useNonce('x', 'tx-row', later)).toBe(true); // the rolled-back row is gone
    });
  },
);
