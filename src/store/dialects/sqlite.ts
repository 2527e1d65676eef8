// The embedded dialect: better-sqlite3 in WAL mode, a read-only second connection for verify, and
// usage batches written by a worker thread (see ../usage-sink.ts).
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import SQLite from 'better-sqlite3';
import { CompiledQuery, Kysely, SqliteDialect, SqliteDriver, type DatabaseConnection, type Driver } from 'kysely';
import type { Database } from '../schema.js';
import { sqliteWorkerSink } from './sqlite-usage.js';
import { sqlitePath } from '../paths.js';
import { fixedBudget, requestBudget, StoreTimeoutError, type StoreBudget } from '../deadline.js';
import { keyByHashQuery, type Dialect, type KeyByHashRow, type OpenedDialect, type StoreOptions } from './types.js';

/**
 * The one connection, held by one lease at a time; a wait for it ends at the request's store
 * deadline (503) instead of queueing behind a transaction that does not finish.
 */
class DeadlineMutex {
  private held = false;
  private readonly waiting: (() => void)[] = [];

  lock(deadline: number): Promise<void> {
    if (!this.held) {
      this.held = true;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const grant = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = deadline === Infinity ? undefined : setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(grant), 1);
        reject(new StoreTimeoutError('the store connection', false));
      }, Math.max(0, deadline - performance.now()));
      this.waiting.push(grant);
    });
  }

  unlock(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.held = false;
  }
}

/**
 * SQLite transactions begin IMMEDIATE: the usage writer (a worker thread) is a second writer on the
 * file, and a deferred transaction that read before it wrote could then fail on a stale snapshot.
 * Taking the write lock up front (waiting under busy_timeout, at most until the deadline) rules
 * that out. No transaction outlives its lease: a rollback that SQLite already did itself (on
 * SQLITE_FULL, SQLITE_IOERR …) is not attempted twice, and one left open is rolled back at release.
 */
class BoundedSqliteDriver extends SqliteDriver {
  private readonly mutex = new DeadlineMutex();
  private budget: StoreBudget = fixedBudget(0);
  private leased: DatabaseConnection | undefined;

  constructor(private readonly database: SQLite.Database, private readonly timeoutMs: number) {
    super({ database });
  }

  override async acquireConnection(): Promise<DatabaseConnection> {
    const budget = requestBudget() ?? fixedBudget(performance.now() + this.timeoutMs);
    budget.begin();
    try {
      await this.mutex.lock(budget.deadline());
    } finally {
      budget.end();
    }
    this.budget = budget;
    // Uncontended: only the holder of the mutex above gets here.
    return (this.leased = await super.acquireConnection());
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    // The wait for the write lock blocks this thread, so it is bounded by what is left of the budget.
    this.budget.begin();
    try {
      const wait = Math.min(this.budget.deadline() - performance.now(), this.timeoutMs);
      if (wait <= 0) throw new StoreTimeoutError('before a transaction', false);
      this.database.pragma(`busy_timeout = ${Math.floor(wait)}`);
      await connection.executeQuery(CompiledQuery.raw('begin immediate'));
    } finally {
      this.budget.end();
    }
  }

  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    if (this.database.inTransaction) await connection.executeQuery(CompiledQuery.raw('rollback'));
  }

  override async releaseConnection(): Promise<void> {
    try {
      if (this.database.inTransaction) await this.leased?.executeQuery(CompiledQuery.raw('rollback'));
    } finally {
      this.leased = undefined;
      await super.releaseConnection();
      this.mutex.unlock();
    }
  }
}

class BoundedSqliteDialect extends SqliteDialect {
  constructor(private readonly database: SQLite.Database, private readonly timeoutMs: number) {
    super({ database });
  }

  override createDriver(): Driver {
    return new BoundedSqliteDriver(this.database, this.timeoutMs);
  }
}

async function open(opts: StoreOptions): Promise<OpenedDialect> {
  fs.mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const file = sqlitePath(opts.dataDir);
  const sync = opts.sqliteSync ?? 'FULL';
  const main = new SQLite(file);
  main.pragma('journal_mode = WAL');
  main.pragma(`synchronous = ${sync}`);
  main.pragma('foreign_keys = ON');
  const timeoutMs = opts.queryTimeoutMs ?? 2000;
  main.pragma(`busy_timeout = ${timeoutMs}`);
  // A commit that finds the WAL over its threshold checkpoints it there and then, in the committing
  // connection. On this one that is the event loop's thread (a heartbeat once paid 200 ms for the
  // usage writer's pages), so checkpoints are left to the usage writer's thread (../usage-sink.ts).
  main.pragma('wal_autocheckpoint = 0');
  const db = new Kysely<Database>({ dialect: new BoundedSqliteDialect(main, timeoutMs) });
  // Opened on first use (the schema must exist: migrations run first). It sees committed data only,
  // never a write transaction in progress on the main connection, and answers synchronously.
  let reader: SQLite.Database | undefined;
  // The log's file, opened once it exists, for fsync from the thread pool (syncOffLoop).
  let log: Promise<fs.promises.FileHandle> | undefined;
  const syncLog = async () => {
    log ??= fs.promises.open(`${file}-wal`, 'r').catch((err: unknown) => {
      log = undefined;
      throw err;
    });
    await (await log).sync();
  };
  return {
    db,
    name: 'sqlite',
    ping: async () => void main.prepare('select 1').get(),
    close: async () => {
      reader?.close();
      await db.destroy();
      await (await log?.catch(() => undefined))?.close();
    },
    // In WAL mode every synced commit and every checkpoint first syncs the whole log, so the
    // durable state is always a prefix of the commits: a commit made without its own sync is
    // durable once the log is synced after it, whoever syncs it (SQLite's "synchronous" pragma
    // and WAL notes). The connection is held throughout, so no other transaction commits relaxed.
    ...(sync === 'FULL' ? {
      syncOffLoop: async <T>(run: (db: Kysely<Database>) => Promise<T>): Promise<T> => {
        const value = await db.connection().execute(async (conn) => {
          main.pragma('synchronous = NORMAL');
          try {
            return await run(conn);
          } finally {
            main.pragma('synchronous = FULL');
          }
        });
        await syncLog();
        return value;
      },
    } : {}),
    keyByHash: (kdb) => {
      const bySql = keyByHashQuery(kdb, '').compile().sql;
      let stmt: SQLite.Statement | undefined;
      return (hash) => {
        try {
          reader ??= new SQLite(file, { readonly: true, fileMustExist: true });
          stmt ??= reader.prepare(bySql);
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
