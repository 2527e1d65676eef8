// Usage caps spent from per-node slices, on each store: verify decides from units in hand without a
// promise, never admits more than the cap (cost > 1, concurrency, two nodes), gives unspent units
// back when idle, on a clean stop and when the key changes, keeps refill periods apart under load,
// and writes key.usage_low in the lease that crosses 10%, once per period.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DIALECTS, createKey, startServer, verify, world, type TestServer, type World } from '../support/harness.js';
import { verifyKey, type VerifyResult } from '../../src/verify/verify.js';
import { decideLease, type CapRow } from '../../src/credits/decide.js';
import { KEEP_MS } from '../../src/credits/slices.js';

const DAY = 86_400_000;

/** keys.remaining as stored (units reserved for nodes are not in it). */
async function stored(s: TestServer, keyId: string): Promise<number | null> {
  const row = await s.deps.store.db.selectFrom('keys').select('remaining').where('id', '=', keyId).executeTakeFirstOrThrow();
  return row.remaining === null ? null : Number(row.remaining);
}

/** Units reserved for nodes in the key's current period and not reported spent. */
async function reserved(s: TestServer, keyId: string): Promise<number> {
  const { credit_epoch } = await s.deps.store.db.selectFrom('keys').select('credit_epoch').where('id', '=', keyId).executeTakeFirstOrThrow();
  return (await s.deps.store.repos.credits.held(keyId)).filter((h) => h.epoch === Number(credit_epoch)).reduce((a, h) => a + h.held, 0);
}

/** verifyKey as the server calls it: synchronous when it can be. */
function direct(s: TestServer, w: World, body: { key: string; cost?: number; dryRun?: boolean }): VerifyResult | Promise<VerifyResult> {
  return verifyKey(s.deps.verify, body, { appId: w.appId });
}

