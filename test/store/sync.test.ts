// Usage-cap leases on the embedded store commit without an fsync on the event loop's thread: the
// connection commits them with `synchronous = NORMAL` and the log is synced from the thread pool
// before the transaction resolves; every other write keeps its own synced COMMIT.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sqliteDialect } from '../../src/store/dialects/sqlite.js';
import type { OpenedDialect } from '../../src/store/dialects/types.js';
import { migrate, openStore, type Store } from '../../src/store/db.js';

const synchronous = async (db: Kysely<any>) => Number((await sql<{ synchronous: number }>`pragma synchronous`.execute(db)).rows[0]!.synchronous);

describe('commits kept off the event loop\'s disk wait (sqlite)', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-sync-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('with synchronous = FULL, the transaction commits relaxed and the connection is FULL again after it, also after a failure', async () => {
    const opened: OpenedDialect = await sqliteDialect.open({ dataDir: dir, sqliteSync: 'FULL' });
    try {
      await migrate(opened.db);
      expect(await synchronous(opened.db)).toBe(2);
      expect(opened.syncOffLoop).toBeDefined();
      const inside = await opened.syncOffLoop!(async (db) => db.transaction().execute(async (trx) => {
        await trx.insertInto('settings').values({ name: 'probe', value: '1' }).execute();
        return synchronous(trx);
      }));
      expect(inside).toBe(1);
      expect(await synchronous(opened.db)).toBe(2);
      await expect(opened.syncOffLoop!(async (db) => db.transaction().execute(async (trx) => {
        await trx.insertInto('settings').values({ name: 'probe', value: '2' }).execute();
      }))).rejects.toThrow();
      expect(await synchronous(opened.db)).toBe(2);
      // The relaxed commit is there for every reader, the failed one is not.
      expect(await opened.db.selectFrom('settings').select('value').where('name', '=', 'probe').execute()).toEqual([{ value: '1' }]);
    } finally {
      await opened.close();
    }
  });

  it('with synchronous = NORMAL there is nothing to keep off the thread', async () => {
    const opened = await sqliteDialect.open({ dataDir: dir, sqliteSync: 'NORMAL' });
    try {
      expect(opened.syncOffLoop).toBeUndefined();
    } finally {
      await opened.close();
    }
  });

  it('store.transaction with syncOffLoop commits, and its after-commit hooks run once it resolved', async () => {
    const store: Store = await openStore({ dataDir: dir, sqliteSync: 'FULL' });
    try {
      await migrate(store.db);
      let ran = false;
      const value = await store.transaction(async (r) => {
        await r.settings.insert('probe', 'x');
        r.afterCommit(() => {
          ran = true;
        });
        return 7;
      }, { syncOffLoop: true });
      expect(value).toBe(7);
      expect(ran).toBe(true);
      expect(await store.repos.settings.get('probe')).toBe('x');
      expect(await synchronous(store.db)).toBe(2);
    } finally {
      await store.close();
    }
  });
});
