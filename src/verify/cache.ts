// In-memory cache of what verify needs per key value (by SHA-256), with exact invalidation by key id,
// a bounded negative cache for unknown values, single-flight loads and a TTL as a safety net. Past
// its TTL an entry still answers at once while one background refresh per key (with backoff) asks
// the store; the cache holds at most a set number of values and evicts the ones not used lately.
import { parseJson } from '../lib/json.js';
import { parseIpEntry, toIpv4Ranges, type IpRange, type Ipv4Range } from '../lib/ip.js';
import type { RateLimitSpec } from '../keys/model.js';
import type { KeysTable } from '../store/schema.js';
import { compileRules, type CompiledRule, type GatewayRule } from '../apps/gateway-rules.js';
import type { NamedLimit } from '../ratelimit/schemas.js';
import type { IdentityColumns } from '../store/dialects/types.js';

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
  /** When the key was made (age policies). */
  createdAt: number;
  ratelimit: RateLimitSpec | null;
  ownerRatelimit: RateLimitSpec | null;
  /** Whether a usage cap applies: then `remaining` lives in the store and is charged atomically. */
  capped: boolean;
  meta: Readonly<Record<string, unknown>>;
  /** The app's gateway rules (for /v1/forward-auth), compiled; null = none. */
  gatewayRules: readonly CompiledRule[] | null;
  /** Named limits: the key's own, then its identity's; empty (shared) for most keys. */
  named: readonly CachedLimit[];
  /** The identity its owner names in the workspace, loaded with the key; null = none. */
  identity: CachedIdentity | null;
}

/** A named limit as verify decides it: where its window lives and what overrides it. */
export interface CachedLimit {
  readonly name: string;
  readonly limit: number;
  readonly durationMs: number;
  readonly autoApply: boolean;
  /** The window's name on every node: `kn:<keyId>:<name>` or `i:<identityId>:<name>`. */
  readonly bucket: string;
  /** What an override's identifier is matched against: the key's id, or the identity's externalId. */
  readonly identifier: string;
}

export interface CachedIdentity {
  readonly id: string;
  readonly externalId: string;
  readonly meta: Readonly<Record<string, unknown>>;
}

const NO_LIMITS: readonly CachedLimit[] = Object.freeze([]);

function limitsOf(text: string | null, bucket: (name: string) => string, identifier: string): CachedLimit[] {
  return parseJson<NamedLimit[]>(text, []).map((l) => Object.freeze({ name: l.name, limit: l.limit, durationMs: l.durationMs, autoApply: l.autoApply, bucket: bucket(l.name), identifier }));
}

/** The identity's part, shared by every cached key of that identity (parsed once). */
function identityOf(row: Partial<IdentityColumns>, ownerId: string | null): { identity: CachedIdentity; limits: readonly CachedLimit[] } | null {
  if (!row.identity_id || ownerId === null) return null;
  const id = row.identity_id;
  return intern('idt', `${id}\u0000${row.identity_ratelimits ?? '[]'}\u0000${row.identity_meta ?? '{}'}`, () => ({
    identity: Object.freeze({ id, externalId: ownerId, meta: Object.freeze(parseJson<Record<string, unknown>>(row.identity_meta ?? null, {})) }),
    limits: Object.freeze(limitsOf(row.identity_ratelimits ?? null, (name) => `i:${id}:${name}`, ownerId)),
  }));
}

export interface CacheEntry {
  key: CachedKey;
  /** When this particular value stops working (a rolled key's old value); null = with the key. */
  valueExpiresAt: number | null;
}

