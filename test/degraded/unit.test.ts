// Degraded mode, piece by piece and without I/O: the key cache answers past its TTL at once and
// refreshes each key once (backing off when the store fails), stays within its size while keeping
// the keys in use; the circuit breaker; the shared clock; and the outage window that shares what
// the last shared count left between the live nodes.
import { describe, expect, it } from 'vitest';
import { Circuit } from '../../src/lib/circuit.js';
import { ManualClock, SharedClock } from '../../src/lib/clock.js';
import { countOutage, outageLeft, outageRoom, startOutage } from '../../src/ratelimit/limiter.js';
import { KeyCache, type CacheEntry, type CachedKey, type IntegrationEntry } from '../../src/verify/cache.js';

const entry = (id: string): CacheEntry => ({ key: { id, appId: 'app_1', kind: 'bearer', status: 'active' } as CachedKey, valueExpiresAt: null });

/** A loader whose answers the test gives, one call at a time. */
function store() {
  const calls: { hash: string; resolve: (e: CacheEntry | null) => void; reject: (err: Error) => void }[] = [];
  const load = (hash: string) => new Promise<CacheEntry | null>((resolve, reject) => calls.push({ hash, resolve, reject }));
  return { calls, load };
}

const settled = () => new Promise((r) => setImmediate(r));

describe('key cache past its TTL', () => {
  it('answers at once while one refresh per key goes to the store, shared by every request', async () => {
    const clock = new ManualClock(0);
    const cache = new KeyCache({ ttlMs: 1000, staleMs: 10_000, retryMs: 1000, clock: () => clock.now() });
    const s = store();
    const first = cache.get('h1', 0, s.load);
    s.calls[0]!.resolve(entry('key_1'));
    expect((await first)?.key.id).toBe('key_1');

    clock.set(1500);
    for (let i = 0; i < 10; i++) expect(cache.lookup('h1', 1500, s.load)?.key.id).toBe('key_1');
    expect(s.calls).toHaveLength(2);
    expect(cache.stats()).toMatchObject({ staleAnswers: 10, loading: 1 });
    // A request that would wait shares the refresh too.
    const waiting = cache.get('h1', 1500, s.load);
    expect(s.calls).toHaveLength(2);
    s.calls[1]!.resolve(entry('key_1'));
    expect((await waiting)?.key.id).toBe('key_1');
    await settled();
    // Refreshed: fresh again from the time it was asked.
    expect(cache.lookup('h1', 2400, s.load)).toBeDefined();
    expect(s.calls).toHaveLength(2);
    cache.close();
  });

  it('a failed refresh backs off, doubling: the store is asked at most once per interval, and the key keeps answering', async () => {
    const clock = new ManualClock(0);
    const cache = new KeyCache({ ttlMs: 1000, staleMs: 60_000, retryMs: 1000, clock: () => clock.now() });
    const s = store();
    const first = cache.get('h1', 0, s.load);
    s.calls[0]!.resolve(entry('key_1'));
    await first;
    const at = async (t: number) => {
      clock.set(t);
      expect(cache.lookup('h1', t, s.load)?.key.id).toBe('key_1');
      await settled();
    };
    await at(1000);
    expect(s.calls).toHaveLength(2);
    s.calls[1]!.reject(new Error('store down'));
    await settled();
    for (const t of [1100, 1500, 1999]) await at(t);
    expect(s.calls).toHaveLength(2);
    await at(2000);
    expect(s.calls).toHaveLength(3);
    s.calls[2]!.reject(new Error('store down'));
    await settled();
    // Second failure in a row: two intervals.
    for (const t of [2500, 3000, 3999]) await at(t);
    expect(s.calls).toHaveLength(3);
    await at(4000);
    expect(s.calls).toHaveLength(4);
    s.calls[3]!.resolve(entry('key_1'));
    await settled();
    expect(cache.stats().loadFailures).toBe(2);
    // Past the TTL and the stale bound together nothing old answers: the store must be asked.
    clock.set(4000 + 1000 + 60_000);
    expect(cache.lookup('h1', clock.now(), s.load)).toBeUndefined();
    cache.close();
  });

  it('a change that lands while a refresh is on its way is not undone by it', async () => {
    const cache = new KeyCache({ ttlMs: 1000, staleMs: 10_000 });
    const s = store();
    const first = cache.get('h1', 0, s.load);
    s.calls[0]!.resolve(entry('key_1'));
    await first;
    cache.lookup('h1', 1500, s.load);
    expect(s.calls).toHaveLength(2);
    cache.invalidateKey('key_1');
    s.calls[1]!.resolve(entry('key_1'));
    await settled();
    expect(cache.lookup('h1', 1500, s.load)).toBeUndefined();
    cache.close();
  });

  it('integration keys answer past their TTL the same way; an unknown id is asked again', async () => {
    const clock = new ManualClock(1500);
    const cache = new KeyCache({ ttlMs: 1000, staleMs: 10_000, retryMs: 1000, clock: () => clock.now() });
    let calls = 0;
    const integration = (): IntegrationEntry => ({ key: entry('key_i').key, secrets: [] });
    let answer: () => Promise<IntegrationEntry | null> = async () => integration();
    const load = () => {
      calls++;
      return answer();
    };
    await cache.getIntegration('key_i', 0, load);
    answer = () => Promise.reject(new Error('store down'));
    for (let i = 0; i < 5; i++) expect((await cache.getIntegration('key_i', 1500, load))?.key.id).toBe('key_i');
    expect(calls).toBe(2);
    answer = async () => null;
    await cache.getIntegration('key_x', 0, load);
    answer = () => Promise.reject(new Error('store down'));
    await expect(cache.getIntegration('key_x', 1500, load)).rejects.toThrow('store down');
    cache.close();
  });
});

