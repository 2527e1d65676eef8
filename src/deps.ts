// The composition root: the one place that builds infrastructure (store, cache, limiter, Redis,
// usage recorder, clock, logger) and the services over it. Nothing below imports this file.
import pino, { type Logger } from 'pino';
import type { Redis } from 'ioredis';
import type { AppServices } from './app.js';
import type { Config } from './config.js';
import { systemClock, type Clock } from './lib/clock.js';
import { parseJson } from './lib/json.js';
import { PasswordHasher } from './lib/hash.js';
import { decodeMasterKey, keyId, loadMasterKey, MasterKeyError, sealContext, SecretBox } from './lib/secretbox.js';
import { createMetrics, type Metrics } from './metrics.js';
import { MemoryRateLimiter, type RateLimiter } from './ratelimit/limiter.js';
import { RedisRateLimiter } from './ratelimit/redis.js';
import { KeyChangeListeners, localBus, type InvalidationBus } from './shared/bus.js';
import { ChangeFeed } from './shared/feed.js';
import { NodeRegistry } from './shared/nodes.js';
import { MemoryReplayGuard, RedisReplayGuard, type ReplayGuard } from './shared/replay.js';
import { migrate, openStore, type Store } from './store/db.js';
import { UsageRecorder } from './usage/recorder.js';
import { UsageService } from './usage/service.js';
import { KeyCache, toCachedKey, type IntegrationEntry } from './verify/cache.js';
import { scopedVerify } from './verify/routes.js';
import { RootKeyCache } from './verify/scope.js';
import type { VerifyDeps } from './verify/verify.js';
import { AuthService } from './auth/service.js';
import { Guard } from './auth/guard.js';
import { Idempotency } from './http/idempotency.js';
import { LoginThrottle, MemoryCounters, RedisCounters, type CounterStore } from './auth/throttle.js';
import { AppService } from './apps/service.js';
import { KeyService } from './keys/service.js';
import { WorkspaceService } from './workspaces/service.js';
import { InvitationService } from './workspaces/invitations.js';
import { VaultService } from './vault/service.js';
import { LeakService } from './leaks/service.js';
import { WebhookOutbox } from './webhooks/outbox.js';
import { WebhookSender } from './webhooks/sender.js';
import { WebhookDispatcher } from './webhooks/dispatcher.js';
import { WebhookService } from './webhooks/service.js';
import { CreditSlices } from './credits/slices.js';

/** Key cache entries kept for unknown values at most (a flood of random keys cannot grow memory). */
const MAX_NEGATIVE_CACHE = 100_000;
/** The contract's bound: a change is refused by every node reaching the store within 1 s. */
const FEED_LAG_BOUND_MS = 1000;
/** Windows of the local rate limiter are swept this often. */
const LIMITER_SWEEP_MS = 60_000;

export interface Deps {
  config: Config;
  logger: Logger;
  clock: Clock;
  store: Store;
  /** Seals integration secrets and vault values under the master key. */
  box: SecretBox;
  metrics: Metrics;
  cache: KeyCache;
  usage: UsageRecorder;
  verify: VerifyDeps;
  /** What buildApp is given. */
  services: AppServices;
  /** The change feed this node follows (tests poll it explicitly instead of waiting). */
  feed: ChangeFeed;
  /** This node's heartbeat and the count of live nodes. */
  nodes: NodeRegistry;
  /** This node's webhook worker (tests drain it explicitly instead of waiting). */
  webhooks: WebhookDispatcher;
  /** This node's slices of usage caps (tests read its counts and drain it). */
  credits: CreditSlices;
  close(): Promise<void>;
}

export interface DepsOverrides {
  clock?: Clock;
  logger?: Logger;
}

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'keyward' },
    // Credentials never reach the log stream, whatever a caller logs.
    redact: {
      paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers["x-session-token"]', 'req.headers.cookie',
        '*.password', '*.key', '*.secret', '*.token', 'key', 'secret', 'token', 'password'],
      censor: '[redacted]',
    },
  });
}

/**
 * The master key, checked against the one the store was sealed with: a node with another key
 * (a second node without the shared KEYWARD_MASTER_KEY, say) refuses to start instead of failing
 * on every secret later.
 */
export async function openSecretBox(config: Config, store: Store, logger: Logger): Promise<SecretBox> {
  const { key, source } = loadMasterKey(config.masterKey, config.dataDir);
  if (source === 'generated') logger.warn({ file: `${config.dataDir}/master.key` }, 'generated a master key; back it up, or set KEYWARD_MASTER_KEY');
  const box = new SecretBox(key, config.previousMasterKeys.map((k) => decodeMasterKey(k, 'KEYWARD_MASTER_KEY_PREVIOUS')));
  const known = await store.repos.settings.get('master_key_id');
  if (known === undefined) {
    await store.repos.settings.insertIfAbsent('master_key_id', box.currentId);
  } else if (known !== box.currentId && !config.previousMasterKeys.some((k) => keyId(decodeMasterKey(k)) === known)) {
    throw new MasterKeyError(`this store's secrets are sealed under master key ${known}, but this node has ${box.currentId}; give every node the same KEYWARD_MASTER_KEY`);
  }
  return box;
}

