// Usage analytics are written in the background (on the embedded store, by a worker thread with
// its own connection): every verdict is counted exactly once, and key changes committing at the
// same moment as a usage batch never fail for it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { pino } from 'pino';
import { UsageRecorder } from '../../src/usage/recorder.js';
import { sqliteWorkerSink } from '../../src/store/dialects/sqlite-usage.js';
import type { UsageBatch, UsageSink } from '../../src/store/usage-sink.js';
import { migrate, openStore } from '../../src/store/db.js';
import { sqlitePath } from '../../src/store/paths.js';
import { DIALECTS, createKey, startServer, verify, world, type TestServer, type World } from '../support/harness.js';

describe.each(DIALECTS)('usage writer (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  beforeAll(async () => {
    s = await startServer({ dialect, env: { KEYWARD_USAGE_FLUSH_MS: '10' } });
  });
  afterAll(async () => s.close());
  beforeEach(async () => {
    w = await world(s);
  });

  it('counts every verdict once while key changes commit alongside the usage batches', async () => {
    const keys = await Promise.all(Array.from({ length: 4 }, (_, i) => createKey(s, w, { ownerId: `o${i}`, ownerRatelimit: null, permissions: ['a'] })));
    let done = false;
    let verdicts = 0;
    // Verdicts keep coming, so a usage batch is committed every few milliseconds…
    const verifying = (async () => {
      for (let i = 0; !done; i++) {
        const k = keys[i % keys.length]!;
        await verify(s, { key: k.key, permissions: [i % 3 === 0 ? 'b' : 'a'] });
        verdicts++;
      }
    })();
    // …while key changes (transactions that read, then write) commit on the main connection.
    const statuses: number[] = [];
    await Promise.all(Array.from({ length: 4 }, async (_, lane) => {
      for (let i = 0; i < 15; i++) {
        const created = await s.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, body: { name: `lane ${lane} #${i}` } });
        statuses.push(created.status);
        if (created.status === 201) {
          // A vault write reads the existing secret, then writes, in one transaction.
          statuses.push((await s.request('PUT', `/v1/apps/${w.appId}/vault/S_${lane}_${i % 3}`, { token: w.token, body: { value: `v${i}` } })).status);
        }
      }
    }));
    done = true;
    await verifying;
    await s.deps.usage.flush();
    expect(statuses.filter((c) => c !== 201 && c !== 200)).toEqual([]);
    expect(statuses).toHaveLength(120);
    const ids = keys.map((k) => k.id);
    const rows = await s.deps.store.db.selectFrom('usage').select(['code', sql<number>`sum(count)`.as('n')])
      .where('key_id', 'in', ids).groupBy('code').execute();
    const total = rows.reduce((sum, r) => sum + Number(r.n), 0);
    expect(total).toBe(verdicts);
    expect(rows.map((r) => r.code).sort()).toEqual(['INSUFFICIENT_PERMISSIONS', 'VALID']);
  }, 60_000);

  it('a transaction that reads, then writes, survives a usage batch sent while it is open', async () => {
    const k = await createKey(s, w);
    await verify(s, { key: k.key });
    let flushed: Promise<void> | undefined;
    await s.deps.store.db.transaction().execute(async (trx) => {
      await trx.selectFrom('apps').select('id').where('id', '=', w.appId).execute();
      flushed = s.deps.usage.flush();
      // Time for the usage writer to commit, if the transaction let it.
      await new Promise((r) => setTimeout(r, 200));
      await trx.updateTable('apps').set({ name: 'Renamed in a transaction' }).where('id', '=', w.appId).execute();
    });
    await flushed;
    const app = await s.deps.store.db.selectFrom('apps').select('name').where('id', '=', w.appId).executeTakeFirstOrThrow();
    expect(app.name).toBe('Renamed in a transaction');
    const counted = await s.deps.store.db.selectFrom('usage').select('count').where('key_id', '=', k.id).execute();
    expect(counted.reduce((n, r) => n + Number(r.count), 0)).toBe(1);
  });

  it('a later last use is written within a minute even if the key is not used again', async () => {
    const k = await createKey(s, w);
    const stored = async () => Number((await s.deps.store.db.selectFrom('keys').select('last_used_at').where('id', '=', k.id).executeTakeFirstOrThrow()).last_used_at);
    const first = s.clock.now();
    await verify(s, { key: k.key });
    await s.deps.usage.flush();
    expect(await stored()).toBe(first);
    s.clock.advance(10_000);
    await verify(s, { key: k.key });
    await s.deps.usage.flush();
    // Held back (written less than a minute ago), but this node already answers with it.
    expect(await stored()).toBe(first);
    expect((await s.request('GET', `/v1/keys/${k.id}`, { token: w.token })).body.lastUsedAt).toBe(new Date(first + 10_000).toISOString());
    s.clock.advance(60_000);
    await s.deps.usage.flush();
    expect(await stored()).toBe(first + 10_000);
  });

  it('last use only moves forward, and a stop writes what is pending', async () => {
    const k = await createKey(s, w);
    const t = s.clock.now();
    await verify(s, { key: k.key });
    await s.deps.usage.flush();
    s.clock.advance(-30_000);
    await verify(s, { key: k.key });
    await s.deps.usage.flush(true);
    const row = await s.deps.store.db.selectFrom('keys').select('last_used_at').where('id', '=', k.id).executeTakeFirstOrThrow();
    expect(Number(row.last_used_at)).toBe(t);
  });
});

