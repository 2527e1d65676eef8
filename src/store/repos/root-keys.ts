// Root keys: workspace credentials for automation, stored by hash.
import type { Kysely } from 'kysely';
import type { Database, RootKeysTable } from '../schema.js';

export class RootKeyRepo {
  constructor(private readonly db: Kysely<Database>) {}

  find(id: string): Promise<RootKeysTable | undefined> {
    return this.db.selectFrom('root_keys').selectAll().where('id', '=', id).executeTakeFirst();
  }

  findByHash(hash: string): Promise<RootKeysTable | undefined> {
    return this.db.selectFrom('root_keys').selectAll().where('hash', '=', hash).executeTakeFirst();
  }

  listByWorkspace(workspaceId: string): Promise<RootKeysTable[]> {
    return this.db.selectFrom('root_keys').selectAll().where('workspace_id', '=', workspaceId).orderBy('created_at', 'desc').execute();
  }

  async insert(row: RootKeysTable): Promise<void> {
    await this.db.insertInto('root_keys').values(row).execute();
  }

  async revoke(id: string, now: number): Promise<void> {
    await this.db.updateTable('root_keys').set({ revoked_at: now }).where('id', '=', id).execute();
  }
}
