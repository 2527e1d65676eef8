// Shared limits when Redis restarts empty between two requests (no request saw it down, so no
// outage was decided alone and nothing is handed back by that path): its window counters are gone,
// and a key that spent its limit would get a full window again. Every node notices (an epoch key
// that is missing or changed), puts back what it charged in the windows still current, and no node
// admits more until every live node has, a quiet one included (bounded: a node that died is waited
// for a few seconds at most). Limiters here stand for nodes, on a Redis of the test's own.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LimitSubject } from '../../src/ratelimit/limiter.js';
import { RedisRateLimiter } from '../../src/ratelimit/redis.js';
import { startOwnRedis, type OwnRedis } from '../support/redis-server.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

const HOUR = 3_600_000;
/** A moment one second into an hour's window: no window ends during a test. */
const T0 = Math.floor(Date.now() / HOUR) * HOUR + 1000;

const limited = (limit: number): LimitSubject => ({ id: `key_${randomBytes(4).toString('hex')}`, appId: 'app_1', ownerId: null, ratelimit: { limit, durationMs: HOUR }, ownerRatelimit: null });

describe.runIf(process.env.TEST_REDIS_URL)('shared limits across a Redis restart between requests', () => {
  let redis: OwnRedis;
  const open: { limiter: RedisRateLimiter; client: Redis }[] = [];
  let fallbacks = 0;

  beforeAll(async () => {
    redis = await startOwnRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });
  afterEach(async () => {
    for (const n of open.splice(0)) {
      await n.limiter.close();
      n.client.disconnect();
    }
    fallbacks = 0;
  });

  async function node(live: number, url = redis.url): Promise<{ limiter: RedisRateLimiter; client: Redis }> {
    const client = new Redis(url, { enableAutoPipelining: true });
    client.on('error', () => {});
    await new Promise<void>((resolve) => client.once('ready', () => resolve()));
    const limiter = new RedisRateLimiter(client, {
      prefix: 'kwrestart:',
      logger: pino({ level: 'silent' }),
      onFallback: () => void fallbacks++,
      nodes: { live: () => live, fresh: async () => live },
      lifeMs: 2000,
      now: () => T0,
    });
    const n = { limiter, client };
    open.push(n);
    return n;
  }

  /** `count` requests one after another; how many were admitted. */
  async function admitted(limiter: RedisRateLimiter, subject: LimitSubject, count: number): Promise<number> {
    let n = 0;
    for (let i = 0; i < count; i++) if ((await limiter.take(subject, T0))!.allowed) n++;
    return n;
  }

  /** Redis killed and started again, empty; every node's connection ready again before the next request. */
  async function restartEmpty(clients: Redis[]): Promise<void> {
    await redis.stop();
    await redis.start();
    for (const c of clients) await expect.poll(() => c.status, { timeout: 10_000, interval: 20 }).toBe('ready');
  }

  it('a key that spent its limit gets no fresh window when Redis restarts empty', async () => {
    const a = await node(1);
    const subject = limited(20);
    expect(await admitted(a.limiter, subject, 20)).toBe(20);
    expect(await admitted(a.limiter, subject, 1)).toBe(0);
    await restartEmpty([a.client]);
    expect(await admitted(a.limiter, subject, 20)).toBe(0);
    expect(fallbacks).toBe(0);
  });

  it('what a quiet node charged is back before another node admits more', async () => {
    const a = await node(2);
    const b = await node(2);
    const subject = limited(20);
    // A saw the window once (its count then: 0); B admitted 15 since, and is quiet from here on.
    expect(await admitted(a.limiter, subject, 1)).toBe(1);
    expect(await admitted(b.limiter, subject, 15)).toBe(15);
    await restartEmpty([a.client, b.client]);
    // 16 were admitted before the restart (B may hold some of its 15 unspent, counted all the same):
    // 4 are left, whichever node admits them.
    const afterA = await admitted(a.limiter, subject, 20);
    const afterB = await admitted(b.limiter, subject, 20);
    expect(afterA + afterB).toBe(4);
  });

  it('a node whose connection comes back later: the others wait for its part before admitting more', async () => {
    const proxy = await startTcpProxy('127.0.0.1', redis.port);
    try {
      const a = await node(2);
      const b = await node(2, `redis://127.0.0.1:${proxy.port}`);
      const subject = limited(20);
      expect(await admitted(a.limiter, subject, 1)).toBe(1);
      expect(await admitted(b.limiter, subject, 15)).toBe(15);
      // B is cut off across the restart: A finds the counts lost and restores its part alone.
      await proxy.down();
      await restartEmpty([a.client]);
      const first = a.limiter.take(subject, T0);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await proxy.up();
      await expect.poll(() => b.client.status, { timeout: 10_000, interval: 20 }).toBe('ready');
      const afterA = ((await first)!.allowed ? 1 : 0) + (await admitted(a.limiter, subject, 20));
      const afterB = await admitted(b.limiter, subject, 20);
      expect(afterA + afterB).toBe(4);
    } finally {
      await proxy.close();
    }
  });

  it('a restart with nothing charged changes nothing: the whole limit is there', async () => {
    const a = await node(1);
    await restartEmpty([a.client]);
    expect(await admitted(a.limiter, limited(20), 25)).toBe(20);
  });
});
