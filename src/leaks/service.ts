// What a leak report does: a reported live key is disabled or revoked (policy), a root key always
// revoked, each audited; the answer says what happened to each token.
import { sha256Hex } from '../lib/hash.js';
import type { Clock } from '../lib/clock.js';
import { parseKey } from '../lib/key-format.js';
import type { InvalidationBus } from '../shared/bus.js';
import type { WebhookOutbox } from '../webhooks/outbox.js';
import type { Store } from '../store/db.js';
import type { Actor } from '../store/repos/index.js';

export interface LeakItem {
  token: string;
  type: string;
  url?: string | undefined;
  source?: string | undefined;
}

export interface LeakOutcome {
  token_hash: string;
  token_type: string;
  label: 'true_positive' | 'false_positive';
  action: 'disabled' | 'revoked' | 'already_inactive' | 'none';
}

export class LeakService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly bus: InvalidationBus,
    private readonly policy: 'disable' | 'revoke',
    private readonly outbox: WebhookOutbox,
  ) {}

  async handle(actor: Actor, item: LeakItem): Promise<LeakOutcome> {
    const tokenHash = sha256Hex(item.token);
    const result = (label: LeakOutcome['label'], action: LeakOutcome['action']): LeakOutcome => ({ token_hash: tokenHash, token_type: item.type, label, action });
    if (!parseKey(item.token)) return result('false_positive', 'none');
    const now = this.clock.now();
    const meta = { url: item.url ?? null, source: item.source ?? null, type: item.type };
    const repos = this.store.repos;

    const root = await repos.rootKeys.findByHash(tokenHash);
    if (root) {
      if (root.revoked_at !== null) return result('true_positive', 'already_inactive');
      await this.store.transaction(async (r) => {
        await r.rootKeys.revoke(root.id, now);
        await r.changes.record('root_key', root.id, root.workspace_id, now);
        await r.audit.record(actor, { workspaceId: root.workspace_id, action: 'root_key.leak_revoke', targetType: 'root_key', targetId: root.id, meta }, now);
        await this.outbox.rootKey(r, 'rootkey.revoked', { ...root, revoked_at: now }, now);
      });
      this.bus.keyChanged(root.id, root.workspace_id);
      return result('true_positive', 'revoked');
    }

    const key = await repos.keys.findByHash(tokenHash);
    if (!key) return result('false_positive', 'none');
    if (key.status !== 'active') {
      // Still worth telling whoever owns it, once per report.
      await this.store.transaction((r) => this.outbox.key(r, 'key.leaked', key, now));
      return result('true_positive', 'already_inactive');
    }
    const revoke = this.policy === 'revoke';
    // The events carry the key as this change wrote it (RETURNING), not as it was read before.
    const after = await this.store.transaction(async (r) => {
      const after = revoke ? await r.keys.revokeIfLive(key.id, now) : await r.keys.change(key.id, { status: 'disabled', updated_at: now });
      await r.changes.record('key', key.id, key.workspace_id, now);
      if (!after) return undefined;
      await r.audit.record(actor, { workspaceId: key.workspace_id, action: revoke ? 'key.leak_revoke' : 'key.leak_disable', targetType: 'key', targetId: key.id, meta }, now);
      await this.outbox.key(r, 'key.leaked', after, now);
      await this.outbox.key(r, revoke ? 'key.revoked' : 'key.disabled', after, now);
      return after;
    });
    this.bus.keyChanged(key.id, key.workspace_id);
    // Revoked meanwhile, by someone else: nothing of this report's own to do.
    if (!after) return result('true_positive', 'already_inactive');
    return result('true_positive', revoke ? 'revoked' : 'disabled');
  }
}
