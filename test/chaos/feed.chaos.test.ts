// The change feed on PostgreSQL, where a sequence number is taken at insert but seen at commit:
// transactions here commit out of order, as late as they like, as big as they like, and the test
// reads the feed itself (feed.poll()) instead of waiting for its timer. Every committed change is
// applied exactly once, none that rolled back ever is, and nothing waits on a transaction held open.
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKey, createPgDatabase, DIALECTS, startServer, verify, world, type TestServer, type World } from '../support/harness.js';
import type { ChangeEvent } from '../../src/shared/bus.js';

describe.runIf(DIALECTS.includes('postgres'))('change feed, late commits (PostgreSQL)', () => {
  let db: Awaited<ReturnType<typeof createPgDatabase>>;
  let s: TestServer;
  let w: World;
  let clients: pg.Client[];
  let seen: string[];

  /** A connection of its own: one transaction each, interleaved as the test says. */
  async function session(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    clients.push(c);
    return c;
  }

  const change = (q: pg.Client, keyId: string) =>
    q.query("INSERT INTO changes (kind, target, workspace_id, created_at) VALUES ('key', $1, $2, $3)", [keyId, w.workspaceId, s.clock.now()]);

  beforeEach(async () => {
    db = await createPgDatabase();
    s = await startServer({ dialect: 'postgres', databaseUrl: db.url });
    w = await world(s);
    clients = [];
    seen = [];
    s.deps.services.bus.onKeyChange((c: ChangeEvent) => 'keyId' in c && seen.push(c.keyId));
  });
  afterEach(async () => {
    for (const c of clients) await c.end();
    await s.close();
    await db.drop();
  });

  it('a change committed after a newer one is applied at the next read, and each change once', async () => {
    const slow = await session();
    // The slow transaction takes its sequence number first and commits last.
    await slow.query('BEGIN');
    await change(slow, 'key_slow');
    await change(await session(), 'key_fast');
    await s.deps.feed.poll();
    expect(seen).toEqual(['key_fast']);
    await slow.query('COMMIT');
    await s.deps.feed.poll();
    await s.deps.feed.poll();
    expect(seen).toEqual(['key_fast', 'key_slow']);
  });

  it('a commit lands an hour late, behind 15,000 skipped sequence numbers, and is still applied', async () => {
    const slow = await session();
    const other = await session();
    // Numbers taken and never committed (rollbacks, failed inserts): a gap of 15,000 before the slow
    // change's own number, which a feed that remembers a bounded number of gaps would not reach.
    await other.query("SELECT nextval(pg_get_serial_sequence('changes', 'seq')) FROM generate_series(1, 15000)");
    await slow.query('BEGIN');
    await change(slow, 'key_slow');
    await change(other, 'key_fast');
    await s.deps.feed.poll();
    expect(seen).toEqual(['key_fast']);
    // However long it takes: nothing in the feed depends on the time between reads.
    for (let i = 0; i < 5; i++) {
      s.clock.advance(15 * 60_000);
      await s.deps.feed.poll();
    }
    await slow.query('COMMIT');
    await s.deps.feed.poll();
    expect(seen).toEqual(['key_fast', 'key_slow']);
  });

  it('a transaction held open delays nothing: every other commit is applied at the next read meanwhile', async () => {
    const held = await session();
    await held.query('BEGIN');
    await change(held, 'key_held');
    const other = await session();
    for (let i = 0; i < 5; i++) {
      await change(other, `key_other${i}`);
      await s.deps.feed.poll();
      expect(seen.at(-1)).toBe(`key_other${i}`);
    }
    await held.query('ROLLBACK');
    await s.deps.feed.poll();
    expect(seen).toEqual([0, 1, 2, 3, 4].map((i) => `key_other${i}`));
  });

  it('a change of 25,000 rows committed in one transaction is applied whole by one read', async () => {
    const big = await session();
    await big.query('BEGIN');
    await big.query("INSERT INTO changes (kind, target, workspace_id, created_at) SELECT 'key', 'key_big' || i, $1, $2 FROM generate_series(1, 25000) AS i", [w.workspaceId, s.clock.now()]);
    await change(await session(), 'key_small');
    await s.deps.feed.poll();
    expect(seen).toEqual(['key_small']);
    await big.query('COMMIT');
    await s.deps.feed.poll();
    expect(seen.length).toBe(25_001);
    expect(new Set(seen).size).toBe(25_001);
  }, 60_000);

  it('random interleavings of five sessions: every commit applied exactly once, no rollback ever', async () => {
    // A small deterministic generator, so a failure replays: begin, write, commit or roll back, read.
    let state = 0x2545f491;
    const random = (n: number) => {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      return (state >>> 0) % n;
    };
    const sessions = await Promise.all([0, 1, 2, 3, 4].map(() => session()));
    const open = new Map<number, string[]>();
    const committed: string[] = [];
    const rolledBack: string[] = [];
    let n = 0;
    for (let step = 0; step < 400; step++) {
      const i = random(sessions.length);
      const c = sessions[i]!;
      const pending = open.get(i);
      const roll = random(10);
      if (roll === 0) await s.deps.feed.poll();
      else if (!pending) {
        await c.query('BEGIN');
        open.set(i, []);
      } else if (roll < 6) {
        const id = `key_r${n++}`;
        await change(c, id);
        pending.push(id);
      } else if (roll < 9) {
        await c.query('COMMIT');
        committed.push(...pending);
        open.delete(i);
      } else {
        await c.query('ROLLBACK');
        rolledBack.push(...pending);
        open.delete(i);
      }
      // What was applied is always committed, and never applied twice.
      expect(new Set(seen).size).toBe(seen.length);
      for (const id of seen) expect(committed).toContain(id);
    }
    for (const [i, pending] of open) {
      await sessions[i]!.query('COMMIT');
      committed.push(...pending);
    }
    await s.deps.feed.poll();
    expect([...seen].sort()).toEqual([...committed].sort());
    expect(seen.filter((id) => rolledBack.includes(id))).toEqual([]);
    expect(committed.length).toBeGreaterThan(50);
  }, 60_000);
});

