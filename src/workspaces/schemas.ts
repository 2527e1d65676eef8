// TypeBox schemas of workspaces, members and root keys (pure: shared with the console and SDK).
import { Type } from '@sinclair/typebox';
import { Nullable, StringEnum } from '../http/schema.js';
import { PERMISSIONS, ROLES } from '../auth/permissions.js';

export const Role = StringEnum(ROLES);
export const WorkspaceView = Type.Object({ id: Type.String(), name: Type.String(), createdAt: Type.String({ format: 'date-time' }), role: Type.Optional(Role) });
export const MemberView = Type.Object({ userId: Type.String(), email: Type.String(), name: Type.String(), role: Role, createdAt: Type.String({ format: 'date-time' }) });
export const RootKeyPermission = StringEnum(PERMISSIONS);
export const RootKeyView = Type.Object({
  id: Type.String(), workspaceId: Type.String(), name: Type.String(), start: Type.String(),
  permissions: Type.Array(Type.String()), createdAt: Type.String({ format: 'date-time' }),
  createdBy: Nullable(Type.String()), lastUsedAt: Nullable(Type.String()), revokedAt: Nullable(Type.String()),
});
export const CreatedRootKey = Type.Composite([RootKeyView, Type.Object({ key: Type.String({ description: 'The root key. Shown only in this response.' }) })]);

export const InviteBody = Type.Object({
  email: Type.String({ format: 'email', maxLength: 254, examples: ['ada@example.com'] }),
  role: Role,
}, { additionalProperties: false });
export const InvitationView = Type.Object({
  id: Type.String(), workspaceId: Type.String(), email: Type.String(), role: Role,
  createdAt: Type.String({ format: 'date-time' }), expiresAt: Type.String({ format: 'date-time' }), createdBy: Nullable(Type.String()),
});
export const CreatedInvitation = Type.Composite([InvitationView, Type.Object({
  token: Type.String({ description: 'The one-time invitation token. Shown only in this response.' }),
  url: Type.String({ description: 'The console link that accepts it (the token is in the fragment)' }),
})]);
