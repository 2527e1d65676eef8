// The composition root: the one place that builds infrastructure (store, cache, limiter, Redis,
// usage recorder, clock, logger) and the services over it. Nothing below imports this file.
import pino, { type Logger } from 'pino';
import type { Redis } from 'ioredis';
import type { AppServices } from './app.js';
import type { Config } from './config.js';
import { Circuit } from './lib/circuit.js';
import { SharedClock, systemClock, type Clock } from './lib/clock.js';
import { parseJson } from './lib/json.js';
import { PasswordHasher } from './lib/hash.js';
import { decodeMasterKey, keyId, loadMasterKey, MasterKeyError, SecretBox } from './lib/secretbox.js';
import { createMetrics, type Metrics } from './metrics.js';
import { MemoryRateLimiter, type RateLimiter } from './ratelimit/limiter.js';
import { REDIS_FAILURES_TO_OPEN, RedisRateLimiter, type SharedLimiterOptions } from './ratelimit/redis.js';
import { MemoryBucketLimiter, type BucketLimiter } from './ratelimit/buckets.js';
import { RedisBucketLimiter } from './ratelimit/redis-buckets.js';
import { OverrideCache } from './ratelimit/overrides.js';
import { KeyChangeListeners, localBus, type Invalidatable, type InvalidationBus } from './shared/bus.js';
import { ChangeFeed } from './shared/feed.js';
import { NodeRegistry } from './shared/nodes.js';
import { MemoryReplayGuard, RedisReplayGuard, type ReplayGuard } from './shared/replay.js';
import { migrate, openStore, type Store } from './store/db.js';
import { UsageRecorder } from './usage/recorder.js';
import { UsageService } from './usage/service.js';
import { KeyCache } from './verify/cache.js';
import { VerifyEngine } from './verify/engine.js';
import { VerifyStore } from './verify/store.js';
import { RootKeyCache } from './verify/scope.js';
import { ImportedKeys } from './verify/imported.js';
import { ImportService } from './imports/service.js';
import { StoreGate } from './store/gate.js';
import { AuthService } from './auth/service.js';
import { Guard } from './auth/guard.js';
import { Idempotency } from './http/idempotency.js';
import { HashSlots, LoginThrottle, MemoryCounters, RedisCounters, type CounterStore } from './auth/throttle.js';
import { MemoryStreamSlots, RedisStreamSlots, type StreamSlots } from './auth/streams.js';
import { AppService } from './apps/service.js';
import { KeyService } from './keys/service.js';
import { keyView } from './keys/model.js';
import { WorkspaceService } from './workspaces/service.js';
import { InvitationService } from './workspaces/invitations.js';
import { VaultService } from './vault/service.js';
import { LeakService } from './leaks/service.js';
import { WebhookOutbox } from './webhooks/outbox.js';
import { WebhookSender, type Resolve } from './webhooks/sender.js';
import { WebhookDispatcher } from './webhooks/dispatcher.js';
import { WebhookService } from './webhooks/service.js';
import { CreditSlices } from './credits/slices.js';
import { IdentityService } from './identities/service.js';
import { OverrideService, StandaloneLimiter } from './ratelimit/service.js';

/** Key cache entries kept for unknown values at most (a flood of random keys cannot grow memory). */
const MAX_NEGATIVE_CACHE = 100_000;
/** The contract's bound: a change is refused by every node reaching the store within 1 s. */
const FEED_LAG_BOUND_MS = 1000;
/** A change stream's place in the shared count lapses this long after its node last renewed it (every 15 s). */
const STREAM_LEASE_MS = 60_000;
/** Windows of the local rate limiter are swept this often. */
const LIMITER_SWEEP_MS = 60_000;
/** A request-path query that found the store down opens its circuit at once: it may have waited the whole store timeout. */
const STORE_FAILURES_TO_OPEN = 1;
/** Probes of a service known down back off up to this many times KEYWARD_PROBE_MS. */
const MAX_PROBE_FACTOR = 4;
/** Redis TIME is read this often (and on every connect) to keep rate windows on Redis's clock. */
const REDIS_CLOCK_SAMPLE_MS = 30_000;