/** A cached value (or integration key) with what its refresh and eviction need. */
interface Slot<T> {
  entry: T;
  loadedAt: number;
  /** Set by every answer from it, cleared as the eviction hand passes: a slot used since then stays. */
  visited: boolean;
  /** No background refresh before this time (a failed one backs off). */
  retryAt: number;
  /** Refreshes failed in a row. */
  failures: number;
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

export function toCachedKey(row: KeysTable & { gateway_rules?: string | null } & Partial<IdentityColumns>): CachedKey {
  const ip = intern('ip', row.ip_allowlist, parseIpScope);
  const ident = identityOf(row, row.owner_id);
  const own = row.ratelimits === undefined || row.ratelimits === '[]' ? NO_LIMITS : limitsOf(row.ratelimits, (name) => `kn:${row.id}:${name}`, row.id);
  const named = ident === null || ident.limits.length === 0 ? own : own.length === 0 ? ident.limits : [...own, ...ident.limits];
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
    createdAt: row.created_at,
    ratelimit: intern('rl', row.ratelimit, (t) => parseJson<RateLimitSpec | null>(t, null)),
    ownerRatelimit: intern('rl', row.owner_ratelimit, (t) => parseJson<RateLimitSpec | null>(t, null)),
    capped: row.remaining !== null,
    meta: intern('meta', row.meta, (t) => parseJson<Record<string, unknown>>(t, {})),
    gatewayRules: row.gateway_rules ? intern('gw', row.gateway_rules, (t) => compileRules(parseJson<GatewayRule[]>(t, []))) : null,
    named,
    identity: ident?.identity ?? null,
  };
}

export type Loader = (hash: string) => Promise<CacheEntry | null>;

/** An integration key with the secrets of its live values, for JWT verification by `kid`. */
export interface IntegrationEntry {
  key: CachedKey;
  secrets: { secret: Uint8Array; valueExpiresAt: number | null }[];
}

export type IntegrationLoader = (keyId: string) => Promise<IntegrationEntry | null>;

export interface KeyCacheOptions {
  /** Past this age an entry is refreshed in the background (changes invalidate at once; this is a safety net). */
  ttlMs: number;
  /** How much longer than its TTL an entry may still answer while its refresh fails (the store is unreachable). */
  staleMs: number;
  /** Key values held at most (and integration keys, separately): past it, values not used lately go first. */
  maxKeys: number;
  /** Values known not to exist, held at most (a flood of random keys cannot grow memory). */
  maxNegative: number;
  /** Wait after a failed background refresh before the next; it doubles, up to 8 times this. */
  retryMs: number;
  clock: () => number;
}

export interface KeyCacheStats {
  /** Keys, key values, known-unknown values and integration keys held now. */
  keys: number;
  values: number;
  unknown: number;
  integrations: number;
  /** Since start: entries evicted for room, answers given past the TTL, loads that failed. */
  evictions: number;
  staleAnswers: number;
  loadFailures: number;
  /** Loads on their way to the store now (foreground and background). */
  loading: number;
}

/** The most a failed refresh's wait grows to, in multiples of retryMs. */
const MAX_BACKOFF = 8;

/**
 * The eviction hand of SIEVE over a Map's insertion order: it walks from the oldest slot on, clears
 * the visited bit of each slot it passes and stops at the first slot not visited since it last came
 * by. A hit costs one field write, nothing moves, and keys in steady use are never the ones taken,
 * while a burst of keys seen once goes first. The Map iterator is live: slots deleted meanwhile are
 * skipped and slots added later are reached last.
 */
class EvictionHand<S extends { visited: boolean }> {
  private at: Iterator<[string, S]> | undefined;
  constructor(private readonly map: Map<string, S>) {}

  /** The key to evict (the caller deletes it), or undefined when the map is empty. */
  next(): string | undefined {
    // Two rounds at most: the first clears every bit it meets.
    for (let passed = 0, most = 2 * this.map.size + 1; passed < most; passed++) {
      let step = this.at?.next();
      if (step === undefined || step.done === true) {
        this.at = this.map.entries();
        step = this.at.next();
        if (step.done === true) return undefined;
      }
      const [key, slot] = step.value;
      if (!slot.visited) return key;
      slot.visited = false;
    }
    return undefined;
  }
}

export class KeyCache {
  private readonly positive = new Map<string, Slot<CacheEntry>>();
  private readonly negative = new Map<string, number>();
  /** Key id → its cached value hash(es); usually one, so a plain string until there are two. */
  private readonly byKeyId = new Map<string, string | Set<string>>();
  private readonly inflight = new Map<string, Promise<CacheEntry | null>>();
  /** Integration keys by id (JWT `kid`), with decrypted secrets: memory only, never logged. */
  private readonly integrations = new Map<string, Slot<IntegrationEntry | null>>();
  private readonly integrationsInflight = new Map<string, Promise<IntegrationEntry | null>>();
  private readonly valueHand = new EvictionHand(this.positive);
  private readonly integrationHand = new EvictionHand(this.integrations);
  /** Bumped by every key invalidation; a load that started before a bump does not fill the cache. */
  private epoch = 0;
  /** Bumped when a value appears; a load that started before it may not record the value as unknown. */
  private valueEpoch = 0;
  private evictions = 0;
  private staleAnswers = 0;
  private loadFailures = 0;
  private readonly sweeper: NodeJS.Timeout;
  private readonly opts: KeyCacheOptions;

