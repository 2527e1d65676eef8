// Who is calling: resolves a session token or root key from the request, and checks workspace access.
import type { FastifyRequest } from 'fastify';
import type { Deps } from '../deps.js';
import { AppError, forbidden, notFound } from '../errors.js';
import { sha256Hex } from '../lib/hash.js';
import { parseJson } from '../lib/json.js';
import { parseKey } from '../keys/format.js';
import type { Actor } from '../audit/audit.js';
import { grants, ROLE_PERMISSIONS, type Permission, type Role } from './permissions.js';

export const SESSION_PREFIX = 'kws_';
export const ROOT_KEY_PREFIX = 'kwroot';

export type Principal =
  | { kind: 'user'; userId: string; email: string; sessionId: string }
  | { kind: 'root'; rootKeyId: string; workspaceId: string; permissions: string[] };

export interface Access {
  actor: Actor;
  role: Role | null;
  permissions: readonly string[];
}

export function bearerToken(req: FastifyRequest): string | null {
  const header = req.headers.authorization;
  if (typeof header === 'string') {
    const space = header.indexOf(' ');
    if (space > 0 && header.slice(0, space).toLowerCase() === 'bearer') return header.slice(space + 1).trim() || null;
  }
  const session = req.headers['x-session-token'];
  return typeof session === 'string' && session.length > 0 ? session : null;
}

export async function resolvePrincipal(deps: Deps, req: FastifyRequest): Promise<Principal> {
  const token = bearerToken(req);
  if (!token || token.length > 200) throw new AppError('UNAUTHORIZED', 'Send a session token or root key as "Authorization: Bearer <token>"');
  const now = deps.clock.now();
  const db = deps.store.db;
  if (token.startsWith(SESSION_PREFIX)) {
    const row = await db.selectFrom('sessions').innerJoin('users', 'users.id', 'sessions.user_id')
      .select(['sessions.id as sessionId', 'sessions.expires_at', 'users.id as userId', 'users.email'])
      .where('sessions.token_hash', '=', sha256Hex(token)).executeTakeFirst();
    if (!row || row.expires_at <= now) throw new AppError('UNAUTHORIZED', 'Session is invalid or expired');
    return { kind: 'user', userId: row.userId, email: row.email, sessionId: row.sessionId };
  }
  const parsed = parseKey(token);
  if (parsed?.prefix === ROOT_KEY_PREFIX) {
    const row = await db.selectFrom('root_keys').select(['id', 'workspace_id', 'permissions', 'revoked_at'])
      .where('hash', '=', sha256Hex(token)).executeTakeFirst();
    if (row && row.revoked_at === null) {
      return { kind: 'root', rootKeyId: row.id, workspaceId: row.workspace_id, permissions: parseJson(row.permissions, []) };
    }
  }
  throw new AppError('UNAUTHORIZED', 'Credential is invalid, expired or revoked');
}

export function actorOf(principal: Principal, req: FastifyRequest): Actor {
  const userAgent = req.headers['user-agent'];
  return {
    type: principal.kind === 'user' ? 'user' : 'root_key',
    id: principal.kind === 'user' ? principal.userId : principal.rootKeyId,
    ip: req.ip ?? null,
    userAgent: typeof userAgent === 'string' ? userAgent : null,
  };
}

/**
 * Resolves the caller's rights in a workspace. A caller outside the workspace learns nothing:
 * `what` is reported as not found, exactly as for an object that does not exist.
 */
export async function requireAccess(
  deps: Deps,
  req: FastifyRequest,
  principal: Principal,
  workspaceId: string,
  permission: Permission,
  what = 'Workspace',
): Promise<Access> {
  let role: Role | null = null;
  let permissions: readonly string[];
  if (principal.kind === 'root') {
    if (principal.workspaceId !== workspaceId) throw notFound(what);
    permissions = principal.permissions;
  } else {
    const member = await deps.store.db.selectFrom('members').select('role')
      .where('workspace_id', '=', workspaceId).where('user_id', '=', principal.userId).executeTakeFirst();
    if (!member) throw notFound(what);
    role = member.role;
    permissions = ROLE_PERMISSIONS[role];
  }
  if (!grants(permissions, permission)) throw forbidden(`This credential lacks the "${permission}" permission`);
  return { actor: actorOf(principal, req), role, permissions };
}

/**
 * Resolves the caller and refuses at once (403) when no workspace of theirs grants `permission`,
 * before any object is looked up, so a refusal never depends on whether the object exists.
 */
export async function authorize(deps: Deps, req: FastifyRequest, permission: Permission): Promise<Principal> {
  const principal = await resolvePrincipal(deps, req);
  if (principal.kind === 'root') {
    if (!grants(principal.permissions, permission)) throw forbidden(`This credential lacks the "${permission}" permission`);
    return principal;
  }
  const roles = await deps.store.db.selectFrom('members').select('role').where('user_id', '=', principal.userId).execute();
  if (roles.length > 0 && !roles.some((r) => grants(ROLE_PERMISSIONS[r.role], permission))) {
    throw forbidden(`No workspace of yours grants the "${permission}" permission`);
  }
  return principal;
}
