// Migration 003_unique_prefix_invitations.
import { type Kysely, type Migration } from 'kysely';

// Migrations see the schema as it was when they were written, not today's Database type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export const migration: Migration = {
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
