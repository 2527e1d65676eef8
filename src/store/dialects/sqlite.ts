// The embedded dialect: better-sqlite3 in WAL mode, a read-only second connection for verify, and
// usage batches written by a worker thread (see ../usage-sink.ts).
import fs from 'node:fs';
import SQLite from 'better-sqlite3';
import { CompiledQuery, Kysely, SqliteDialect, SqliteDriver, type DatabaseConnection, type Driver } from 'kysely';
import type { Database } from '../schema.js';
import { sqliteWorkerSink } from '../usage-sink.js';
import { sqlitePath } from '../paths.js';
import type { Dialect, KeyByHashRow, OpenedDialect, StoreOptions } from './types.js';

/**
 * SQLite transactions begin IMMEDIATE: the usage writer (a worker thread) is a second writer on the
 * file, and a deferred transaction that read before it wrote could then fail on a stale snapshot.
 * Taking the write lock up front (waiting under busy_timeout) rules that out.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

class ImmediateSqliteDialect extends SqliteDialect {
  constructor(private readonly database: SQLite.Database) {
    super({ database });
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver({ database: this.database });
  }
}

const BY_HASH = `SELECT keys.*, key_hashes.expires_at AS value_expires_at, apps.gateway_rules AS gateway_rules
  FROM key_hashes JOIN keys ON keys.id = key_hashes.key_id JOIN apps ON apps.id = keys.app_id WHERE key_hashes.hash = ?`;

async function open(opts: StoreOptions): Promise<OpenedDialect> {
  fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const file = sqlitePath(opts.dataDir);
  const sync = opts.sqliteSync ?? 'FULL';
  const main = new SQLite(file);
  main.pragma('journal_mode = WAL');
  main.pragma(`synchronous = ${sync}`);
  main.pragma('foreign_keys = ON');
  main.pragma('busy_timeout = 5000');
  // A commit that finds the WAL over its threshold checkpoints it there and then, in the committing
  // connection. On this one that is the event loop's thread (a heartbeat once paid 200 ms for the
  // usage writer's pages), so checkpoints are left to the usage writer's thread (../usage-sink.ts).
  main.pragma('wal_autocheckpoint = 0');
  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect(main) });
  // Opened on first use (the schema must exist: migrations run first). It sees committed data only,
  // never a write transaction in progress on the main connection, and answers synchronously.
  let reader: SQLite.Database | undefined;
  return {
    db,
    name: 'sqlite',
    ping: async () => void main.prepare('select 1').get(),
    close: async () => {
      reader?.close();
      await db.destroy();
    },
    keyByHash: () => {
      let stmt: SQLite.Statement | undefined;
      return (hash) => {
        try {
          reader ??= new SQLite(file, { readonly: true, fileMustExist: true });
          stmt ??= reader.prepare(BY_HASH);
          return Promise.resolve(stmt.get(hash) as KeyByHashRow | undefined);
        } catch (err) {
          return Promise.reject(err);
        }
      };
    },
    usageSink: () => sqliteWorkerSink(file, sync, opts.usageWriterNice ?? 0),
  };
}

export const sqliteDialect: Dialect = {
  name: 'sqlite',
  open,
  uniqueViolation: new Set(['SQLITE_CONSTRAINT_UNIQUE', 'SQLITE_CONSTRAINT_PRIMARYKEY']),
  unavailable: new Set(['SQLITE_BUSY', 'SQLITE_FULL', 'SQLITE_IOERR', 'SQLITE_CANTOPEN']),
};
