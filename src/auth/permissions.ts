// Management permissions of root keys and what each member role may do.
export const PERMISSIONS = ['*', 'apps:read', 'apps:write', 'keys:read', 'keys:write', 'keys:verify', 'keys:import', 'vault:read', 'vault:write', 'audit:read', 'webhooks:read', 'webhooks:write', 'identities:read', 'identities:write', 'ratelimit:limit'] as const;
export type Permission = (typeof PERMISSIONS)[number];

export type Role = 'owner' | 'admin' | 'member';
export const ROLES: readonly Role[] = ['owner', 'admin', 'member'];

/** Members work with keys; admins and owners run the workspace (vault, audit, root keys, members). */
export const ROLE_PERMISSIONS: Record<Role, readonly Permission[]> = {
  owner: ['*'],
  admin: ['*'],
  member: ['apps:read', 'keys:read', 'keys:write', 'keys:verify', 'webhooks:read', 'identities:read', 'identities:write'],
};

export function grants(granted: readonly string[], wanted: Permission): boolean {
  return granted.includes('*') || granted.includes(wanted);
}

/**
 * Whether a member of role `inviter` may invite someone as `invited`: owners invite anyone, admins
 * anyone but owners. An invitation lives only while its inviter still may.
 */
export function mayInvite(inviter: Role | undefined, invited: Role): boolean {
  return inviter === 'owner' || (inviter === 'admin' && invited !== 'owner');
}

/** The roles a member of role `role` may no longer invite. */
export function rolesNotInvitable(role: Role | undefined): Role[] {
  return ROLES.filter((invited) => !mayInvite(role, invited));
}
