// Verify while the store is blackholed (connections open, nothing answered): cached keys past their
// TTL answer VALID at once, while the verify path's queries to the store stay at one per probe
// interval of this node; uncached keys get a 503 without waiting once the node knows; a probe that
// succeeds brings the store back. The node's clock is the test's: probe intervals are counted, not
// waited for. Queries are counted where the verify loaders call the store.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKey, createPgDatabase, DIALECTS, startServer, verify, world, type TestServer, type World } from '../support/harness.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const enabled = DIALECTS.includes('postgres');
if (process.env.CI && !enabled) throw new Error('CI must run the degraded store suite: set TEST_DIALECTS=sqlite,postgres');

const TTL_MS = 30_000;
const PROBE_MS = 1000;

describe.runIf(enabled)('verify with the store blackholed (PostgreSQL)', () => {
  let pg: Awaited<ReturnType<typeof createPgDatabase>>;
  let proxy: TcpProxy;
  let s: TestServer;
  let w: World;
  /** Key loads the verify path sent to the store (by hash, and integration keys by id). */
  let queries: number;

  beforeEach(async () => {
    pg = await createPgDatabase();
    const u = new URL(pg.url);
    proxy = await startTcpProxy(u.hostname, Number(u.port || 5432));
    u.port = String(proxy.port);
    s = await startServer({ dialect: 'postgres', databaseUrl: u.toString(), env: { KEYWARD_STORE_TIMEOUT_MS: '1000', KEYWARD_CACHE_TTL_MS: String(TTL_MS), KEYWARD_PROBE_MS: String(PROBE_MS) } });
    w = await world(s);
    queries = 0;
    const store = s.deps.store as { keyByHash: (hash: string) => Promise<unknown> };
    const byHash = store.keyByHash.bind(store);
    store.keyByHash = (hash) => {
      queries++;
      return byHash(hash);
    };
  });
  afterEach(async () => {
    await s?.close();
    await proxy?.close();
    await pg?.drop();
  });

  const code = async (key: string) => (await verify(s, { key })).code as string;
  const miss = (key: string) => s.request('POST', '/v1/keys/verify', { body: { key, appId: w.appId } });
  /** Loads on their way to the store (a hung one stays until the store timeout). */
  const loading = () => s.deps.cache.stats().loading;

  it('cached keys answer VALID at once; queries stay at one per probe interval; uncached keys get 503; a probe brings the store back', async () => {
    const [a, b] = [await createKey(s, w), await createKey(s, w)];
    const unseen = await createKey(s, w);
    for (const k of [a, b]) expect(await code(k.key)).toBe('VALID');
    const loaded = queries;

    proxy.blackhole();
    s.clock.advance(TTL_MS + 1);
    // The answer comes while the one refresh it started is still hung on the store; so do the next.
    expect(await code(a.key)).toBe('VALID');
    expect(loading()).toBe(1);
    for (let i = 0; i < 19; i++) expect(await code(a.key)).toBe('VALID');
    expect(queries - loaded).toBe(1);

    // The refresh times out: this node now knows the store is down.
    await expect.poll(() => s.deps.storeGate.circuit.open, { timeout: 10_000 }).toBe(true);
    for (let i = 0; i < 20; i++) {
      expect(await code(a.key)).toBe('VALID');
      expect(await code(b.key)).toBe('VALID');
    }
    const refused = await miss(unseen.key);
    expect(refused.status).toBe(503);
    expect(refused.body.code).toBe('SERVICE_UNAVAILABLE');
    expect(refused.headers.get('retry-after')).toBe('1');
    expect(queries - loaded).toBe(1);

    // One probe per interval: the first request after it is the one query; cached keys go on answering.
    s.clock.advance(PROBE_MS);
    const probing = miss(unseen.key);
    for (let i = 0; i < 10; i++) expect(await code(b.key)).toBe('VALID');
    expect((await miss(unseen.key)).status).toBe(503);
    expect((await probing).status).toBe(503);
    expect(queries - loaded).toBe(2);
    // A failed probe doubles the wait: one interval later nothing is asked yet.
    s.clock.advance(PROBE_MS);
    expect((await miss(unseen.key)).status).toBe(503);
    expect(await code(a.key)).toBe('VALID');
    expect(queries - loaded).toBe(2);

    // The store comes back (the pool's connections through the dead link dropped, as the
    // management API finds); the next probe finds it, and the store is asked again.
    await proxy.down();
    await proxy.up();
    await expect.poll(() => s.deps.store.ping().then(() => true, () => false), { timeout: 10_000 }).toBe(true);
    s.clock.advance(PROBE_MS);
    expect(await code(unseen.key)).toBe('VALID');
    expect(s.deps.storeGate.circuit.open).toBe(false);
    expect(queries - loaded).toBe(3);
    const probes = s.deps.storeGate.circuit.probes;
    expect(probes).toBe(2);
    // Stale keys refresh in the background again, once each, once their own backoff has passed.
    s.clock.advance(8 * PROBE_MS);
    expect(await code(a.key)).toBe('VALID');
    await expect.poll(loading).toBe(0);
    expect(queries - loaded).toBe(4);
    const metrics = (await s.request('GET', '/metrics')).text;
    expect(metrics).toMatch(/keyward_circuit_probes_total\{service="store"\} 2/);
    expect(metrics).toMatch(/keyward_circuit_open\{service="store"\} 0/);
    expect(Number(/keyward_key_cache_stale_answers_total (\d+)/.exec(metrics)?.[1])).toBeGreaterThanOrEqual(71);
  }, 60_000);
});
