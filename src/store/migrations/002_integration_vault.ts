// Migration 002_integration_vault.
import { type Kysely, type Migration } from 'kysely';

// Migrations see the schema as it was when they were written, not today's Database type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export const migration: Migration = {
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
