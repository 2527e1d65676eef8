// Who is calling and what they may do: sessions, root keys, setup, login and workspace access.
import { randomBytes } from 'node:crypto';
import { AppError, conflict, forbidden, notFound } from '../errors.js';
import { sha256Hex, type PasswordHasher } from '../lib/hash.js';
import { parseJson } from '../lib/json.js';
import { newId } from '../lib/random.js';
import { DAY, iso } from '../lib/time.js';
import type { Clock } from '../lib/clock.js';
import type { InvalidationBus } from '../shared/bus.js';
import { parseKey, ROOT_KEY_PREFIX } from '../lib/key-format.js';
import type { Store } from '../store/db.js';
import type { Actor } from '../store/repos/index.js';
import type { Repos } from '../store/repos/index.js';
import { grants, ROLE_PERMISSIONS, type Permission, type Role } from './permissions.js';
import { networkOf } from './address.js';
import type { HashSlots, LoginThrottle, LoginTicket } from './throttle.js';

const SESSION_PREFIX = 'kws_';
/** Longer than any session token or root key: refused before it is hashed. */
const MAX_TOKEN_LENGTH = 200;
/** How long a network stays known to an account after it last proved itself from there. */
const KNOWN_ADDRESS_MS = 90 * DAY;

export type Principal =
  | { kind: 'user'; userId: string; email: string; sessionId: string; expiresAt: number }
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

/** An account's stored row, as a password check sees it. */
export interface Candidate {
  id: string;
  email: string;
  password_hash: string;
}

/** What a guarded password check hands its work: the account (if any) and the attempt's ticket. */
export interface PasswordAttempt {
  user: Candidate | undefined;
  ticket: LoginTicket;
}

export function actorOf(principal: Principal, origin: Origin): Actor {
  return {
    type: principal.kind === 'user' ? 'user' : 'root_key',
    id: principal.kind === 'user' ? principal.userId : principal.rootKeyId,
    ip: origin.ip,
    userAgent: origin.userAgent,
  };
}

/** No hash slot free on this node: refused at once rather than queued. */
const busy = (): AppError => new AppError('SERVICE_UNAVAILABLE', 'Too many password checks are running; try again in a moment', { retryAfterSec: 1 });

