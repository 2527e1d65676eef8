// Migration 004_change_feed_idempotency.
import { PostgresAdapter, type Kysely, type Migration } from 'kysely';

// Migrations see the schema as it was when they were written, not today's Database type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export const migration: Migration = {
  async up(db: AnyDb) {
    // The change feed: every key, value and root-key change, written in the change's own
    // transaction, with a sequence every node follows. Redis only makes it faster.
    const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
    await db.schema.createTable('changes')
      .addColumn('seq', postgres ? 'bigserial' : 'integer', (c) => (postgres ? c.primaryKey() : c.primaryKey().autoIncrement()))
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('target', 'text', (c) => c.notNull())
      .addColumn('workspace_id', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('changes_created').on('changes').column('created_at').execute();

    // Safe retries: what a create with an Idempotency-Key made, for 24 hours.
    await db.schema.createTable('idempotency')
      .addColumn('scope', 'text', (c) => c.notNull())
      .addColumn('key', 'text', (c) => c.notNull())
      .addColumn('request_hash', 'text', (c) => c.notNull())
      .addColumn('resource_id', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('idempotency_pk', ['scope', 'key'])
      .execute();
    await db.schema.createIndex('idempotency_created').on('idempotency').column('created_at').execute();
  },
};