describe('key cache size', () => {
  it('holds at most maxKeys values, and a stream of keys seen once does not push out the keys in use', async () => {
    const cache = new KeyCache({ ttlMs: 3_600_000, maxKeys: 100 });
    let loads = 0;
    const load = async (hash: string) => {
      loads++;
      return entry(`key_${hash}`);
    };
    const hot = Array.from({ length: 50 }, (_, i) => `hot${i}`);
    for (const h of hot) await cache.get(h, 0, load);
    const hotLoads = () => {
      const before = loads;
      for (const h of hot) if (cache.lookup(h, 0, load) === undefined) loads++;
      return loads - before;
    };
    expect(hotLoads()).toBe(0);
    for (let i = 0; i < 1000; i++) {
      await cache.get(`cold${i}`, 0, load);
      // The hot keys keep being used while the cold ones stream past.
      if (i % 10 === 9) expect(hotLoads()).toBe(0);
      expect(cache.stats().values).toBeLessThanOrEqual(100);
    }
    expect(cache.stats()).toMatchObject({ values: 100, keys: 100, evictions: 950 });
    cache.close();
  });

  it('a key not used since the hand last passed goes first, whatever its age', async () => {
    const cache = new KeyCache({ ttlMs: 3_600_000, maxKeys: 3 });
    const load = async (hash: string) => entry(`key_${hash}`);
    for (const h of ['a', 'b', 'c']) await cache.get(h, 0, load);
    cache.lookup('a', 0, load);
    cache.lookup('c', 0, load);
    await cache.get('d', 0, load);
    expect(['a', 'b', 'c', 'd'].map((h) => cache.lookup(h, 0, async () => null) !== undefined)).toEqual([true, false, true, true]);
    cache.close();
  });
});

