// Migration 008_change_feed_xid.
import { PostgresAdapter, sql, type Kysely, type Migration } from 'kysely';

// Migrations see the schema as it was when they were written, not today's Database type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export const migration: Migration = {
  async up(db: AnyDb) {
    // On PostgreSQL each change row carries the id of the transaction that wrote it, so the feed
    // can tell which rows a snapshot could not yet see (docs/design/change-feed.md). SQLite commits
    // one writer at a time: there, sequence order is commit order and the column is not needed.
    if (!(db.getExecutor().adapter instanceof PostgresAdapter)) return;
    await db.schema.alterTable('changes')
      .addColumn('xid', sql`xid8`, (c) => c.notNull().defaultTo(sql`pg_current_xact_id()`))
      .execute();
    await db.schema.createIndex('changes_xid').on('changes').column('xid').execute();
  },
};
