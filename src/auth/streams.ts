// How many change streams one credential (a session or a root key) holds open at once: each is a
// socket, timers and a listener on the node it is open on, so the count is bounded (409 beyond).
// With Redis the bound holds across nodes: each stream is a lease in a sorted set, renewed while
// it is open, so a node that dies without closing its streams frees their places within a lease.
// Without Redis (or while it fails) each node counts its own.
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/** A stream's place; renewed while it is open, released when it closes. */
export interface StreamLease {
  renew(): void;
  release(): void;
}

export interface StreamSlots {
  /** A place for one more stream of this credential, or null when it holds `max` already. */
  acquire(credential: string, max: number): Promise<StreamLease | null>;
}

export class MemoryStreamSlots implements StreamSlots {
  private readonly open = new Map<string, number>();

  async acquire(credential: string, max: number): Promise<StreamLease | null> {
    return this.take(credential, max);
  }

  /** Synchronous: the check and the count are one step. */
  take(credential: string, max: number): StreamLease | null {
    const count = this.open.get(credential) ?? 0;
    if (count >= max) return null;
    this.open.set(credential, count + 1);
    let released = false;
    return {
      renew: () => {},
      release: () => {
        if (released) return;
        released = true;
        const left = (this.open.get(credential) ?? 1) - 1;
        if (left > 0) this.open.set(credential, left);
        else this.open.delete(credential);
      },
    };
  }
}

/** Drops lapsed leases, then adds this one if fewer than the bound remain (Redis's clock). */
const ACQUIRE = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1`;
const RENEW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0`;

export class RedisStreamSlots implements StreamSlots {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly local: MemoryStreamSlots,
    /** How long a lease lasts without renewal (streams renew at every heartbeat). */
    private readonly leaseMs: number,
  ) {}

  async acquire(credential: string, max: number): Promise<StreamLease | null> {
    // This node's own count first: it holds even while Redis is away.
    const local = this.local.take(credential, max);
    if (!local) return null;
    if (this.redis.status !== 'ready') return local;
    const key = `${this.prefix}streams:${credential}`;
    const id = randomBytes(8).toString('hex');
    let granted: number;
    try {
      granted = (await this.redis.eval(ACQUIRE, 1, key, id, max, this.leaseMs)) as number;
    } catch {
      return local;
    }
    if (granted !== 1) {
      local.release();
      return null;
    }
    return {
      renew: () => {
        if (this.redis.status === 'ready') this.redis.eval(RENEW, 1, key, id, this.leaseMs).catch(() => 0);
      },
      release: () => {
        local.release();
        if (this.redis.status === 'ready') this.redis.zrem(key, id).catch(() => 0);
      },
    };
  }
}
