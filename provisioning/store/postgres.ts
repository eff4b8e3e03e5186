// PostgreSQL through node-postgres (pg): a pool; transactions take one client for their duration.
import pg from 'pg';
import type { Db, Row, SqlValue } from './db.js';

/** `?` → `$1, $2, …` (our SQL never has a literal question mark). */
export function numberPlaceholders(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

type Queryable = pg.Pool | pg.PoolClient;

function wrap(q: Queryable, pool: pg.Pool | undefined): Db {
  const db: Db = {
    kind: 'postgres',
    all: async <T extends Row>(sql: string, params: SqlValue[] = []) =>
      (await q.query(numberPlaceholders(sql), params)).rows as T[],
    get: async <T extends Row>(sql: string, params: SqlValue[] = []) =>
      (await q.query(numberPlaceholders(sql), params)).rows[0] as T | undefined,
    run: async (sql: string, params: SqlValue[] = []) =>
      (await q.query(numberPlaceholders(sql), params)).rowCount ?? 0,
    exec: async (sql: string) => {
      await q.query(sql);
    },
    transaction: async <T>(fn: (tx: Db) => Promise<T>): Promise<T> => {
      if (!pool) return fn(db); // already inside one
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(wrap(client, undefined));
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => {});
        throw err;
      } finally {
        client.release();
      }
    },
    close: async () => {
      if (pool) await pool.end();
    },
  };
  return db;
}

export function openPostgres(databaseUrl: string, maxConnections = 10): Db {
  // BIGINT (int8) comes back as a string by default; our counters fit in a double.
  pg.types.setTypeParser(20, (v) => Number(v));
  const pool = new pg.Pool({ connectionString: databaseUrl, max: maxConnections });
  // An idle client losing its connection must not crash the service; the next query reconnects.
  pool.on('error', () => {});
  return wrap(pool, pool);
}