  constructor(opts: Partial<KeyCacheOptions> & { ttlMs: number }) {
    this.opts = { staleMs: 0, maxKeys: 1_000_000, maxNegative: 100_000, retryMs: 1000, clock: Date.now, ...opts };
    this.sweeper = setInterval(() => this.sweep(this.opts.clock()), Math.min(60_000, Math.max(1000, this.opts.ttlMs)));
    this.sweeper.unref();
  }

  /**
   * What the cache answers for a value now, without waiting: the entry (fresh, or past its TTL and
   * still within the stale bound: then one background refresh goes to the store, at most one per
   * key and none before a failed one's backoff has passed); null = known not to exist; undefined =
   * the store must be asked.
   */
  lookup(hash: string, now: number, load: Loader): CacheEntry | null | undefined {
    const slot = this.positive.get(hash);
    if (slot !== undefined) {
      const age = now - slot.loadedAt;
      if (age < this.opts.ttlMs) {
        slot.visited = true;
        return slot.entry;
      }
      if (age < this.opts.ttlMs + this.opts.staleMs) {
        slot.visited = true;
        this.staleAnswers++;
        if (now >= slot.retryAt && !this.inflight.has(hash)) void this.load(hash, now, load).catch(() => {});
        return slot.entry;
      }
    }
    const negAt = this.negative.get(hash);
    if (negAt !== undefined) {
      if (now - negAt < this.opts.ttlMs) return null;
      this.negative.delete(hash);
    }
    return undefined;
  }

  /** What the cache holds for a value, fresh or stale, without loading or refreshing anything (tests, diagnostics). */
  peek(hash: string, now: number): CacheEntry | null | undefined {
    const slot = this.positive.get(hash);
    if (slot !== undefined && now - slot.loadedAt < this.opts.ttlMs + this.opts.staleMs) return slot.entry;
    const negAt = this.negative.get(hash);
    return negAt !== undefined && now - negAt < this.opts.ttlMs ? null : undefined;
  }

  /** The entry for a value, from the store when the cache has nothing it may answer with. */
  async get(hash: string, now: number, load: Loader): Promise<CacheEntry | null> {
    const hit = this.lookup(hash, now, load);
    if (hit !== undefined) return hit;
    return this.inflight.get(hash) ?? this.load(hash, now, load);
  }

  /** One load per value at a time; what it finds fills the cache unless a change came meanwhile. */
  private load(hash: string, now: number, load: Loader): Promise<CacheEntry | null> {
    const epoch = this.epoch;
    const valueEpoch = this.valueEpoch;
    const pending = load(hash).then((entry) => {
      if (epoch === this.epoch && (entry !== null || valueEpoch === this.valueEpoch)) this.fill(hash, entry, now);
      return entry;
    }, (err: unknown) => {
      this.failed(this.positive.get(hash));
      throw err;
    }).finally(() => this.inflight.delete(hash));
    this.inflight.set(hash, pending);
    return pending;
  }

  /** A load that failed: a cached entry waits before its next refresh, retryMs doubling with each failure in a row. */
  private failed(slot: Slot<unknown> | undefined): void {
    this.loadFailures++;
    if (slot === undefined) return;
    slot.failures++;
    slot.retryAt = this.opts.clock() + this.opts.retryMs * Math.min(MAX_BACKOFF, 2 ** (slot.failures - 1));
  }