/** The verify side of the store: load by hash, integration secrets, usage caps spent from slices. */
function verifyDeps(store: Store, box: SecretBox, cache: KeyCache, limiter: RateLimiter, credits: CreditSlices, usage: UsageRecorder, clock: Clock, config: Config, replay: ReplayGuard): VerifyDeps {
  const encoder = new TextEncoder();
  return {
    cache,
    load: async (hash) => {
      const row = await store.keyByHash(hash);
      if (!row) return null;
      const { value_expires_at, ...key } = row;
      return { key: toCachedKey(key), valueExpiresAt: value_expires_at };
    },
    loadIntegration: async (id): Promise<IntegrationEntry | null> => {
      const found = await store.repos.keys.findIntegration(id);
      if (!found) return null;
      return {
        key: toCachedKey(found.key),
        secrets: found.values.map((v) => ({ secret: encoder.encode(box.open(v.secret_enc, sealContext.keySecret(id))), valueExpiresAt: v.expires_at })),
      };
    },
    jwtMaxAgeSec: config.jwtMaxAgeSec,
    limiter,
    credits,
    record: (id, code, now, valid) => usage.record(id, code, now, valid),
    firstUse: (id, ttlMs, now) => replay.firstSeen(id, ttlMs, now),
    now: () => clock.now(),
  };
}

