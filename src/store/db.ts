// Opens the store for the configured dialect, migrates it, and classifies its errors.
import { Migrator, type Kysely, type Migration, type MigrationProvider } from 'kysely';
import { migrations } from './migrations/index.js';
import type { Database } from './schema.js';
import type { Dialect, DialectName, OpenedDialect, StoreOptions } from './dialects/types.js';
import { Repos } from './repos/index.js';
import { ChangeRepo } from './repos/changes.js';
import { noteCommitted, withStoreBudget } from './deadline.js';

export type { DialectName, StoreOptions } from './dialects/types.js';
export { sqlitePath } from './paths.js';

/**
 * Every dialect Keyward speaks; a new one is a module under dialects/ and a line here. Each module
 * (and its driver) loads only when its store is opened.
 */
const DIALECTS: readonly DialectEntry[] = [
  { serves: (url) => url !== undefined && /^postgres(ql)?:/.test(url), load: async () => (await import('./dialects/postgres.js')).postgresDialect },
  { serves: (url) => url === undefined || url === '', load: async () => (await import('./dialects/sqlite.js')).sqliteDialect },
];

interface DialectEntry {
  serves(databaseUrl: string | undefined): boolean;
  load(): Promise<Dialect>;
}

/** Error codes of the dialects opened in this process, for isStoreUnavailable/isUniqueViolation. */
const opened = new Set<Dialect>();

/**
 * A create's Idempotency-Key (contract v2), written with the object it made in the same transaction:
 * a create either happened and is remembered, or neither, so a retry after a lost answer finds the
 * object instead of making a second one.
 */
export interface IdempotencyClaim {
  scope: string;
  key: string;
  requestHash: string;
  /** When the request came: the claim is remembered for 24 hours from then. */
  at: number;
}

export interface TransactionOptions {
  /** Record the request's Idempotency-Key as having made this object (see `made`). */
  idempotency?: { claim: IdempotencyClaim; resourceId: string } | undefined;
  /**
   * Keep the event loop off the disk: on the embedded store the COMMIT does not fsync on this
   * thread; the log is synced from the thread pool before this resolves (as durable as any
   * commit, just not on the verify path's thread). For writes that are many and small and sit
   * beside verify (usage-cap leases).
   */
  syncOffLoop?: boolean;
}

/** The idempotency option of a create: nothing without a claim. */
export function made(claim: IdempotencyClaim | undefined, resourceId: string): TransactionOptions['idempotency'] {
  return claim && { claim, resourceId };
}

export interface Store {
  readonly dialect: DialectName;
  /** The repositories, outside any transaction. */
  readonly repos: Repos;
  /**
   * Runs fn with repositories bound to one transaction: all of it commits, or none. A COMMIT whose
   * answer is lost is settled before this returns: it resolves if the transaction committed, and
   * rejects as unavailable (nothing changed) or with OUTCOME_UNKNOWN when that cannot be learned
   * within the request's store budget (./deadline.ts). A create passes its Idempotency-Key in
   * `opts.idempotency`: the key is recorded in the same transaction.
   */
  transaction<T>(fn: (repos: Repos) => Promise<T>, opts?: TransactionOptions): Promise<T>;
  /** The change feed's reads, on a connection of their own where the dialect has a pool. */
  readonly changeFeed: ChangeRepo;
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

async function dialectFor(databaseUrl: string | undefined): Promise<Dialect> {
  const entry = DIALECTS.find((d) => d.serves(databaseUrl));
  if (!entry) throw new Error('no store dialect serves this DATABASE_URL');
  const dialect = await entry.load();
  opened.add(dialect);
  return dialect;
}

const hasCode = (code: string, pick: (d: Dialect) => ReadonlySet<string>): boolean => {
  for (const d of opened) if (pick(d).has(code)) return true;
  return false;
};

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
  if (code !== undefined && (NETWORK.has(code) || code.startsWith('08') || hasCode(code, (d) => d.unavailable))) return true;
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' && NETWORK_MESSAGE.test(message);
}

export function isUniqueViolation(err: unknown): boolean {
  const code = errorCode(err);
  return code !== undefined && hasCode(code, (d) => d.uniqueViolation);
}

export async function openStore(opts: StoreOptions): Promise<Store> {
  const dialect = await dialectFor(opts.databaseUrl);
  const store = await dialect.open(opts);
  const repos = new Repos(store.db);
  let keyByHash: ReturnType<OpenedDialect['keyByHash']> | undefined;
  return {
    dialect: dialect.name,
    repos,
    changeFeed: new ChangeRepo(store.feedDb ?? store.db),
    db: store.db,
    transaction: async (fn, opts) => {
      let bound: Repos | undefined;
      const runner = opts?.syncOffLoop === true && store.syncOffLoop ? store.syncOffLoop.bind(store) : <R>(run: (db: Kysely<Database>) => Promise<R>) => run(store.db);
      const result = await runner((db) => db.transaction().execute(async (trx) => {
        const repos = (bound = new Repos(trx, true));
        const value = await fn(repos);
        // A create made under an Idempotency-Key records the key with the object, atomically.
        const made = opts?.idempotency;
        if (made) {
          const { claim, resourceId } = made;
          await repos.idempotency.insert({ scope: claim.scope, key: claim.key, request_hash: claim.requestHash, resource_id: resourceId, created_at: claim.at });
        }
        return value;
      }));
      // What waits for the commit (a webhook worker's wake-up) runs only once it happened.
      bound?.runCommitted();
      noteCommitted();
      return result;
    },
    keyByHash: (hash) => (keyByHash ??= store.keyByHash(store.db))(hash),
    ping: store.ping,
    isUnavailable: isStoreUnavailable,
    isUniqueViolation,
    usageSink: store.usageSink,
    close: store.close,
  };
}

/** Brings the store to the latest schema; `list` is the migration set (the tests add to it). */
export async function migrate(db: Kysely<Database>, list: Record<string, Migration> = migrations): Promise<string[]> {
  const provider: MigrationProvider = { getMigrations: async () => list };
  const migrator = new Migrator({ db, provider });
  // One transaction for every pending migration: it takes as long as it takes, not one request's bound.
  const { error, results } = await withStoreBudget(Infinity, () => migrator.migrateToLatest());
  if (error) throw error instanceof Error ? error : new Error(String(error));
  return (results ?? []).filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
