// Migrations take as long as they take: the bounds a request's statements get from the pool
// (statement_timeout, idle_in_transaction_session_timeout) must not cancel a migration that
// rewrites a big table, or the node cannot start; requests keep those bounds.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql, type Kysely, type Migration } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { createPgDatabase, DIALECTS } from '../support/harness.js';
import { migrate, openStore, type Store } from '../../src/store/db.js';
import { migrations } from '../../src/store/migrations/index.js';

/** The pool's bound on every statement, and (twice it) on a transaction left idle. */
const TIMEOUT_MS = 100;

// SQLite has no statement timeout: the bound is the request's own, which migrations do not take.
describe.runIf(DIALECTS.includes('postgres'))('migrations under a tiny store timeout (PostgreSQL)', () => {
  let store: Store | undefined;
  let db: Awaited<ReturnType<typeof createPgDatabase>> | undefined;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-migrate-'));

  afterEach(async () => {
    await store?.close();
    await db?.drop();
    store = undefined;
    db = undefined;
  });

  async function open(): Promise<Store> {
    db = await createPgDatabase();
    store = await openStore({ databaseUrl: db.url, dataDir, queryTimeoutMs: TIMEOUT_MS });
    return store;
  }

  const slow = (up: (db: Kysely<any>) => Promise<void>): Record<string, Migration> => ({ ...migrations, '999_slow': { up } });

  it('a migration with a statement ten times longer than statement_timeout completes', async () => {
    const s = await open();
    const applied = await migrate(s.db, slow(async (m) => {
      await sql`select pg_sleep(${(10 * TIMEOUT_MS) / 1000})`.execute(m);
      await m.schema.createTable('slow_marker').addColumn('id', 'integer').execute();
    }));
    expect(applied.at(-1)).toBe('999_slow');
    expect((await sql<{ n: number }>`select count(*)::int as n from slow_marker`.execute(s.db)).rows[0]!.n).toBe(0);
  });

  it('a migration idle in its transaction longer than idle_in_transaction_session_timeout completes', async () => {
    const s = await open();
    const applied = await migrate(s.db, slow(async (m) => {
      await m.schema.createTable('slow_marker').addColumn('id', 'integer').execute();
      // Work between two statements (a data migration computing in the process): no statement runs.
      await new Promise((resolve) => setTimeout(resolve, 5 * TIMEOUT_MS));
      await m.insertInto('slow_marker').values({ id: 1 }).execute();
    }));
    expect(applied.at(-1)).toBe('999_slow');
    expect((await sql<{ n: number }>`select count(*)::int as n from slow_marker`.execute(s.db)).rows[0]!.n).toBe(1);
  });

  it('requests keep their bounds after a migration ran', async () => {
    const s = await open();
    await migrate(s.db, slow(async (m) => void (await sql`select pg_sleep(${(3 * TIMEOUT_MS) / 1000})`.execute(m))));
    // Every pooled connection, including the one the migration ran on.
    const held = await Promise.all(Array.from({ length: 10 }, () => s.db.connection().execute(async (c) => {
      const { rows } = await sql<{ st: string; idle: string }>`select current_setting('statement_timeout') as st, current_setting('idle_in_transaction_session_timeout') as idle`.execute(c);
      return rows[0]!;
    })));
    for (const row of held) expect(row).toEqual({ st: `${TIMEOUT_MS}ms`, idle: `${2 * TIMEOUT_MS}ms` });
    await expect(sql`select pg_sleep(${(10 * TIMEOUT_MS) / 1000})`.execute(s.db)).rejects.toThrow();
  });
});
