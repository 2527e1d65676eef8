// Rate limits across a Redis outage: each live node takes its share of every limit (known from the
// store's heartbeat), so three nodes admit at most the limit, not three times it; what they admitted
// goes back to Redis when it returns, so nobody gets a fresh window for free. `deny` mode refuses.
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKey, createPgDatabase, DIALECTS, startServer, verify, world, type TestServer, type World } from '../support/harness.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const REDIS_URL = process.env.TEST_REDIS_URL;
const enabled = Boolean(REDIS_URL) && DIALECTS.includes('postgres');
if (process.env.CI && !enabled) throw new Error('CI must run the rate-limit chaos suite: set TEST_REDIS_URL and TEST_DIALECTS=sqlite,postgres');

describe.runIf(enabled)('rate limits while Redis is away (3 nodes on PostgreSQL)', () => {
  let pg: Awaited<ReturnType<typeof createPgDatabase>>;
  let proxies: TcpProxy[];
  let nodes: TestServer[];
  let w: World;

  const start = async (env: Record<string, string> = {}) => {
    pg = await createPgDatabase();
    const redis = new URL(REDIS_URL!);
    proxies = await Promise.all([0, 1, 2].map(() => startTcpProxy(redis.hostname, Number(redis.port || 6379))));
    const shared = { KEYWARD_MASTER_KEY: Buffer.alloc(32, 4).toString('base64'), KEYWARD_REDIS_PREFIX: `kwtest_${randomBytes(4).toString('hex')}:`, ...env };
    nodes = [];
    for (const p of proxies) nodes.push(await startServer({ dialect: 'postgres', databaseUrl: pg.url, env: { ...shared, REDIS_URL: `redis://127.0.0.1:${p.port}` } }));
    // Every node's heartbeat, read now rather than after the next beat.
    for (const n of nodes) await n.deps.nodes.beat();
    w = await world(nodes[0]!);
    for (const n of nodes) n.appId = w.appId;
  };
  const cutRedis = async () => {
    for (const p of proxies) await p.down();
  };
  const verifyAll = async (key: string, count: number) => {
    const codes = await Promise.all(Array.from({ length: count }, (_, i) => verify(nodes[i % nodes.length]!, { key }).then((r) => r.code as string)));
    return codes.filter((c) => c === 'VALID').length;
  };

  afterEach(async () => {
    for (const n of nodes) await n.close();
    for (const p of proxies) await p.close();
    await pg.drop();
  });

  describe('share (the default)', () => {
    beforeEach(() => start());

    it('three nodes admit at most the limit during the outage, and no fresh window when Redis returns', async () => {
      for (const n of nodes) expect(n.deps.nodes.live()).toBe(3);
      const k = await createKey(nodes[0]!, w, { ratelimit: { limit: 30, durationMs: 3_600_000 }, ownerRatelimit: null });
      await cutRedis();
      const during = await verifyAll(k.key, 90);
      expect(during).toBeLessThanOrEqual(30);
      expect(during).toBeGreaterThanOrEqual(27);
      for (const p of proxies) await p.up();
      // Wait until every node decides through Redis again (its counts handed back first).
      const fallbacks = () => Promise.all(nodes.map(async (n) => Number(/keyward_ratelimit_fallback_total (\d+)/.exec(await (await n.request('GET', '/metrics')).text)?.[1] ?? 0)));
      await expect.poll(async () => {
        const before = await fallbacks();
        await verifyAll(k.key, 3);
        const after = await fallbacks();
        return after.every((v, i) => v === before[i]);
      }, { timeout: 15_000, interval: 200 }).toBe(true);
      // The window is spent: Redis came back empty, but the nodes handed their counts back.
      expect(await verifyAll(k.key, 30)).toBe(0);
    }, 60_000);
  });

  describe('named limits (share)', () => {
    beforeEach(() => start());

    it('an identity\'s named limit: at most the limit during the outage across three nodes, and no fresh window when Redis returns', async () => {
      const made = await nodes[0]!.request('POST', `/v1/workspaces/${w.workspaceId}/identities`, { token: w.token, body: { externalId: 'chaos_cust', ratelimits: [{ name: 'calls', limit: 30, durationMs: 3_600_000, autoApply: true }] } });
      expect(made.status).toBe(201);
      const k = await createKey(nodes[0]!, w, { ownerId: 'chaos_cust', ratelimit: null, ownerRatelimit: null });
      // Every node has seen the window once (3 of 30 spent), as a key's limits are before an outage.
      expect(await verifyAll(k.key, 3)).toBe(3);
      await cutRedis();
      const during = await verifyAll(k.key, 90);
      expect(during).toBeLessThanOrEqual(27);
      expect(during).toBeGreaterThanOrEqual(21);
      for (const p of proxies) await p.up();
      const fallbacks = () => Promise.all(nodes.map(async (n) => Number(/keyward_ratelimit_fallback_total (\d+)/.exec(await (await n.request('GET', '/metrics')).text)?.[1] ?? 0)));
      await expect.poll(async () => {
        // A call that failed mid-way opened Redis's circuit: its probes are due as the nodes' clocks move.
        for (const n of nodes) n.clock.advance(1000);
        const before = await fallbacks();
        await verifyAll(k.key, 3);
        const after = await fallbacks();
        return after.every((v, i) => v === before[i]);
      }, { timeout: 15_000, interval: 200 }).toBe(true);
      expect(await verifyAll(k.key, 30)).toBe(0);
    }, 60_000);
  });

  describe('deny', () => {
    beforeEach(() => start({ KEYWARD_RATELIMIT_FALLBACK: 'deny' }));

    it('refuses limited keys while Redis is away, and keys without limits still verify', async () => {
      const limited = await createKey(nodes[0]!, w, { ratelimit: { limit: 1000, durationMs: 60_000 } });
      const free = await createKey(nodes[0]!, w, { ratelimit: null, ownerRatelimit: null });
      await cutRedis();
      expect((await verify(nodes[1]!, { key: limited.key })).code).toBe('RATE_LIMITED');
      expect((await verify(nodes[1]!, { key: free.key })).code).toBe('VALID');
    });
  });
});
