// The one access guard every management route calls: authenticate → check the permission exists
// anywhere for the caller → load the object → check access to its workspace. Another tenant's
// object answers 404 exactly like a missing one; that rule lives here and nowhere else.
import type { FastifyRequest } from 'fastify';
import { bearerToken } from '../http/headers.js';
import { notFound } from '../errors.js';
import type { AppsTable, IdentitiesTable, KeysTable, RootKeysTable, WebhooksTable } from '../store/schema.js';
import type { Repos } from '../store/repos/index.js';
import type { Access, AuthService, Origin, Principal } from './service.js';
import { grants, type Permission } from './permissions.js';
import { sha256Hex } from '../lib/hash.js';
import { parseKey, ROOT_KEY_PREFIX } from '../lib/key-format.js';
import { AppError } from '../errors.js';

/** Root keys as verify resolves them: cached, dropped on every node when one changes. */
/** A root key as the caches hold it (verify's root-key cache, src/verify/scope.ts, serves both). */
export interface RootKeyInfo {
  id: string;
  workspaceId: string;
  permissions: readonly string[];
  revoked: boolean;
}

export interface CachedRootKeys {
  get(hash: string, now: number): RootKeyInfo | null | Promise<RootKeyInfo | null>;
}

export { bearerToken };


export function originOf(req: FastifyRequest): Origin {
  const userAgent = req.headers['user-agent'];
  return { ip: req.ip ?? null, userAgent: typeof userAgent === 'string' ? userAgent : null };
}

export interface Guarded<T> {
  target: T;
  access: Access;
  principal: Principal;
}

export class Guard {
  constructor(
    private readonly auth: AuthService,
    private readonly repos: Repos,
    /** For routes called on every request of a customer's service (the standalone limiter). */
    private readonly roots?: CachedRootKeys,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * A root key's workspace, for routes as hot as verify: the root key is read from the cache verify
   * uses (a revoke reaches it on every node within a second, like a key change), so a call costs no
   * store round trip. Only root keys: 401 for anything else, 403 without `permission`.
   */
  rootWorkspace(req: FastifyRequest, permission: Permission): string | Promise<string> {
    const token = bearerToken(req);
    if (token === null || this.roots === undefined || !token.startsWith(`${ROOT_KEY_PREFIX}_`)) {
      return this.principal(req).then((p) => {
        if (p.kind !== 'root') throw new AppError('FORBIDDEN', `Only a root key with "${permission}" may call this`);
        return this.workspace(req, p.workspaceId, permission).then(() => p.workspaceId);
      });
    }
    if (token.length > 64 || !parseKey(token)) throw new AppError('UNAUTHORIZED', 'Credential is invalid, expired or revoked');
    const check = (info: RootKeyInfo | null): string => {
      if (!info || info.revoked) throw new AppError('UNAUTHORIZED', 'Credential is invalid, expired or revoked');
      if (!grants(info.permissions, permission)) throw new AppError('FORBIDDEN', `This credential lacks the "${permission}" permission`);
      return info.workspaceId;
    };
    const info = this.roots.get(sha256Hex(token), this.now());
    return info instanceof Promise ? info.then(check) : check(info);
  }

  /** The caller, authenticated (any permission). */
  principal(req: FastifyRequest): Promise<Principal> {
    return this.auth.resolve(bearerToken(req));
  }

  /** Access to a workspace named by the request. */
  async workspace(req: FastifyRequest, workspaceId: string, permission: Permission): Promise<Access & { principal: Principal }> {
    const principal = await this.principal(req);
    await this.auth.authorize(principal, permission);
    return { ...(await this.auth.access(principal, originOf(req), workspaceId, permission, 'Workspace')), principal };
  }

  app(req: FastifyRequest, appId: string, permission: Permission): Promise<Guarded<AppsTable>> {
    return this.object(req, permission, 'App', () => this.repos.apps.find(appId));
  }

  /**
   * An app to delete: a deleted one too, so that a delete retried after an answer that was lost
   * (503 OUTCOME_UNKNOWN, a timeout) answers as the first one did and tells every node again.
   */
  appToDelete(req: FastifyRequest, appId: string): Promise<Guarded<AppsTable>> {
    return this.object(req, 'apps:write', 'App', () => this.repos.apps.findEvenDeleted(appId));
  }

  key(req: FastifyRequest, keyId: string, permission: Permission): Promise<Guarded<KeysTable>> {
    return this.object(req, permission, 'Key', () => this.repos.keys.find(keyId));
  }

  rootKey(req: FastifyRequest, id: string, permission: Permission): Promise<Guarded<RootKeysTable>> {
    return this.object(req, permission, 'Root key', () => this.repos.rootKeys.find(id));
  }

  identity(req: FastifyRequest, id: string, permission: Permission): Promise<Guarded<IdentitiesTable>> {
    return this.object(req, permission, 'Identity', () => this.repos.identities.find(id));
  }

  webhook(req: FastifyRequest, id: string, permission: Permission): Promise<Guarded<WebhooksTable>> {
    return this.object(req, permission, 'Webhook', () => this.repos.webhooks.find(id));
  }

  /** Any object that belongs to a workspace: load it only once the permission is known to exist. */
  async object<T extends { workspace_id: string }>(req: FastifyRequest, permission: Permission, what: string, load: () => Promise<T | undefined>): Promise<Guarded<T>> {
    const principal = await this.principal(req);
    await this.auth.authorize(principal, permission);
    const target = await load();
    if (!target) throw notFound(what);
    const access = await this.auth.access(principal, originOf(req), target.workspace_id, permission, what);
    return { target, access, principal };
  }
}
