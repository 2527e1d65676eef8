// Who is calling and what they may do: sessions, root keys, setup, login and workspace access.
import { randomBytes } from 'node:crypto';
import { AppError, conflict, forbidden, notFound } from '../errors.js';
import { sha256Hex, type PasswordHasher } from '../lib/hash.js';
import { parseJson } from '../lib/json.js';
import { newId } from '../lib/random.js';
import { iso } from '../lib/time.js';
import type { Clock } from '../lib/clock.js';
import { parseKey, ROOT_KEY_PREFIX } from '../keys/format.js';
import type { Store } from '../store/db.js';
import type { Actor } from '../store/repos/index.js';
import type { Repos } from '../store/repos/index.js';
import { grants, ROLE_PERMISSIONS, type Permission, type Role } from './permissions.js';
import type { LoginThrottle } from './throttle.js';

export const SESSION_PREFIX = 'kws_';
/** Longer than any session token or root key: refused before it is hashed. */
const MAX_TOKEN_LENGTH = 200;

export type Principal =
  | { kind: 'user'; userId: string; email: string; sessionId: string }
  | { kind: 'root'; rootKeyId: string; workspaceId: string; permissions: string[] };

export interface Access {
  actor: Actor;
  role: Role | null;
  permissions: readonly string[];
}

/** Where a request came from, for audit entries and throttling. */
export interface Origin {
  ip: string | null;
  userAgent: string | null;
}

export interface SessionInfo {
  token: string;
  expiresAt: string;
  user: { id: string; email: string; name: string };
  workspaces: { id: string; name: string; role: string }[];
}

export function actorOf(principal: Principal, origin: Origin): Actor {
  return {
    type: principal.kind === 'user' ? 'user' : 'root_key',
    id: principal.kind === 'user' ? principal.userId : principal.rootKeyId,
    ip: origin.ip,
    userAgent: origin.userAgent,
  };
}