export interface Deps {
  config: Config;
  logger: Logger;
  /** This node's clock moved onto the store's (see SharedClock): what every service uses. */
  clock: SharedClock;
  store: Store;
  /** Seals integration secrets and vault values under the master key. */
  box: SecretBox;
  metrics: Metrics;
  cache: KeyCache;
  usage: UsageRecorder;
  verify: VerifyEngine;
  /** What buildApp is given. */
  services: AppServices;
  /** The change feed this node follows (tests poll it explicitly instead of waiting). */
  feed: ChangeFeed;
  /** This node's heartbeat and the count of live nodes. */
  nodes: NodeRegistry;
  /** This node's webhook worker (tests drain it explicitly instead of waiting). */
  webhooks: WebhookDispatcher;
  /** The verify path's access to the store, behind the store's circuit (with its counts). */
  storeGate: StoreGate;
  /** The limiter verify uses (the Redis one, with its circuit, when REDIS_URL is set). */
  limiter: RateLimiter;
  /** Named limits and the standalone limiter (Redis leases when REDIS_URL is set). */
  buckets: BucketLimiter;
  overrides: OverrideCache;
  /** The imported values this node's verify may look up. */
  imported: ImportedKeys;
  /** This node's slices of usage caps (tests read its counts and drain it). */
  credits: CreditSlices;
  close(): Promise<void>;
}

