// The audit trail: written in the same transaction as the change it describes.
import { sql, type Kysely } from 'kysely';
import type { AuditTable, Database } from '../schema.js';
import { newId } from '../../lib/random.js';
import { offsetOf, prefixPattern, type PageOf, type PageRequest } from './sql.js';

export interface Actor {
  type: 'user' | 'root_key' | 'system' | 'chat';
  id: string;
  ip: string | null;
  userAgent: string | null;
}

export interface AuditEntry {
  workspaceId: string;
  action: string;
  targetType: string;
  targetId: string;
  meta?: Record<string, unknown>;
}

export interface AuditFilters {
  /** An action, or the start of one: `vault` finds `vault.create`, `vault.reveal` … */
  action?: string | undefined;
  targetId?: string | undefined;
  /** Epoch ms, inclusive. */
  since?: number | undefined;
  /** Epoch ms, exclusive. */
  until?: number | undefined;
}

/** An entry with the email of its actor when the actor is a user. */
export type AuditRow = AuditTable & { actor_email: string | null };

const MAX_USER_AGENT = 256;

export class AuditRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async record(actor: Actor, entry: AuditEntry, now: number): Promise<void> {
    await this.db.insertInto('audit_log').values({
      id: newId('audit'),
      workspace_id: entry.workspaceId,
      actor_type: actor.type,
      actor_id: actor.id,
      action: entry.action,
      target_type: entry.targetType,
      target_id: entry.targetId,
      ip: actor.ip,
      user_agent: actor.userAgent ? actor.userAgent.slice(0, MAX_USER_AGENT) : null,
      meta: JSON.stringify(entry.meta ?? {}),
      created_at: now,
    }).execute();
  }

  /** Many entries by one actor at once (a key import), in statements of a bounded size. */
  async recordMany(actor: Actor, entries: readonly AuditEntry[], now: number): Promise<void> {
    const rows = entries.map((entry) => ({
      id: newId('audit'), workspace_id: entry.workspaceId, actor_type: actor.type, actor_id: actor.id, action: entry.action,
      target_type: entry.targetType, target_id: entry.targetId, ip: actor.ip,
      user_agent: actor.userAgent ? actor.userAgent.slice(0, MAX_USER_AGENT) : null, meta: JSON.stringify(entry.meta ?? {}), created_at: now,
    }));
    for (let i = 0; i < rows.length; i += 500) await this.db.insertInto('audit_log').values(rows.slice(i, i + 500)).execute();
  }

  /** Newest first. */
  async list(workspaceId: string, filters: AuditFilters, page: PageRequest): Promise<PageOf<AuditRow>> {
    let q = this.db.selectFrom('audit_log').where('audit_log.workspace_id', '=', workspaceId);
    if (filters.action) q = q.where(sql<boolean>`audit_log.action like ${prefixPattern(filters.action)} escape '\\'`);
    if (filters.targetId) q = q.where('audit_log.target_id', '=', filters.targetId);
    if (filters.since !== undefined) q = q.where('audit_log.created_at', '>=', filters.since);
    if (filters.until !== undefined) q = q.where('audit_log.created_at', '<', filters.until);
    const { n } = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await q.leftJoin('users', (j) => j.onRef('users.id', '=', 'audit_log.actor_id').on('audit_log.actor_type', '=', 'user'))
      .selectAll('audit_log').select('users.email as actor_email')
      .orderBy('audit_log.created_at', 'desc').orderBy('audit_log.id', 'desc').limit(page.limit).offset(offsetOf(page)).execute();
    return { rows, total: Number(n) };
  }
}
