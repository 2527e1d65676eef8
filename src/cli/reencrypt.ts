// Master-key rotation: re-seals every integration secret, vault value and webhook secret under the current key,
// in one transaction. Run with KEYWARD_MASTER_KEY = the new key and KEYWARD_MASTER_KEY_PREVIOUS = the old one.
import { sealContext, type SecretBox } from '../lib/secretbox.js';
import type { Store } from '../store/db.js';

export async function reencryptAll(store: Store, box: SecretBox): Promise<{ secrets: number; vault: number; webhooks: number }> {
  return store.transaction(async (r) => {
    let secrets = 0;
    let vault = 0;
    let webhooks = 0;
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
    for (const hook of await r.webhooks.sealedSecrets()) {
      const context = sealContext.webhookSecret(hook.id);
      const reseal = (sealed: string | null) => (sealed !== null && box.isStale(sealed) ? box.seal(box.open(sealed, context), context) : null);
      const current = reseal(hook.secret_enc);
      const previous = reseal(hook.previous_secret_enc);
      if (current === null && previous === null) continue;
      await r.webhooks.update(hook.id, { ...(current !== null ? { secret_enc: current } : {}), ...(previous !== null ? { previous_secret_enc: previous } : {}) });
      webhooks++;
    }
    await r.settings.set('master_key_id', box.currentId);
    return { secrets, vault, webhooks };
  });
}