export interface DepsOverrides {
  clock?: Clock;
  logger?: Logger;
  /** Name resolution for webhook deliveries (tests give names their own answers). */
  resolve?: Resolve;
}

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'keyward' },
    // Credentials never reach the log stream, whatever a caller logs.
    redact: {
      paths: ['req.headers.authorization', 'req.headers["x-api-key"]', 'req.headers["x-session-token"]', 'req.headers.cookie',
        'req.headers["x-keyward-root-key"]', '*.password', '*.key', '*.secret', '*.token', 'key', 'secret', 'token', 'password'],
      censor: '[redacted]',
    },
    // A request logged by Fastify is its method and route template: never its URL (a query or a
    // path segment may hold what a caller should not have sent), headers or body.
    serializers: {
      req: (req: { method?: string; routeOptions?: { url?: string } }) => ({ method: req.method, route: req.routeOptions?.url ?? null }),
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

export async function createDeps(config: Config, overrides: DepsOverrides = {}): Promise<Deps> {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const local = overrides.clock ?? systemClock;
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

  // The node's clock is the store's (sampled at every heartbeat): what one node writes or compares
  // (heartbeats, webhook leases, expiry) means the same on every other, whatever its own clock says.
  const clock = new SharedClock(local, () => store.repos.nodes.now());
  const now = () => clock.now();
  const metrics = createMetrics();
  const storeCircuit = new Circuit({ failuresToOpen: STORE_FAILURES_TO_OPEN, probeMs: config.probeMs, maxProbeMs: config.probeMs * MAX_PROBE_FACTOR });
  const gate = new StoreGate(store, storeCircuit, now);
  const cache = new KeyCache({ ttlMs: config.cacheTtlMs, staleMs: config.cacheStaleMs, maxKeys: config.cacheMaxKeys, maxNegative: MAX_NEGATIVE_CACHE, retryMs: config.probeMs, clock: now });
  const rootKeys = new RootKeyCache(config.cacheTtlMs, async (hash) => {
    const row = await gate.run(() => store.repos.rootKeys.findByHash(hash));
    return row ? { id: row.id, workspaceId: row.workspace_id, permissions: parseJson<string[]>(row.permissions, []), revoked: row.revoked_at !== null } : null;
  }, config.cacheStaleMs);
  const listeners = new KeyChangeListeners();
  const limitOverrides = new OverrideCache((workspaceId) => gate.run(() => store.repos.overrides.listAll(workspaceId)));
  const imported = new ImportedKeys((appId) => store.repos.keys.importedValues(appId), logger);
  /**
   * importKeys switched (or the app's values changed): this node reads the app's imported values
   * again, then drops the app's cached keys once more, since a verify between the first drop and the
   * read may have cached a value the app no longer accepts.
   */
  const refreshImports = (appId: string) => imported.refreshApp(appId).then(() => cache.invalidateApp(appId));
  // What a key change invalidates: cached keys and cached root keys (ids never collide: key_ and rk_).
  // An access change also reaches the open change streams, which end when their right does.
  const caches: Invalidatable = {
    invalidateKey: (id: string) => {
      cache.invalidateKey(id);
      rootKeys.invalidate(id);
    },
    invalidateHash: (hash: string) => cache.invalidateHash(hash),
    invalidateApp: (appId: string) => {
      cache.invalidateApp(appId);
      void refreshImports(appId);
    },
    importsChanged: (appId: string) => void imported.refreshApp(appId),
    invalidateIdentity: (workspaceId: string, externalId: string) => cache.invalidateIdentity(workspaceId, externalId),
    overridesChanged: (workspaceId: string) => limitOverrides.invalidate(workspaceId),
    invalidateAccess: (change) => {
      if (change.kind === 'root_key') rootKeys.invalidate(change.target);
      listeners.emitAccess(change);
    },
    clear: () => {
      cache.clear();
      rootKeys.clear();
      limitOverrides.clear();
    },
  };
  const memoryLimiter = new MemoryRateLimiter(LIMITER_SWEEP_MS, now);
  let limiter: RateLimiter = memoryLimiter;
  let buckets: BucketLimiter = new MemoryBucketLimiter(LIMITER_SWEEP_MS, now);
  const nodes = new NodeRegistry(store, clock, () => storeCircuit.open);
  await nodes.start();
  const feed = new ChangeFeed(store, caches, (change) => listeners.emit(change), clock, logger, config.feedPollMs);
  let bus: InvalidationBus = localBus(caches, listeners);
  let counters: CounterStore = new MemoryCounters(now);
  let replay: ReplayGuard = new MemoryReplayGuard();
  const localStreams = new MemoryStreamSlots();
  let streams: StreamSlots = localStreams;
  let redis: Redis | undefined;
  let sub: Redis | undefined;
  let redisCircuit: Circuit | undefined;
  let redisClock: SharedClock | undefined;
  let clockSampler: NodeJS.Timeout | undefined;
  if (config.redisUrl) {
    // Loaded only when configured: the embedded setup never pays for the Redis client.
    const { connectRedis, RedisInvalidationBus } = await import('./shared/redis.js');
    const cmd = (redis = connectRedis(config.redisUrl, logger, 'cmd'));
    sub = connectRedis(config.redisUrl, logger, 'sub');
    // Rate windows are Redis's: its TIME read on every connect, every half minute, and by every probe.
    const rclock = (redisClock = new SharedClock(local, async () => {
      const [sec, usec] = await cmd.time();
      return Number(sec) * 1000 + Number(usec) / 1000;
    }));
    const circuit = (redisCircuit = new Circuit({ failuresToOpen: REDIS_FAILURES_TO_OPEN, probeMs: config.probeMs, maxProbeMs: config.probeMs * MAX_PROBE_FACTOR }));
    const usable = () => cmd.status === 'ready' && !circuit.open;
    cmd.on('ready', () => void rclock.sample());
    clockSampler = setInterval(() => {
      if (usable()) void rclock.sample();
    }, REDIS_CLOCK_SAMPLE_MS);
    clockSampler.unref();
    const limiterOptions: SharedLimiterOptions = {
      prefix: config.redisPrefix,
      logger,
      onFallback: () => metrics.limiterFallbacks.inc(),
      mode: config.ratelimitFallback,
      nodes,
      lifeMs: config.ratelimitLeaseMs,
      now: () => rclock.now(),
      // Verify's `now` is the store's clock; the limiter's windows are on Redis's.
      shift: () => rclock.offset - clock.offset,
      circuit,
      probe: () => rclock.sample(),
    };
    const shared = new RedisRateLimiter(cmd, limiterOptions);
    metrics.watchSharedLimits(() => shared.stats());
    limiter = shared;
    await buckets.close();
    // Named limits and the standalone limiter: the same leases, Redis clock and circuit.
    buckets = new RedisBucketLimiter(cmd, limiterOptions);
    bus = new RedisInvalidationBus(cmd, sub, config.redisPrefix, caches, logger, listeners, () => feed.poll());
    counters = new RedisCounters(cmd, config.redisPrefix, counters);
    replay = new RedisReplayGuard(cmd, config.redisPrefix, replay, usable);
    streams = new RedisStreamSlots(cmd, config.redisPrefix, localStreams, STREAM_LEASE_MS);
  }
  const usage = new UsageRecorder(store.usageSink(), logger, config.usageFlushMs, now);
  usage.start();
  await feed.start();
  // After the feed took its place: an import committed from now on reaches this node through it.
  await imported.loadAll();

  const wh = config.webhooks;
  // Events are written by the services in their transactions; the dispatcher sends them. A local
  // commit wakes it at once; other nodes' events are found by its poll.
  const outbox = new WebhookOutbox(wh.expiryNoticeMs, keyView, () => webhooks.kick(), (at) => webhooks.dueAt(at));
  const webhooks = new WebhookDispatcher(store, box, new WebhookSender({ timeoutMs: wh.timeoutMs, allowPrivate: wh.allowPrivate, userAgent: 'Keyward-Webhooks/1', ...(overrides.resolve ? { resolve: overrides.resolve } : {}) }), outbox, clock, logger, { ...wh, onAttempt: (outcome) => metrics.webhookAttempts.inc({ outcome }) });
  webhooks.start();
  // Usage caps: units leased to this node in store transactions, spent in memory; a key change
  // (on any node) gives this node's unspent units of it back.
  const credits = new CreditSlices(store, nodes.id, outbox, logger, { lifeMs: config.creditLeaseMs, now, liveNodes: () => nodes.live() });
  // (An app change needs nothing here: its keys were revoked, or only its gateway rules changed.)
  bus.onKeyChange((change) => {
    if ('keyId' in change) credits.keyChanged(change.keyId);
  });
  metrics.watchCredits(() => credits.stats());
  const verify = new VerifyEngine({
    store: new VerifyStore(store, gate, box), cache, roots: rootKeys, limiter, buckets, overrides: limitOverrides, credits, usage, replay, imported, clock,
    policy: config.verifyPolicy, countVerdict: metrics.countVerdict,
  });

  const auth = new AuthService(store, clock, config.sessionTtlMs, new LoginThrottle(counters, config.login), new PasswordHasher(config.passwordCost),
    new HashSlots(config.login.hashSlots, config.login.hashReserved), bus);
  const services: AppServices = {
    logger,
    clock,
    http: { bodyLimitBytes: config.bodyLimitBytes, trustProxy: config.trustProxy, streamRecheckMs: config.streamRecheckMs, streamsPerSession: config.streamsPerSession, streamsPerRootKey: config.streamsPerRootKey, verifyWire: config.verifyWire, verifySharedReads: config.verifySharedReads, publicUrl: config.publicUrl, storeTimeoutMs: config.storeTimeoutMs },
    auth,
    guard: new Guard(auth, store.repos, rootKeys, now),
    streams,
    idempotency: new Idempotency(store, clock),
    workspaces: new WorkspaceService(store, clock, bus, outbox),
    invitations: new InvitationService(store, clock, auth, config.publicUrl),
    apps: new AppService(store, clock, bus, outbox, refreshImports),
    imports: new ImportService(store, clock, bus, outbox, imported),
    keys: new KeyService(store, clock, box, bus, (id) => usage.pendingLastUsed(id), outbox, (id, epoch) => credits.held(id, epoch, clock.now()), (id, read) => credits.steady(id, read)),
    usage: new UsageService(store, clock, () => usage.flush()),
    vault: new VaultService(store, clock, box),
    identities: new IdentityService(store, clock, bus),
    overrides: new OverrideService(store, clock, bus),
    standalone: new StandaloneLimiter(buckets, limitOverrides, () => clock.now(), (admitted) => metrics.standaloneLimits.inc({ result: admitted ? 'admitted' : 'refused' })),
    webhooks: new WebhookService(store, clock, box, wh.allowPrivate, outbox, () => webhooks.kick()),
    audit: store.repos.audit,
    leaks: new LeakService(store, clock, bus, config.leakPolicy, outbox),
    leakPublicKeys: config.leakPublicKeys,
    bus,
    replay,
    slash: { signingSecret: config.slashSigningSecret, appId: config.slashAppId },
    verify,
    observeRequest: (method, route, status, seconds) => metrics.httpDuration.observe({ method, route, status: String(status) }, seconds),
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
          const size = cache.stats();
          metrics.cacheEntries.labels('keys').set(size.keys);
          metrics.cacheEntries.labels('values').set(size.values);
          metrics.cacheEntries.labels('unknown').set(size.unknown);
          metrics.cacheEntries.labels('integrations').set(size.integrations);
          metrics.cacheCapacity.set(config.cacheMaxKeys);
          metrics.feedLag.set(feed.status().lagMs / 1000);
          return metrics.registry.metrics();
        },
      },
    },
  };

  if (config.slashAppId) {
    if (!(await store.repos.apps.find(config.slashAppId))) logger.warn({ appId: config.slashAppId }, 'KEYWARD_SLASH_APP_ID names no app: /api-keys will answer that it is not set up; create the app, then set its id');
  }

  metrics.watchDegraded(() => ({
    cache: cache.stats(),
    store: { open: storeCircuit.open, probes: storeCircuit.probes, sent: gate.sent, refused: gate.refused, offsetMs: clock.offset },
    ...(redisCircuit && redisClock ? { redis: { open: redisCircuit.open, probes: redisCircuit.probes, offsetMs: redisClock.offset } } : {}),
  }));

  return {
    config, logger, clock, store, box, metrics, cache, usage, verify, services,
    feed,
    nodes,
    webhooks,
    storeGate: gate,
    limiter,
    buckets,
    overrides: limitOverrides,
    imported,
    credits,
    async close() {
      clearInterval(clockSampler);
      imported.close();
      // Unspent units go back while the store is still open (and before the webhook worker stops:
      // the last give-back can write nothing for it, but a lease flushed now might).
      await credits.close();
      await webhooks.close();
      await feed.close();
      await nodes.close();
      await usage.stop();
      await limiter.close();
      await buckets.close();
      await bus.close();
      cache.close();
      redis?.disconnect();
      sub?.disconnect();
      await store.close();
    },
  };
}
