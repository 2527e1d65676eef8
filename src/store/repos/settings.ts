// Instance-wide settings: the "setup done" flag and the id of the master key secrets are sealed with.
import type { Kysely } from 'kysely';
import type { Database } from '../schema.js';

export class SettingsRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async get(name: string): Promise<string | undefined> {
    return (await this.db.selectFrom('settings').select('value').where('name', '=', name).executeTakeFirst())?.value;
  }

  /** Inserts; a unique violation when the name is taken (the atomic "first one wins" flag). */
  async insert(name: string, value: string): Promise<void> {
    await this.db.insertInto('settings').values({ name, value }).execute();
  }

  async insertIfAbsent(name: string, value: string): Promise<void> {
    await this.db.insertInto('settings').values({ name, value }).onConflict((oc) => oc.doNothing()).execute();
  }

  async set(name: string, value: string): Promise<void> {
    await this.db.updateTable('settings').set({ value }).where('name', '=', name).execute();
  }
}