  private fill(hash: string, entry: CacheEntry | null, now: number): void {
    if (entry === null) {
      this.dropHash(hash);
      if (this.negative.size >= this.opts.maxNegative) {
        const oldest = this.negative.keys().next().value;
        if (oldest !== undefined) this.negative.delete(oldest);
      }
      this.negative.set(hash, now);
      return;
    }
    const slot = this.positive.get(hash);
    if (slot !== undefined && slot.entry.key.id === entry.key.id) {
      // A refresh: the slot keeps its place (and its visited bit) in the eviction order.
      slot.entry = entry;
      slot.loadedAt = now;
      slot.failures = 0;
      slot.retryAt = 0;
      return;
    }
    if (slot !== undefined) this.dropHash(hash);
    while (this.positive.size >= this.opts.maxKeys) {
      const victim = this.valueHand.next();
      if (victim === undefined) break;
      this.dropHash(victim);
      this.evictions++;
    }
    this.positive.set(hash, { entry, loadedAt: now, visited: false, retryAt: 0, failures: 0 });
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
    const bound = this.opts.ttlMs + this.opts.staleMs;
    for (const [hash, slot] of this.positive) {
      if (now - slot.loadedAt >= bound) this.dropHash(hash);
    }
    for (const [id, slot] of this.integrations) {
      if (now - slot.loadedAt >= bound) this.integrations.delete(id);
    }
    for (const [hash, at] of this.negative) {
      if (now - at >= this.opts.ttlMs) this.negative.delete(hash);
      else break;
    }
  }

  /** An integration key by id, with the same rules as values: stale while refreshed, at most maxKeys. */
  async getIntegration(keyId: string, now: number, load: IntegrationLoader): Promise<IntegrationEntry | null> {
    const slot = this.integrations.get(keyId);
    if (slot !== undefined) {
      const age = now - slot.loadedAt;
      if (age < this.opts.ttlMs) {
        slot.visited = true;
        return slot.entry;
      }
      // An id known not to exist is asked again past the TTL: it may have been created since.
      if (slot.entry !== null && age < this.opts.ttlMs + this.opts.staleMs) {
        slot.visited = true;
        this.staleAnswers++;
        if (now >= slot.retryAt && !this.integrationsInflight.has(keyId)) void this.loadIntegration(keyId, now, load).catch(() => {});
        return slot.entry;
      }
    }
    return this.integrationsInflight.get(keyId) ?? this.loadIntegration(keyId, now, load);
  }

  private loadIntegration(keyId: string, now: number, load: IntegrationLoader): Promise<IntegrationEntry | null> {
    const epoch = this.epoch;
    const pending = load(keyId).then((entry) => {
      if (epoch === this.epoch) this.fillIntegration(keyId, entry, now);
      return entry;
    }, (err: unknown) => {
      this.failed(this.integrations.get(keyId));
      throw err;
    }).finally(() => this.integrationsInflight.delete(keyId));
    this.integrationsInflight.set(keyId, pending);
    return pending;
  }

  private fillIntegration(keyId: string, entry: IntegrationEntry | null, now: number): void {
    const slot = this.integrations.get(keyId);
    if (slot !== undefined) {
      slot.entry = entry;
      slot.loadedAt = now;
      slot.failures = 0;
      slot.retryAt = 0;
      return;
    }
    while (this.integrations.size >= this.opts.maxKeys) {
      const victim = this.integrationHand.next();
      if (victim === undefined) break;
      this.integrations.delete(victim);
      this.evictions++;
    }
    this.integrations.set(keyId, { entry, loadedAt: now, visited: false, retryAt: 0, failures: 0 });
  }

  /** Every cached key of an app is forgotten (its gateway rules changed). */
  invalidateApp(appId: string): void {
    this.epoch++;
    for (const [hash, slot] of this.positive) if (slot.entry.key.appId === appId) this.dropHash(hash);
    for (const [id, slot] of this.integrations) if (slot.entry?.key.appId === appId) this.integrations.delete(id);
  }

  /** Every cached key of one owner in a workspace is forgotten (its identity changed). */
  invalidateIdentity(workspaceId: string, externalId: string): void {
    this.epoch++;
    for (const [hash, slot] of this.positive) {
      const k = slot.entry.key;
      if (k.ownerId === externalId && k.workspaceId === workspaceId) this.dropHash(hash);
    }
    for (const [id, slot] of this.integrations) {
      const k = slot.entry?.key;
      if (k !== undefined && k.ownerId === externalId && k.workspaceId === workspaceId) this.integrations.delete(id);
    }
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

  stats(): KeyCacheStats {
    return {
      keys: this.byKeyId.size,
      values: this.positive.size,
      unknown: this.negative.size,
      integrations: this.integrations.size,
      evictions: this.evictions,
      staleAnswers: this.staleAnswers,
      loadFailures: this.loadFailures,
      loading: this.inflight.size + this.integrationsInflight.size,
    };
  }
}