export async function createDeps(config: Config, overrides: DepsOverrides = {}): Promise<Deps> {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const clock = overrides.clock ?? systemClock;
  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, sqliteSync: config.sqliteSync, usageWriterNice: config.usageWriterNice, queryTimeoutMs: config.storeTimeoutMs });
  let box: SecretBox;
  try {
    const applied = await migrate(store.db);
    if (applied.length > 0) logger.info({ migrations: applied }, 'store migrated');
    box = await openSecretBox(config, store, logger);
  } catch (err) {
    await store.close();
    throw err;
  }

  const now = () => clock.now();
  const metrics = createMetrics();
  const cache = new KeyCache(config.cacheTtlMs, config.cacheStaleMs, MAX_NEGATIVE_CACHE, now);
  const rootKeys = new RootKeyCache(config.cacheTtlMs, async (hash) => {
    const row = await store.repos.rootKeys.findByHash(hash);
    return row ? { id: row.id, workspaceId: row.workspace_id, permissions: parseJson<string[]>(row.permissions, []), revoked: row.revoked_at !== null } : null;
  });
  // What a key change invalidates: cached keys and cached root keys (ids never collide: key_ and rk_).
  const caches = {
    invalidateKey: (id: string) => {
      cache.invalidateKey(id);
      rootKeys.invalidate(id);
    },
    invalidateHash: (hash: string) => cache.invalidateHash(hash),
    invalidateApp: (appId: string) => cache.invalidateApp(appId),
    clear: () => {
      cache.clear();
      rootKeys.clear();
    },
  };
  const memoryLimiter = new MemoryRateLimiter(LIMITER_SWEEP_MS, now);
  let limiter: RateLimiter = memoryLimiter;
  const nodes = new NodeRegistry(store, clock);
  await nodes.start();
  const listeners = new KeyChangeListeners();
  const feed = new ChangeFeed(store, caches, (change) => listeners.emit(change), clock, logger, config.feedPollMs);
  let bus: InvalidationBus = localBus(caches, listeners);
  let counters: CounterStore = new MemoryCounters(now);
  let replay: ReplayGuard = new MemoryReplayGuard();
  let redis: Redis | undefined;
  let sub: Redis | undefined;
  if (config.redisUrl) {
    // Loaded only when configured: the embedded setup never pays for the Redis client.
    const { connectRedis, RedisInvalidationBus } = await import('./shared/redis.js');
    redis = connectRedis(config.redisUrl, logger, 'cmd');
    sub = connectRedis(config.redisUrl, logger, 'sub');
    const shared = new RedisRateLimiter(redis, config.redisPrefix, memoryLimiter, logger, () => metrics.limiterFallbacks.inc(), { mode: config.ratelimitFallback, liveNodes: () => nodes.live() }, { lifeMs: config.ratelimitLeaseMs, now });
    metrics.watchSharedLimits(() => shared.stats());
    limiter = shared;
    bus = new RedisInvalidationBus(redis, sub, config.redisPrefix, caches, logger, listeners, () => feed.poll());
    counters = new RedisCounters(redis, config.redisPrefix, counters);
    replay = new RedisReplayGuard(redis, config.redisPrefix, replay);
  }
  const usage = new UsageRecorder(store.usageSink(), logger, config.usageFlushMs, now);
  usage.start();
  await feed.start();

  const wh = config.webhooks;
  // Events are written by the services in their transactions; the dispatcher sends them. A local
  // commit wakes it at once; other nodes' events are found by its poll.
  const outbox = new WebhookOutbox(wh.maxAttempts, wh.expiryNoticeMs, () => webhooks.kick());
  const webhooks = new WebhookDispatcher(store, box, new WebhookSender({ timeoutMs: wh.timeoutMs, allowPrivate: wh.allowPrivate, userAgent: 'Keyward-Webhooks/1' }), outbox, clock, logger, { ...wh, onAttempt: (outcome) => metrics.webhookAttempts.inc({ outcome }) });
  webhooks.start();
  // Usage caps: units leased to this node in store transactions, spent in memory; a key change
  // (on any node) gives this node's unspent units of it back.
  const credits = new CreditSlices(store, nodes.id, outbox, logger, { lifeMs: config.creditLeaseMs, now, liveNodes: () => nodes.live() });
  bus.onKeyChange((change) => credits.keyChanged(change.keyId));
  metrics.watchCredits(() => credits.stats());
  const verify = verifyDeps(store, box, cache, limiter, credits, usage, clock, config, replay);

  const auth = new AuthService(store, clock, config.sessionTtlMs, new LoginThrottle(counters), new PasswordHasher(config.passwordCost));
  const services: AppServices = {
    logger,
    clock,
    http: { bodyLimitBytes: config.bodyLimitBytes, trustProxy: config.trustProxy, streamRecheckMs: config.streamRecheckMs, verifyWire: config.verifyWire, verifySharedReads: config.verifySharedReads },
    auth,
    guard: new Guard(auth, store.repos),
    idempotency: new Idempotency(store, clock),
    workspaces: new WorkspaceService(store, clock, bus, outbox),
    invitations: new InvitationService(store, clock, auth, config.publicUrl),
    apps: new AppService(store, clock, bus, outbox),
    keys: new KeyService(store, clock, box, bus, (id) => usage.pendingLastUsed(id), outbox, (id, epoch) => credits.held(id, epoch, clock.now())),
    usage: new UsageService(store, clock, () => usage.flush()),
    vault: new VaultService(store, clock, box),
    webhooks: new WebhookService(store, clock, box, wh.allowPrivate, () => webhooks.kick()),
    audit: store.repos.audit,
    leaks: new LeakService(store, clock, bus, config.leakPolicy, outbox),
    leakPublicKeys: config.leakPublicKeys,
    bus,
    replay,
    slash: { signingSecret: config.slashSigningSecret, appId: config.slashAppId },
    verify: scopedVerify(verify, rootKeys, metrics.countVerdict),
    system: {
      readiness: {
        async checks() {
          const checks: Awaited<ReturnType<AppServices['system']['readiness']['checks']>> = { store: { ok: true, detail: store.dialect } };
          try {
            await store.ping();
          } catch (err) {
            checks.store = { ok: false, detail: (err as Error).message };
          }
          if (redis) {
            try {
              if (redis.status !== 'ready') throw new Error(`redis is ${redis.status}`);
              await redis.ping();
              checks.redis = { ok: true };
            } catch (err) {
              // Verify keeps answering with local limits, so Redis being away degrades but does not unready.
              checks.redis = { ok: false, detail: (err as Error).message };
            }
          }
          const lag = feed.status().lagMs;
          checks.changeFeed = lag <= FEED_LAG_BOUND_MS ? { ok: true } : { ok: false, detail: `${lag} ms behind; revocations may not be seen` };
          return checks;
        },
      },
      metrics: {
        contentType: metrics.registry.contentType,
        render: () => {
          const size = cache.size;
          metrics.cacheEntries.labels('keys').set(size.keys);
          metrics.cacheEntries.labels('unknown').set(size.unknown);
          metrics.feedLag.set(feed.status().lagMs / 1000);
          return metrics.registry.metrics();
        },
      },
    },
  };

  if (config.slashAppId) {
    if (!(await store.repos.apps.find(config.slashAppId))) logger.warn({ appId: config.slashAppId }, 'KEYWARD_SLASH_APP_ID names no app: /api-keys will answer that it is not set up; create the app, then set its id');
  }

  return {
    config, logger, clock, store, box, metrics, cache, usage, verify, services,
    feed,
    nodes,
    webhooks,
    credits,
    async close() {
      // Unspent units go back while the store is still open (and before the webhook worker stops:
      // the last give-back can write nothing for it, but a lease flushed now might).
      await credits.close();
      await webhooks.close();
      await feed.close();
      await nodes.close();
      await usage.stop();
      await limiter.close();
      await bus.close();
      cache.close();
      redis?.disconnect();
      sub?.disconnect();
      await store.close();
    },
  };
}
