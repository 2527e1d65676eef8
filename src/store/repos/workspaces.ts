// Workspaces and their members.
import type { Kysely } from 'kysely';
import type { Database, MembersTable, WorkspacesTable } from '../schema.js';

export type Role = MembersTable['role'];

export interface MemberRow {
  userId: string;
  email: string;
  name: string;
  role: Role;
  createdAt: number;
}

export class WorkspaceRepo {
  constructor(private readonly db: Kysely<Database>) {}

  find(id: string): Promise<WorkspacesTable | undefined> {
    return this.db.selectFrom('workspaces').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** The workspaces a user belongs to, with their role, oldest first. */
  listForUser(userId: string): Promise<(WorkspacesTable & { role: Role })[]> {
    return this.db.selectFrom('workspaces').innerJoin('members', 'members.workspace_id', 'workspaces.id')
      .select(['workspaces.id', 'workspaces.name', 'workspaces.created_at', 'members.role'])
      .where('members.user_id', '=', userId).orderBy('workspaces.created_at').execute();
  }

  async insert(row: WorkspacesTable): Promise<void> {
    await this.db.insertInto('workspaces').values(row).execute();
  }

  async role(workspaceId: string, userId: string): Promise<Role | undefined> {
    const row = await this.db.selectFrom('members').select('role')
      .where('workspace_id', '=', workspaceId).where('user_id', '=', userId).executeTakeFirst();
    return row?.role;
  }

  /** Every role a user holds, in any workspace. */
  async rolesOf(userId: string): Promise<Role[]> {
    return (await this.db.selectFrom('members').select('role').where('user_id', '=', userId).execute()).map((r) => r.role);
  }

  members(workspaceId: string): Promise<MemberRow[]> {
    return this.db.selectFrom('members').innerJoin('users', 'users.id', 'members.user_id')
      .select(['users.id as userId', 'users.email', 'users.name', 'members.role', 'members.created_at as createdAt'])
      .where('members.workspace_id', '=', workspaceId).orderBy('members.created_at').execute();
  }

  async addMember(row: MembersTable): Promise<void> {
    await this.db.insertInto('members').values(row).execute();
  }

  async setRole(workspaceId: string, userId: string, role: Role): Promise<void> {
    await this.db.updateTable('members').set({ role }).where('workspace_id', '=', workspaceId).where('user_id', '=', userId).execute();
  }

  async removeMember(workspaceId: string, userId: string): Promise<void> {
    await this.db.deleteFrom('members').where('workspace_id', '=', workspaceId).where('user_id', '=', userId).execute();
  }

  async countOwners(workspaceId: string): Promise<number> {
    const { n } = await this.db.selectFrom('members').select((eb) => eb.fn.countAll<number>().as('n'))
      .where('workspace_id', '=', workspaceId).where('role', '=', 'owner').executeTakeFirstOrThrow();
    return Number(n);
  }
}
