// Writes and reads the audit trail: who did what to which object, when and from where.
import type { Kysely } from 'kysely';
import { newId } from '../lib/random.js';
import type { Database } from '../store/schema.js';

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

/** Called inside the same transaction as the change it describes: both land or neither does. */
export async function recordAudit(db: Kysely<Database>, actor: Actor, entry: AuditEntry, now: number): Promise<void> {
  await db.insertInto('audit_log').values({
    id: newId('audit'),
    workspace_id: entry.workspaceId,
    actor_type: actor.type,
    actor_id: actor.id,
    action: entry.action,
    target_type: entry.targetType,
    target_id: entry.targetId,
    ip: actor.ip,
    user_agent: actor.userAgent ? actor.userAgent.slice(0, 256) : null,
    meta: JSON.stringify(entry.meta ?? {}),
    created_at: now,
  }).execute();
}
