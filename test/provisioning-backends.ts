// Test helper: the two store backends. SQLite is a file in a temp dir; PostgreSQL is a private
// cluster started by scripts/postgres.sh (own data dir and port per test file, so files can run in
// parallel), with one fresh database per store. If PostgreSQL is not installed this FAILS with the
// script's message: the suite must not silently skip a backend.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalPostgres } from '../provisioning/store/local-postgres.js';
import { openStore, type ProvisioningStore } from '../provisioning/store/open.js';

export type BackendName = 'sqlite' | 'postgres';
export const backends: BackendName[] = ['sqlite', 'postgres'];

/** A private cluster for one test file (see provisioning/store/local-postgres.ts). */
export class PostgresCluster extends LocalPostgres {}

/** Opens a fresh, migrated store of the given backend. */
export async function freshStore(
  backend: BackendName,
  cluster: PostgresCluster | undefined,
): Promise<{
  store: ProvisioningStore;
  dataDir: string;
  databaseUrl?: string;
  cleanup: () => Promise<void>;
}> {
  const dataDir = mkdtempSync(join(tmpdir(), 'sealroom-prov-'));
  const databaseUrl = backend === 'postgres' ? await cluster!.createDatabase() : undefined;
  const store = await openStore({ dataDir, databaseUrl });
  return {
    store,
    dataDir,
    databaseUrl,
    cleanup: async () => {
      await store.close().catch(() => {});
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
