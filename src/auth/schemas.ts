// Schemas of accounts and sessions, shared by auth, workspaces and invitations.
import { Type } from '@sinclair/typebox';

export const Email = Type.String({ format: 'email', maxLength: 254, examples: ['ada@example.com'] });
export const Password = Type.String({ minLength: 10, maxLength: 200, description: 'At least 10 characters' });

const UserView = Type.Object({ id: Type.String(), email: Type.String(), name: Type.String() });
const WorkspaceBrief = Type.Object({ id: Type.String(), name: Type.String(), role: Type.String() });
export const SessionView = Type.Object({
  token: Type.String({ description: 'Session token; send as "Authorization: Bearer <token>"' }),
  expiresAt: Type.String({ format: 'date-time' }),
  user: UserView,
  workspaces: Type.Array(WorkspaceBrief),
});
