// Test helper: the two store backends. SQLite is a file in a temp dir; PostgreSQL is a private
// cluster started by scripts/postgres.sh (own data dir and port per test file, so files can run in
// parallel), with one fresh database per store. If PostgreSQL is not installed this FAILS with the
// script's message: the suite must not silently skip a backend.
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { openStore, type ProvisioningStore } from '../provisioning/store/open.js';

const run = promisify(execFile);
const script = resolve(import.meta.dirname, '../scripts/postgres.sh');

export type BackendName = 'sqlite' | 'postgres';
export const backends: BackendName[] = ['sqlite', 'postgres'];

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => res(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

export class PostgresCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'sealroom-pg-'));
  port = 0;
  url = '';
  #dbs = 0;

  async start(): Promise<void> {
    // The server runs as the 'postgres' OS user when we are root: it must be able to enter the dir.
    chmodSync(this.dir, 0o755);
    this.port = await freePort();
    try {
      const { stdout } = await run('bash', [script, 'start'], {
        env: { ...process.env, SEALROOM_PG_DIR: join(this.dir, 'pg'), SEALROOM_PG_PORT: String(this.port) },
      });
      const line = stdout.trim().split('\n').pop() ?? '';
      this.url = line.replace(/^DATABASE_URL=/, '');
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new Error(`could not start PostgreSQL with scripts/postgres.sh: ${e.stderr || e.message}`);
    }
  }

  /** A fresh empty database on the cluster; returns its URL. */
  async createDatabase(): Promise<string> {
    const name = `t${process.pid}_${++this.#dbs}`;
    const client = new pg.Client({ connectionString: this.url });
    await client.connect();
    await client.query(`CREATE DATABASE ${name}`);
    await client.end();
    return this.url.replace(/\/sealroom$/, `/${name}`);
  }

  async stop(): Promise<void> {
    await run('bash', [script, 'stop'], {
      env: { ...process.env, SEALROOM_PG_DIR: join(this.dir, 'pg'), SEALROOM_PG_PORT: String(this.port) },
    }).catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}

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
