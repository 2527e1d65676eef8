// Migration 006_gateway_rules.
import { type Kysely, type Migration } from 'kysely';

// Migrations see the schema as it was when they were written, not today's Database type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export const migration: Migration = {
  async up(db: AnyDb) {
    // Gateway forward auth: per-app rules mapping method and path to the permissions they need.
    await db.schema.alterTable('apps').addColumn('gateway_rules', 'text').execute();
  },
};