describe('the usage recorder', () => {
  it('writes every count exactly once across a minute\'s turn, a clock stepped back and failed writes, each row once a batch', async () => {
    const written = new Map<string, number>();
    let failures = 0;
    const sink: UsageSink = {
      write: async (b) => {
        const rows = b.keys.map((k, i) => `${b.buckets[i]} ${b.codes[i]} ${k}`);
        // PostgreSQL refuses a batch that upserts the same row twice.
        expect(new Set(rows).size).toBe(rows.length);
        // A failed write may have written some rows first (the embedded store writes a batch a
        // few rows at a time) and says how many: those must not come again.
        const committed = failures > 0 ? Math.floor(rows.length / 2) : rows.length;
        rows.slice(0, committed).forEach((row, i) => written.set(row, (written.get(row) ?? 0) + b.counts[i]!));
        if (failures > 0) {
          failures--;
          throw Object.assign(new Error('store unavailable'), { committed });
        }
      },
      close: async () => {},
    };
    let now = 1_700_000_040_000 - (1_700_000_040_000 % 60_000) + 40_000;
    const recorder = new UsageRecorder(sink, pino({ level: 'silent' }), 1000, () => now);
    const expected = new Map<string, number>();
    const use = (keyId: string, code: 'VALID' | 'RATE_LIMITED', at: number) => {
      recorder.record(keyId, code, at, code === 'VALID');
      const row = `${at - (at % 60_000)} ${code} ${keyId}`;
      expected.set(row, (expected.get(row) ?? 0) + 1);
    };
    // 40 one-second flushes: the minute turns at the 20th; some writes fail and are retried.
    for (let step = 0; step < 40; step++) {
      for (const key of ['key_a', 'key_b', 'key_c']) use(key, step % 3 ? 'VALID' : 'RATE_LIMITED', now);
      if (step === 25) use('key_a', 'VALID', now - 90_000);
      if (step % 7 === 3) failures = 1;
      if (step % 5 !== 4) await recorder.flush();
      now += 1000;
    }
    failures = 2;
    await recorder.flush();
    await recorder.flush();
    await recorder.stop();
    expect(written).toEqual(expected);
    expect(new Set([...written.keys()].map((row) => row.split(' ')[0])).size).toBe(3);
  });
});

