// Migration 008_webhook_attempts.
import { type Kysely, type Migration } from 'kysely';

// Migrations see the schema as it was when they were written, not today's Database type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export const migration: Migration = {
  async up(db: AnyDb) {
    // Every attempt at a delivery, kept with its delivery (and deleted with it).
    await db.schema.createTable('webhook_attempts')
      .addColumn('delivery_id', 'text', (c) => c.notNull().references('webhook_deliveries.id').onDelete('cascade'))
      .addColumn('number', 'integer', (c) => c.notNull())
      .addColumn('attempted_at', 'bigint', (c) => c.notNull())
      .addColumn('outcome', 'text', (c) => c.notNull())
      .addColumn('response_status', 'integer')
      .addColumn('response_body', 'text')
      .addColumn('error', 'text')
      .addColumn('latency_ms', 'integer', (c) => c.notNull())
      .addPrimaryKeyConstraint('webhook_attempts_pk', ['delivery_id', 'number'])
      .execute();

    // An endpoint is disabled after failing for a while without a success: since when it fails.
    await db.schema.alterTable('webhooks').addColumn('failing_since', 'bigint').execute();
    await db.updateTable('webhooks').set({ failing_since: Date.now() }).where('consecutive_failures', '>', 0).execute();

    // Deliveries are retried until they succeed or their endpoint is disabled: no attempt limit.
    await db.schema.alterTable('webhook_deliveries').dropColumn('max_attempts').execute();
    // Deliveries of a disabled endpoint are 'held' (out of the due index's way) until it is enabled.
    await db.updateTable('webhook_deliveries').set({ status: 'held' }).where('status', '=', 'pending')
      .where('webhook_id', 'in', db.selectFrom('webhooks').select('id').where('status', '=', 'disabled'))
      .execute();
    await db.schema.createIndex('webhook_deliveries_state').on('webhook_deliveries').columns(['webhook_id', 'status']).execute();
  },
};
