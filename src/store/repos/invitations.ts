// Invitations to a workspace: stored by token hash, used once, revocable.
import type { Kysely } from 'kysely';
import type { Database, InvitationsTable } from '../schema.js';

export class InvitationRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async insert(row: InvitationsTable): Promise<void> {
    await this.db.insertInto('invitations').values(row).execute();
  }

  find(id: string): Promise<InvitationsTable | undefined> {
    return this.db.selectFrom('invitations').selectAll().where('id', '=', id).executeTakeFirst();
  }

  findByTokenHash(tokenHash: string): Promise<InvitationsTable | undefined> {
    return this.db.selectFrom('invitations').selectAll().where('token_hash', '=', tokenHash).executeTakeFirst();
  }

  /** Not accepted, not revoked, not expired; newest first. */
  pending(workspaceId: string, now: number): Promise<InvitationsTable[]> {
    return this.db.selectFrom('invitations').selectAll().where('workspace_id', '=', workspaceId)
      .where('accepted_at', 'is', null).where('revoked_at', 'is', null).where('expires_at', '>', now)
      .orderBy('created_at', 'desc').execute();
  }

  /** Marks it used if it still can be; false when another accept (or a revoke) came first. */
  async accept(id: string, userId: string, now: number): Promise<boolean> {
    const res = await this.db.updateTable('invitations').set({ accepted_at: now, accepted_by: userId })
      .where('id', '=', id).where('accepted_at', 'is', null).where('revoked_at', 'is', null).where('expires_at', '>', now)
      .executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Revokes the pending invitations `userId` made in a workspace for these roles; how many. */
  async revokeFromInviter(workspaceId: string, userId: string, roles: readonly InvitationsTable['role'][], now: number): Promise<number> {
    if (roles.length === 0) return 0;
    const res = await this.db.updateTable('invitations').set({ revoked_at: now })
      .where('workspace_id', '=', workspaceId).where('created_by', '=', userId).where('role', 'in', [...roles])
      .where('accepted_at', 'is', null).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows);
  }

  async revoke(id: string, now: number): Promise<boolean> {
    const res = await this.db.updateTable('invitations').set({ revoked_at: now })
      .where('id', '=', id).where('accepted_at', 'is', null).where('revoked_at', 'is', null).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }
}
