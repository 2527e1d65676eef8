// Keys and their values (key_hashes): reads, writes and the atomic usage-cap charge.
import { sql, type Kysely } from 'kysely';
import { lockRows } from '../dialects/sql.js';
import type { Database, KeyHashesTable, KeysTable } from '../schema.js';
import { containsPattern, offsetOf, type PageOf, type PageRequest } from './sql.js';
import { periodStarts } from '../../lib/time.js';
import type { IdentityColumns } from '../dialects/types.js';

/** The orders a key list can take: a field, `-` first for descending (the API's KEY_SORTS, keys/schemas.ts). */
export type KeySort = 'createdAt' | '-createdAt' | 'name' | '-name' | 'lastUsedAt' | '-lastUsedAt' | 'expiresAt' | '-expiresAt';

export interface KeyFilters {
  ownerId?: string | undefined;
  status?: KeysTable['status'] | undefined;
  environment?: KeysTable['environment'] | undefined;
  /** Substring of name, start or owner, or an exact id. */
  q?: string | undefined;
  /** A column, `-` first for descending; default newest first. */
  sort?: KeySort | undefined;
}

/** Values per `IN (…)` list, and key rows per INSERT (about 35 parameters each): well inside SQLite's 32,766. */
const IN_CHUNK = 500;
const ROWS_PER_INSERT = 200;

const SORT_COLUMNS = { createdAt: 'created_at', name: 'name', lastUsedAt: 'last_used_at', expiresAt: 'expires_at' } as const;

export type KeyChanges = Partial<Omit<KeysTable, 'id' | 'app_id' | 'workspace_id' | 'kind' | 'created_at'>>;

/** What is left of a key's cap at `now`, a refill that is due counted as done (read as stored). */
export function remainingAt(row: Pick<KeysTable, 'remaining' | 'refill_amount' | 'refill_interval' | 'last_refill_at'>, now: number): number | null {
  if (row.remaining === null) return null;
  if (row.refill_amount !== null && row.refill_interval !== null) {
    const { day, month } = periodStarts(now);
    const start = row.refill_interval === 'daily' ? day : month;
    if (row.last_refill_at === null || row.last_refill_at < start) return row.refill_amount;
  }
  return row.remaining;
}

export class KeyRepo {
  constructor(private readonly db: Kysely<Database>) {}

