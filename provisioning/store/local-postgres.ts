// A private, disposable PostgreSQL cluster through scripts/postgres.sh, for tests and benchmarks:
// its own data dir and a free loopback port, so several can run at once. Fails with the script's
// message when PostgreSQL is not installed (never skips).
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

function findScript(): string {
  // Works from the sources (provisioning/store) and from dist/provisioning/store.
  const here = import.meta.dirname;
  return here.includes('/dist/')
    ? resolve(here, '../../../scripts/postgres.sh')
    : resolve(here, '../../scripts/postgres.sh');
}

export async function freeLoopbackPort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.once('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => res(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

export class LocalPostgres {
  readonly dir = mkdtempSync(join(tmpdir(), 'sealroom-pg-'));
  port = 0;
  url = '';
  #dbs = 0;

  #env() {
    return { ...process.env, SEALROOM_PG_DIR: join(this.dir, 'pg'), SEALROOM_PG_PORT: String(this.port) };
  }

  async start(): Promise<void> {
    // The server runs as the 'postgres' OS user when we are root: it must be able to enter the dir.
    chmodSync(this.dir, 0o755);
    this.port = await freeLoopbackPort();
    try {
      const { stdout } = await run('bash', [findScript(), 'start'], { env: this.#env() });
      this.url = (stdout.trim().split('\n').pop() ?? '').replace(/^DATABASE_URL=/, '');
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
    if (this.port) await run('bash', [findScript(), 'stop'], { env: this.#env() }).catch(() => {});
    rmSync(this.dir, { recursive: true, force: true });
  }
}
