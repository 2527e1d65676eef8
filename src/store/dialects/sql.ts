// The few statements repositories write differently per dialect, named once here so that SQL of
// one dialect lives only under dialects/. Each takes the repository's (or transaction's) Kysely.
import { PostgresAdapter, sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database } from '../schema.js';

export const isPostgres = (db: Kysely<Database>): boolean => db.getExecutor().adapter instanceof PostgresAdapter;

interface Lockable<Q> {
  forUpdate(): Q;
  forShare(): Q;
}

/**
 * The selected rows held until the transaction ends: PostgreSQL `FOR UPDATE` (or `FOR SHARE`);
 * SQLite's write transactions already exclude each other, so the query is left as it is.
 */
export function lockRows<Q extends Lockable<Q>>(db: Kysely<Database>, query: Q, mode: 'update' | 'share' = 'update'): Q {
  if (!isPostgres(db)) return query;
  return mode === 'update' ? query.forUpdate() : query.forShare();
}

/** `FOR UPDATE OF <alias> SKIP LOCKED` where rows can be locked one by one (PostgreSQL), else nothing. */
export function skipLockedOf(db: Kysely<Database>, alias: string): RawBuilder<unknown> {
  return isPostgres(db) ? sql`FOR UPDATE OF ${sql.ref(alias)} SKIP LOCKED` : sql``;
}

/** The store's clock in epoch milliseconds. */
export async function storeNow(db: Kysely<Database>): Promise<number> {
  const query = isPostgres(db)
    ? sql<{ now: number }>`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now`
    : sql<{ now: number }>`SELECT (julianday('now') - 2440587.5) * 86400000.0 AS now`;
  const { rows } = await query.execute(db);
  return Number(rows[0]?.now);
}
