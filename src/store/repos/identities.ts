// Identities (the customers behind keys) and the workspace's rate-limit overrides.
import { sql, type Kysely } from 'kysely';
import type { Database, IdentitiesTable, RatelimitOverridesTable } from '../schema.js';
import { containsPattern, offsetOf, type PageOf, type PageRequest } from './sql.js';
import type { ChangeRepo } from './changes.js';
import { newId } from '../../lib/random.js';

export class IdentityRepo {
  constructor(private readonly db: Kysely<Database>) {}

  find(id: string): Promise<IdentitiesTable | undefined> {
    return this.db.selectFrom('identities').selectAll().where('id', '=', id).executeTakeFirst();
  }

  byExternalId(workspaceId: string, externalId: string): Promise<IdentitiesTable | undefined> {
    return this.db.selectFrom('identities').selectAll().where('workspace_id', '=', workspaceId).where('external_id', '=', externalId).executeTakeFirst();
  }

  /** Inserts the identity unless one with its external id exists; true when this inserted it. */
  async insertIfAbsent(row: IdentitiesTable): Promise<boolean> {
    const res = await this.db.insertInto('identities').values(row)
      .onConflict((oc) => oc.columns(['workspace_id', 'external_id']).doNothing()).executeTakeFirst();
    return Number(res.numInsertedOrUpdatedRows ?? 0) > 0;
  }

  /**
   * The identity of `externalId`, created (empty) if the workspace has none: a key with a new owner
   * makes one, in the key's transaction. True when this created it (the change is recorded too:
   * keys of that owner cached before now pick it up).
   */
  async ensure(workspaceId: string, externalId: string, now: number, changes: ChangeRepo): Promise<boolean> {
    const created = await this.insertIfAbsent({ id: newId('identity'), workspace_id: workspaceId, external_id: externalId, meta: '{}', ratelimits: '[]', created_at: now, updated_at: now });
    if (created) await changes.record('identity', externalId, workspaceId, now);
    return created;
  }

  async list(workspaceId: string, q: string | undefined, page: PageRequest): Promise<PageOf<IdentitiesTable>> {
    let query = this.db.selectFrom('identities').where('workspace_id', '=', workspaceId);
    if (q !== undefined && q !== '') query = query.where(sql<boolean>`lower(external_id) like ${containsPattern(q)} escape '\\'`);
    const { n } = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await query.selectAll().orderBy('external_id').orderBy('id').limit(page.limit).offset(offsetOf(page)).execute();
    return { rows, total: Number(n) };
  }

  /** Changes meta or limits; the row as written, or undefined when it is gone. */
  async change(id: string, changes: Partial<Pick<IdentitiesTable, 'meta' | 'ratelimits' | 'updated_at'>>): Promise<IdentitiesTable | undefined> {
    await this.db.updateTable('identities').set(changes).where('id', '=', id).execute();
    return this.find(id);
  }

  async delete(id: string): Promise<boolean> {
    const res = await this.db.deleteFrom('identities').where('id', '=', id).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  /** Keys not revoked whose owner is this external id, in live apps of the workspace. */
  async liveKeyCount(workspaceId: string, externalId: string): Promise<number> {
    const { n } = await this.db.selectFrom('keys').innerJoin('apps', 'apps.id', 'keys.app_id')
      .where('keys.workspace_id', '=', workspaceId).where('keys.owner_id', '=', externalId)
      .where('keys.status', '!=', 'revoked').where('apps.deleted_at', 'is', null)
      .select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(n);
  }
}

export class OverrideRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /** Every override of a workspace of one kind (a node holds them all in memory). */
  listAll(workspaceId: string, kind?: RatelimitOverridesTable['kind']): Promise<RatelimitOverridesTable[]> {
    let query = this.db.selectFrom('ratelimit_overrides').selectAll().where('workspace_id', '=', workspaceId);
    if (kind !== undefined) query = query.where('kind', '=', kind);
    return query.orderBy('kind').orderBy('name').orderBy('identifier').execute();
  }

  async list(workspaceId: string, kind: RatelimitOverridesTable['kind'], name: string | undefined, page: PageRequest): Promise<PageOf<RatelimitOverridesTable>> {
    let query = this.db.selectFrom('ratelimit_overrides').where('workspace_id', '=', workspaceId).where('kind', '=', kind);
    if (name !== undefined) query = query.where('name', '=', name);
    const { n } = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await query.selectAll().orderBy('name').orderBy('identifier').limit(page.limit).offset(offsetOf(page)).execute();
    return { rows, total: Number(n) };
  }

  find(workspaceId: string, kind: RatelimitOverridesTable['kind'], name: string, identifier: string): Promise<RatelimitOverridesTable | undefined> {
    return this.db.selectFrom('ratelimit_overrides').selectAll().where('workspace_id', '=', workspaceId).where('kind', '=', kind)
      .where('name', '=', name).where('identifier', '=', identifier).executeTakeFirst();
  }

  /** Sets the override of (kind, name, identifier), created or replaced; the row as stored. */
  async upsert(row: RatelimitOverridesTable): Promise<RatelimitOverridesTable> {
    await this.db.insertInto('ratelimit_overrides').values(row)
      .onConflict((oc) => oc.columns(['workspace_id', 'kind', 'name', 'identifier']).doUpdateSet({ limit: row.limit, duration_ms: row.duration_ms, updated_at: row.updated_at }))
      .execute();
    return (await this.find(row.workspace_id, row.kind, row.name, row.identifier))!;
  }

  async delete(workspaceId: string, kind: RatelimitOverridesTable['kind'], name: string, identifier: string): Promise<boolean> {
    const res = await this.db.deleteFrom('ratelimit_overrides').where('workspace_id', '=', workspaceId).where('kind', '=', kind)
      .where('name', '=', name).where('identifier', '=', identifier).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }

  async count(workspaceId: string): Promise<number> {
    const { n } = await this.db.selectFrom('ratelimit_overrides').where('workspace_id', '=', workspaceId)
      .select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    return Number(n);
  }
}
