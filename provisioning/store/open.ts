// Opens the store the configuration asks for: PostgreSQL when a DATABASE_URL is given, otherwise
// SQLite in <dataDir>/provisioning.sqlite. Migrations run on open.
import { join } from 'node:path';
import { openPostgres } from './postgres.js';
import { SqliteDb } from './sqlite.js';
import { ProvisioningStore } from './store.js';

export async function openStore(opts: { dataDir: string; databaseUrl?: string }): Promise<ProvisioningStore> {
  const db = opts.databaseUrl
    ? openPostgres(opts.databaseUrl)
    : new SqliteDb(join(opts.dataDir, 'provisioning.sqlite'));
  const store = new ProvisioningStore(db);
  try {
    await store.migrate();
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }
  return store;
}

export { ProvisioningStore, StoreConflict } from './store.js';
export type * from './store.js';
