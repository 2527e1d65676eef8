// Migration 009_key_import.
import { sql, type Kysely, type Migration } from 'kysely';

// Migrations see the schema as it was when they were written, not today's Database type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export const migration: Migration = {
  async up(db: AnyDb) {
    // Keys brought in from elsewhere (POST /v1/apps/{id}/keys/import): an app that switches
    // import_keys on accepts, in verify, its imported values whatever their format. Both flags are
    // 0/1 integers, the same on SQLite and PostgreSQL.
    await db.schema.alterTable('apps').addColumn('import_keys', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    await db.schema.alterTable('keys').addColumn('imported', 'integer', (c) => c.notNull().defaultTo(0)).execute();
    // Every node loads the imported values of import-enabled apps at start and on each import.
    await db.schema.createIndex('keys_imported').on('keys').column('app_id').where(sql<boolean>`imported = 1`).execute();
  },
};
