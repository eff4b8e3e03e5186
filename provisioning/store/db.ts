// The small SQL surface the provisioning store needs, implemented once for SQLite and once for
// PostgreSQL. SQL is written with `?` placeholders; the PostgreSQL side numbers them ($1, $2, …).
// Keep the SQL portable: TEXT/INTEGER/BIGINT columns, ISO-8601 UTC timestamps as TEXT,
// INSERT … ON CONFLICT, no RETURNING-dependent logic.
export type SqlValue = string | number | null;
export type Row = Record<string, unknown>;

export interface Db {
  readonly kind: 'sqlite' | 'postgres';
  all<T extends Row = Row>(sql: string, params?: SqlValue[]): Promise<T[]>;
  get<T extends Row = Row>(sql: string, params?: SqlValue[]): Promise<T | undefined>;
  /** Runs a statement; returns the number of rows it changed. */
  run(sql: string, params?: SqlValue[]): Promise<number>;
  /** Runs `fn` in one transaction (commit on success, rollback on throw). */
  transaction<T>(fn: (tx: Db) => Promise<T>): Promise<T>;
  /** Runs a script of several statements (migrations). */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}
