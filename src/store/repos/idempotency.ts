// What a create with an Idempotency-Key made: written in the create's own transaction.
import type { Kysely } from 'kysely';
import type { Database, IdempotencyTable } from '../schema.js';

export class IdempotencyRepo {
  constructor(private readonly db: Kysely<Database>) {}

  find(scope: string, key: string, since: number): Promise<IdempotencyTable | undefined> {
    return this.db.selectFrom('idempotency').selectAll().where('scope', '=', scope).where('key', '=', key).where('created_at', '>=', since).executeTakeFirst();
  }

  /** A unique violation when another request with the same key won the race. */
  async insert(row: IdempotencyTable): Promise<void> {
    await this.db.deleteFrom('idempotency').where('scope', '=', row.scope).where('key', '=', row.key).where('created_at', '<', row.created_at - 86_400_000).execute();
    await this.db.insertInto('idempotency').values(row).execute();
  }

  async prune(before: number): Promise<void> {
    await this.db.deleteFrom('idempotency').where('created_at', '<', before).execute();
  }
}
