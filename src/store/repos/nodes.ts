// Node heartbeats: how many nodes share this store right now, and the store's own clock.
import { PostgresAdapter, sql, type Kysely } from 'kysely';
import type { Database } from '../schema.js';

export class NodeRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /** The store's clock, in epoch milliseconds: what nodes agree on (heartbeats, webhook leases). */
  async now(): Promise<number> {
    const query = this.db.getExecutor().adapter instanceof PostgresAdapter
      ? sql<{ now: number }>`SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now`
      : sql<{ now: number }>`SELECT (julianday('now') - 2440587.5) * 86400000.0 AS now`;
    const { rows } = await query.execute(this.db);
    return Number(rows[0]?.now);
  }

  async beat(id: string, now: number): Promise<void> {
    await this.db.insertInto('nodes').values({ id, seen_at: now })
      .onConflict((oc) => oc.column('id').doUpdateSet({ seen_at: now })).execute();
  }

  async liveSince(since: number): Promise<number> {
    const { n } = await this.db.selectFrom('nodes').select((eb) => eb.fn.countAll<number>().as('n')).where('seen_at', '>=', since).executeTakeFirstOrThrow();
    return Number(n);
  }

  async leave(id: string): Promise<void> {
    await this.db.deleteFrom('nodes').where('id', '=', id).execute();
  }

  /** Forgets nodes not seen since `before`; reads first, so a beat with nothing to prune writes nothing more. */
  async prune(before: number): Promise<void> {
    const stale = await this.db.selectFrom('nodes').select('id').where('seen_at', '<', before).limit(1).executeTakeFirst();
    if (stale !== undefined) await this.db.deleteFrom('nodes').where('seen_at', '<', before).execute();
  }
}