describe('circuit breaker', () => {
  it('opens after the failures in a row, sends one probe per interval (doubling), and closes on its success', () => {
    const changes: boolean[] = [];
    const c = new Circuit({ failuresToOpen: 2, probeMs: 100, maxProbeMs: 300, onChange: (open) => changes.push(open) });
    expect(c.enter(0)).toBe('pass');
    c.failure(0, false);
    c.success(false);
    c.failure(0, false);
    expect(c.open).toBe(false);
    c.failure(10, false);
    expect(c.open).toBe(true);
    expect([c.enter(10), c.enter(109)]).toEqual(['refuse', 'refuse']);
    expect(c.enter(110)).toBe('probe');
    // One probe at a time: others are refused while it is out.
    expect(c.enter(500)).toBe('refuse');
    c.failure(400, true);
    expect([c.enter(599), c.enter(600)]).toEqual(['refuse', 'probe']);
    c.failure(600, true);
    expect([c.enter(899), c.enter(900)]).toEqual(['refuse', 'probe']);
    // A late answer to a call sent before the circuit opened says nothing about now.
    c.success(false);
    expect(c.open).toBe(true);
    c.success(true);
    expect(c.open).toBe(false);
    expect(c.enter(901)).toBe('pass');
    expect(changes).toEqual([true, false]);
    expect({ opened: c.opened, probes: c.probes }).toEqual({ opened: 1, probes: 3 });
  });
});

describe('shared clock', () => {
  it("moves the base clock onto the service's by the sampled offset; noise within the dead band leaves it alone", async () => {
    const base = new ManualClock(1_000_000);
    let machine = 5000;
    let service = 5000;
    const clock = new SharedClock(base, async () => service, () => machine);
    expect(await clock.sample()).toBe(true);
    expect(clock.offset).toBe(0);
    service = machine + 40;
    await clock.sample();
    expect(clock.offset).toBe(0);
    // A node 10 s behind its store.
    service = machine + 10_000;
    await clock.sample();
    expect(clock.offset).toBe(10_000);
    expect(clock.now()).toBe(1_010_000);
    // The test's clock still drives time.
    base.advance(500);
    expect(clock.now()).toBe(1_010_500);
    // A sample that fails, or whose round trip says too little, keeps the offset.
    const failing = new SharedClock(base, () => Promise.reject(new Error('down')), () => machine);
    expect(await failing.sample()).toBe(false);
    expect(clock.observe(0, machine, machine + 5000)).toBe(false);
    expect(clock.offset).toBe(10_000);
    machine += 1;
    service = machine - 3;
    expect(clock.observe(service, machine, machine)).toBe(true);
    expect(clock.offset).toBe(0);
  });
});

describe('rate limits without Redis: the outage window', () => {
  const spec = { limit: 300, durationMs: 3_600_000 };
  const start = 7 * 3_600_000;

  it("three nodes that saw 200 of 300 used admit 99 together; one that never saw the count admits its share of all", () => {
    const seen = { windowStart: start, previous: 0, counted: 200 };
    const nodes = [0, 1, 2].map(() => startOutage(spec, seen, start + 1000));
    let admitted = 0;
    for (let i = 0; i < 600; i++) {
      const o = nodes[i % 3]!;
      if (outageRoom(o, start + 1000 + i, 3)) {
        countOutage(o, start + 1000 + i, 3);
        admitted++;
      }
    }
    expect(admitted).toBe(99);
    expect(nodes.map((o) => o.own)).toEqual([33, 33, 33]);
    expect(outageLeft(nodes[0]!, start + 2000, 3)).toBe(0);
    const blind = startOutage(spec, undefined, start + 1000);
    let alone = 0;
    while (outageRoom(blind, start + 1000, 3)) {
      countOutage(blind, start + 1000, 3);
      alone++;
    }
    expect(alone).toBe(100);
  });

  it('a window that begins during the outage starts from the estimate of the one before, as a sliding window does', () => {
    const o = startOutage(spec, { windowStart: start, previous: 0, counted: 300 }, start + 10);
    expect(outageRoom(o, start + 10, 3)).toBe(false);
    // A quarter into the next window, three quarters of the previous still count: 225 of 300.
    const t = start + spec.durationMs + spec.durationMs / 4;
    expect(outageLeft(o, t, 3)).toBe(25);
    for (let i = 0; i < 25; i++) countOutage(o, t, 3);
    expect(outageRoom(o, t, 3)).toBe(false);
    expect({ own: o.own, ownPrevious: o.ownPrevious, windowStart: o.state.windowStart }).toEqual({ own: 25, ownPrevious: 0, windowStart: start + spec.durationMs });
  });
});
