// What a store dialect supplies: a connection, the SQL that differs, and how its errors read.
import type { Kysely } from 'kysely';
import type { Database, KeysTable } from '../schema.js';
import type { UsageSink } from '../usage-sink.js';

export type DialectName = 'sqlite' | 'postgres';

export interface StoreOptions {
  databaseUrl?: string | undefined;
  dataDir: string;
  sqliteSync?: 'FULL' | 'NORMAL';
  /** Nice value of the SQLite usage writer's thread (Linux; 0 keeps the process's own). */
  usageWriterNice?: number;
  /** Longest a query or a wait for a pooled connection may take before it fails as unavailable. */
  queryTimeoutMs?: number;
}

/** A key row as verify loads it: with the expiry of the value that was presented. */
export type KeyByHashRow = KeysTable & { value_expires_at: number | null; gateway_rules: string | null } & IdentityColumns;

/** The key's identity as verify loads it with the key (all null: the key has none). */
export interface IdentityColumns {
  identity_id: string | null;
  identity_meta: string | null;
  identity_ratelimits: string | null;
}

/**
 * The one verify-row query: a key, by the hash of a value, with that value's expiry, its app's
 * gateway rules and its identity (its limits are cached with the key row: no second read at
 * verify). PostgreSQL runs it through the pool; SQLite prepares its compiled SQL once on a
 * read-only connection of its own.
 */
export function keyByHashQuery(db: Kysely<Database>, hash: string) {
  return db.selectFrom('key_hashes')
    .innerJoin('keys', 'keys.id', 'key_hashes.key_id')
    .innerJoin('apps', 'apps.id', 'keys.app_id')
    .leftJoin('identities', (j) => j.onRef('identities.workspace_id', '=', 'keys.workspace_id').onRef('identities.external_id', '=', 'keys.owner_id'))
    .selectAll('keys')
    .select(['key_hashes.expires_at as value_expires_at', 'apps.gateway_rules as gateway_rules',
      'identities.id as identity_id', 'identities.meta as identity_meta', 'identities.ratelimits as identity_ratelimits'])
    .where('key_hashes.hash', '=', hash);
}

export interface OpenedDialect {
  db: Kysely<Database>;
  /** What the change feed reads through, when it is not `db` (a connection of its own). */
  feedDb?: Kysely<Database>;
  name: DialectName;
  ping(): Promise<void>;
  close(): Promise<void>;
  /** The verify loader: the fastest read of a key by value hash this dialect has. */
  keyByHash(db: Kysely<Database>): (hash: string) => Promise<KeyByHashRow | undefined>;
  /** Where usage batches are written (SQLite: a worker thread; PostgreSQL: the pool). */
  usageSink(): UsageSink;
  /**
   * Runs `run` (one transaction) so that its COMMIT does not wait for the disk on this thread, and
   * resolves once what it committed is as durable as any other commit: SQLite with
   * `synchronous = FULL` commits it without its own fsync and then syncs the log from the thread
   * pool. Absent where a commit never blocks the thread (PostgreSQL) or never syncs (NORMAL).
   */
  syncOffLoop?<T>(run: (db: Kysely<Database>) => Promise<T>): Promise<T>;
}

export interface Dialect {
  name: DialectName;
  open(opts: StoreOptions): Promise<OpenedDialect>;
  /** Error codes of a unique-constraint violation. */
  uniqueViolation: ReadonlySet<string>;
  /** Error codes that mean "could not reach or use the store" (a 503, retryable). */
  unavailable: ReadonlySet<string>;
}