describe('the embedded store\'s usage writer', () => {
  it('writes a batch a few rows at a time; a failure says how many were written, and only those are', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-chunks-'));
    const store = await openStore({ dataDir });
    await migrate(store.db);
    const sink = sqliteWorkerSink(sqlitePath(dataDir), 'NORMAL', 0, 64, 1);
    const stored = async () => (await sql<{ key_id: string; count: number }>`SELECT key_id, count FROM usage ORDER BY key_id`.execute(store.db)).rows;
    try {
      const keys = Array.from({ length: 200 }, (_, i) => `key_${String(i).padStart(4, '0')}`);
      const batch = (codes: (string | null)[]): UsageBatch => ({ keys, buckets: keys.map(() => 60_000), codes: codes as string[], counts: keys.map(() => 2), lastUsedKeys: [], lastUsedAt: [] });
      // Row 150 breaks a NOT NULL constraint: its transaction (rows 128 to 191) fails, earlier ones stand.
      const err = await sink.write(batch(keys.map((_, i) => (i === 150 ? null : 'VALID')))).then(() => null, (e: unknown) => e);
      expect(err).toMatchObject({ committed: 128 });
      expect((await stored()).map((r) => r.key_id)).toEqual(keys.slice(0, 128));
      await sink.write(batch(keys.map(() => 'VALID')));
      const rows = await stored();
      expect(rows).toHaveLength(200);
      expect(rows.map((r) => Number(r.count))).toEqual(keys.map((_, i) => (i < 128 ? 4 : 2)));
    } finally {
      await sink.close();
      await store.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('due last uses', () => {
  it('are spread over flushes instead of written all at once, and a stop writes the rest', async () => {
    // The sink records what each flush hands it; the store writes are covered above on both stores.
    const batches: UsageBatch[] = [];
    const sink: UsageSink = { write: async (b) => void batches.push(b), close: async () => {} };
    let now = 1_700_000_000_000;
    const recorder = new UsageRecorder(sink, pino({ level: 'silent' }), 1000, () => now);
    const keys = Array.from({ length: 1000 }, (_, i) => `key_${String(i).padStart(20, '0')}`);
    const flushes = async (n: number) => {
      const sizes: number[] = [];
      for (let i = 0; i < n; i++) {
        batches.length = 0;
        await recorder.flush();
        sizes.push(batches[0]?.lastUsedKeys.length ?? 0);
        now += 1000;
      }
      return sizes;
    };
    for (const k of keys) recorder.record(k, 'VALID', now, true);
    // 1,000 keys used at once: their last uses go out 100 a flush (each a scattered row to write).
    expect(await flushes(11)).toEqual([100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 0]);
    // A minute later they are all due again together, and go out the same way, oldest first.
    now += 61_000;
    for (const k of keys) recorder.record(k, 'VALID', now, true);
    expect(await flushes(3)).toEqual([100, 100, 100]);
    expect(new Set(batches[0]!.lastUsedKeys)).toEqual(new Set(keys.slice(200, 300)));
    batches.length = 0;
    await recorder.stop();
    expect(batches[0]!.lastUsedKeys).toHaveLength(700);
  });
});

// The writer thread shares the event loop's core when the process has one; below the event loop's
// priority it waits for the loop's idle moments instead of cutting in at every batch.
describe.runIf(process.platform === 'linux')('usage writer thread priority (sqlite)', () => {
  const niceByThread = (): Map<string, number> => new Map(fs.readdirSync('/proc/self/task').map((tid) => {
    const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    return [tid, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16])];
  }));

  it.each([19, 0])('runs at nice %i and writes its batches', async (nice) => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-nice-'));
    const store = await openStore({ dataDir });
    await migrate(store.db);
    const before = niceByThread();
    const sink = sqliteWorkerSink(sqlitePath(dataDir), 'NORMAL', nice);
    try {
      // A batch answered means the worker has started (and set its priority first).
      await sink.write({ keys: ['key_nice'], buckets: [60_000], codes: ['VALID'], counts: [3], lastUsedKeys: [], lastUsedAt: [] });
      const fresh = [...niceByThread()].filter(([tid]) => !before.has(tid)).map(([, n]) => n);
      expect(fresh.filter((n) => n === 19)).toHaveLength(nice === 19 ? 1 : 0);
      // The process (its main thread) keeps the priority it had.
      expect(os.getPriority()).toBe(before.get(String(process.pid)));
      const rows = await sql<{ count: number }>`SELECT count FROM usage WHERE key_id = 'key_nice'`.execute(store.db);
      expect(rows.rows.map((r) => Number(r.count))).toEqual([3]);
    } finally {
      await sink.close();
      await store.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
