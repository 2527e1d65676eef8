// Migration 013_identities.
import { type Kysely, type Migration } from 'kysely';

// Migrations see the schema as it was when they were written, not today's Database type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export const migration: Migration = {
  async up(db: AnyDb) {
    // A key's named limits (JSON: [{name, limit, durationMs, autoApply}]); '[]' = none.
    await db.schema.alterTable('keys').addColumn('ratelimits', 'text', (c) => c.notNull().defaultTo('[]')).execute();
    // An identity: the customer behind every key whose owner_id is its external_id in the workspace.
    // Keys find it by (workspace_id, owner_id) = (workspace_id, external_id), so deleting one leaves
    // its keys as they are and creating it again attaches them again.
    await db.schema.createTable('identities')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id'))
      .addColumn('external_id', 'text', (c) => c.notNull())
      .addColumn('meta', 'text', (c) => c.notNull().defaultTo('{}'))
      .addColumn('ratelimits', 'text', (c) => c.notNull().defaultTo('[]'))
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('identities_external').unique().on('identities').columns(['workspace_id', 'external_id']).execute();
    // Overrides of a workspace's limits: `kind` 'limit' changes the named limit `name` of the
    // identities (or keys) whose id matches `identifier`; 'namespace' changes the standalone
    // limiter's namespace `name` for the identifiers matching it. `identifier` may end in '*'.
    await db.schema.createTable('ratelimit_overrides')
      .addColumn('id', 'text', (c) => c.primaryKey())
      .addColumn('workspace_id', 'text', (c) => c.notNull().references('workspaces.id'))
      .addColumn('kind', 'text', (c) => c.notNull())
      .addColumn('name', 'text', (c) => c.notNull())
      .addColumn('identifier', 'text', (c) => c.notNull())
      .addColumn('limit', 'bigint', (c) => c.notNull())
      .addColumn('duration_ms', 'bigint', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('updated_at', 'bigint', (c) => c.notNull())
      .execute();
    await db.schema.createIndex('ratelimit_overrides_target').unique().on('ratelimit_overrides').columns(['workspace_id', 'kind', 'name', 'identifier']).execute();
  },
};
