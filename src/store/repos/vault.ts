// Vault secrets per app, sealed by the caller before they get here.
import type { Kysely } from 'kysely';
import type { Database, VaultSecretsTable } from '../schema.js';

export class VaultRepo {
  constructor(private readonly db: Kysely<Database>) {}

  list(appId: string): Promise<Omit<VaultSecretsTable, 'value_enc' | 'app_id'>[]> {
    return this.db.selectFrom('vault_secrets').select(['name', 'created_at', 'updated_at', 'updated_by'])
      .where('app_id', '=', appId).orderBy('name').execute();
  }

  find(appId: string, name: string): Promise<VaultSecretsTable | undefined> {
    return this.db.selectFrom('vault_secrets').selectAll().where('app_id', '=', appId).where('name', '=', name).executeTakeFirst();
  }

  async upsert(row: VaultSecretsTable): Promise<void> {
    await this.db.insertInto('vault_secrets').values(row)
      .onConflict((oc) => oc.columns(['app_id', 'name']).doUpdateSet({ value_enc: row.value_enc, updated_at: row.updated_at, updated_by: row.updated_by }))
      .execute();
  }

  /** False when there was nothing to delete. */
  async delete(appId: string, name: string): Promise<boolean> {
    const res = await this.db.deleteFrom('vault_secrets').where('app_id', '=', appId).where('name', '=', name).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  all(): Promise<Pick<VaultSecretsTable, 'app_id' | 'name' | 'value_enc'>[]> {
    return this.db.selectFrom('vault_secrets').select(['app_id', 'name', 'value_enc']).execute();
  }

  async reseal(appId: string, name: string, valueEnc: string): Promise<void> {
    await this.db.updateTable('vault_secrets').set({ value_enc: valueEnc }).where('app_id', '=', appId).where('name', '=', name).execute();
  }
}
