// Master-key rotation: re-seals every integration secret and vault value under the current key,
// in one transaction. Run with KEYWARD_MASTER_KEY = the new key and KEYWARD_MASTER_KEY_PREVIOUS = the old one.
import { sealContext, type SecretBox } from '../lib/secretbox.js';
import type { Store } from '../store/db.js';

export async function reencryptAll(store: Store, box: SecretBox): Promise<{ secrets: number; vault: number }> {
  return store.transaction(async (r) => {
    let secrets = 0;
    let vault = 0;
    for (const v of await r.keys.sealedSecrets()) {
      if (!box.isStale(v.secret_enc)) continue;
      const context = sealContext.keySecret(v.key_id);
      await r.keys.resealSecret(v.hash, box.seal(box.open(v.secret_enc, context), context));
      secrets++;
    }
    for (const item of await r.vault.all()) {
      if (!box.isStale(item.value_enc)) continue;
      const context = sealContext.vault(item.app_id, item.name);
      await r.vault.reseal(item.app_id, item.name, box.seal(box.open(item.value_enc, context), context));
      vault++;
    }
    await r.settings.set('master_key_id', box.currentId);
    return { secrets, vault };
  });
}
