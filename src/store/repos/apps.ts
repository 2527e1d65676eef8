// Apps: containers of keys. Deleted apps keep their row (deleted_at) for the audit trail.
import type { Kysely } from 'kysely';
import type { AppsTable, Database } from '../schema.js';

export class AppRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /** A live (not deleted) app. */
  find(id: string): Promise<AppsTable | undefined> {
    return this.db.selectFrom('apps').selectAll().where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst();
  }

  listByWorkspace(workspaceId: string): Promise<AppsTable[]> {
    return this.db.selectFrom('apps').selectAll().where('workspace_id', '=', workspaceId)
      .where('deleted_at', 'is', null).orderBy('created_at').execute();
  }

  async insert(row: AppsTable): Promise<void> {
    await this.db.insertInto('apps').values(row).execute();
  }

  async update(id: string, changes: Pick<AppsTable, 'name' | 'key_prefix' | 'defaults' | 'updated_at' | 'gateway_rules' | 'import_keys'>): Promise<void> {
    await this.db.updateTable('apps').set(changes).where('id', '=', id).execute();
  }

  async markDeleted(id: string, now: number): Promise<void> {
    await this.db.updateTable('apps').set({ deleted_at: now, updated_at: now }).where('id', '=', id).execute();
  }
}
