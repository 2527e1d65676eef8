// Redis connections and the Redis invalidation bus: every node hears which keys changed, within
// milliseconds, and forgets its cached copies. Missed messages (a disconnect) clear the cache.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { AccessChange, ChangeEvent, Invalidatable, InvalidationBus, KeyChange, KeyChangeListeners } from './bus.js';

export function connectRedis(url: string, logger: Logger, name: string): Redis {
  const redis = new Redis(url, {
    connectionName: `keyward-${name}`,
    // Fail fast instead of queueing: verify falls back to the local limiter at once.
    enableOfflineQueue: name === 'sub',
    maxRetriesPerRequest: name === 'sub' ? null : 0,
    commandTimeout: name === 'sub' ? undefined : 500,
    retryStrategy: (times) => Math.min(100 * times, 2000),
    lazyConnect: false,
    // Commands issued in one event-loop turn (the limit decisions of every request it handles)
    // leave in one write.
    enableAutoPipelining: name !== 'sub',
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

const ACCESS_KINDS: ReadonlySet<string> = new Set<AccessChange['kind']>(['session', 'member', 'root_key']);

export class RedisInvalidationBus implements InvalidationBus {
  private readonly channel: string;
  private wasReady = false;
  private readonly nodeId = randomBytes(6).toString('hex');

  constructor(
    private readonly pub: Redis,
    private readonly sub: Redis,
    prefix: string,
    private readonly cache: Invalidatable,
    private readonly logger: Logger,
    private readonly listeners: KeyChangeListeners,
    /** Messages sent while this node was away are lost: catch up from the change feed. */
    private readonly catchUp: () => Promise<void>,
  ) {
    this.channel = `${prefix}invalidate`;
    void sub.subscribe(this.channel).catch((err: unknown) => logger.warn({ err }, 'redis subscribe failed'));
    sub.on('message', (channel: string, message: string) => {
      if (channel !== this.channel) return;
      if (message.startsWith('k:')) {
        const [keyId = '', workspaceId = '', origin] = message.slice(2).split(':');
        cache.invalidateKey(keyId);
        if (origin !== this.nodeId) this.listeners.emit({ keyId, workspaceId } satisfies KeyChange);
      }
      else if (message.startsWith('x:')) {
        const [kind = '', target = '', workspaceId = '', origin] = message.slice(2).split(':');
        if (origin !== this.nodeId && ACCESS_KINDS.has(kind)) cache.invalidateAccess?.({ kind: kind as AccessChange['kind'], target, workspaceId });
      }
      else if (message.startsWith('h:')) cache.invalidateHash(message.slice(2));
      else if (message.startsWith('i:')) {
        // The external id goes last: it may hold any character, ':' too.
        const rest = message.slice(2);
        const at = rest.indexOf(':');
        if (at > 0) cache.invalidateIdentity?.(rest.slice(0, at), rest.slice(at + 1));
      }
      else if (message.startsWith('o:')) cache.overridesChanged?.(message.slice(2));
      else if (message.startsWith('a:')) {
        const [appId = '', workspaceId, origin] = message.slice(2).split(':');
        cache.invalidateApp(appId);
        if (workspaceId !== undefined && origin !== this.nodeId) this.listeners.emit({ appId, workspaceId });
      }
    });
    sub.on('ready', () => {
      // Messages sent while we were away are lost; the change feed has every one of them. The
      // cache stays: it is what answers when the store is away too (KEYWARD_CACHE_STALE_MS).
      if (this.wasReady) {
        this.logger.info('redis reconnected; catching up from the change feed');
        void this.catchUp();
      }
      this.wasReady = true;
    });
  }

  keyChanged(keyId: string, workspaceId: string): void {
    this.cache.invalidateKey(keyId);
    // Other nodes hear it through Redis; this node's listeners hear it now (our own message,
    // echoed back by Redis, invalidates once more, harmlessly, and is not emitted twice).
    this.listeners.emit({ keyId, workspaceId });
    this.publish(`k:${keyId}:${workspaceId}:${this.nodeId}`);
  }

  valueAdded(hash: string): void {
    this.cache.invalidateHash(hash);
    this.publish(`h:${hash}`);
  }

  appChanged(appId: string, workspaceId: string): void {
    this.cache.invalidateApp(appId);
    this.listeners.emit({ appId, workspaceId });
    this.publish(`a:${appId}:${workspaceId}:${this.nodeId}`);
  }

  identityChanged(workspaceId: string, externalId: string): void {
    this.cache.invalidateIdentity?.(workspaceId, externalId);
    this.publish(`i:${workspaceId}:${externalId}`);
  }

  overridesChanged(workspaceId: string): void {
    this.cache.overridesChanged?.(workspaceId);
    this.publish(`o:${workspaceId}`);
  }

  onKeyChange(listener: (change: ChangeEvent) => void): () => void {
    return this.listeners.add(listener);
  }

  accessChanged(change: AccessChange): void {
    this.cache.invalidateAccess?.(change);
    this.publish(`x:${change.kind}:${change.target}:${change.workspaceId}:${this.nodeId}`);
  }

  onAccessChange(listener: (change: AccessChange) => void): () => void {
    return this.listeners.addAccess(listener);
  }

  /** Best effort: when Redis is away the change feed carries the change within a poll. */
  private publish(message: string): void {
    if (this.pub.status !== 'ready') return;
    this.pub.publish(this.channel, message).catch((err: unknown) => this.logger.warn({ err }, 'redis publish failed'));
  }

  async close(): Promise<void> {
    this.sub.disconnect();
  }
}
