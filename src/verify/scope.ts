// Whose keys a verify call accepts: the app named by `appId`, or the workspace of a verify root key
// sent as `Authorization: Bearer <root key>` (narrowed by `appId` when both are given). A root key
// is looked up once and cached like a key, and dropped from the cache when it changes.
import type { RootKeyInfo } from '../auth/guard.js';
import { AppError } from '../errors.js';
import { sha256Hex } from '../lib/hash.js';
import { parseKey, ROOT_KEY_PREFIX } from '../lib/key-format.js';
/** The permission that lets a root key verify its workspace's keys (`*` includes it). */
const VERIFY_PERMISSION = 'keys:verify';

export interface VerifyScope {
  appId?: string | undefined;
  workspaceId?: string | undefined;
}

export type { RootKeyInfo };

export type RootKeyLoader = (hash: string) => Promise<RootKeyInfo | null>;

interface Slot {
  info: RootKeyInfo | null;
  loadedAt: number;
}

const MAX_ENTRIES = 10_000;

export class RootKeyCache {
  private readonly byHash = new Map<string, Slot>();
  private readonly hashById = new Map<string, string>();
  private readonly refreshing = new Set<string>();
  private epoch = 0;

  constructor(
    private readonly ttlMs: number,
    private readonly load: RootKeyLoader,
    /** Past its TTL a known root key still answers, at once, while it is reloaded in the background (as cached keys do). */
    private readonly staleMs = 0,
  ) {}

  get(hash: string, now: number): RootKeyInfo | null | Promise<RootKeyInfo | null> {
    const slot = this.byHash.get(hash);
    if (slot && now - slot.loadedAt < this.ttlMs) return slot.info;
    if (slot?.info && now - slot.loadedAt < this.ttlMs + this.staleMs) {
      if (!this.refreshing.has(hash)) {
        this.refreshing.add(hash);
        void this.fetch(hash, now).catch(() => {}).finally(() => this.refreshing.delete(hash));
      }
      return slot.info;
    }
    return this.fetch(hash, now);
  }

  private fetch(hash: string, now: number): Promise<RootKeyInfo | null> {
    const epoch = this.epoch;
    return this.load(hash).then((info) => {
      if (epoch === this.epoch) {
        if (this.byHash.size >= MAX_ENTRIES) this.byHash.clear();
        this.byHash.set(hash, { info, loadedAt: now });
        if (info) this.hashById.set(info.id, hash);
      }
      return info;
    });
  }

  invalidate(id: string): void {
    this.epoch++;
    const hash = this.hashById.get(id);
    if (hash === undefined) return;
    this.hashById.delete(id);
    this.byHash.delete(hash);
  }

  clear(): void {
    this.epoch++;
    this.byHash.clear();
    this.hashById.clear();
  }
}

const grantsVerify = (permissions: readonly string[]): boolean => permissions.includes('*') || permissions.includes(VERIFY_PERMISSION);

/** The scope, or an AppError: 400 VERIFY_SCOPE_REQUIRED, 401 for a bad root key, 403 without keys:verify. */
function scopeOf(info: RootKeyInfo | null, appId: string | undefined): VerifyScope {
  if (!info || info.revoked) throw new AppError('UNAUTHORIZED', 'The root key is invalid or revoked');
  if (!grantsVerify(info.permissions)) throw new AppError('FORBIDDEN', `This root key lacks the "${VERIFY_PERMISSION}" permission`);
  return { workspaceId: info.workspaceId, appId };
}

/** The bearer token of an Authorization header, when it is a root key. */
function rootKeyOf(authorization: string | undefined): string | null {
  if (authorization === undefined || authorization.length < 8) return null;
  if (authorization.slice(0, 7).toLowerCase() !== 'bearer ') return null;
  const token = authorization.slice(7).trim();
  return token.startsWith(`${ROOT_KEY_PREFIX}_`) ? token : null;
}

export function resolveScope(cache: RootKeyCache, appId: string | undefined, authorization: string | undefined, now: number): VerifyScope | Promise<VerifyScope> {
  const rootKey = rootKeyOf(authorization);
  if (rootKey === null) {
    if (appId === undefined) throw new AppError('VERIFY_SCOPE_REQUIRED', 'Name the app whose keys you accept (`appId`), or send a root key with the "keys:verify" permission as "Authorization: Bearer <root key>"');
    return { appId };
  }
  if (rootKey.length > 64 || !parseKey(rootKey)) throw new AppError('UNAUTHORIZED', 'The root key is invalid or revoked');
  const info = cache.get(sha256Hex(rootKey), now);
  return info instanceof Promise ? info.then((i) => scopeOf(i, appId)) : scopeOf(info, appId);
}
