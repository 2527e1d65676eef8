// The audit trail: written in the same transaction as the change it describes.
import type { Kysely } from 'kysely';
import type { AuditTable, Database } from '../schema.js';
import { newId } from '../../lib/random.js';
import { offsetOf, type PageOf, type PageRequest } from './sql.js';

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
  action?: string | undefined;
  targetId?: string | undefined;
}

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

  /** Newest first. */
  async list(workspaceId: string, filters: AuditFilters, page: PageRequest): Promise<PageOf<AuditTable>> {
    let q = this.db.selectFrom('audit_log').where('workspace_id', '=', workspaceId);
    if (filters.action) q = q.where('action', '=', filters.action);
    if (filters.targetId) q = q.where('target_id', '=', filters.targetId);
    const { n } = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await q.selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(page.limit).offset(offsetOf(page)).execute();
    return { rows, total: Number(n) };
  }
}