export class AuthService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly sessionTtlMs: number,
    private readonly throttle: LoginThrottle,
    readonly passwords: PasswordHasher,
    private readonly slots: HashSlots,
    private readonly bus: Pick<InvalidationBus, 'accessChanged'>,
  ) {}

  private setupChain: Promise<void> = Promise.resolve();

  /** A session token or root key → who it is; 401 for anything else. */
  async resolve(token: string | null): Promise<Principal> {
    if (!token || token.length > MAX_TOKEN_LENGTH) throw new AppError('UNAUTHORIZED', 'Send a session token or root key as "Authorization: Bearer <token>"');
    const repos = this.store.repos;
    if (token.startsWith(SESSION_PREFIX)) {
      const row = await repos.users.findSession(sha256Hex(token));
      if (!row || row.expiresAt <= this.clock.now()) throw new AppError('UNAUTHORIZED', 'Session is invalid or expired');
      return { kind: 'user', userId: row.userId, email: row.email, sessionId: row.sessionId, expiresAt: row.expiresAt };
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
    // One setup at a time on a node, each refused before any hashing once a user exists: a
    // finished setup must not be a way to make the node run scrypt.
    const run = this.setupChain.then(() => this.setupOnce(input, origin));
    this.setupChain = run.then(() => undefined, () => undefined);
    return run;
  }

  private async setupOnce(input: { email: string; password: string; workspaceName: string; name?: string | undefined }, origin: Origin): Promise<SessionInfo> {
    if (await this.store.repos.users.any()) throw conflict('Setup is already complete; log in instead');
    const passwordHash = await this.passwords.hash(input.password);
    const now = this.clock.now();
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
      return this.sessionInfo(userId, await this.startSession(r, userId, origin.ip), r);
    });
    return session;
  }

  /**
   * The defences every password check passes first, in order: the throttle's counters (429), then
   * a hash slot on this node (503 at once when none is free); then `work` runs with the account of
   * `email` (if any) and the attempt's ticket. Used by login and by accepting an invitation.
   */
  async guarded<T>(emailText: string, origin: Origin, work: (attempt: PasswordAttempt) => Promise<T>): Promise<T> {
    const email = emailText.toLowerCase();
    const network = networkOf(origin.ip);
    const { user, known } = await this.store.repos.users.loginCandidate(email, network, this.clock.now() - KNOWN_ADDRESS_MS);
    const ticket = await this.throttle.charge({ email, network, known });
    const release = this.slots.tryAcquire(known);
    if (!release) {
      await ticket.refund();
      throw busy();
    }
    try {
      return await work({ user, ticket });
    } finally {
      release();
    }
  }

  /**
   * Checks a password inside a guarded attempt: the account it opens, or 401 (the same answer
   * and the same scrypt cost for an unknown email, see PasswordHasher.check). A hash made at
   * another cost is replaced; the caller writes `rehashed` with its session.
   */
  async checkPassword({ user, ticket }: PasswordAttempt, password: string): Promise<{ user: Candidate; rehashed: string | undefined }> {
    const ok = await this.passwords.check(password, user?.password_hash);
    if (!user || !ok) {
      await ticket.failed();
      throw new AppError('UNAUTHORIZED', 'Email or password is wrong');
    }
    await ticket.succeeded();
    const rehashed = this.passwords.needsRehash(user.password_hash) ? await this.passwords.hash(password) : undefined;
    return { user, rehashed };
  }

  async login(email: string, password: string, origin: Origin): Promise<SessionInfo> {
    const { user, rehashed } = await this.guarded(email, origin, (attempt) => this.checkPassword(attempt, password));
    const session = await this.store.transaction(async (r) => {
      if (rehashed) await r.users.setPasswordHash(user.id, rehashed);
      return this.sessionInfo(user.id, await this.startSession(r, user.id, origin.ip), r);
    });
    return session;
  }

  /** Ends the session; every node's open streams of it end with it (the change feed and Redis). */
  async logout(principal: Principal): Promise<void> {
    if (principal.kind !== 'user') throw new AppError('FORBIDDEN', 'Root keys have no session; revoke the key instead');
    const now = this.clock.now();
    await this.store.transaction(async (r) => {
      if (await r.users.deleteSession(principal.sessionId)) await r.changes.record('session', principal.sessionId, '', now);
    });
    this.bus.accessChanged({ kind: 'session', target: principal.sessionId, workspaceId: '' });
  }

  async me(principal: Principal): Promise<Omit<SessionInfo, 'token'>> {
    if (principal.kind !== 'user') throw new AppError('FORBIDDEN', 'Only a user session has a profile');
    const expiresAt = await this.store.repos.users.sessionExpiry(principal.sessionId);
    if (expiresAt === undefined) throw new AppError('UNAUTHORIZED', 'Session is invalid or expired');
    const { token: _token, ...rest } = await this.sessionInfo(principal.userId, { token: '', expiresAt: iso(expiresAt) });
    return rest;
  }

  /**
   * A new session, in the transaction that proved who the user is (setup, invitation, login); the
   * network it came from becomes known to the account.
   */
  async startSession(r: Repos, userId: string, ip: string | null): Promise<{ token: string; expiresAt: string }> {
    const token = SESSION_PREFIX + randomBytes(32).toString('base64url');
    const now = this.clock.now();
    const expiresAt = now + this.sessionTtlMs;
    await r.users.insertSession({ id: newId('session'), user_id: userId, token_hash: sha256Hex(token), created_at: now, expires_at: expiresAt, ip });
    await r.users.markAddress(userId, networkOf(ip), now);
    return { token, expiresAt: iso(expiresAt) };
  }

  /** An account proved itself from this address without a new session (an invitation accepted while logged in). */
  markKnown(r: Repos, userId: string, ip: string | null): Promise<void> {
    return r.users.markAddress(userId, networkOf(ip), this.clock.now());
  }

  /**
   * The session's answer; read in the transaction that started it (`repos`), so nothing the answer
   * needs is read after its COMMIT: a session shown in no answer could not be used.
   */
  async sessionInfo(userId: string, session: { token: string; expiresAt: string }, repos: Repos = this.store.repos): Promise<SessionInfo> {
    const user = await repos.users.find(userId);
    if (!user) throw new AppError('UNAUTHORIZED', 'Session is invalid or expired');
    const workspaces = (await repos.workspaces.listForUser(userId)).map((w) => ({ id: w.id, name: w.name, role: w.role }));
    return { ...session, user, workspaces };
  }
}
