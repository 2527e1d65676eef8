// The per-app vault: values sealed with the master key, bound to their app and name.
import { notFound } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import { sealContext, type SecretBox } from '../lib/secretbox.js';
import type { Store } from '../store/db.js';
import type { Actor } from '../store/repos/index.js';
import type { AppsTable, VaultSecretsTable } from '../store/schema.js';

export type SecretInfo = Omit<VaultSecretsTable, 'value_enc' | 'app_id'>;

export class VaultService {
  constructor(private readonly store: Store, private readonly clock: Clock, private readonly box: SecretBox) {}

  list(app: AppsTable): Promise<SecretInfo[]> {
    return this.store.repos.vault.list(app.id);
  }

  async write(app: AppsTable, name: string, value: string, actor: Actor): Promise<SecretInfo> {
    const now = this.clock.now();
    const sealed = this.box.seal(value, sealContext.vault(app.id, name));
    const createdAt = await this.store.transaction(async (r) => {
      const existing = await r.vault.find(app.id, name);
      await r.vault.upsert({ app_id: app.id, name, value_enc: sealed, created_at: now, updated_at: now, updated_by: actor.id });
      await r.audit.record(actor, { workspaceId: app.workspace_id, action: existing ? 'vault.update' : 'vault.create', targetType: 'secret', targetId: `${app.id}/${name}` }, now);
      return existing?.created_at ?? now;
    });
    return { name, created_at: createdAt, updated_at: now, updated_by: actor.id };
  }

  /** Opens the value; the reveal itself is audited. */
  async reveal(app: AppsTable, name: string, actor: Actor): Promise<string> {
    const row = await this.store.repos.vault.find(app.id, name);
    if (!row) throw notFound('Secret');
    const value = this.box.open(row.value_enc, sealContext.vault(app.id, name));
    await this.store.repos.audit.record(actor, { workspaceId: app.workspace_id, action: 'vault.reveal', targetType: 'secret', targetId: `${app.id}/${name}` }, this.clock.now());
    return value;
  }

  async delete(app: AppsTable, name: string, actor: Actor): Promise<void> {
    const now = this.clock.now();
    await this.store.transaction(async (r) => {
      if (!(await r.vault.delete(app.id, name))) throw notFound('Secret');
      await r.audit.record(actor, { workspaceId: app.workspace_id, action: 'vault.delete', targetType: 'secret', targetId: `${app.id}/${name}` }, now);
    });
  }
}
