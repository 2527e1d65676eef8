// In-memory cache of what verify needs per key value (by SHA-256), with exact invalidation by key id,
// a bounded negative cache for unknown values, single-flight loads and a TTL as a safety net.
import { parseJson } from '../lib/json.js';
import { parseIpEntry, toIpv4Ranges, type IpRange, type Ipv4Range } from '../keys/ip.js';
import type { RateLimitSpec } from '../keys/model.js';
import type { KeysTable } from '../store/schema.js';
import { compileRules, type CompiledRule, type GatewayRule } from '../gateway/rules.js';

export interface CachedKey {
  id: string;
  appId: string;
  workspaceId: string;
  name: string;
  ownerId: string | null;
  environment: 'live' | 'test';
  kind: 'bearer' | 'integration';
  status: 'active' | 'disabled' | 'revoked';
  permissions: readonly string[];
  resources: readonly string[];
  /** null = any address. */
  ipRanges: readonly IpRange[] | null;
  /** The IPv4 part of ipRanges as integers, for the fast path. */
  ipv4Ranges: readonly Ipv4Range[];
  expiresAt: number | null;
  expiresAtIso: string | null;
  ratelimit: RateLimitSpec | null;
  ownerRatelimit: RateLimitSpec | null;
  /** Whether a usage cap applies: then `remaining` lives in the store and is charged atomically. */
  capped: boolean;
  meta: Readonly<Record<string, unknown>>;
  /** The app's gateway rules (for /v1/forward-auth), compiled; null = none. */
  gatewayRules: readonly CompiledRule[] | null;
}

export interface CacheEntry {
  key: CachedKey;
  /** When this particular value stops working (a rolled key's old value); null = with the key. */
  valueExpiresAt: number | null;
}

interface Slot {
  entry: CacheEntry;
  loadedAt: number;
}

/**
 * Keys of one app mostly share their scopes, allowlists and limits: parse each distinct JSON text
 * once and share the frozen result, so a cached key costs little more than its id and name.
 */
const interned = new Map<string, unknown>();
function intern<T>(kind: string, text: string | null, parse: (text: string | null) => T): T {
  const id = `${kind}\u0000${text}`;
  let value = interned.get(id) as T | undefined;
  if (value === undefined) {
    if (interned.size >= 10_000) interned.clear();
    value = parse(text);
    if (value !== null && typeof value === 'object') Object.freeze(value);
    interned.set(id, value);
  }
  return value;
}

interface IpScope {
  ranges: IpRange[] | null;
  v4: Ipv4Range[];
}

function parseIpScope(text: string | null): IpScope {
  const allowlist = parseJson<string[]>(text, []);
  const ranges = allowlist.map(parseIpEntry).filter((r): r is IpRange => r !== null);
  // A stored list that no longer parses must fail closed: an empty range list allows nobody.
  return { ranges: allowlist.length === 0 ? null : ranges, v4: toIpv4Ranges(ranges) };
}

export function toCachedKey(row: KeysTable & { gateway_rules?: string | null }): CachedKey {
  const ip = intern('ip', row.ip_allowlist, parseIpScope);
  return {
    id: row.id,
    appId: intern('app', row.app_id, (t) => t ?? ''),
    workspaceId: intern('ws', row.workspace_id, (t) => t ?? ''),
    name: row.name,
    ownerId: row.owner_id === null ? null : intern('owner', row.owner_id, (t) => t ?? ''),
    environment: row.environment,
    kind: row.kind,
    status: row.status,
    permissions: intern('perm', row.permissions, (t) => parseJson<string[]>(t, [])),
    resources: intern('res', row.resources, (t) => parseJson<string[]>(t, [])),
    ipRanges: ip.ranges,
    ipv4Ranges: ip.v4,
    expiresAt: row.expires_at,
    expiresAtIso: row.expires_at === null ? null : new Date(row.expires_at).toISOString(),
    ratelimit: intern('rl', row.ratelimit, (t) => parseJson<RateLimitSpec | null>(t, null)),
    ownerRatelimit: intern('rl', row.owner_ratelimit, (t) => parseJson<RateLimitSpec | null>(t, null)),
    capped: row.remaining !== null,
    meta: intern('meta', row.meta, (t) => parseJson<Record<string, unknown>>(t, {})),
    gatewayRules: row.gateway_rules ? intern('gw', row.gateway_rules, (t) => compileRules(parseJson<GatewayRule[]>(t, []))) : null,
  };
}

export type Loader = (hash: string) => Promise<CacheEntry | null>;

/** An integration key with the secrets of its live values, for JWT verification by `kid`. */
export interface IntegrationEntry {
  key: CachedKey;
  secrets: { secret: Uint8Array; valueExpiresAt: number | null }[];
}

export type IntegrationLoader = (keyId: string) => Promise<IntegrationEntry | null>;

