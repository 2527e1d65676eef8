// Identities: the customers behind keys. A key names its identity by `ownerId` (= externalId in its
// workspace); verify loads the identity with the key, so every change here is a change of those
// keys: written to the change feed in its own transaction and invalidated on every node.
import type { Static } from '@sinclair/typebox';
import { conflict, invalid } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import { parseJson } from '../lib/json.js';
import { newId } from '../lib/random.js';
import { iso } from '../lib/time.js';
import type { InvalidationBus } from '../shared/bus.js';
import { made, type IdempotencyClaim, type Store } from '../store/db.js';
import type { Actor } from '../store/repos/index.js';
import type { PageOf, PageRequest } from '../store/repos/sql.js';
import type { IdentitiesTable } from '../store/schema.js';
import { normalizeLimits, repeatedName, type NamedLimit } from '../ratelimit/schemas.js';
import type { CreateIdentityBody, IdentityView, PatchIdentityBody } from './schemas.js';

const MAX_META_BYTES = 16 * 1024;

export function identityView(row: IdentitiesTable): Static<typeof IdentityView> {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    externalId: row.external_id,
    meta: parseJson<Record<string, unknown>>(row.meta, {}),
    ratelimits: parseJson<NamedLimit[]>(row.ratelimits, []),
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
  };
}

function checkInput(input: Static<typeof PatchIdentityBody>): void {
  if (input.meta !== undefined && Buffer.byteLength(JSON.stringify(input.meta)) > MAX_META_BYTES) throw invalid('body/meta', `must be at most ${MAX_META_BYTES} bytes of JSON`);
  const repeated = input.ratelimits === undefined ? -1 : repeatedName(input.ratelimits);
  if (repeated >= 0) throw invalid(`body/ratelimits/${repeated}/name`, 'is used by another limit of this identity');
}

export class IdentityService {
  constructor(private readonly store: Store, private readonly clock: Clock, private readonly bus: Pick<InvalidationBus, 'identityChanged'>) {}

  list(workspaceId: string, q: string | undefined, page: PageRequest): Promise<PageOf<IdentitiesTable>> {
    return this.store.repos.identities.list(workspaceId, q, page);
  }

  async create(workspaceId: string, actor: Actor, input: Static<typeof CreateIdentityBody>, claim?: IdempotencyClaim): Promise<IdentitiesTable> {
    checkInput(input);
    const now = this.clock.now();
    const row: IdentitiesTable = {
      id: newId('identity'), workspace_id: workspaceId, external_id: input.externalId,
      meta: JSON.stringify(input.meta ?? {}), ratelimits: JSON.stringify(normalizeLimits(input.ratelimits ?? [])),
      created_at: now, updated_at: now,
    };
    await this.store.transaction(async (r) => {
      if (!(await r.identities.insertIfAbsent(row))) throw conflict('This workspace already has an identity with this externalId');
      await r.changes.record('identity', row.external_id, workspaceId, now);
      await r.audit.record(actor, { workspaceId, action: 'identity.create', targetType: 'identity', targetId: row.id, meta: { externalId: row.external_id } }, now);
    }, { idempotency: made(claim, row.id) });
    this.bus.identityChanged(workspaceId, row.external_id);
    return row;
  }

  async update(identity: IdentitiesTable, actor: Actor, input: Static<typeof PatchIdentityBody>): Promise<IdentitiesTable> {
    checkInput(input);
    const now = this.clock.now();
    const changes: Partial<IdentitiesTable> = { updated_at: now };
    if (input.meta !== undefined) changes.meta = JSON.stringify(input.meta);
    if (input.ratelimits !== undefined) changes.ratelimits = JSON.stringify(normalizeLimits(input.ratelimits));
    const after = await this.store.transaction(async (r) => {
      const after = await r.identities.change(identity.id, changes);
      if (!after) throw conflict('This identity was deleted meanwhile');
      await r.changes.record('identity', identity.external_id, identity.workspace_id, now);
      await r.audit.record(actor, { workspaceId: identity.workspace_id, action: 'identity.update', targetType: 'identity', targetId: identity.id, meta: { changes: Object.keys(input) } }, now);
      return after;
    });
    this.bus.identityChanged(identity.workspace_id, identity.external_id);
    return after;
  }

  /**
   * Refused while keys name it as their owner, unless forced: then those keys verify without
   * identity limits or meta until an identity with this externalId exists again.
   */
  async delete(identity: IdentitiesTable, actor: Actor, force: boolean): Promise<void> {
    const now = this.clock.now();
    await this.store.transaction(async (r) => {
      const keys = await r.identities.liveKeyCount(identity.workspace_id, identity.external_id);
      if (keys > 0 && !force) throw conflict(`${keys} key(s) name this identity as their owner; revoke them, or delete with ?force=true`);
      if (!(await r.identities.delete(identity.id))) return;
      await r.changes.record('identity', identity.external_id, identity.workspace_id, now);
      await r.audit.record(actor, { workspaceId: identity.workspace_id, action: 'identity.delete', targetType: 'identity', targetId: identity.id, meta: { externalId: identity.external_id, keys, force } }, now);
    });
    this.bus.identityChanged(identity.workspace_id, identity.external_id);
  }
}
