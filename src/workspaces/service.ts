// Workspaces, their members and their root keys.
import { conflict, forbidden, notFound } from '../errors.js';
import { sha256Hex } from '../lib/hash.js';
import { newId } from '../lib/random.js';
import type { Clock } from '../lib/clock.js';
import type { InvalidationBus } from '../shared/bus.js';
import type { WebhookOutbox } from '../webhooks/outbox.js';
import { made, type IdempotencyClaim, type Store } from '../store/db.js';
import type { Actor } from '../store/repos/index.js';
import type { MemberRow, Role } from '../store/repos/workspaces.js';
import type { RootKeysTable, WorkspacesTable } from '../store/schema.js';
import { generateKey, ROOT_KEY_PREFIX } from '../lib/key-format.js';
import type { Access, Principal } from '../auth/service.js';
import { grants, ROLES, rolesNotInvitable, type Permission } from '../auth/permissions.js';

export class WorkspaceService {
  constructor(private readonly store: Store, private readonly clock: Clock, private readonly bus: InvalidationBus, private readonly outbox: WebhookOutbox) {}

  /** A user's workspaces with their role; a root key's one workspace. */
  async listFor(principal: Principal): Promise<(WorkspacesTable & { role?: Role })[]> {
    if (principal.kind === 'user') return this.store.repos.workspaces.listForUser(principal.userId);
    const ws = await this.store.repos.workspaces.find(principal.workspaceId);
    return ws ? [ws] : [];
  }

  async get(id: string): Promise<WorkspacesTable> {
    const ws = await this.store.repos.workspaces.find(id);
    if (!ws) throw notFound('Workspace');
    return ws;
  }

  async create(principal: Principal, actor: Actor, name: string): Promise<WorkspacesTable> {
    if (principal.kind !== 'user') throw forbidden('Root keys cannot create workspaces');
    const now = this.clock.now();
    const row = { id: newId('workspace'), name, created_at: now };
    await this.store.transaction(async (r) => {
      await r.workspaces.insert(row);
      await r.workspaces.addMember({ workspace_id: row.id, user_id: principal.userId, role: 'owner', created_at: now });
      await r.audit.record(actor, { workspaceId: row.id, action: 'workspace.create', targetType: 'workspace', targetId: row.id }, now);
    });
    return row;
  }

  members(workspaceId: string): Promise<MemberRow[]> {
    return this.store.repos.workspaces.members(workspaceId);
  }

  /**
   * Removes a member. In the same transaction: their pending invitations die, and a `member`
   * change is written, so every node ends their open change streams of this workspace at once.
   */
  async removeMember(workspaceId: string, access: Access, userId: string): Promise<void> {
    const now = this.clock.now();
    await this.store.transaction(async (r) => {
      const role = await r.workspaces.role(workspaceId, userId);
      if (!role) throw notFound('Member');
      if (role === 'owner') {
        if (access.role !== 'owner') throw forbidden('Only an owner can remove an owner');
        if ((await r.workspaces.countOwners(workspaceId)) <= 1) throw conflict('A workspace keeps at least one owner');
      }
      await r.workspaces.removeMember(workspaceId, userId);
      const revoked = await r.invitations.revokeFromInviter(workspaceId, userId, ROLES, now);
      await r.changes.record('member', userId, workspaceId, now);
      await r.audit.record(access.actor, { workspaceId, action: 'member.remove', targetType: 'user', targetId: userId, ...(revoked > 0 ? { meta: { invitationsRevoked: revoked } } : {}) }, now);
    });
    this.bus.accessChanged({ kind: 'member', target: userId, workspaceId });
  }

  /**
   * Gives a member another role. Owners are made and unmade only by owners, and a workspace keeps
   * one; the member's pending invitations for roles they may no longer invite die with the change.
   */
  async setRole(workspaceId: string, access: Access, userId: string, role: Role): Promise<void> {
    const now = this.clock.now();
    await this.store.transaction(async (r) => {
      const current = await r.workspaces.role(workspaceId, userId);
      if (!current) throw notFound('Member');
      if ((current === 'owner' || role === 'owner') && access.role !== 'owner') throw forbidden('Only an owner can make or unmake an owner');
      if (current === role) return;
      if (current === 'owner' && (await r.workspaces.countOwners(workspaceId)) <= 1) throw conflict('A workspace keeps at least one owner');
      await r.workspaces.setRole(workspaceId, userId, role);
      const revoked = await r.invitations.revokeFromInviter(workspaceId, userId, rolesNotInvitable(role), now);
      await r.audit.record(access.actor, { workspaceId, action: 'member.role', targetType: 'user', targetId: userId, meta: { from: current, to: role, ...(revoked > 0 ? { invitationsRevoked: revoked } : {}) } }, now);
    });
  }

  rootKeys(workspaceId: string): Promise<RootKeysTable[]> {
    return this.store.repos.rootKeys.listByWorkspace(workspaceId);
  }

  /** A root key can grant only what its creator holds; its value is returned once. */
  async createRootKey(workspaceId: string, access: Access, name: string, permissions: Permission[], claim?: IdempotencyClaim): Promise<{ row: RootKeysTable; value: string }> {
    for (const perm of permissions) {
      if (!grants(access.permissions, perm)) throw forbidden(`Cannot grant "${perm}", which this credential lacks`);
    }
    const now = this.clock.now();
    const { plaintext, start } = generateKey(ROOT_KEY_PREFIX, 'live');
    const row: RootKeysTable = {
      id: newId('rootKey'), workspace_id: workspaceId, name, hash: sha256Hex(plaintext), start,
      permissions: JSON.stringify(permissions), created_at: now, created_by: access.actor.id, revoked_at: null, last_used_at: null,
    };
    await this.store.transaction(async (r) => {
      await r.rootKeys.insert(row);
      await r.audit.record(access.actor, { workspaceId, action: 'root_key.create', targetType: 'root_key', targetId: row.id, meta: { permissions } }, now);
      await this.outbox.rootKey(r, 'rootkey.created', row, now);
    }, { idempotency: made(claim, row.id) });
    return { row, value: plaintext };
  }

  async revokeRootKey(key: RootKeysTable, access: Access): Promise<void> {
    if (key.revoked_at !== null) return;
    const now = this.clock.now();
    await this.store.transaction(async (r) => {
      await r.rootKeys.revoke(key.id, now);
      await r.changes.record('root_key', key.id, key.workspace_id, now);
      await r.audit.record(access.actor, { workspaceId: key.workspace_id, action: 'root_key.revoke', targetType: 'root_key', targetId: key.id }, now);
      await this.outbox.rootKey(r, 'rootkey.revoked', { ...key, revoked_at: now }, now);
    });
    // Cached copies are dropped and open change streams of the key end, on every node.
    this.bus.accessChanged({ kind: 'root_key', target: key.id, workspaceId: key.workspace_id });
  }
}