describe.each(DIALECTS)('usage caps from slices (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  beforeEach(async () => {
    s = await startServer({ dialect });
    w = await world(s);
  });
  afterEach(async () => s.close());

  it('a steady stream on a capped key is decided from units in hand: no promise after the first lease, few leases', async () => {
    const k = await createKey(s, w, { remaining: 1_000_000, ownerRatelimit: null });
    let promises = 0;
    for (let i = 0; i < 2000; i++) {
      const r = direct(s, w, { key: k.key });
      if (r instanceof Promise) promises++;
      expect((await r).code).toBe('VALID');
      // Leases asked ahead land before the next call (a steady stream never waits on them).
      await s.deps.credits.drain();
    }
    // The first call loads the key and leases; a lease asked ahead tops the slice up from then on.
    expect(promises).toBe(1);
    const { leases, fromSlice } = s.deps.credits.stats();
    expect(fromSlice).toBe(1999);
    expect(leases).toBeLessThan(40);
    // Shown, stored and held add up exactly on one node.
    expect((await s.request('GET', `/v1/keys/${k.id}`, { token: w.token })).body.remaining).toBe(1_000_000 - 2000);
    expect((await stored(s, k.id))! + s.deps.credits.stats().held).toBe(1_000_000 - 2000);
  });

  it('cost > 1 under concurrency: the VALID costs add up to exactly the cap, every answer shows what is left', async () => {
    const k = await createKey(s, w, { remaining: 1000, ownerRatelimit: null });
    const costs = Array.from({ length: 600 }, (_, i) => (i % 3 === 0 ? 3 : 1));
    const answers = await Promise.all(costs.map((cost) => verify(s, { key: k.key, cost })));
    let spent = answers.reduce((sum, a, i) => sum + (a.code === 'VALID' ? costs[i]! : 0), 0);
    expect(answers.every((a) => a.code === 'VALID' || a.code === 'USAGE_EXCEEDED')).toBe(true);
    expect(spent).toBeLessThanOrEqual(1000);
    // Asked one unit at a time until refused: every unit is spent, none twice.
    for (;;) {
      const a = await verify(s, { key: k.key });
      if (a.code !== 'VALID') {
        expect(a).toMatchObject({ code: 'USAGE_EXCEEDED', remaining: 0 });
        break;
      }
      spent++;
    }
    expect(spent).toBe(1000);
    const shown = answers.filter((a) => a.code === 'VALID').map((a) => a.remaining as number);
    expect(new Set(shown).size).toBe(shown.length);
    expect(await stored(s, k.id)).toBe(0);
  });

  it('dry runs and cost 0 read the cap without spending it', async () => {
    const k = await createKey(s, w, { remaining: 10, ownerRatelimit: null });
    expect(await verify(s, { key: k.key, cost: 4 })).toMatchObject({ code: 'VALID', remaining: 6 });
    expect(await verify(s, { key: k.key, dryRun: true, cost: 6 })).toMatchObject({ code: 'VALID', remaining: 6 });
    expect(await verify(s, { key: k.key, dryRun: true, cost: 7 })).toMatchObject({ code: 'USAGE_EXCEEDED', remaining: 6 });
    expect(await verify(s, { key: k.key, cost: 0 })).toMatchObject({ code: 'VALID', remaining: 6 });
    expect(await verify(s, { key: k.key, cost: 6 })).toMatchObject({ code: 'VALID', remaining: 0 });
    expect(await verify(s, { key: k.key, cost: 0 })).toMatchObject({ code: 'VALID', remaining: 0 });
  });

  it('unspent units go back after sitting idle, and on a clean stop: stored remaining = cap - VALIDs', async () => {
    const k = await createKey(s, w, { remaining: 5000, ownerRatelimit: null });
    for (let i = 0; i < 300; i++) {
      expect((await direct(s, w, { key: k.key })).code).toBe('VALID');
      await s.deps.credits.drain();
    }
    expect(await stored(s, k.id)).toBeLessThan(5000 - 300);
    const before = s.deps.credits.stats().held;
    // Idle for longer than a lease's life: everything unspent goes back but a reserve, a quarter of
    // the slice at most, which the store counts as reserved for this node.
    s.deps.credits.sweep(s.clock.now() + s.deps.config.creditLeaseMs);
    await s.deps.credits.drain();
    const kept = s.deps.credits.stats().held;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(before);
    expect(await stored(s, k.id)).toBe(5000 - 300 - kept);
    expect(await reserved(s, k.id)).toBe(kept);
    // Idle for longer than the keep time: the reserve goes back too.
    s.deps.credits.sweep(s.clock.now() + KEEP_MS);
    await s.deps.credits.drain();
    expect(await stored(s, k.id)).toBe(5000 - 300);
    expect(await reserved(s, k.id)).toBe(0);
    expect(s.deps.credits.stats().held).toBe(0);

    for (let i = 0; i < 100; i++) {
      expect((await direct(s, w, { key: k.key })).code).toBe('VALID');
      await s.deps.credits.drain();
    }
    expect(await stored(s, k.id)).toBeLessThan(5000 - 400);
    await s.deps.credits.close();
    expect(await stored(s, k.id)).toBe(5000 - 400);
    // The node's slice rows are gone: nothing is reserved for it any more.
    expect(await s.deps.store.db.selectFrom('credit_slices').selectAll().execute()).toEqual([]);
  });

  it('after a quiet spell the first requests are answered from the reserve kept in hand, and the next lease is asked ahead of need', async () => {
    const keys = await Promise.all(Array.from({ length: 5 }, () => createKey(s, w, { remaining: 1_000_000, ownerRatelimit: null })));
    for (let i = 0; i < 400; i++) {
      for (const k of keys) expect((await direct(s, w, { key: k.key })).code).toBe('VALID');
      await s.deps.credits.drain();
    }
    // 30 s without a request: sweeps give back what the slices hold beyond their reserve.
    const quiet = s.clock.now();
    for (let t = 500; t <= 30_000; t += 500) {
      s.deps.credits.sweep(quiet + t);
      await s.deps.credits.drain();
    }
    s.clock.set(quiet + 30_000);
    const { waited, leases } = s.deps.credits.stats();
    // A burst on every key: each key's first requests are answered without waiting on the store.
    const burst = keys.flatMap((k) => Array.from({ length: 4 }, () => direct(s, w, { key: k.key })));
    expect(burst.filter((r) => r instanceof Promise)).toHaveLength(0);
    for (const r of burst) expect((await r).code).toBe('VALID');
    expect(s.deps.credits.stats().waited).toBe(waited);
    // Down to its low-water mark, each slice has asked for its next lease ahead.
    await s.deps.credits.drain();
    expect(s.deps.credits.stats().leases).toBeGreaterThan(leases);
    // Stored, held and spent still add up: 5 × 404 VALIDs.
    await s.deps.credits.close();
    for (const k of keys) expect(await stored(s, k.id)).toBe(1_000_000 - 404);
  });

  it('a key read while a lease of it is on its way shows exactly cap - VALIDs (one node)', async () => {
    const k = await createKey(s, w, { remaining: 100_000, ownerRatelimit: null });
    const shown: number[] = [];
    for (let i = 1; i <= 60; i++) {
      expect((await direct(s, w, { key: k.key })).code).toBe('VALID');
      // The read races the lease the last VALID asked ahead of need: it starts once the lease's
      // transaction did (a turn after it was let go), at a different point of it each time.
      const leased = s.deps.credits.drain();
      for (let turn = 0; turn < i % 4; turn++) await new Promise((resolve) => setImmediate(resolve));
      const read = await s.request('GET', `/v1/keys/${k.id}`, { token: w.token });
      await leased;
      shown.push(read.body.remaining);
    }
    expect(shown).toEqual(Array.from({ length: 60 }, (_, i) => 100_000 - i - 1));
  });

  it('a changed cap voids the units a node holds: the new value is exact', async () => {
    const k = await createKey(s, w, { remaining: 1000, ownerRatelimit: null });
    for (let i = 0; i < 40; i++) {
      expect((await direct(s, w, { key: k.key })).code).toBe('VALID');
      await s.deps.credits.drain();
    }
    expect(s.deps.credits.stats().held).toBeGreaterThan(0);
    const patched = await s.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: { remaining: 50 } });
    expect(patched.body.remaining).toBe(50);
    await s.deps.credits.drain();
    const answers = await Promise.all(Array.from({ length: 80 }, () => verify(s, { key: k.key })));
    expect(answers.filter((a) => a.code === 'VALID')).toHaveLength(50);
    expect(await stored(s, k.id)).toBe(0);
  });

  it('disabling a key gives its unspent units back; enabled again, it goes on from there', async () => {
    const k = await createKey(s, w, { remaining: 1000, ownerRatelimit: null });
    for (let i = 0; i < 40; i++) {
      expect((await direct(s, w, { key: k.key })).code).toBe('VALID');
      await s.deps.credits.drain();
    }
    expect(await stored(s, k.id)).toBeLessThan(960);
    await s.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: { status: 'disabled' } });
    await s.deps.credits.drain();
    expect(await stored(s, k.id)).toBe(960);
    expect((await verify(s, { key: k.key })).code).toBe('DISABLED');
    await s.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: { status: 'active' } });
    expect(await verify(s, { key: k.key })).toMatchObject({ code: 'VALID', remaining: 959 });
  });

  it('refill at a day boundary under load: each day admits exactly its refill, units of the old day are never spent in the new one', async () => {
    s.clock.set(Date.UTC(2026, 4, 10, 23, 59, 59));
    const k = await createKey(s, w, { refill: { amount: 100, interval: 'daily' }, ownerRatelimit: null });
    // A stream that has the node holding units ahead when the day ends.
    for (let i = 0; i < 40; i++) {
      expect((await direct(s, w, { key: k.key })).code).toBe('VALID');
      await s.deps.credits.drain();
    }
    expect(s.deps.credits.stats().held).toBeGreaterThan(0);
    // 200 calls just before midnight, then 200 just after, all in flight together. Those before it
    // spend the units in hand at once; the rest wait for a lease, which is made after midnight and
    // so refills: units of the first day are never spent in the second.
    const before = Array.from({ length: 200 }, () => direct(s, w, { key: k.key }));
    const inHand = before.filter((r) => !(r instanceof Promise)).length;
    expect(inHand).toBeGreaterThan(0);
    s.clock.set(Date.UTC(2026, 4, 11, 0, 0, 0, 5));
    const after = Array.from({ length: 200 }, () => direct(s, w, { key: k.key }));
    expect(after.every((r) => r instanceof Promise)).toBe(true);
    const codes = (await Promise.all([...before, ...after])).map((a) => a.code);
    expect(codes.slice(0, inHand).every((c) => c === 'VALID')).toBe(true);
    // The second day admits exactly its refill, whichever side of midnight a waiting call came from.
    expect(codes.filter((c) => c === 'VALID')).toHaveLength(inHand + 100);
    expect(codes.filter((c) => c !== 'VALID' && c !== 'USAGE_EXCEEDED')).toEqual([]);
    expect(inHand).toBeLessThanOrEqual(60);
    expect(await stored(s, k.id)).toBe(0);
    // The next day starts again from the refill.
    s.clock.set(Date.UTC(2026, 4, 12, 8, 0));
    expect(await verify(s, { key: k.key })).toMatchObject({ code: 'VALID', remaining: 99 });
  });

  it('key.usage_low is written by the lease that takes the cap to 10%, once per period, without the scan', async () => {
    const hook = await s.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body: { url: 'https://hooks.example.com/keyward', events: ['key.usage_low'] } });
    expect(hook.status, hook.text).toBe(201);
    const events = async () => (await s.deps.store.db.selectFrom('webhook_events').select('payload').where('type', '=', 'key.usage_low').execute()).map((e) => JSON.parse(e.payload));
    const k = await createKey(s, w, { remaining: 20, ownerRatelimit: null });
    for (let i = 1; i <= 17; i++) {
      expect((await verify(s, { key: k.key })).remaining).toBe(20 - i);
      await s.deps.credits.drain();
    }
    expect(await events()).toEqual([]);
    expect((await verify(s, { key: k.key })).remaining).toBe(2);
    const [low] = await events();
    expect(low).toMatchObject({ type: 'key.usage_low', data: { id: k.id, remaining: 2 } });
    for (let i = 0; i < 5; i++) await verify(s, { key: k.key });
    expect(await events()).toHaveLength(1);
    // A new cap is a new period: once more.
    await s.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: { remaining: 10 } });
    for (let i = 0; i < 10; i++) await verify(s, { key: k.key });
    expect((await events()).map((e) => e.data.remaining)).toEqual([2, 1]);
  });
});