  find(id: string): Promise<KeysTable | undefined> {
    return this.db.selectFrom('keys').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** The key a value belongs to (any status), for leak reports. */
  findByHash(hash: string): Promise<KeysTable | undefined> {
    return this.db.selectFrom('key_hashes').innerJoin('keys', 'keys.id', 'key_hashes.key_id')
      .selectAll('keys').where('key_hashes.hash', '=', hash).executeTakeFirst();
  }

  /** A new key and its first value; answers the key as stored. */
  async create(key: KeysTable, value: KeyHashesTable): Promise<KeysTable> {
    const stored = await this.db.insertInto('keys').values(key).returningAll().executeTakeFirstOrThrow();
    await this.db.insertInto('key_hashes').values(value).execute();
    return stored;
  }

  /**
   * The key as it is now, locked until the transaction ends (PostgreSQL: FOR UPDATE; SQLite's
   * write transactions already exclude each other), so what a change decides from it still holds
   * when it writes.
   */
  lockForChange(id: string): Promise<KeysTable | undefined> {
    const q = this.db.selectFrom('keys').selectAll().where('id', '=', id);
    return lockRows(this.db, q).executeTakeFirst();
  }

  /**
   * Changes a key that is not revoked; answers it as written, or undefined when it was revoked (or
   * is gone). A new cap or refill starts a new credit period: units nodes hold of the old one are
   * void (never spent into, or given back to, the new value).
   */
  change(id: string, changes: KeyChanges): Promise<KeysTable | undefined> {
    const newPeriod = changes.remaining !== undefined || changes.refill_amount !== undefined;
    return this.db.updateTable('keys').set(newPeriod ? { ...changes, credit_epoch: sql`credit_epoch + 1` } : changes)
      .where('id', '=', id).where('status', '!=', 'revoked').returningAll().executeTakeFirst();
  }

  /** Revokes a key that is not revoked yet; answers it as written, or undefined when it already was (or is gone). */
  revokeIfLive(id: string, now: number): Promise<KeysTable | undefined> {
    return this.db.updateTable('keys').set({ status: 'revoked', revoked_at: now, updated_at: now })
      .where('id', '=', id).where('status', '!=', 'revoked').returningAll().executeTakeFirst();
  }

  /**
   * A new current value for a key that is not revoked, in place of the old one (which stops at
   * `oldUntil`, or sooner if it already would): the key row first, so the row lock comes before the
   * values'. Answers the key as written, or undefined (and changes nothing) when it was revoked.
   */
  async rollIfLive(id: string, value: KeyHashesTable, changes: Pick<KeysTable, 'start' | 'updated_at'> & Partial<Pick<KeysTable, 'environment'>>, oldUntil: number): Promise<KeysTable | undefined> {
    const key = await this.change(id, changes);
    if (!key) return undefined;
    await this.db.updateTable('key_hashes').set({ expires_at: oldUntil })
      .where('key_id', '=', id)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', oldUntil)]))
      .execute();
    await this.db.insertInto('key_hashes').values(value).execute();
    return key;
  }

  /** Revokes every live key of an app, in one statement; answers how many. */
  async revokeAllOfApp(appId: string, now: number): Promise<number> {
    const res = await this.db.updateTable('keys').set({ status: 'revoked', revoked_at: now, updated_at: now })
      .where('app_id', '=', appId).where('status', '!=', 'revoked').executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  /** The same, answering the keys as written (for events that carry each of them). */
  revokeAllOfAppReturning(appId: string, now: number): Promise<KeysTable[]> {
    return this.db.updateTable('keys').set({ status: 'revoked', revoked_at: now, updated_at: now })
      .where('app_id', '=', appId).where('status', '!=', 'revoked').returningAll().execute();
  }

  /** Newest first. */
  async list(appId: string, filters: KeyFilters, page: PageRequest): Promise<PageOf<KeysTable>> {
    let query = this.db.selectFrom('keys').where('app_id', '=', appId);
    if (filters.ownerId !== undefined) query = query.where('owner_id', '=', filters.ownerId);
    if (filters.status !== undefined) query = query.where('status', '=', filters.status);
    if (filters.environment !== undefined) query = query.where('environment', '=', filters.environment);
    if (filters.q !== undefined) {
      const like = containsPattern(filters.q);
      query = query.where(sql<boolean>`(lower(name) like ${like} escape '\\' or lower(start) like ${like} escape '\\' or lower(coalesce(owner_id, '')) like ${like} escape '\\' or id = ${filters.q})`);
    }
    const { n } = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const sort = filters.sort ?? '-createdAt';
    const desc = sort.startsWith('-');
    const column = SORT_COLUMNS[(desc ? sort.slice(1) : sort) as keyof typeof SORT_COLUMNS];
    // Both stores put missing values (never used, never expires) last, whichever the direction.
    let ordered = column === 'name' || column === 'created_at' ? query.selectAll() : query.selectAll().orderBy(sql`${sql.ref(column)} IS NULL`);
    ordered = column === 'name' ? ordered.orderBy(sql`lower(name)`, desc ? 'desc' : 'asc') : ordered.orderBy(column, desc ? 'desc' : 'asc');
    const rows = await ordered.orderBy('created_at', 'desc').orderBy('id', 'desc').limit(page.limit).offset(offsetOf(page)).execute();
    return { rows, total: Number(n) };
  }

  async listByOwner(workspaceId: string, ownerId: string, page: PageRequest): Promise<PageOf<KeysTable>> {
    const query = this.db.selectFrom('keys').innerJoin('apps', 'apps.id', 'keys.app_id')
      .where('keys.workspace_id', '=', workspaceId).where('keys.owner_id', '=', ownerId).where('apps.deleted_at', 'is', null);
    const { n } = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await query.selectAll('keys').orderBy('keys.created_at', 'desc').orderBy('keys.id', 'desc').limit(page.limit).offset(offsetOf(page)).execute();
    return { rows, total: Number(n) };
  }

  /** What is left of a key's cap at `now` (a due refill applied, not written), and its credit period. */
  async peekCap(id: string, now: number): Promise<{ remaining: number | null; epoch: number } | undefined> {
    const row = await this.db.selectFrom('keys').select(['remaining', 'refill_amount', 'refill_interval', 'last_refill_at', 'credit_epoch'])
      .where('id', '=', id).executeTakeFirst();
    return row && { remaining: remainingAt(row, now), epoch: Number(row.credit_epoch) };
  }

  /** An integration key with the sealed secrets of its values. */
  async findIntegration(id: string): Promise<{ key: KeysTable & { gateway_rules: string | null } & IdentityColumns; values: { secret_enc: string; expires_at: number | null }[] } | undefined> {
    const key = await this.db.selectFrom('keys').innerJoin('apps', 'apps.id', 'keys.app_id')
      .leftJoin('identities', (j) => j.onRef('identities.workspace_id', '=', 'keys.workspace_id').onRef('identities.external_id', '=', 'keys.owner_id'))
      .selectAll('keys').select(['apps.gateway_rules as gateway_rules', 'identities.id as identity_id', 'identities.meta as identity_meta', 'identities.ratelimits as identity_ratelimits'])
      .where('keys.id', '=', id).where('keys.kind', '=', 'integration').executeTakeFirst();
    if (!key) return undefined;
    const values = await this.db.selectFrom('key_hashes').select(['secret_enc', 'expires_at'])
      .where('key_id', '=', id).where('secret_enc', 'is not', null).execute();
    return { key, values: values.map((v) => ({ secret_enc: v.secret_enc!, expires_at: v.expires_at })) };
  }

  /**
   * Imported values of apps that accept them (import_keys on, not deleted), every value a key has
   * had (a rolled one in its grace period, too); of one app when given.
   */
  importedValues(appId?: string): Promise<{ hash: string; appId: string; workspaceId: string }[]> {
    let query = this.db.selectFrom('key_hashes')
      .innerJoin('keys', 'keys.id', 'key_hashes.key_id')
      .innerJoin('apps', 'apps.id', 'keys.app_id')
      .select(['key_hashes.hash as hash', 'keys.app_id as appId', 'keys.workspace_id as workspaceId'])
      .where('keys.imported', '=', 1).where('apps.import_keys', '=', 1).where('apps.deleted_at', 'is', null);
    if (appId !== undefined) query = query.where('keys.app_id', '=', appId);
    return query.execute();
  }

  /** Which of these values exist, as any key's value (of any app) or as a root key. */
  async holders(hashes: readonly string[]): Promise<Map<string, { keyId: string; appId: string } | { rootKey: true }>> {
    const held = new Map<string, { keyId: string; appId: string } | { rootKey: true }>();
    for (let i = 0; i < hashes.length; i += IN_CHUNK) {
      const chunk = hashes.slice(i, i + IN_CHUNK);
      const values = await this.db.selectFrom('key_hashes').innerJoin('keys', 'keys.id', 'key_hashes.key_id')
        .select(['key_hashes.hash as hash', 'keys.id as keyId', 'keys.app_id as appId']).where('key_hashes.hash', 'in', chunk).execute();
      for (const v of values) held.set(v.hash, { keyId: v.keyId, appId: v.appId });
      const roots = await this.db.selectFrom('root_keys').select('hash').where('hash', 'in', chunk).execute();
      for (const r of roots) held.set(r.hash, { rootKey: true });
    }
    return held;
  }

  /** Many keys with one value each, in statements of a bounded number of parameters. */
  async insertMany(keys: readonly KeysTable[], values: readonly KeyHashesTable[]): Promise<void> {
    for (let i = 0; i < keys.length; i += ROWS_PER_INSERT) await this.db.insertInto('keys').values(keys.slice(i, i + ROWS_PER_INSERT)).execute();
    for (let i = 0; i < values.length; i += ROWS_PER_INSERT * 4) await this.db.insertInto('key_hashes').values(values.slice(i, i + ROWS_PER_INSERT * 4)).execute();
  }

  sealedSecrets(): Promise<{ hash: string; key_id: string; secret_enc: string }[]> {
    return this.db.selectFrom('key_hashes').select(['hash', 'key_id', 'secret_enc']).where('secret_enc', 'is not', null)
      .execute() as Promise<{ hash: string; key_id: string; secret_enc: string }[]>;
  }

  async resealSecret(hash: string, secretEnc: string): Promise<void> {
    await this.db.updateTable('key_hashes').set({ secret_enc: secretEnc }).where('hash', '=', hash).execute();
  }
}
