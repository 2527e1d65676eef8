// The one migration set, written with Kysely's schema builder so it runs on SQLite and PostgreSQL alike.
import { PostgresAdapter, sql, type Kysely, type Migration } from 'kysely';

// Migrations see the schema as it was when they were written, not today's Database type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

const m001: Migration = {
  async up(db: AnyDb) {
    await db.schema.createTable('settings')
      .addColumn('name', 'text', (c) => c.primaryKey())
      .addColumn('value', 'text', (c) => c.notNull())
      .execute();

    await db.schema.createTable('users')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('email', 'text', (c) => c.notNull().unique())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('password_hash', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema.createTable('sessions')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('ip', 'text')
      .execute();

    await db.schema.createTable('workspaces')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();

    await db.schema.createTable('members')
      .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id').onDelete('cascade'))
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('members_pk', ['workspace_id', 'user_id'])
      .execute();
    await db.schema.createIndex('members_user').on('members').column('user_id').execute();

    await db.schema.createTable('apps')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('key_prefix', 'text', (c) => c.notNull())
      .addColumn('defaults', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('deleted_at', 'bigint')
      .execute();
    await db.schema.createIndex('apps_workspace').on('apps').columns(['workspace_id', 'created_at']).execute();

    await db.schema.createTable('keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id'))
      .addColumn('workspace_id', 'text', (c) => c.notNull())
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('start', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('owner_id', 'text')
      .addColumn('environment', 'text', (c) => c.notNull())
      .addColumn('permissions', 'text', (c) => c.notNull())
      .addColumn('resources', 'text', (c) => c.notNull())
      .addColumn('ip_allowlist', 'text', (c) => c.notNull())
      .addColumn('expires_at', 'bigint')
      .addColumn('ratelimit', 'text')
      .addColumn('owner_ratelimit', 'text')
      .addColumn('remaining', 'bigint')
      .addColumn('refill_amount', 'bigint')
      .addColumn('refill_interval', 'text')
      .addColumn('last_refill_at', 'bigint')
      .addColumn('meta', 'text', (c) => c.notNull())
      .addColumn('status', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('revoked_at', 'bigint')
      .addColumn('last_used_at', 'bigint')
      .addColumn('created_by', 'text')
      .addColumn('secret_enc', 'text')
      .execute();
    await db.schema.createIndex('keys_app_created').on('keys').columns(['app_id', 'created_at']).execute();
    await db.schema.createIndex('keys_app_owner').on('keys').columns(['app_id', 'owner_id']).execute();

    await db.schema.createTable('key_hashes')
      .addColumn('hash', 'text', (c) => c.primaryKey())
      .addColumn('key_id', 'text', (c) => c.notNull().references('keys.id'))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint')
      .execute();
    await db.schema.createIndex('key_hashes_key').on('key_hashes').column('key_id').execute();

    await db.schema.createTable('root_keys')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('hash', 'text', (c) => c.notNull().unique())
      .addColumn('start', 'text', (c) => c.notNull())
      .addColumn('permissions', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('created_by', 'text')
      .addColumn('revoked_at', 'bigint')
      .addColumn('last_used_at', 'bigint')
      .execute();
    await db.schema.createIndex('root_keys_workspace').on('root_keys').column('workspace_id').execute();

    await db.schema.createTable('audit_log')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('workspace_id', 'text', (c) => c.notNull())
      .addColumn('actor_type', 'text', (c) => c.notNull())
      .addColumn('actor_id', 'text', (c) => c.notNull())
      .addColumn('action', 'text', (c) => c.notNull())
      .addColumn('target_type', 'text', (c) => c.notNull())
      .addColumn('target_id', 'text', (c) => c.notNull())
      .addColumn('ip', 'text')
      .addColumn('user_agent', 'text')
      .addColumn('meta', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('audit_workspace_time').on('audit_log').columns(['workspace_id', 'created_at']).execute();
    await db.schema.createIndex('audit_target').on('audit_log').columns(['workspace_id', 'target_id']).execute();

    await db.schema.createTable('usage')
      .addColumn('key_id', 'text', (c) => c.notNull())
      .addColumn('bucket', 'bigint', (c) => c.notNull())
      .addColumn('code', 'text', (c) => c.notNull())
      .addColumn('count', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('usage_pk', ['key_id', 'bucket', 'code'])
      .execute();
  },
};

const m002: Migration = {
  async up(db: AnyDb) {
    // Each value of an integration key keeps its own sealed secret, so a rolled key's old
    // secret can still sign JWTs during the grace period.
    await db.schema.alterTable('key_hashes').addColumn('secret_enc', 'text').execute();
    await db.schema.alterTable('keys').dropColumn('secret_enc').execute();
    await db.schema.createTable('vault_secrets')
      .addColumn('app_id', 'text', (c) => c.notNull().references('apps.id'))
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('value_enc', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_by', 'text')
      .addPrimaryKeyConstraint('vault_secrets_pk', ['app_id', 'name'])
      .execute();
  },
};

const m003: Migration = {
  async up(db: AnyDb) {
    // A key prefix names one tenant across the instance (verify scoping, secret scanners). Where
    // earlier versions let two apps share one, the oldest keeps it and later ones get a numbered
    // prefix for keys created from now on; existing keys keep their values and keep verifying.
    const apps = await db.selectFrom('apps').select(['id', 'key_prefix']).orderBy('created_at').orderBy('id').execute() as { id: string; key_prefix: string }[];
    const taken = new Set<string>();
    for (const app of apps) {
      let prefix = app.key_prefix;
      for (let n = 2; taken.has(prefix); n++) prefix = `${app.key_prefix.slice(0, 16 - String(n).length)}${n}`;
      taken.add(prefix);
      if (prefix !== app.key_prefix) await db.updateTable('apps').set({ key_prefix: prefix }).where('id', '=', app.id).execute();
    }
    await db.schema.createIndex('apps_key_prefix_unique').on('apps').column('key_prefix').unique().execute();

    // Members join by invitation only; the token is stored as its SHA-256.
    await db.schema.createTable('invitations')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id').onDelete('cascade'))
      .addColumn('email', 'text', (c) => c.notNull())
      .addColumn('role', 'text', (c) => c.notNull())
      .addColumn('token_hash', 'text', (c) => c.notNull().unique())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('expires_at', 'bigint', (c) => c.notNull())
      .addColumn('created_by', 'text')
      .addColumn('accepted_at', 'bigint')
      .addColumn('accepted_by', 'text')
      .addColumn('revoked_at', 'bigint')
      .execute();
    await db.schema.createIndex('invitations_workspace').on('invitations').columns(['workspace_id', 'created_at']).execute();
  },
};

const m004: Migration = {
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

const m005: Migration = {
  async up(db: AnyDb) {
    // Live nodes, by heartbeat: while Redis is away each node takes its share of every rate limit.
    await db.schema.createTable('nodes')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('seen_at', 'bigint', (c) => c.notNull())
      .execute();
  },
};

const m006: Migration = {
  async up(db: AnyDb) {
    // Gateway forward auth: per-app rules mapping method and path to the permissions they need.
    await db.schema.alterTable('apps').addColumn('gateway_rules', 'text').execute();
  },
};

const m007: Migration = {
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

export const migrations: Record<string, Migration> = {
  '001_init': m001,
  '002_integration_vault': m002,
  '003_unique_prefix_invitations': m003,
  '004_change_feed_idempotency': m004,
  '005_nodes': m005,
  '006_gateway_rules': m006,
  '007_webhooks': m007,
};
