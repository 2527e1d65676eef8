// Keys and their values (key_hashes): reads, writes and the atomic usage-cap charge.
import { sql, type Kysely } from 'kysely';
import type { Database, KeyHashesTable, KeysTable } from '../schema.js';
import { containsPattern, offsetOf, type PageOf, type PageRequest } from './sql.js';
import { periodStarts } from '../../lib/time.js';
import type { KeySort } from '../../keys/schemas.js';

export interface KeyFilters {
  ownerId?: string | undefined;
  status?: KeysTable['status'] | undefined;
  environment?: KeysTable['environment'] | undefined;
  /** Substring of name, start or owner, or an exact id. */
  q?: string | undefined;
  /** A column, `-` first for descending; default newest first. */
  sort?: KeySort | undefined;
}

const SORT_COLUMNS = { createdAt: 'created_at', name: 'name', lastUsedAt: 'last_used_at', expiresAt: 'expires_at' } as const;

export type KeyChanges = Partial<Omit<KeysTable, 'id' | 'app_id' | 'workspace_id' | 'kind' | 'created_at'>>;

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

  async insert(key: KeysTable, value: KeyHashesTable): Promise<void> {
    await this.db.insertInto('keys').values(key).execute();
    await this.db.insertInto('key_hashes').values(value).execute();
  }

  /**
   * Changes a key that is not revoked; false when it was (or is gone). A new cap or refill starts
   * a new credit period: units nodes hold of the old one are void (never spent into, or given back
   * to, the new value).
   */
  async update(id: string, changes: KeyChanges): Promise<boolean> {
    const newPeriod = changes.remaining !== undefined || changes.refill_amount !== undefined;
    const res = await this.db.updateTable('keys')
      .set(newPeriod ? { ...changes, credit_epoch: sql`credit_epoch + 1` } : changes)
      .where('id', '=', id).where('status', '!=', 'revoked').executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** A new current value; every older one stops at `oldUntil` (or sooner, if it already would). */
  async roll(id: string, value: KeyHashesTable, start: string, oldUntil: number, now: number): Promise<void> {
    await this.db.updateTable('key_hashes').set({ expires_at: oldUntil })
      .where('key_id', '=', id)
      .where((eb) => eb.or([eb('expires_at', 'is', null), eb('expires_at', '>', oldUntil)]))
      .execute();
    await this.db.insertInto('key_hashes').values(value).execute();
    await this.db.updateTable('keys').set({ start, updated_at: now }).where('id', '=', id).execute();
  }

  async revoke(id: string, now: number): Promise<void> {
    await this.db.updateTable('keys').set({ status: 'revoked', revoked_at: now, updated_at: now }).where('id', '=', id).execute();
  }

  /** Revokes every live key of an app; returns them as they are now. */
  async revokeAllOfApp(appId: string, now: number): Promise<KeysTable[]> {
    const rows = await this.db.updateTable('keys').set({ status: 'revoked', revoked_at: now, updated_at: now })
      .where('app_id', '=', appId).where('status', '!=', 'revoked').returningAll().execute();
    return rows as KeysTable[];
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

  /** Current remaining with a due refill taken into account, without charging. */
  async peekRemaining(id: string, now: number): Promise<number | null> {
    const row = await this.db.selectFrom('keys').select(['remaining', 'refill_amount', 'refill_interval', 'last_refill_at'])
      .where('id', '=', id).executeTakeFirst();
    if (!row || row.remaining === null) return null;
    if (row.refill_amount !== null && row.refill_interval !== null) {
      const { day, month } = periodStarts(now);
      const start = row.refill_interval === 'daily' ? day : month;
      if (row.last_refill_at === null || row.last_refill_at < start) return row.refill_amount;
    }
    return row.remaining;
  }

  /** An integration key with the sealed secrets of its values. */
  async findIntegration(id: string): Promise<{ key: KeysTable & { gateway_rules: string | null }; values: { secret_enc: string; expires_at: number | null }[] } | undefined> {
    const key = await this.db.selectFrom('keys').innerJoin('apps', 'apps.id', 'keys.app_id').selectAll('keys').select('apps.gateway_rules as gateway_rules')
      .where('keys.id', '=', id).where('keys.kind', '=', 'integration').executeTakeFirst();
    if (!key) return undefined;
    const values = await this.db.selectFrom('key_hashes').select(['secret_enc', 'expires_at'])
      .where('key_id', '=', id).where('secret_enc', 'is not', null).execute();
    return { key, values: values.map((v) => ({ secret_enc: v.secret_enc!, expires_at: v.expires_at })) };
  }

  sealedSecrets(): Promise<{ hash: string; key_id: string; secret_enc: string }[]> {
    return this.db.selectFrom('key_hashes').select(['hash', 'key_id', 'secret_enc']).where('secret_enc', 'is not', null)
      .execute() as Promise<{ hash: string; key_id: string; secret_enc: string }[]>;
  }

  async resealSecret(hash: string, secretEnc: string): Promise<void> {
    await this.db.updateTable('key_hashes').set({ secret_enc: secretEnc }).where('hash', '=', hash).execute();
  }
}
