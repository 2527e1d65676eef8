// Migration 008_login_addresses.
import { type Kysely, type Migration } from 'kysely';

// Migrations see the schema as it was when they were written, not today's Database type.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

export const migration: Migration = {
  async up(db: AnyDb) {
    // Networks (an IPv4 address or an IPv6 /64) each account proved itself from: setup, an
    // accepted invitation, a good login. Logins from them skip the throttle layers that strangers
    // can exhaust, and get the password-hash slots kept for them.
    await db.schema.createTable('login_addresses')
      .addColumn('user_id', 'text', (c) => c.notNull().references('users.id').onDelete('cascade'))
      .addColumn('network', 'text', (c) => c.notNull())
      .addColumn('created_at', 'bigint', (c) => c.notNull())
      .addColumn('last_seen_at', 'bigint', (c) => c.notNull())
      .addPrimaryKeyConstraint('login_addresses_pk', ['user_id', 'network'])
      .execute();
  },
};
