// The change feed on PostgreSQL, where a sequence number is taken at insert but seen at commit: a
// change whose transaction commits after a newer one is still applied, once, by the next read.
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createPgDatabase, DIALECTS, startServer, world, type TestServer } from '../harness.js';
import type { ChangeEvent } from '../../src/shared/bus.js';

describe.runIf(DIALECTS.includes('postgres'))('change feed, late commits (PostgreSQL)', () => {
  let db: Awaited<ReturnType<typeof createPgDatabase>>;
  let s: TestServer;
  let client: pg.Client;
  beforeEach(async () => {
    db = await createPgDatabase();
    s = await startServer({ dialect: 'postgres', databaseUrl: db.url });
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
  });
  afterEach(async () => {
    await client.end();
    await s.close();
    await db.drop();
  });

  it('a change committed after a newer one is applied at the next read, and each change once', async () => {
    const w = await world(s);
    const seen: string[] = [];
    s.deps.services.bus.onKeyChange((c: ChangeEvent) => 'keyId' in c && seen.push(c.keyId));
    const insert = (q: pg.Client | pg.PoolClient, keyId: string) =>
      q.query("INSERT INTO changes (kind, target, workspace_id, created_at) VALUES ('key', $1, $2, $3)", [keyId, w.workspaceId, s.clock.now()]);
    // The slow transaction takes its sequence number first and commits last.
    await client.query('BEGIN');
    await insert(client, 'key_slowslowslowslowslow');
    const other = new pg.Client({ connectionString: db.url });
    await other.connect();
    await insert(other, 'key_fastfastfastfastfast');
    await other.end();
    await s.deps.feed.poll();
    expect(seen).toEqual(['key_fastfastfastfastfast']);
    await client.query('COMMIT');
    await s.deps.feed.poll();
    await s.deps.feed.poll();
    expect(seen).toEqual(['key_fastfastfastfastfast', 'key_slowslowslowslowslow']);
  });
});