export class KeyCache {
  private readonly positive = new Map<string, Slot>();
  private readonly negative = new Map<string, number>();
  /** Key id → its cached value hash(es); usually one, so a plain string until there are two. */
  private readonly byKeyId = new Map<string, string | Set<string>>();
  private readonly inflight = new Map<string, Promise<CacheEntry | null>>();
  /** Integration keys by id (JWT `kid`), with decrypted secrets: memory only, never logged. */
  private readonly integrations = new Map<string, { entry: IntegrationEntry | null; loadedAt: number }>();
  /** Bumped by every key invalidation; a load that started before a bump does not fill the cache. */
  private epoch = 0;
  /** Bumped when a value appears; a load that started before it may not record the value as unknown. */
  private valueEpoch = 0;
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly ttlMs: number,
    /** Past its TTL an entry is reloaded, but may still answer while the store is unreachable. */
    private readonly staleMs = 0,
    private readonly maxNegative = 100_000,
    clock: () => number = Date.now,
  ) {
    this.sweeper = setInterval(() => this.sweep(clock()), Math.min(60_000, Math.max(1000, ttlMs)));
    this.sweeper.unref();
  }

  /** undefined = not cached or due for a reload; null = known not to exist. */
  peek(hash: string, now: number): CacheEntry | null | undefined {
    const slot = this.positive.get(hash);
    if (slot && now - slot.loadedAt < this.ttlMs) return slot.entry;
    const negAt = this.negative.get(hash);
    if (negAt !== undefined) {
      if (now - negAt < this.ttlMs) return null;
      this.negative.delete(hash);
    }
    return undefined;
  }

  async get(hash: string, now: number, load: Loader): Promise<CacheEntry | null> {
    const hit = this.peek(hash, now);
    if (hit !== undefined) return hit;
    let pending = this.inflight.get(hash);
    if (!pending) {
      const epoch = this.epoch;
      const valueEpoch = this.valueEpoch;
      pending = load(hash).finally(() => this.inflight.delete(hash));
      pending.then((entry) => {
        if (epoch === this.epoch && (entry !== null || valueEpoch === this.valueEpoch)) this.fill(hash, entry, now);
      }, () => {});
      this.inflight.set(hash, pending);
    }
    try {
      return await pending;
    } catch (err) {
      const stale = this.positive.get(hash);
      if (stale && now - stale.loadedAt < this.ttlMs + this.staleMs) return stale.entry;
      throw err;
    }
  }

  private fill(hash: string, entry: CacheEntry | null, now: number): void {
    if (entry === null) {
      this.dropHash(hash);
      if (this.negative.size >= this.maxNegative) {
        const oldest = this.negative.keys().next().value;
        if (oldest !== undefined) this.negative.delete(oldest);
      }
      this.negative.set(hash, now);
      return;
    }
    this.positive.set(hash, { entry, loadedAt: now });
    const id = entry.key.id;
    const known = this.byKeyId.get(id);
    if (known === undefined || known === hash) this.byKeyId.set(id, hash);
    else if (typeof known === 'string') this.byKeyId.set(id, new Set([known, hash]));
    else known.add(hash);
  }

  private dropHash(hash: string): void {
    const slot = this.positive.get(hash);
    this.positive.delete(hash);
    if (!slot) return;
    const id = slot.entry.key.id;
    const known = this.byKeyId.get(id);
    if (known === hash) this.byKeyId.delete(id);
    else if (known instanceof Set) {
      known.delete(hash);
      if (known.size === 0) this.byKeyId.delete(id);
    }
  }

  /** Drops entries too old even to serve stale, and expired negatives. */
  sweep(now: number): void {
    for (const [hash, slot] of this.positive) {
      if (now - slot.loadedAt >= this.ttlMs + this.staleMs) this.dropHash(hash);
    }
    for (const [id, slot] of this.integrations) {
      if (now - slot.loadedAt >= this.ttlMs + this.staleMs) this.integrations.delete(id);
    }
    for (const [hash, at] of this.negative) {
      if (now - at >= this.ttlMs) this.negative.delete(hash);
      else break;
    }
  }

  async getIntegration(keyId: string, now: number, load: IntegrationLoader): Promise<IntegrationEntry | null> {
    const slot = this.integrations.get(keyId);
    if (slot && now - slot.loadedAt < this.ttlMs) return slot.entry;
    const epoch = this.epoch;
    try {
      const entry = await load(keyId);
      if (epoch === this.epoch) {
        if (this.integrations.size >= this.maxNegative) this.integrations.clear();
        this.integrations.set(keyId, { entry, loadedAt: now });
      }
      return entry;
    } catch (err) {
      if (slot?.entry && now - slot.loadedAt < this.ttlMs + this.staleMs) return slot.entry;
      throw err;
    }
  }

  /** Every cached key of an app is forgotten (its gateway rules changed). */
  invalidateApp(appId: string): void {
    this.epoch++;
    for (const [hash, slot] of this.positive) if (slot.entry.key.appId === appId) this.dropHash(hash);
    for (const [id, slot] of this.integrations) if (slot.entry?.key.appId === appId) this.integrations.delete(id);
  }

  /** Every cached value of this key is forgotten; the next verify reads the store. */
  invalidateKey(keyId: string): void {
    this.epoch++;
    this.integrations.delete(keyId);
    const known = this.byKeyId.get(keyId);
    if (known === undefined) return;
    for (const hash of typeof known === 'string' ? [known] : [...known]) this.dropHash(hash);
  }

  /**
   * A value that was unknown may exist now (create, roll): forget that it was unknown. A cached
   * entry for it can only have been loaded after it was created, so it stays (it is what answers
   * while the store is away).
   */
  invalidateHash(hash: string): void {
    this.valueEpoch++;
    this.negative.delete(hash);
  }

  clear(): void {
    this.epoch++;
    this.positive.clear();
    this.negative.clear();
    this.byKeyId.clear();
    this.integrations.clear();
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  get size(): { keys: number; values: number; unknown: number } {
    return { keys: this.byKeyId.size, values: this.positive.size, unknown: this.negative.size };
  }
}
