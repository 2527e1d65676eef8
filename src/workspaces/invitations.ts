// Invitations: the only way into a workspace. An admin names an email and a role and gets a
// one-time link; the invitee sets their own password (a new email), or proves they hold the
// existing account (its password, or a session of it). Nobody sets another person's password, and
// until a password or a session proves who is accepting, every answer is the same whether or not
// the email has an account. An invitation lives only while its inviter may still invite that role.
import { randomBytes } from 'node:crypto';
import { conflict, forbidden, invalid, notFound } from '../errors.js';
import { sha256Hex } from '../lib/hash.js';
import { newId } from '../lib/random.js';
import { DAY } from '../lib/time.js';
import type { Clock } from '../lib/clock.js';
import { made, type IdempotencyClaim, type Store } from '../store/db.js';
import type { Role } from '../store/repos/workspaces.js';
import type { InvitationsTable } from '../store/schema.js';
import type { Access, AuthService, Origin, Principal, SessionInfo } from '../auth/service.js';
import { mayInvite } from '../auth/permissions.js';
import type { Repos } from '../store/repos/index.js';

const INVITATION_TTL_MS = 7 * DAY;
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

  async create(workspaceId: string, access: Access, input: { email: string; role: Role }, claim?: IdempotencyClaim): Promise<CreatedInvitation> {
    if (!mayInvite(access.role ?? undefined, input.role)) throw forbidden(input.role === 'owner' ? 'Only an owner can invite an owner' : 'Only owners and admins invite');
    const now = this.clock.now();
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const row: InvitationsTable = {
      id: newId('invitation'), workspace_id: workspaceId, email: input.email.toLowerCase(), role: input.role,
      token_hash: sha256Hex(token), created_at: now, expires_at: now + INVITATION_TTL_MS, created_by: access.actor.id,
      accepted_at: null, accepted_by: null, revoked_at: null,
    };
    await this.store.transaction(async (r) => {
      await r.invitations.insert(row);
      await r.audit.record(access.actor, { workspaceId, action: 'invitation.create', targetType: 'invitation', targetId: row.id, meta: { email: row.email, role: row.role } }, now);
    }, { idempotency: made(claim, row.id) });
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

  /**
   * A refused accept changes nothing: the token stays usable for the right person. Before anything
   * proves who is accepting, the answers (a dead token, no password, a session of another email)
   * do not depend on whether the invited email has an account.
   */
  async accept(token: string, principal: Principal | null, input: { password?: string | undefined; name?: string | undefined }, origin: Origin): Promise<Accepted> {
    const invite = await this.live(this.store.repos, token);
    const workspace = await this.store.repos.workspaces.find(invite.workspace_id);
    if (!workspace) throw notFound('Invitation');
    const joined = { id: workspace.id, name: workspace.name, role: invite.role };
    if (principal) {
      if (principal.kind !== 'user' || principal.email !== invite.email) {
        throw forbidden('This invitation is for another email address: accept it logged in as that email, or without a session');
      }
      await this.store.transaction(async (r) => {
        await this.join(r, invite, principal.userId, origin);
        await this.auth.markKnown(r, principal.userId, origin.ip);
      });
      return { workspace: joined };
    }
    const password = input.password;
    if (!password) throw invalid('body/password', 'is required: the password of your account, or the one you choose for a new account');
    // A password check like a login's (throttled, a bounded number at once): with an existing
    // account, accepting is logging in to it.
    return this.auth.guarded(invite.email, origin, async (attempt) => {
      if (attempt.user) {
        const { user, rehashed } = await this.auth.checkPassword(attempt, password);
        const session = await this.store.transaction(async (r) => {
          await this.join(r, invite, user.id, origin);
          if (rehashed) await r.users.setPasswordHash(user.id, rehashed);
          return this.auth.sessionInfo(user.id, await this.auth.startSession(r, user.id, origin.ip), r);
        });
        return { workspace: joined, session };
      }
      const passwordHash = await this.auth.passwords.hash(password);
      await attempt.ticket.succeeded();
      const userId = newId('user');
      const now = this.clock.now();
      const session = await this.store.transaction(async (r) => {
        try {
          await r.users.insert({ id: userId, email: invite.email, name: input.name ?? invite.email.split('@')[0]!, password_hash: passwordHash, created_at: now });
        } catch (err) {
          // Another invitation for this email was accepted at the same moment and made the account.
          if (this.store.isUniqueViolation(err)) throw conflict('An account with this email was just created: log in as that email, then accept');
          throw err;
        }
        await this.join(r, invite, userId, origin);
        return this.auth.sessionInfo(userId, await this.auth.startSession(r, userId, origin.ip), r);
      });
      return { workspace: joined, session };
    });
  }

  /** The invitation a token names, if it can still be accepted: 404 for any other. */
  private async live(r: Repos, token: string): Promise<InvitationsTable> {
    const invite = token.startsWith(TOKEN_PREFIX) && token.length < 100 ? await r.invitations.findByTokenHash(sha256Hex(token)) : undefined;
    if (!invite || invite.accepted_at !== null || invite.revoked_at !== null || invite.expires_at <= this.clock.now()) throw notFound('Invitation');
    // It dies with its inviter's rights: removed from the workspace, or no longer allowed this role.
    const inviterRole = invite.created_by === null ? undefined : await r.workspaces.role(invite.workspace_id, invite.created_by);
    if (!mayInvite(inviterRole, invite.role)) throw notFound('Invitation');
    return invite;
  }

  /** Uses the invitation up and adds the member, in the caller's transaction. */
  private async join(r: Repos, invite: InvitationsTable, userId: string, origin: Origin): Promise<void> {
    const now = this.clock.now();
    if (!(await r.invitations.accept(invite.id, userId, now))) throw notFound('Invitation');
    // Again inside the transaction: the inviter may have been removed since the first look.
    const inviterRole = invite.created_by === null ? undefined : await r.workspaces.role(invite.workspace_id, invite.created_by);
    if (!mayInvite(inviterRole, invite.role)) throw notFound('Invitation');
    if (await r.workspaces.role(invite.workspace_id, userId)) throw conflict('You are already a member of this workspace');
    await r.workspaces.addMember({ workspace_id: invite.workspace_id, user_id: userId, role: invite.role, created_at: now });
    await r.audit.record({ type: 'user', id: userId, ...origin }, { workspaceId: invite.workspace_id, action: 'member.join', targetType: 'user', targetId: userId, meta: { invitationId: invite.id, role: invite.role } }, now);
  }
}
