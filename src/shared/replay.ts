// Replay guards: remember a signed request's id for as long as its timestamp would be accepted,
// so the same request is handled once. In memory for one node; in Redis (SET NX) across nodes.
import type { Redis } from 'ioredis';

export interface ReplayGuard {
  /** True the first time an id is seen within ttlMs; false for a repeat. */
  firstSeen(id: string, ttlMs: number, now: number): Promise<boolean>;
}

export class MemoryReplayGuard implements ReplayGuard {
  /** id → when it may be forgotten; insertion order is expiry order for one ttl. */
  private readonly seen = new Map<string, number>();

  async firstSeen(id: string, ttlMs: number, now: number): Promise<boolean> {
    for (const [s, until] of this.seen) {
      if (until > now) break;
      this.seen.delete(s);
    }
    if (this.seen.has(id)) return false;
    this.seen.set(id, now + ttlMs);
    return true;
  }
}

/**
 * Shared across nodes; this node's memory answers too, so a Redis outage never admits a repeat it
 * saw. Redis is asked only while `usable` (connected, and not known to hang: its circuit is closed).
 */
export class RedisReplayGuard implements ReplayGuard {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly local: ReplayGuard,
    private readonly usable: () => boolean = () => redis.status === 'ready',
  ) {}

  async firstSeen(id: string, ttlMs: number, now: number): Promise<boolean> {
    if (!(await this.local.firstSeen(id, ttlMs, now))) return false;
    if (!this.usable()) return true;
    const fresh = await this.redis.set(`${this.prefix}replay:${id}`, '1', 'PX', ttlMs, 'NX').catch(() => 'OK');
    return fresh !== null;
  }
}