export class AuthService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly sessionTtlMs: number,
    private readonly throttle: LoginThrottle,
    readonly passwords: PasswordHasher,
  ) {}

  /** A session token or root key → who it is; 401 for anything else. */
  async resolve(token: string | null): Promise<Principal> {
    if (!token || token.length > MAX_TOKEN_LENGTH) throw new AppError('UNAUTHORIZED', 'Send a session token or root key as "Authorization: Bearer <token>"');
    const repos = this.store.repos;
    if (token.startsWith(SESSION_PREFIX)) {
      const row = await repos.users.findSession(sha256Hex(token));
      if (!row || row.expiresAt <= this.clock.now()) throw new AppError('UNAUTHORIZED', 'Session is invalid or expired');
      return { kind: 'user', userId: row.userId, email: row.email, sessionId: row.sessionId };
    }
    const shape = parseKey(token);
    if (shape?.prefix === ROOT_KEY_PREFIX) {
      const row = await repos.rootKeys.findByHash(sha256Hex(token));
      if (row && row.revoked_at === null) {
        return { kind: 'root', rootKeyId: row.id, workspaceId: row.workspace_id, permissions: parseJson(row.permissions, []) };
      }
    }
    // Said from the key's shape alone (no lookup): whether such a key exists stays unknown.
    if (shape && shape.prefix !== ROOT_KEY_PREFIX) throw new AppError('UNAUTHORIZED', 'This is an app key: app keys are checked with POST /v1/keys/verify (or by your gateway), they do not call management endpoints. Send a session token or a root key');
    throw new AppError('UNAUTHORIZED', 'Credential is invalid, expired or revoked');
  }

  /**
   * Refuses at once (403) when no workspace of the caller grants `permission`, before any object
   * is looked up, so a refusal never depends on whether the object exists.
   */
  async authorize(principal: Principal, permission: Permission): Promise<void> {
    if (principal.kind === 'root') {
      if (!grants(principal.permissions, permission)) throw forbidden(`This credential lacks the "${permission}" permission`);
      return;
    }
    const roles = await this.store.repos.workspaces.rolesOf(principal.userId);
    if (roles.length > 0 && !roles.some((role) => grants(ROLE_PERMISSIONS[role], permission))) {
      throw forbidden(`No workspace of yours grants the "${permission}" permission`);
    }
  }

  /**
   * The caller's rights in a workspace. A caller outside the workspace learns nothing: `what` is
   * reported as not found, exactly as for an object that does not exist.
   */
  async access(principal: Principal, origin: Origin, workspaceId: string, permission: Permission, what: string): Promise<Access> {
    let role: Role | null = null;
    let permissions: readonly string[];
    if (principal.kind === 'root') {
      if (principal.workspaceId !== workspaceId) throw notFound(what);
      permissions = principal.permissions;
    } else {
      const found = await this.store.repos.workspaces.role(workspaceId, principal.userId);
      if (!found) throw notFound(what);
      role = found;
      permissions = ROLE_PERMISSIONS[role];
    }
    if (!grants(permissions, permission)) throw forbidden(`This credential lacks the "${permission}" permission`);
    return { actor: actorOf(principal, origin), role, permissions };
  }

  needsSetup(): Promise<boolean> {
    return this.store.repos.users.any().then((any) => !any);
  }

  async setup(input: { email: string; password: string; workspaceName: string; name?: string | undefined }, origin: Origin): Promise<SessionInfo> {
    const now = this.clock.now();
    const passwordHash = await this.passwords.hash(input.password);
    const userId = newId('user');
    const workspaceId = newId('workspace');
    const session = await this.store.transaction(async (r) => {
      // The settings row is the atomic "setup done" flag: a concurrent second setup hits its key.
      try {
        await r.settings.insert('setup', iso(now));
      } catch (err) {
        if (this.store.isUniqueViolation(err)) throw conflict('Setup is already complete; log in instead');
        throw err;
      }
      if (await r.users.any()) throw conflict('Setup is already complete; log in instead');
      const email = input.email.toLowerCase();
      await r.users.insert({ id: userId, email, name: input.name ?? email.split('@')[0]!, password_hash: passwordHash, created_at: now });
      await r.workspaces.insert({ id: workspaceId, name: input.workspaceName, created_at: now });
      await r.workspaces.addMember({ workspace_id: workspaceId, user_id: userId, role: 'owner', created_at: now });
      await r.audit.record({ type: 'user', id: userId, ...origin },
        { workspaceId, action: 'workspace.create', targetType: 'workspace', targetId: workspaceId, meta: { setup: true } }, now);
      return this.startSession(r, userId, origin.ip);
    });
    return this.sessionInfo(userId, session);
  }

  async login(emailText: string, password: string, origin: Origin): Promise<SessionInfo> {
    const email = emailText.toLowerCase();
    const ticket = await this.throttle.charge(email, origin.ip);
    const user = await this.store.repos.users.findByEmail(email);
    // Unknown emails are checked against a dummy hash: both failures cost one password check.
    const ok = await this.passwords.verify(password, user?.password_hash ?? (await this.passwords.dummyHash()));
    if (!user || !ok) {
      await ticket.failed();
      throw new AppError('UNAUTHORIZED', 'Email or password is wrong');
    }
    await ticket.succeeded();
    if (this.passwords.needsRehash(user.password_hash)) await this.store.repos.users.setPasswordHash(user.id, await this.passwords.hash(password));
    const session = await this.startSession(this.store.repos, user.id, origin.ip);
    return this.sessionInfo(user.id, session);
  }

  async logout(principal: Principal): Promise<void> {
    if (principal.kind !== 'user') throw new AppError('FORBIDDEN', 'Root keys have no session; revoke the key instead');
    await this.store.repos.users.deleteSession(principal.sessionId);
  }

  async me(principal: Principal): Promise<Omit<SessionInfo, 'token'>> {
    if (principal.kind !== 'user') throw new AppError('FORBIDDEN', 'Only a user session has a profile');
    const expiresAt = await this.store.repos.users.sessionExpiry(principal.sessionId);
    if (expiresAt === undefined) throw new AppError('UNAUTHORIZED', 'Session is invalid or expired');
    const { token: _token, ...rest } = await this.sessionInfo(principal.userId, { token: '', expiresAt: iso(expiresAt) });
    return rest;
  }

  async startSession(r: Repos, userId: string, ip: string | null): Promise<{ token: string; expiresAt: string }> {
    const token = SESSION_PREFIX + randomBytes(32).toString('base64url');
    const now = this.clock.now();
    const expiresAt = now + this.sessionTtlMs;
    await r.users.insertSession({ id: newId('session'), user_id: userId, token_hash: sha256Hex(token), created_at: now, expires_at: expiresAt, ip });
    return { token, expiresAt: iso(expiresAt) };
  }

  async sessionInfo(userId: string, session: { token: string; expiresAt: string }): Promise<SessionInfo> {
    const repos = this.store.repos;
    const user = await repos.users.find(userId);
    if (!user) throw new AppError('UNAUTHORIZED', 'Session is invalid or expired');
    const workspaces = (await repos.workspaces.listForUser(userId)).map((w) => ({ id: w.id, name: w.name, role: w.role }));
    return { ...session, user, workspaces };
  }
}
