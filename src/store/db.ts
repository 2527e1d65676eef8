// Builds the Kysely instance for the configured dialect (embedded SQLite or PostgreSQL) and migrates it.
import fs from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { CompiledQuery, Kysely, Migrator, PostgresDialect, SqliteDialect, SqliteDriver, sql, type DatabaseConnection, type Driver, type MigrationProvider } from 'kysely';
import { migrations } from './migrations/index.js';
import type { Database } from './schema.js';

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  db: Kysely<Database>;
  dialect: Dialect;
  /**
   * SQLite only: a second, read-only connection for the verify path. It sees committed data only
   * (never a write transaction in progress on the main connection) and answers synchronously.
   */
  reader?: SQLite.Database;
  /** Cheap liveness probe used by /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

// int8 (bigint) columns hold epoch milliseconds and counters: well inside 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

export interface StoreOptions {
  databaseUrl?: string | undefined;
  dataDir: string;
  sqliteSync?: 'FULL' | 'NORMAL';
}

/**
 * SQLite transactions begin IMMEDIATE: the usage writer (a worker thread) is a second writer on the
 * file, and a deferred transaction that read before it wrote could then fail on a stale snapshot.
 * Taking the write lock up front (waiting under busy_timeout) rules that out.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  constructor(private readonly database: SQLite.Database) {
    super({ database });
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver({ database: this.database });
  }
}

export function sqlitePath(dataDir: string): string {
  return path.join(dataDir, 'keyward.db');
}

export async function openStore(opts: StoreOptions): Promise<Store> {
  if (opts.databaseUrl) {
    const pool = new pg.Pool({ connectionString: opts.databaseUrl, max: 10, connectionTimeoutMillis: 5000 });
    // A broken idle connection must not crash the process; the next query reports the failure.
    pool.on('error', () => {});
    // Likewise a connection that drops while checked out: its query rejects, which is reported.
    pool.on('connect', (client) => client.on('error', () => {}));
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    return { db, dialect: 'postgres', ping: async () => void (await sql`select 1`.execute(db)), close: () => db.destroy() };
  }
  fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const file = new SQLite(sqlitePath(opts.dataDir));
  file.pragma('journal_mode = WAL');
  file.pragma(`synchronous = ${opts.sqliteSync ?? 'FULL'}`);
  file.pragma('foreign_keys = ON');
  file.pragma('busy_timeout = 5000');
  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect(file) });
  let reader: SQLite.Database | undefined;
  return {
    db,
    dialect: 'sqlite',
    get reader() {
      // Opened on first use: the schema must exist (migrations run first).
      reader ??= new SQLite(sqlitePath(opts.dataDir), { readonly: true, fileMustExist: true });
      return reader;
    },
    ping: async () => void file.prepare('select 1').get(),
    close: async () => {
      reader?.close();
      await db.destroy();
    },
  };
}

const provider: MigrationProvider = { getMigrations: async () => migrations };

export async function migrate(db: Kysely<Database>): Promise<string[]> {
  const migrator = new Migrator({ db, provider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}

/** True when the error is a unique-constraint violation, in either dialect. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === '23505' || e?.code === 'SQLITE_CONSTRAINT_UNIQUE' || e?.code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}

const UNAVAILABLE = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', '57P01', '57P02', '57P03', '53300', 'SQLITE_BUSY', 'SQLITE_FULL', 'SQLITE_IOERR']);

/** The store could not be reached (as opposed to rejecting the request): answer 503, retryable. */
export function isStoreUnavailable(err: { code?: string; message?: string }): boolean {
  if (err.code && (UNAVAILABLE.has(err.code) || err.code.startsWith('08'))) return true;
  return /Connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED|Client has encountered a connection error/i.test(err.message ?? '');
}