describe.runIf(DIALECTS.includes('postgres'))('a node that starts while other transactions are open (PostgreSQL)', () => {
  let db: Awaited<ReturnType<typeof createPgDatabase>>;
  let a: TestServer;
  let b: TestServer | undefined;
  let w: World;
  let q: pg.Client;
  const env = { KEYWARD_MASTER_KEY: Buffer.alloc(32, 7).toString('base64') };

  beforeEach(async () => {
    db = await createPgDatabase();
    a = await startServer({ dialect: 'postgres', databaseUrl: db.url, env });
    w = await world(a);
    q = new pg.Client({ connectionString: db.url });
    await q.connect();
  });
  afterEach(async () => {
    await q.end();
    await b?.close();
    b = undefined;
    await a.close();
    await db.drop();
  });

  /** A revoke as the service writes it, in the open transaction of `q`. */
  const revokeIn = async (keyId: string) => {
    await q.query("update keys set status = 'revoked', revoked_at = $2, updated_at = $2 where id = $1", [keyId, Date.now()]);
    await q.query("insert into changes (kind, target, workspace_id, created_at) values ('key', $1, $2, $3)", [keyId, w.workspaceId, Date.now()]);
  };

  /** B's feed read until the key is refused there (each read is what its timer would do). */
  const refusedOnB = async (key: string) => {
    for (let i = 0; i < 4; i++) {
      await b!.deps.feed.poll();
      if ((await verify(b!, { key })).code !== 'VALID') return true;
    }
    return false;
  };

  it.each([
    ['with its revoke written', true],
    ['begun, its revoke not written yet', false],
  ])('a transaction open when B starts (%s) commits a revoke later: B refuses the key at its next reads', async (_name, writtenFirst) => {
    const k = await createKey(a, w);
    await q.query('begin');
    // A snapshot taken, nothing else: the transaction has no id yet.
    await q.query('select 1 from keys where id = $1', [k.id]);
    if (writtenFirst) await revokeIn(k.id);
    b = await startServer({ dialect: 'postgres', databaseUrl: db.url, env });
    b.appId = w.appId;
    // B caches the key as the store shows it before the commit.
    expect((await verify(b, { key: k.key })).code).toBe('VALID');
    await b.deps.feed.poll();
    if (!writtenFirst) await revokeIn(k.id);
    await q.query('commit');
    expect(await refusedOnB(k.key)).toBe(true);
  });

  it('a feed that restarts its cursor (the store was away at start) while a revoke is open still sees it commit', async () => {
    const k = await createKey(a, w);
    b = await startServer({ dialect: 'postgres', databaseUrl: db.url, env });
    b.appId = w.appId;
    expect((await verify(b, { key: k.key })).code).toBe('VALID');
    await q.query('begin');
    await revokeIn(k.id);
    // The cursor lost, as when the store did not answer at start: the next read takes a new one.
    (b.deps.feed as unknown as { cursor: unknown }).cursor = undefined;
    await b.deps.feed.poll();
    expect((await verify(b, { key: k.key })).code).toBe('VALID');
    await q.query('commit');
    expect(await refusedOnB(k.key)).toBe(true);
  });
});