describe.runIf(DIALECTS.includes('postgres'))('usage caps across two nodes on one store', () => {
  let a: TestServer;
  let b: TestServer;
  let w: World;
  beforeEach(async () => {
    const env = { KEYWARD_MASTER_KEY: Buffer.alloc(32, 7).toString('base64') };
    a = await startServer({ dialect: 'postgres', env });
    b = await startServer({ dialect: 'postgres', databaseUrl: a.deps.config.databaseUrl!, env });
    w = await world(a);
    b.appId = w.appId;
    // Both know there are two of them (the heartbeat would, within one beat).
    await a.deps.nodes.beat();
    await b.deps.nodes.beat();
  });
  afterEach(async () => {
    await b.close();
    await a.close();
  });

  it('a small cap is not stranded on one node: a lease takes at most a fair share of what is left', async () => {
    const k = await createKey(a, w, { remaining: 8, ownerRatelimit: null });
    expect((await verify(a, { key: k.key })).code).toBe('VALID');
    await a.deps.credits.drain();
    let onB = 0;
    while ((await verify(b, { key: k.key })).code === 'VALID') onB++;
    expect(onB).toBe(7);
    expect((await verify(a, { key: k.key })).code).toBe('USAGE_EXCEEDED');
  });

  it('two nodes under concurrency: never over the cap, exactly the cap once each is asked until refused', async () => {
    const k = await createKey(a, w, { remaining: 500, ownerRatelimit: null });
    const answers = await Promise.all(Array.from({ length: 400 }, (_, i) => verify(i % 2 ? a : b, { key: k.key })));
    let valid = answers.filter((x) => x.code === 'VALID').length;
    expect(valid).toBeLessThanOrEqual(500);
    for (const n of [a, b, a]) while ((await verify(n, { key: k.key })).code === 'VALID') valid++;
    expect(valid).toBe(500);
  });
});

