// Node heartbeats: how many nodes share this store right now, and the store's own clock.
import type { Kysely } from 'kysely';
import { storeNow } from '../dialects/sql.js';
import type { Database } from '../schema.js';

export class NodeRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /** The store's clock, in epoch milliseconds: what nodes agree on (heartbeats, webhook leases). */
  async now(): Promise<number> {
    return storeNow(this.db);
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
