// Apps: containers of keys. Deleted apps keep their row (deleted_at) for the audit trail.
import type { Kysely } from 'kysely';
import { lockRows } from '../dialects/sql.js';
import type { AppsTable, Database } from '../schema.js';

export class AppRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /** A live (not deleted) app. */
  find(id: string): Promise<AppsTable | undefined> {
    return this.db.selectFrom('apps').selectAll().where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst();
  }

  /** The app, deleted or not: a repeated delete finds it, so deleting is idempotent. */
  findEvenDeleted(id: string): Promise<AppsTable | undefined> {
    return this.db.selectFrom('apps').selectAll().where('id', '=', id).executeTakeFirst();
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

  /**
   * Marks a live app deleted, taking its row lock first (a key being created in it waits, then
   * finds it gone); false when it already was deleted.
   */
  async deleteIfLive(id: string, now: number): Promise<boolean> {
    const res = await this.db.updateTable('apps').set({ deleted_at: now, updated_at: now }).where('id', '=', id).where('deleted_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /**
   * The app, if live, held (PostgreSQL: FOR SHARE) until the transaction ends, so it cannot be
   * deleted under a key being created in it; SQLite's write transactions already exclude each other.
   */
  liveForWrite(id: string): Promise<AppsTable | undefined> {
    const q = this.db.selectFrom('apps').selectAll().where('id', '=', id).where('deleted_at', 'is', null);
    return lockRows(this.db, q, 'share').executeTakeFirst();
  }
}
