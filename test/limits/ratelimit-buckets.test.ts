// Named-limit buckets: reserved all-or-nothing with a cost each, handed back when the request is
// refused after all. The in-process twin, and the Redis limiter with leases against a real Redis
// (several limiters standing for several nodes, the clock passed in).
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MemoryBucketLimiter, type Bucket, type Reservation } from '../../src/ratelimit/buckets.js';
import { RedisBucketLimiter } from '../../src/ratelimit/redis-buckets.js';

const REDIS_URL = process.env.TEST_REDIS_URL;
const MINUTE = 60_000;
const T0 = Math.floor(Date.now() / 3_600_000) * 3_600_000 + 1000;

const bucket = (id: string, limit: number, cost = 1): Bucket => ({ id, limit, durationMs: MINUTE, cost });

describe('named-limit buckets in one process', () => {
  it('all-or-nothing: a refusing bucket charges none; a hand-back restores what was reserved', () => {
    const m = new MemoryBucketLimiter();
    const a = bucket('a', 10);
    const b = bucket('b', 100, 60);
    expect(m.reserve([a, b], T0, true).allowed).toBe(true);
    const refused = m.reserve([a, { ...b, cost: 50 }], T0, true);
    expect(refused.allowed).toBe(false);
    expect(refused.decisions.map((d) => d.allowed)).toEqual([true, false]);
    expect(refused.held).toEqual([]);
    const kept = m.reserve([a, { ...b, cost: 40 }], T0, true);
    expect(kept.decisions.map((d) => d.remaining)).toEqual([8, 0]);
    m.handBack(kept, T0);
    expect(m.reserve([a, { ...b, cost: 0 }], T0, false).decisions.map((d) => d.remaining)).toEqual([9, 40]);
    void m.close();
  });
});

describe.runIf(REDIS_URL)('named-limit buckets spent from leases (Redis)', () => {
  const prefix = `kwbuckets_${randomBytes(4).toString('hex')}:`;
  let admin: Redis;
  const open: { limiter: RedisBucketLimiter; redis: Redis }[] = [];

  beforeAll(() => {
    admin = new Redis(REDIS_URL!);
  });
  afterEach(async () => {
    for (const n of open.splice(0)) {
      await n.limiter.close();
      n.redis.disconnect();
    }
  });
  afterAll(async () => {
    const keys = await admin.keys(`${prefix}*`);
    if (keys.length > 0) await admin.del(...keys);
    admin.disconnect();
  });

  async function node(live = 1): Promise<{ limiter: RedisBucketLimiter; redis: Redis }> {
    const redis = new Redis(REDIS_URL!, { enableAutoPipelining: true });
    await new Promise<void>((resolve) => redis.once('ready', () => resolve()));
    const limiter = new RedisBucketLimiter(redis, {
      prefix,
      logger: pino({ level: 'silent' }),
      onFallback: () => {
        throw new Error('no fallback expected');
      },
      nodes: { live: () => live, fresh: async () => live },
      now: () => T0,
    });
    const n = { limiter, redis };
    open.push(n);
    return n;
  }

  const counted = async (id: string) => Number((await admin.get(`${prefix}rl:${id}:${T0 - (T0 % MINUTE)}`)) ?? 0);
  const settle = async (n: { limiter: RedisBucketLimiter }) => {
    await n.limiter.close();
  };

  it('a refused reservation counts nothing in Redis; handed-back units go back; exactly the limit with costs', async () => {
    const n = await node();
    const tag = randomBytes(3).toString('hex');
    const req = bucket(`t:${tag}:requests`, 10);
    const tok = bucket(`t:${tag}:tokens`, 100, 30);
    const results: Reservation[] = [];
    for (let i = 0; i < 6; i++) results.push(await n.limiter.reserve([req, tok], T0, true));
    expect(results.map((r) => r.allowed)).toEqual([true, true, true, false, false, false]);
    // The refused ones took no request unit either: 3 requests and 90 tokens in all.
    const kept = await n.limiter.reserve([req, { ...tok, cost: 10 }], T0, true);
    expect(kept.allowed).toBe(true);
    n.limiter.handBack(kept, T0);
    await settle(n);
    expect(await counted(req.id)).toBe(3);
    expect(await counted(tok.id)).toBe(90);
  });

  it('three nodes in random turns never admit more than the limit, and all of it in the end', async () => {
    const nodes = [await node(3), await node(3), await node(3)];
    const b = bucket(`three:${randomBytes(3).toString('hex')}`, 120);
    let admitted = 0;
    for (let turn = 0; turn < 60; turn++) {
      const answers = await Promise.all(nodes.flatMap((n) => Array.from({ length: 1 + ((turn * 7 + nodes.indexOf(n)) % 4) }, () => n.limiter.reserve([b], T0, true))));
      admitted += answers.filter((a) => a.allowed).length;
    }
    expect(admitted).toBe(120);
    for (const n of nodes) await settle(n);
    expect(await counted(b.id)).toBe(120);
  });
});
