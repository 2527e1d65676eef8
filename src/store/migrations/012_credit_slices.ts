// Migration 008_credit_slices.
import { type Kysely, type Migration } from 'kysely';

// Migrations see the schema as it was when they were written, not today's Database type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export const migration: Migration = {
  async up(db: AnyDb) {
    // A key's credit period: bumped by every refill and by every PATCH of remaining or refill.
    // Units leased to a node in one period are never spent in, or given back into, another.
    await db.schema.alterTable('keys').addColumn('credit_epoch', 'bigint', (c) => c.notNull().defaultTo(0)).execute();
    // Units of a key's usage cap reserved for one node (see src/credits/): moved out of
    // keys.remaining by the lease that reserved them, in the same transaction. Counters are totals
    // over the period: the node holds leased - released - what it spent (reported in `spent`).
    // `seq` orders one node's writes, so a write the node gave up on can never land after a later one.
    await db.schema.createTable('credit_slices')
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('node_id', 'text', (c) => c.notNull())
      .addColumn('epoch', 'bigint', (c) => c.notNull())
      .addColumn('leased', 'bigint', (c) => c.notNull())
      .addColumn('released', 'bigint', (c) => c.notNull())
      .addColumn('spent', 'bigint', (c) => c.notNull())
      .addColumn('seq', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('credit_slices_pk', ['key_id', 'node_id'])
      .execute();
    await db.schema.createIndex('credit_slices_node').on('credit_slices').column('node_id').execute();
  },
};
