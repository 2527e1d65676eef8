// Key queries that verify needs: load by value hash, and the atomic usage-cap charge.
import { sql, type Kysely } from 'kysely';
import type { Database, KeysTable } from '../store/schema.js';
import type { Store } from '../store/db.js';
import { toCachedKey, type CacheEntry, type IntegrationEntry } from '../verify/cache.js';
import type { SecretBox } from '../lib/secretbox.js';

const BY_HASH = `SELECT keys.*, key_hashes.expires_at AS value_expires_at
  FROM key_hashes JOIN keys ON keys.id = key_hashes.key_id WHERE key_hashes.hash = ?`;

/** The verify loader: a prepared statement on SQLite's read connection, Kysely on PostgreSQL. */
export function keyLoader(store: Store): (hash: string) => Promise<CacheEntry | null> {
  if (store.dialect !== 'sqlite') return (hash) => loadKeyByHash(store.db, hash);
  let stmt: ReturnType<NonNullable<Store['reader']>['prepare']> | undefined;
  return (hash) => {
    try {
      stmt ??= store.reader!.prepare(BY_HASH);
      const row = stmt.get(hash) as (KeysTable & { value_expires_at: number | null }) | undefined;
      if (!row) return Promise.resolve(null);
      const { value_expires_at, ...key } = row;
      return Promise.resolve({ key: toCachedKey(key), valueExpiresAt: value_expires_at });
    } catch (err) {
      return Promise.reject(err);
    }
  };
}

export async function loadKeyByHash(db: Kysely<Database>, hash: string): Promise<CacheEntry | null> {
  const row = await db.selectFrom('key_hashes')
    .innerJoin('keys', 'keys.id', 'key_hashes.key_id')
    .selectAll('keys')
    .select('key_hashes.expires_at as value_expires_at')
    .where('key_hashes.hash', '=', hash)
    .executeTakeFirst();
  if (!row) return null;
  const { value_expires_at, ...key } = row;
  return { key: toCachedKey(key), valueExpiresAt: value_expires_at };
}

export function periodStarts(now: number): { day: number; month: number } {
  const d = new Date(now);
  return {
    day: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()),
    month: Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1),
  };
}

/**
 * Refills (when a new day/month has begun) and charges `cost` in one statement, so concurrent
 * verifies on any number of nodes can never spend more than the cap. Returns what is left, or
 * null when the cap would be exceeded (nothing is charged then).
 */
export async function chargeRemaining(db: Kysely<Database>, keyId: string, cost: number, now: number): Promise<number | null> {
  const { day, month } = periodStarts(now);
  const due = sql`(refill_amount IS NOT NULL AND (last_refill_at IS NULL OR last_refill_at < CASE refill_interval WHEN 'daily' THEN CAST(${day} AS bigint) ELSE CAST(${month} AS bigint) END))`;
  const result = await sql<{ remaining: number }>`
    UPDATE keys SET
      remaining = (CASE WHEN ${due} THEN refill_amount ELSE remaining END) - CAST(${cost} AS bigint),
      last_refill_at = CASE WHEN ${due} THEN CAST(${now} AS bigint) ELSE last_refill_at END
    WHERE id = ${keyId} AND remaining IS NOT NULL
      AND (CASE WHEN ${due} THEN refill_amount ELSE remaining END) >= CAST(${cost} AS bigint)
    RETURNING remaining`.execute(db);
  const row = result.rows[0];
  return row ? Number(row.remaining) : null;
}

/** Current remaining with a due refill taken into account, without charging (for refusals). */
export async function peekRemaining(db: Kysely<Database>, keyId: string, now: number): Promise<number | null> {
  const row = await db.selectFrom('keys').select(['remaining', 'refill_amount', 'refill_interval', 'last_refill_at'])
    .where('id', '=', keyId).executeTakeFirst();
  if (!row || row.remaining === null) return null;
  if (row.refill_amount !== null && row.refill_interval !== null) {
    const { day, month } = periodStarts(now);
    const start = row.refill_interval === 'daily' ? day : month;
    if (row.last_refill_at === null || row.last_refill_at < start) return row.refill_amount;
  }
  return row.remaining;
}

/** Loads an integration key by id with its live values' secrets, opened with the master key. */
export function integrationLoader(store: Store, box: SecretBox, context: (keyId: string) => string) {
  return async (keyId: string): Promise<IntegrationEntry | null> => {
    const row = await store.db.selectFrom('keys').selectAll().where('id', '=', keyId).where('kind', '=', 'integration').executeTakeFirst();
    if (!row) return null;
    const values = await store.db.selectFrom('key_hashes').select(['secret_enc', 'expires_at'])
      .where('key_id', '=', keyId).where('secret_enc', 'is not', null).execute();
    const encoder = new TextEncoder();
    return {
      key: toCachedKey(row),
      secrets: values.map((v) => ({ secret: encoder.encode(box.open(v.secret_enc!, context(keyId))), valueExpiresAt: v.expires_at })),
    };
  };
}
