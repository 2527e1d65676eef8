// Shared limits spent from leases: a node takes tokens Redis has already counted and spends them
// without a round trip. Against a real Redis, with several limiters standing for several nodes and
// the clock passed in: never more than the limit, all of it when the requests keep coming, every
// remaining count handed out once, and what a node did not spend goes back.
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LimitSubject, LimitVerdict } from '../../src/ratelimit/limiter.js';
import { RedisRateLimiter } from '../../src/ratelimit/redis.js';

const REDIS_URL = process.env.TEST_REDIS_URL;
if (process.env.CI && !REDIS_URL) throw new Error('CI must run the lease suite: set TEST_REDIS_URL');

const MINUTE = 60_000;
/** A moment one second into a window of every duration used here. */
const T0 = Math.floor(Date.now() / 3_600_000) * 3_600_000 + 1000;

const key = (id: string, limit: number, durationMs = MINUTE): LimitSubject => ({ id, appId: 'app_1', ownerId: null, ratelimit: { limit, durationMs }, ownerRatelimit: null });

describe.runIf(REDIS_URL)('rate limits spent from leases (Redis)', () => {
  const prefix = `kwlease_${randomBytes(4).toString('hex')}:`;
  let admin: Redis;
  const open: { limiter: RedisRateLimiter; redis: Redis }[] = [];

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

  async function node(options: { lifeMs?: number; liveNodes?: number } = {}): Promise<RedisRateLimiter> {
    const redis = new Redis(REDIS_URL!, { enableAutoPipelining: true });
    await new Promise<void>((resolve) => redis.once('ready', () => resolve()));
    const live = options.liveNodes ?? 1;
    const limiter = new RedisRateLimiter(redis, {
      prefix,
      logger: pino({ level: 'silent' }),
      onFallback: () => {
        throw new Error('no fallback expected');
      },
      nodes: { live: () => live, fresh: async () => live },
      lifeMs: options.lifeMs ?? 2000,
      now: () => T0,
    });
    open.push({ limiter, redis });
    return limiter;
  }

  const counted = async (bucket: string, windowStart: number) => Number((await admin.get(`${prefix}rl:${bucket}:${windowStart}`)) ?? 0);

  /** `n` decisions made in one event-loop turn, as a node does for the requests one read brings. */
  async function turn(limiter: RedisRateLimiter, subject: LimitSubject, n: number, now = T0): Promise<{ verdicts: NonNullable<LimitVerdict>[]; inHand: number }> {
    const answers = Array.from({ length: n }, () => limiter.take(subject, now));
    const inHand = answers.filter((a) => !(a instanceof Promise)).length;
    const verdicts = (await Promise.all(answers)).map((v) => v!);
    return { verdicts, inHand };
  }

  it('one node: exactly the limit, each remaining count once, most decisions without a round trip', async () => {
    const a = await node();
    const subject = key(`one_${randomBytes(3).toString('hex')}`, 500);
    const allowed: number[] = [];
    let refused = 0;
    let inHand = 0;
    for (let i = 0; allowed.length + refused < 700; i++) {
      const r = await turn(a, subject, 1 + (i % 7));
      inHand += r.inHand;
      for (const v of r.verdicts) {
        if (v.allowed) allowed.push(v.remaining);
        else {
          refused++;
          expect(v.remaining).toBe(0);
        }
        expect(v.limit).toBe(500);
        expect(v.resetAt).toBe(T0 - 1000 + MINUTE);
      }
    }
    expect(allowed).toHaveLength(500);
    expect(refused).toBe(200);
    expect([...allowed].sort((x, y) => x - y)).toEqual(Array.from({ length: 500 }, (_, i) => i));
    // Remaining counts go down in the order the decisions were made.
    expect(allowed).toEqual([...allowed].sort((x, y) => y - x));
    expect(inHand).toBeGreaterThan(350);
    expect(await counted(`k:${subject.id}`, T0 - 1000)).toBe(500);
  });

  it('a lease running low asks for its next grant ahead: a steady stream waits on Redis only for its first request', async () => {
    const a = await node();
    const subject = key(`ahead_${randomBytes(3).toString('hex')}`, 100_000);
    let inHand = 0;
    for (let i = 0; i < 200; i++) {
      const r = await turn(a, subject, 1);
      expect(r.verdicts[0]!.allowed).toBe(true);
      inHand += r.inHand;
      // The next request comes after any grant asked meanwhile has landed (a stream slower than a round trip).
      await a.drain();
    }
    expect(inHand).toBe(199);
    expect(a.stats()).toMatchObject({ fromLease: 199, waited: 1 });
    expect(await counted(`k:${subject.id}`, T0 - 1000)).toBe(200 + a.leaseStats().tokens);
  });

  it('three nodes never admit more than the limit together, and admit all of it while requests keep coming', async () => {
    const nodes = [await node({ liveNodes: 3 }), await node({ liveNodes: 3 }), await node({ liveNodes: 3 })];
    const subject = key(`three_${randomBytes(3).toString('hex')}`, 300);
    let allowed = 0;
    let inHand = 0;
    let seed = 7;
    const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (let sent = 0; sent < 1200;) {
      // A turn on each node, in a random order, of random sizes: their grants interleave in Redis.
      const turns = nodes.map((n) => turn(n, subject, 1 + Math.floor(random() * 6)));
      for (const r of await Promise.all(turns)) {
        allowed += r.verdicts.filter((v) => v.allowed).length;
        inHand += r.inHand;
        sent += r.verdicts.length;
      }
      expect(allowed).toBeLessThanOrEqual(300);
    }
    expect(allowed).toBe(300);
    expect(inHand).toBeGreaterThan(0);
    for (const n of nodes) expect(n.leaseStats().tokens).toBe(0);
    expect(await counted(`k:${subject.id}`, T0 - 1000)).toBe(300);
  });

  it('tokens a node did not spend go back once its lease sits idle, and another node spends them', async () => {
    const a = await node({ lifeMs: 1000 });
    const b = await node({ lifeMs: 1000 });
    const subject = key(`old_${randomBytes(3).toString('hex')}`, 100);
    let admittedA = 0;
    for (let i = 0; i < 40; i++) admittedA += (await turn(a, subject, 1)).verdicts.filter((v) => v.allowed).length;
    expect(admittedA).toBe(40);
    // A asks its next grant ahead, while it still has tokens: let it land.
    await a.drain();
    const held = a.leaseStats().tokens;
    expect(held).toBeGreaterThan(0);
    // B gets what is left but A's unspent tokens.
    const first = await turn(b, subject, 100);
    expect(first.verdicts.filter((v) => v.allowed)).toHaveLength(60 - held);
    a.sweep(T0 + 1000);
    expect(a.leaseStats().tokens).toBe(0);
    await expect.poll(() => counted(`k:${subject.id}`, T0 - 1000)).toBe(100 - held);
    const second = await turn(b, subject, 100);
    expect(second.verdicts.filter((v) => v.allowed)).toHaveLength(held);
    expect(await counted(`k:${subject.id}`, T0 - 1000)).toBe(100);
  });

  it('tokens of an ended window go back to it when the next window begins', async () => {
    const a = await node();
    const subject = key(`roll_${randomBytes(3).toString('hex')}`, 1000, 10_000);
    const w0 = T0 - 1000;
    for (let i = 0; i < 30; i++) await turn(a, subject, 1, T0 + i);
    await a.drain();
    const held = a.leaseStats().tokens;
    expect(held).toBeGreaterThan(0);
    expect(await counted(`k:${subject.id}`, w0)).toBe(30 + held);
    const next = await turn(a, subject, 1, w0 + 10_000);
    expect(next.verdicts[0]!.allowed).toBe(true);
    expect(await counted(`k:${subject.id}`, w0)).toBe(30);
    expect(await counted(`k:${subject.id}`, w0 + 10_000)).toBeGreaterThanOrEqual(1);
  });

  it('key and owner limits stay all-or-nothing; tokens held for a refused request go back on close', async () => {
    const a = await node();
    const tag = randomBytes(3).toString('hex');
    const owned = (id: string): LimitSubject => ({ id, appId: 'app_1', ownerId: `owner_${tag}`, ratelimit: { limit: 1000, durationMs: MINUTE }, ownerRatelimit: { limit: 5, durationMs: MINUTE } });
    const x = owned(`x_${tag}`);
    const y = owned(`y_${tag}`);
    const admitted = { x: 0, y: 0 };
    for (let i = 0; i < 10; i++) {
      const [vx, vy] = await Promise.all([a.take(x, T0), a.take(y, T0)]);
      if (vx!.allowed) admitted.x++;
      if (vy!.allowed) admitted.y++;
      if (!vx!.allowed) expect(vx).toMatchObject({ limit: 5, remaining: 0 });
    }
    expect(admitted.x + admitted.y).toBe(5);
    await a.close();
    expect(await counted(`o:app_1:owner_${tag}`, T0 - 1000)).toBe(5);
    expect(await counted(`k:${x.id}`, T0 - 1000)).toBe(admitted.x);
    expect(await counted(`k:${y.id}`, T0 - 1000)).toBe(admitted.y);
  });

  it('a dry run spends nothing, asks for no tokens, and says what a request would get', async () => {
    const a = await node();
    const subject = key(`dry_${randomBytes(3).toString('hex')}`, 3);
    expect(await a.peek(subject, T0)).toMatchObject({ allowed: true, limit: 3, remaining: 3 });
    expect(await counted(`k:${subject.id}`, T0 - 1000)).toBe(0);
    for (let i = 0; i < 3; i++) expect((await a.take(subject, T0))!.allowed).toBe(true);
    expect(await a.peek(subject, T0)).toMatchObject({ allowed: false, remaining: 0 });
    expect(await counted(`k:${subject.id}`, T0 - 1000)).toBe(3);
    // A lease that has grown spare tokens: a dry run neither spends them nor asks for more.
    const busy = key(`drybusy_${randomBytes(3).toString('hex')}`, 100);
    for (let i = 0; i < 10; i++) expect((await a.take(busy, T0))!.allowed).toBe(true);
    await a.drain();
    const before = await counted(`k:${busy.id}`, T0 - 1000);
    const held = a.leaseStats().tokens;
    expect(before).toBe(10 + held);
    expect(await a.peek(busy, T0)).toMatchObject({ allowed: true, remaining: 90 });
    expect(await counted(`k:${busy.id}`, T0 - 1000)).toBe(before);
    expect(a.leaseStats().tokens).toBe(held);
  });

  it('with leases off every decision is a grant of its own, and exact', async () => {
    const a = await node({ lifeMs: 0 });
    const subject = key(`off_${randomBytes(3).toString('hex')}`, 50);
    let allowed = 0;
    let inHand = 0;
    for (let i = 0; i < 20; i++) {
      const r = await turn(a, subject, 4);
      allowed += r.verdicts.filter((v) => v.allowed).length;
      inHand += r.inHand;
    }
    expect(allowed).toBe(50);
    expect(inHand).toBe(0);
    expect(a.leaseStats().tokens).toBe(0);
    expect(await counted(`k:${subject.id}`, T0 - 1000)).toBe(50);
  });
});
