// SQLite through better-sqlite3: one file in the data directory, WAL journal. better-sqlite3 is
// synchronous, but a transaction body awaits between its statements, so access is serialised
// through ONE queue: every plain statement and every transaction takes its turn, and a transaction
// keeps the queue until it commits or rolls back. A plain statement therefore can never run inside
// another caller's open transaction (where that caller's rollback would silently undo it — a lost
// nonce insert let a signed request be replayed; see test/provisioning-sqlite-race.test.ts).
// Transaction bodies get a direct handle (no queue): they must use it, never the outer Db, or they
// would wait for themselves.
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { Db, Row, SqlValue } from './db.js';

export class SqliteDb implements Db {
  readonly kind = 'sqlite' as const;
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Database.Statement>();
  /** Tail of the queue: resolves when everything queued so far has finished. */
  #tail: Promise<void> = Promise.resolve();
  #closed = false;

  /** The database file (':memory:' for an in-memory database). */
  readonly path: string;

  constructor(path: string) {
    this.path = path;
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

  /** Runs `fn` when every earlier queued operation has finished; the next waits for this one. */
  #enqueue<T>(fn: () => T | Promise<T>): Promise<T> {
    const run = this.#tail.then(() => {
      if (this.#closed) throw new Error('the SQLite store is closed');
      return fn();
    });
    this.#tail = run.then(
      () => {},
      () => {},
    );
    return run;
  }

  all<T extends Row = Row>(sql: string, params: SqlValue[] = []): Promise<T[]> {
    return this.#enqueue(() => this.#prepare(sql).all(...params) as T[]);
  }

  get<T extends Row = Row>(sql: string, params: SqlValue[] = []): Promise<T | undefined> {
    return this.#enqueue(() => this.#prepare(sql).get(...params) as T | undefined);
  }

  run(sql: string, params: SqlValue[] = []): Promise<number> {
    return this.#enqueue(() => this.#prepare(sql).run(...params).changes);
  }

  exec(sql: string): Promise<void> {
    return this.#enqueue(() => {
      this.#db.exec(sql);
    });
  }

  transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T> {
    return this.#enqueue(async () => {
      this.#db.exec('BEGIN IMMEDIATE');
      try {
        const result = await fn(this.#direct());
        this.#db.exec('COMMIT');
        return result;
      } catch (err) {
        this.#db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  /**
   * Runs `fn` holding the queue, without a transaction on this connection: for work done through
   * another connection to the same file (the heartbeat writer worker), so that this connection
   * never waits on that connection's write lock (a synchronous wait would block the event loop).
   */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.#enqueue(fn);
  }

  /** The same database without the queue, handed to transaction bodies (which hold the queue). */
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

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return this.#enqueue(() => {
      this.#closed = true;
      this.#db.close();
    });
  }
}
