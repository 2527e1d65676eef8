// Migration 007_webhooks.
import { PostgresAdapter, sql, type Kysely, type Migration } from 'kysely';

// Migrations see the schema as it was when they were written, not today's Database type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export const migration: Migration = {
  async up(db: AnyDb) {
    const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
    // Webhook endpoints of a workspace (optionally of one app); secrets sealed under the master key.
    await db.schema.createTable('webhooks')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id').onDelete('cascade'))
      .addColumn('app_id', 'text')
      .addColumn('url', 'text', (c) => c.notNull())
      .addColumn('description', 'text', (c) => c.notNull())
      .addColumn('events', 'text', (c) => c.notNull())
      .addColumn('secret_enc', 'text', (c) => c.notNull())
      .addColumn('previous_secret_enc', 'text')
      .addColumn('previous_secret_until', 'bigint')
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('disabled_reason', 'text')
      .addColumn('consecutive_failures', 'integer', (c) => c.notNull().defaultTo(0))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('created_by', 'text')
      .execute();
    await db.schema.createIndex('webhooks_workspace').on('webhooks').columns(['workspace_id', 'status']).execute();

    // The outbox: an event and one delivery per subscribed endpoint, written in the change's own
    // transaction. `seq` orders deliveries; `order_key` (the key id, or the event id) chains the
    // events of one key per endpoint.
    await db.schema.createTable('webhook_events')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('workspace_id', 'text', (c) => c.notNull())
      .addColumn('type', 'text', (c) => c.notNull())
      .addColumn('payload', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createTable('webhook_deliveries')
      .addColumn('seq', postgres ? 'bigserial' : 'integer', (c) => (postgres ? c.primaryKey() : c.primaryKey().autoIncrement()))
      .addColumn('id', 'text', (c) => c.notNull().unique())
      .addColumn('webhook_id', 'text', (c) => c.notNull().references('webhooks.id').onDelete('cascade'))
      .addColumn('event_id', 'text', (c) => c.notNull().references('webhook_events.id'))
      .addColumn('order_key', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('attempts', 'integer', (c) => c.notNull())
      .addColumn('max_attempts', 'integer', (c) => c.notNull())
      .addColumn('next_attempt_at', 'bigint', (c) => c.notNull())
      .addColumn('locked_until', 'bigint')
      .addColumn('last_attempt_at', 'bigint')
      .addColumn('response_status', 'integer')
      .addColumn('error', 'text')
      .addColumn('latency_ms', 'integer')
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('delivered_at', 'bigint')
      .execute();
    await db.schema.createIndex('webhook_deliveries_due').on('webhook_deliveries').columns(['status', 'next_attempt_at']).execute();
    await db.schema.createIndex('webhook_deliveries_chain').on('webhook_deliveries').columns(['webhook_id', 'order_key', 'seq']).execute();
    await db.schema.createIndex('webhook_deliveries_list').on('webhook_deliveries').columns(['webhook_id', 'seq']).execute();
    await db.schema.createIndex('webhook_deliveries_event').on('webhook_deliveries').column('event_id').execute();

    // Time-driven notices, claimed once per key in the store whatever the number of nodes:
    // expiry_notice null → 'expiring' → 'expired'; usage_low null → 'due' (set by the charge that
    // crossed 10%) → 'sent'; remaining_base is what 10% is of when there is no refill.
    await db.schema.alterTable('keys').addColumn('expiry_notice', 'text').execute();
    await db.schema.alterTable('keys').addColumn('usage_low', 'text').execute();
    await db.schema.alterTable('keys').addColumn('remaining_base', 'bigint').execute();
    await db.schema.createIndex('keys_expiry_pending').on('keys').column('expires_at')
      .where(sql<boolean>`expires_at IS NOT NULL AND (expiry_notice IS NULL OR expiry_notice = 'expiring')`)
      .execute();
    await db.schema.createIndex('keys_usage_low_due').on('keys').column('usage_low').where(sql<boolean>`usage_low = 'due'`).execute();
    await db.updateTable('keys').set({ remaining_base: sql`remaining` }).where('remaining', 'is not', null).execute();
  },
};
