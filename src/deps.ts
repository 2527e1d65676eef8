// The one place that builds the infrastructure: store, cache, limiter, usage recorder, clock, logger.
import pino, { type Logger } from 'pino';
import { RateLimiterMemory } from 'rate-limiter-flexible';
import type { Config } from './config.js';
import { systemClock, type Clock } from './lib/clock.js';
import { chargeRemaining, keyLoader, peekRemaining } from './keys/store.js';
import { createMetrics, type Metrics } from './metrics.js';
import { MemoryRateLimiter, type RateLimiter } from './ratelimit/limiter.js';
import { RedisRateLimiter } from './ratelimit/redis.js';
import { connectRedis, localBus, RedisInvalidationBus, type InvalidationBus } from './shared/redis.js';
import type { Redis } from 'ioredis';
import { migrate, openStore, type Store } from './store/db.js';
import { UsageRecorder } from './usage/recorder.js';
import { KeyCache } from './verify/cache.js';
import type { VerifyDeps } from './verify/verify.js';

export interface Deps {
  config: Config;
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
  keyChanged(keyId: string): void;
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

export async function createDeps(config: Config, overrides: DepsOverrides = {}): Promise<Deps> {
  const logger = overrides.logger ?? createLogger(config.logLevel);
  const clock = overrides.clock ?? systemClock;
  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, sqliteSync: config.sqliteSync });
  const applied = await migrate(store.db);
  if (applied.length > 0) logger.info({ migrations: applied }, 'store migrated');

  const metrics = createMetrics();
  const cache = new KeyCache(config.cacheTtlMs, config.cacheStaleMs, 100_000, () => clock.now());
  const memoryLimiter = new MemoryRateLimiter(60_000, () => clock.now());
  let limiter: RateLimiter = memoryLimiter;
  let bus: InvalidationBus = localBus(cache);
  let redis: Redis | undefined;
  let sub: Redis | undefined;
  if (config.redisUrl) {
    redis = connectRedis(config.redisUrl, logger, 'cmd');
    sub = connectRedis(config.redisUrl, logger, 'sub');
    limiter = new RedisRateLimiter(redis, config.redisPrefix, memoryLimiter, logger, () => metrics.limiterFallbacks.inc());
    bus = new RedisInvalidationBus(redis, sub, config.redisPrefix, cache, logger);
  }
  const usage = new UsageRecorder(store.db, logger, config.usageFlushMs);
  usage.start();

  const verify: VerifyDeps = {
    cache,
    load: keyLoader(store),
    limiter,
    charge: (keyId, cost, now) => chargeRemaining(store.db, keyId, cost, now),
    peekRemaining: (keyId, now) => peekRemaining(store.db, keyId, now),
    record(keyId, code, now, valid) {
      usage.record(keyId, code, now);
      if (valid) usage.touch(keyId, now);
    },
    now: () => clock.now(),
  };

  return {
    config,
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
    keyChanged: (keyId) => bus.keyChanged(keyId),
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
