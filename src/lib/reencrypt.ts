// Master-key rotation: re-seals every integration secret and vault value under the current key.
// Run with KEYWARD_MASTER_KEY = the new key and KEYWARD_MASTER_KEY_PREVIOUS = the old one.
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.js';
import type { SecretBox } from './secretbox.js';

export async function reencryptAll(db: Kysely<Database>, box: SecretBox): Promise<{ secrets: number; vault: number }> {
  return db.transaction().execute(async (trx) => {
    let secrets = 0;
    let vault = 0;
    const values = await trx.selectFrom('key_hashes').select(['hash', 'key_id', 'secret_enc']).where('secret_enc', 'is not', null).execute();
    for (const v of values) {
      if (!box.isStale(v.secret_enc!)) continue;
      const context = `key:${v.key_id}`;
      await trx.updateTable('key_hashes').set({ secret_enc: box.seal(box.open(v.secret_enc!, context), context) }).where('hash', '=', v.hash).execute();
      secrets++;
    }
    const items = await trx.selectFrom('vault_secrets').select(['app_id', 'name', 'value_enc']).execute();
    for (const item of items) {
      if (!box.isStale(item.value_enc)) continue;
      const context = `vault:${item.app_id}:${item.name}`;
      await trx.updateTable('vault_secrets').set({ value_enc: box.seal(box.open(item.value_enc, context), context) })
        .where('app_id', '=', item.app_id).where('name', '=', item.name).execute();
      vault++;
    }
    await trx.updateTable('settings').set({ value: box.currentId }).where('name', '=', 'master_key_id').execute();
    return { secrets, vault };
  });
}