describe('decideLease', () => {
  const row = (over: Partial<CapRow> = {}): CapRow => ({ remaining: 1000, refill_amount: null, refill_interval: null, last_refill_at: null, usage_low: null, remaining_base: 1000, credit_epoch: 3, ...over });
  const now = Date.UTC(2026, 4, 10, 12);

  it('grants the need plus spare units, at most a fair share of what is left', () => {
    expect(decideLease(row(), { need: 1, least: 1, spare: 64, nodes: 1 }, now)).toMatchObject({ grant: 65, remaining: 935, epoch: 3, changed: true, notice: false });
    expect(decideLease(row(), { need: 1, least: 1, spare: 1000, nodes: 2 }, now)).toMatchObject({ grant: 126 });
    expect(decideLease(row({ remaining: 3 }), { need: 5, least: 1, spare: 8, nodes: 1 }, now)?.grant).toBe(3);
    expect(decideLease(row({ remaining: 2, usage_low: 'sent' }), { need: 3, least: 3, spare: 8, nodes: 1 }, now)).toMatchObject({ grant: 0, remaining: 2, changed: false });
  });

  it('a due refill starts a new epoch before granting; spare units stay above the 10% line until the notice is written', () => {
    const refill = row({ remaining: 5, refill_amount: 100, refill_interval: 'daily', last_refill_at: now - DAY, remaining_base: null, usage_low: 'sent' });
    expect(decideLease(refill, { need: 1, least: 1, spare: 200, nodes: 1 }, now)).toMatchObject({ grant: 26, remaining: 74, epoch: 4, lastRefillAt: now, usageLow: null });
    expect(decideLease(row({ remaining: 150 }), { need: 0, least: 1, spare: 100, nodes: 1 }, now)).toMatchObject({ grant: 37, remaining: 113 });
    expect(decideLease(row({ remaining: 101 }), { need: 0, least: 1, spare: 100, nodes: 1 }, now)).toMatchObject({ grant: 0 });
    expect(decideLease(row({ remaining: 101 }), { need: 1, least: 1, spare: 100, nodes: 1 }, now)).toMatchObject({ grant: 1, remaining: 100, notice: true, usageLow: 'sent' });
    expect(decideLease(row({ remaining: 100, usage_low: 'sent' }), { need: 1, least: 1, spare: 100, nodes: 1 }, now)).toMatchObject({ grant: 26, notice: false });
  });
});
