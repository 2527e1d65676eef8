// Opens the store for the configured dialect, migrates it, and classifies its errors.
import { Migrator, type Kysely, type MigrationProvider } from 'kysely';
import { migrations } from './migrations/index.js';
import type { Database } from './schema.js';
import { postgresDialect } from './dialects/postgres.js';
import { sqliteDialect } from './dialects/sqlite.js';
import type { Dialect, DialectName, OpenedDialect, StoreOptions } from './dialects/types.js';
import { Repos } from './repos/index.js';

export type { DialectName, StoreOptions } from './dialects/types.js';
export { sqlitePath } from './dialects/sqlite.js';

/** Every dialect Keyward speaks; a new one is a module under dialects/ and a line here. */
const DIALECTS: readonly Dialect[] = [postgresDialect, sqliteDialect];

export interface Store {
  readonly dialect: DialectName;
  /** The repositories, outside any transaction. */
  readonly repos: Repos;
  /** Runs fn with repositories bound to one transaction: all of it commits, or none. */
  transaction<T>(fn: (repos: Repos) => Promise<T>): Promise<T>;
  /** The verify loader (a prepared statement on SQLite's read connection). */
  readonly keyByHash: ReturnType<OpenedDialect['keyByHash']>;
  /** Cheap liveness probe used by /readyz. */
  ping(): Promise<void>;
  /** Whether an error means the store could not be reached or used (retryable, 503). */
  isUnavailable(err: unknown): boolean;
  isUniqueViolation(err: unknown): boolean;
  usageSink: OpenedDialect['usageSink'];
  /** Kysely itself, for migrations and the tests' table snapshots only. */
  readonly db: Kysely<Database>;
  close(): Promise<void>;
}

function dialectFor(databaseUrl: string | undefined): Dialect {
  const dialect = DIALECTS.find((d) => d.serves(databaseUrl));
  if (!dialect) throw new Error(`no store dialect serves ${databaseUrl}`);
  return dialect;
}

/** Network-level failures, whatever the dialect: the store is away, not the request wrong. */
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH']);
const NETWORK_MESSAGE = /Connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED|Client has encountered a connection error|Query read timeout/i;

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The store could not be reached (as opposed to rejecting the request), in any dialect. */
export function isStoreUnavailable(err: unknown): boolean {
  const code = errorCode(err);
  if (code !== undefined && (NETWORK.has(code) || code.startsWith('08') || DIALECTS.some((d) => d.unavailable.has(code)))) return true;
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' && NETWORK_MESSAGE.test(message);
}

export function isUniqueViolation(err: unknown): boolean {
  const code = errorCode(err);
  return code !== undefined && DIALECTS.some((d) => d.uniqueViolation.has(code));
}

export async function openStore(opts: StoreOptions): Promise<Store> {
  const dialect = dialectFor(opts.databaseUrl);
  const opened = await dialect.open(opts);
  const repos = new Repos(opened.db);
  let keyByHash: ReturnType<OpenedDialect['keyByHash']> | undefined;
  return {
    dialect: dialect.name,
    repos,
    db: opened.db,
    transaction: (fn) => opened.db.transaction().execute((trx) => fn(new Repos(trx))),
    keyByHash: (hash) => (keyByHash ??= opened.keyByHash(opened.db))(hash),
    ping: opened.ping,
    isUnavailable: isStoreUnavailable,
    isUniqueViolation,
    usageSink: opened.usageSink,
    close: opened.close,
  };
}

const provider: MigrationProvider = { getMigrations: async () => migrations };

export async function migrate(db: Kysely<Database>): Promise<string[]> {
  const migrator = new Migrator({ db, provider });
  const { error, results } = await migrator.migrateToLatest();
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
