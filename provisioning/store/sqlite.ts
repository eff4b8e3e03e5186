// SQLite through better-sqlite3: one file in the data directory, WAL journal. better-sqlite3 is
// synchronous, so statements never interleave; a transaction holds a promise-chain lock so that
// statements of other requests wait until it commits instead of landing inside it.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Db, Row, SqlValue } from './db.js';

export class SqliteDb implements Db {
  readonly kind = 'sqlite' as const;
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();
  #lock: Promise<void> = Promise.resolve();
  #inTransaction = false;

  constructor(path: string) {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    this.#db = new Database(path);
    this.#db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode: a power cut may lose the last commits but never corrupts the file.
    this.#db.pragma('synchronous = NORMAL');
    this.#db.pragma('foreign_keys = ON');
    this.#db.pragma('busy_timeout = 5000');
  }

  #prepare(sql: string): Database.Statement {
    let stmt = this.#statements.get(sql);
    if (!stmt) {
      stmt = this.#db.prepare(sql);
      this.#statements.set(sql, stmt);
    }
    return stmt;
  }

  async #outsideTransaction(): Promise<void> {
    while (this.#inTransaction) await this.#lock;
  }

  all<T extends Row = Row>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    return this.#outsideTransaction().then(() => this.#prepare(sql).all(...params) as T[]);
  }

  get<T extends Row = Row>(sql: string, params: SqlValue[] = []): Promise<T | undefined> {
    return this.#outsideTransaction().then(() => this.#prepare(sql).get(...params) as T | undefined);
  }

  run(sql: string, params: SqlValue[] = []): Promise<number> {
    return this.#outsideTransaction().then(() => this.#prepare(sql).run(...params).changes);
  }

  async exec(sql: string): Promise<void> {
    await this.#outsideTransaction();
    this.#db.exec(sql);
  }

  async transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    const previous = this.#lock;
    let release!: () => void;
    this.#lock = new Promise((r) => {
      release = r;
    });
    await previous;
    await this.#outsideTransaction();
    this.#inTransaction = true;
    const tx = this.#direct();
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const result = await fn(tx);
      this.#db.exec('COMMIT');
      return result;
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    } finally {
      this.#inTransaction = false;
      release();
    }
  }

  /** The same database without the "wait for the transaction" gate, handed to transaction bodies. */
  #direct(): Db {
    return {
      kind: 'sqlite',
      all: async <T extends Row>(sql: string, params: SqlValue[] = []) =>
        this.#prepare(sql).all(...params) as T[],
      get: async <T extends Row>(sql: string, params: SqlValue[] = []) =>
        this.#prepare(sql).get(...params) as T | undefined,
      run: async (sql: string, params: SqlValue[] = []) => this.#prepare(sql).run(...params).changes,
      exec: async (sql: string) => {
        this.#db.exec(sql);
      },
      transaction: (fn) => fn(this.#direct()),
      close: async () => {},
    };
  }

  async close(): Promise<void> {
    await this.#outsideTransaction();
    this.#db.close();
  }
}
