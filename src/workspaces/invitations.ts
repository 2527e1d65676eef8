// Invitations: the only way into a workspace. An admin names an email and a role and gets a
// one-time link; the invitee sets their own password (a new email) or accepts while logged in as
// that email (an existing account). Nobody sets another person's password, and nothing here tells a
// workspace whether an email has an account anywhere.
import { randomBytes } from 'node:crypto';
import { AppError, conflict, forbidden, invalid, notFound } from '../errors.js';
import { sha256Hex } from '../lib/hash.js';
import { newId } from '../lib/random.js';
import { DAY } from '../lib/time.js';
import type { Clock } from '../lib/clock.js';
import { createdResource } from '../shared/idempotency.js';
import type { Store } from '../store/db.js';
import type { Role } from '../store/repos/workspaces.js';
import type { InvitationsTable } from '../store/schema.js';
import type { Access, AuthService, Origin, Principal, SessionInfo } from '../auth/service.js';

export const INVITATION_TTL_MS = 7 * DAY;
const TOKEN_PREFIX = 'kwi_';

export interface CreatedInvitation {
  row: InvitationsTable;
  token: string;
  url: string;
}

export interface Accepted {
  workspace: { id: string; name: string; role: Role };
  /** A new account's first session; absent when an existing account accepted while logged in. */
  session?: SessionInfo;
}

export class InvitationService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly auth: AuthService,
    /** Where the console is reached, for the link; relative when not configured. */
    private readonly publicUrl: string | undefined,
  ) {}

  async create(workspaceId: string, access: Access, input: { email: string; role: Role }): Promise<CreatedInvitation> {
    if (input.role === 'owner' && access.role !== 'owner') throw forbidden('Only an owner can invite an owner');
    const now = this.clock.now();
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const row: InvitationsTable = {
      id: newId('invitation'), workspace_id: workspaceId, email: input.email.toLowerCase(), role: input.role,
      token_hash: sha256Hex(token), created_at: now, expires_at: now + INVITATION_TTL_MS, created_by: access.actor.id,
      accepted_at: null, accepted_by: null, revoked_at: null,
    };
    await this.store.transaction(async (r) => {
      await r.invitations.insert(row);
      createdResource(row.id);
      await r.audit.record(access.actor, { workspaceId, action: 'invitation.create', targetType: 'invitation', targetId: row.id, meta: { email: row.email, role: row.role } }, now);
    });
    // The token travels in the fragment: it never reaches a server log or a Referer header.
    return { row, token, url: `${this.publicUrl ?? ''}/accept-invite#token=${token}` };
  }

  pending(workspaceId: string): Promise<InvitationsTable[]> {
    return this.store.repos.invitations.pending(workspaceId, this.clock.now());
  }

  async revoke(workspaceId: string, invitationId: string, access: Access): Promise<void> {
    const now = this.clock.now();
    await this.store.transaction(async (r) => {
      const row = await r.invitations.find(invitationId);
      if (!row || row.workspace_id !== workspaceId || !(await r.invitations.revoke(invitationId, now))) throw notFound('Invitation');
      await r.audit.record(access.actor, { workspaceId, action: 'invitation.revoke', targetType: 'invitation', targetId: invitationId }, now);
    });
  }

  /**
   * What an invitation is for, for its accept page: the workspace's name, the email and the role.
   * Nothing about whether the email has an account (the inviter holds the token too).
   */
  async inspect(token: string): Promise<{ workspace: { name: string }; email: string; role: Role; expiresAt: number }> {
    const repos = this.store.repos;
    const invite = token.startsWith(TOKEN_PREFIX) && token.length < 100 ? await repos.invitations.findByTokenHash(sha256Hex(token)) : undefined;
    if (!invite || invite.accepted_at !== null || invite.revoked_at !== null || invite.expires_at <= this.clock.now()) throw notFound('Invitation');
    const workspace = await repos.workspaces.find(invite.workspace_id);
    if (!workspace) throw notFound('Invitation');
    return { workspace: { name: workspace.name }, email: invite.email, role: invite.role, expiresAt: invite.expires_at };
  }

  /** A refused accept changes nothing: the token stays usable for the right person. */
  async accept(token: string, principal: Principal | null, input: { password?: string | undefined; name?: string | undefined }, origin: Origin): Promise<Accepted> {
    const now = this.clock.now();
    const repos = this.store.repos;
    const invite = token.startsWith(TOKEN_PREFIX) && token.length < 100 ? await repos.invitations.findByTokenHash(sha256Hex(token)) : undefined;
    if (!invite || invite.accepted_at !== null || invite.revoked_at !== null || invite.expires_at <= now) throw notFound('Invitation');
    const workspace = await repos.workspaces.find(invite.workspace_id);
    if (!workspace) throw notFound('Invitation');
    const existing = await repos.users.findByEmail(invite.email);
    if (existing) {
      if (!principal || principal.kind !== 'user') throw new AppError('UNAUTHORIZED', 'An account with this email exists: log in as that email, then accept the invitation');
      if (principal.userId !== existing.id) throw forbidden('This invitation is for another email address');
      await this.store.transaction(async (r) => {
        if (!(await r.invitations.accept(invite.id, existing.id, now))) throw notFound('Invitation');
        if (await r.workspaces.role(invite.workspace_id, existing.id)) throw conflict('You are already a member of this workspace');
        await r.workspaces.addMember({ workspace_id: invite.workspace_id, user_id: existing.id, role: invite.role, created_at: now });
        await r.audit.record({ type: 'user', id: existing.id, ...origin }, { workspaceId: invite.workspace_id, action: 'member.join', targetType: 'user', targetId: existing.id, meta: { invitationId: invite.id, role: invite.role } }, now);
      });
      return { workspace: { id: workspace.id, name: workspace.name, role: invite.role } };
    }
    if (!input.password) throw invalid('body/password', 'is required: choose the password of your new account');
    const passwordHash = await this.auth.passwords.hash(input.password);
    const userId = newId('user');
    const session = await this.store.transaction(async (r) => {
      if (!(await r.invitations.accept(invite.id, userId, now))) throw notFound('Invitation');
      await r.users.insert({ id: userId, email: invite.email, name: input.name ?? invite.email.split('@')[0]!, password_hash: passwordHash, created_at: now });
      await r.workspaces.addMember({ workspace_id: invite.workspace_id, user_id: userId, role: invite.role, created_at: now });
      await r.audit.record({ type: 'user', id: userId, ...origin }, { workspaceId: invite.workspace_id, action: 'member.join', targetType: 'user', targetId: userId, meta: { invitationId: invite.id, role: invite.role } }, now);
      return this.auth.startSession(r, userId, origin.ip);
    });
    return { workspace: { id: workspace.id, name: workspace.name, role: invite.role }, session: await this.auth.sessionInfo(userId, session) };
  }
}
