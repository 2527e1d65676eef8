// The one place that builds the infrastructure: store, cache, limiter, usage recorder, clock, logger.
import { EventEmitter } from 'node:events';
import pino, { type Logger } from 'pino';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { Config } from './config.js';
import { systemClock, type Clock } from './lib/clock.js';
import { chargeRemaining, integrationLoader, keyLoader, peekRemaining } from './keys/store.js';
import { secretContext } from './keys/service.js';
import { createMetrics, type Metrics } from './metrics.js';
import { MemoryRateLimiter, type RateLimiter } from './ratelimit/limiter.js';
import { RedisRateLimiter } from './ratelimit/redis.js';
import { connectRedis, localBus, RedisInvalidationBus, type InvalidationBus } from './shared/redis.js';
import type { Redis } from 'ioredis';
import { migrate, openStore, sqlitePath, type Store } from './store/db.js';
import { decodeMasterKey, keyId, loadMasterKey, MasterKeyError, SecretBox } from './lib/secretbox.js';
import { UsageRecorder } from './usage/recorder.js';
import { sqliteWorkerSink, storeSink } from './usage/sink.js';
import { KeyCache } from './verify/cache.js';
import type { VerifyDeps } from './verify/verify.js';

export interface Deps {
  config: Config;
  /** Seals integration secrets and vault values under the master key. */
  box: SecretBox;
  store: Store;
  clock: Clock;
  logger: Logger;
  metrics: Metrics;
  cache: KeyCache;
  limiter: RateLimiter;
  usage: UsageRecorder;
  verify: VerifyDeps;
  /** Failed logins per email+IP: 10 in 15 minutes, then 429. */
  loginLimiter: RateLimiterMemory;
  /** Shared-state connection when REDIS_URL is set (rate limits, invalidation). */
  redis: Redis | undefined;
  /** Tells every node (only this one, without Redis) that a key changed. */
  keyChanged(keyId: string, workspaceId: string): void;
  /** Emits `change` with {keyId, workspaceId} for every key change seen by this node (its own and others'). */
  keyEvents: EventEmitter;
  valueAdded(hash: string): void;
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
async function openSecretBox(config: Config, store: Store, logger: Logger): Promise<SecretBox> {
  const { key, source } = loadMasterKey(config.masterKey, config.dataDir);
  if (source === 'generated') logger.warn({ file: `${config.dataDir}/master.key` }, 'generated a master key; back it up, or set KEYWARD_MASTER_KEY');
  const box = new SecretBox(key, config.previousMasterKeys.map((k) => decodeMasterKey(k, 'KEYWARD_MASTER_KEY_PREVIOUS')));
  const known = await store.db.selectFrom('settings').select('value').where('name', '=', 'master_key_id').executeTakeFirst();
  if (!known) {
    await store.db.insertInto('settings').values({ name: 'master_key_id', value: box.currentId }).onConflict((oc) => oc.doNothing()).execute();
  } else if (known.value !== box.currentId && !config.previousMasterKeys.some((k) => keyId(decodeMasterKey(k)) === known.value)) {
    throw new MasterKeyError(`this store's secrets are sealed under master key ${known.value}, but this node has ${box.currentId}; give every node the same KEYWARD_MASTER_KEY`);
  }
  return box;
}

export async function createDeps(config: Config, overrides: DepsOverrides = {}): Promise<Deps> {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const clock = overrides.clock ?? systemClock;
  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, sqliteSync: config.sqliteSync });
  const applied = await migrate(store.db);
  if (applied.length > 0) logger.info({ migrations: applied }, 'store migrated');
  let box: SecretBox;
  try {
    box = await openSecretBox(config, store, logger);
  } catch (err) {
    await store.close();
    throw err;
  }

  const metrics = createMetrics();
  const cache = new KeyCache(config.cacheTtlMs, config.cacheStaleMs, 100_000, () => clock.now());
  const memoryLimiter = new MemoryRateLimiter(60_000, () => clock.now());
  let limiter: RateLimiter = memoryLimiter;
  const keyEvents = new EventEmitter();
  keyEvents.setMaxListeners(0);
  let bus: InvalidationBus = localBus(cache, keyEvents);
  let redis: Redis | undefined;
  let sub: Redis | undefined;
  if (config.redisUrl) {
    redis = connectRedis(config.redisUrl, logger, 'cmd');
    sub = connectRedis(config.redisUrl, logger, 'sub');
    limiter = new RedisRateLimiter(redis, config.redisPrefix, memoryLimiter, logger, () => metrics.limiterFallbacks.inc());
    bus = new RedisInvalidationBus(redis, sub, config.redisPrefix, cache, logger, keyEvents);
  }
  const usageSink = store.dialect === 'sqlite' ? sqliteWorkerSink(sqlitePath(config.dataDir), config.sqliteSync) : storeSink(store.db);
  const usage = new UsageRecorder(usageSink, logger, config.usageFlushMs, () => clock.now());
  usage.start();

  const verify: VerifyDeps = {
    cache,
    load: keyLoader(store),
    loadIntegration: integrationLoader(store, box, secretContext),
    jwtMaxAgeSec: config.jwtMaxAgeSec,
    limiter,
    charge: (keyId, cost, now) => chargeRemaining(store.db, keyId, cost, now),
    peekRemaining: (keyId, now) => peekRemaining(store.db, keyId, now),
    record: (keyId, code, now, valid) => usage.record(keyId, code, now, valid),
    now: () => clock.now(),
  };

  return {
    config,
    box,
    store,
    clock,
    logger,
    metrics,
    cache,
    limiter,
    usage,
    verify,
    loginLimiter: new RateLimiterMemory({ points: 10, duration: 15 * 60 }),
    redis,
    keyChanged: (keyId, workspaceId) => bus.keyChanged(keyId, workspaceId),
    keyEvents,
    valueAdded: (hash) => bus.valueAdded(hash),
    async close() {
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
