// Redis connections and the invalidation bus: every node hears which keys changed, within
// milliseconds, and forgets its cached copies. Missed messages (a disconnect) clear the cache.
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { KeyCache } from '../verify/cache.js';

export function connectRedis(url: string, logger: Logger, name: string): Redis {
  const redis = new Redis(url, {
    connectionName: `keyward-${name}`,
    // Fail fast instead of queueing: verify falls back to the local limiter at once.
    enableOfflineQueue: name === 'sub',
    maxRetriesPerRequest: name === 'sub' ? null : 0,
    commandTimeout: name === 'sub' ? undefined : 500,
    retryStrategy: (times) => Math.min(100 * times, 2000),
    lazyConnect: false,
  });
  let lastError = 0;
  redis.on('error', (err: Error) => {
    const now = Date.now();
    if (now - lastError > 10_000) {
      lastError = now;
      logger.warn({ err: err.message, connection: name }, 'redis error');
    }
  });
  return redis;
}

export interface InvalidationBus {
  keyChanged(keyId: string): void;
  valueAdded(hash: string): void;
  close(): Promise<void>;
}

export class RedisInvalidationBus implements InvalidationBus {
  private readonly channel: string;
  private wasReady = false;

  constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    prefix: string,
    private readonly cache: KeyCache,
    private readonly logger: Logger,
  ) {
    this.channel = `${prefix}invalidate`;
    void sub.subscribe(this.channel).catch((err: unknown) => logger.warn({ err }, 'redis subscribe failed'));
    sub.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      if (message.startsWith('k:')) cache.invalidateKey(message.slice(2));
      else if (message.startsWith('h:')) cache.invalidateHash(message.slice(2));
    });
    sub.on('ready', () => {
      // Messages sent while we were away are lost: forget everything rather than serve stale keys.
      if (this.wasReady) {
        this.cache.clear();
        this.logger.info('redis reconnected; key cache cleared');
      }
      this.wasReady = true;
    });
  }

  keyChanged(keyId: string): void {
    this.cache.invalidateKey(keyId);
    this.publish(`k:${keyId}`);
  }

  valueAdded(hash: string): void {
    this.cache.invalidateHash(hash);
    this.publish(`h:${hash}`);
  }

  private publish(message: string): void {
    if (this.pub.status !== 'ready') return;
    this.pub.publish(this.channel, message).catch((err: unknown) => this.logger.warn({ err }, 'redis publish failed'));
  }

  async close(): Promise<void> {
    this.sub.disconnect();
  }
}

export function localBus(cache: KeyCache): InvalidationBus {
  return {
    keyChanged: (keyId) => cache.invalidateKey(keyId),
    valueAdded: (hash) => cache.invalidateHash(hash),
    close: async () => {},
  };
}
