// Kysely's driver for PostgreSQL, written for faults. Every wait (a pooled connection, a statement)
// spends one budget a request (../deadline.ts); a connection that failed in any way other than a clean server answer
// outside a transaction is destroyed, never handed to the next request with a transaction still
// open; and a COMMIT whose answer was lost is settled by asking the server before anyone is told.
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import type { CompiledQuery, DatabaseConnection, Driver, QueryResult, TransactionSettings } from 'kysely';
import { AppError, FIXED_DETAIL } from '../../errors.js';
import { fixedBudget, requestBudget, StoreTimeoutError, type StoreBudget } from '../deadline.js';

export const outcomeUnknown = (): AppError => new AppError('OUTCOME_UNKNOWN', FIXED_DETAIL.outcomeUnknown, { retryAfterSec: 1 });

/**
 * SQLSTATE classes a server answers when it did not run (or did not commit) what it was sent: bad
 * data, a constraint, a serialization failure, a bad statement. Any other failure of a COMMIT
 * (a lost answer, a backend terminated while committing) leaves its outcome to be found out.
 */
const REFUSED = /^(22|23|40|42)/;

const isServerAnswer = (err: unknown): boolean => err instanceof pg.DatabaseError;

/** Resolves with `promise`, or rejects at `deadline`; `onLate` gets what arrives after that. */
function until<T>(promise: Promise<T>, deadline: number, what: string, onLate?: (value: T) => void): Promise<T> {
  if (deadline === Infinity) return promise;
  const wait = deadline - performance.now();
  if (wait <= 0) {
    promise.then(onLate, () => {});
    return Promise.reject(new StoreTimeoutError(what, true));
  }
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      done = true;
      reject(new StoreTimeoutError(what, true));
    }, wait);
    promise.then((value) => {
      if (!done) {
        clearTimeout(timer);
        resolve(value);
      } else onLate?.(value);
    }, (err: unknown) => {
      if (done) return;
      clearTimeout(timer);
      reject(err);
    });
  });
}

export interface PgDriverOptions {
  pool: pg.Pool;
  /** Opens a connection outside the pool, to settle a lost COMMIT even when the pool is stuck. */
  client: () => pg.Client;
  /** KEYWARD_STORE_TIMEOUT_MS: a lease's own bound when no request's budget is in force. */
  timeoutMs: number;
}

class PgConnection implements DatabaseConnection {
  /** What this lease's waits are bounded by: its request's store budget, or a deadline of its own. */
  budget: StoreBudget = fixedBudget(0);
  inTransaction = false;
  readOnly = false;
  /** Set on the first failure that leaves the connection out of step: it is destroyed at once. */
  fault: unknown;
  /** A statement of the transaction failed: the connection is destroyed rather than rolled back. */
  spoiled = false;
  released = false;

  constructor(readonly client: pg.PoolClient, private readonly reserveMs: number) {}

  lease(budget: StoreBudget): void {
    this.budget = budget;
    this.inTransaction = false;
    this.readOnly = false;
    this.spoiled = false;
    this.released = false;
  }

  /** The backend serving this connection, known from the connection's start. */
  get backendPid(): number {
    return (this.client as unknown as { processID: number }).processID;
  }

  /**
   * Statements of a write transaction must finish a little before the budget runs out: what is
   * left is for settling the COMMIT if its answer is lost.
   */
  get reserve(): number {
    return this.inTransaction && !this.readOnly ? this.reserveMs : 0;
  }

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const { command, rowCount, rows } = await this.run(query.sql, query.parameters, this.reserve);
    return {
      numAffectedRows: command === 'INSERT' || command === 'UPDATE' || command === 'DELETE' || command === 'MERGE' ? BigInt(rowCount ?? 0) : undefined,
      rows: (rows ?? []) as R[],
    };
  }

  streamQuery<R>(): AsyncIterableIterator<QueryResult<R>> {
    throw new Error('streaming is not used with this store');
  }

  /** One statement, ending `reserve` ms before the budget does. */
  async run(sql: string, parameters: readonly unknown[], reserve: number): Promise<pg.QueryResult> {
    if (this.fault !== undefined) throw this.fault;
    this.budget.begin();
    try {
      const deadline = this.budget.deadline() - reserve;
      if (deadline - performance.now() <= 0) throw new StoreTimeoutError('before a statement', false);
      return await until(this.client.query(sql, [...parameters]), deadline, 'a statement');
    } catch (err) {
      if (this.inTransaction) this.spoiled = true;
      // The server's own error leaves the connection in step; a timeout or a broken socket does not.
      if (!isServerAnswer(err) && !(err instanceof StoreTimeoutError && !err.sent)) this.destroy(err);
      throw err;
    } finally {
      this.budget.end();
    }
  }

  /** Out of the pool and closed now: nothing more is sent on it, by this lease or any other. */
  destroy(err: unknown): void {
    this.fault ??= err;
    if (this.released) return;
    this.released = true;
    this.client.release(err instanceof Error ? err : new Error(String(err)));
  }

  release(): void {
    if (this.released) return;
    if (this.inTransaction || this.spoiled) return this.destroy(new Error('transaction not closed cleanly'));
    this.released = true;
    this.client.release();
  }
}

export class FaultTolerantPgDriver implements Driver {
  private readonly connections = new WeakMap<pg.PoolClient, PgConnection>();
  private readonly reserveMs: number;

  constructor(private readonly opts: PgDriverOptions) {
    this.reserveMs = Math.max(1, Math.floor(opts.timeoutMs / 4));
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    const budget = requestBudget() ?? fixedBudget(performance.now() + this.opts.timeoutMs);
    budget.begin();
    let client: pg.PoolClient;
    try {
      client = await until(this.opts.pool.connect(), budget.deadline(), 'a pooled connection', (late) => late.release());
    } finally {
      budget.end();
    }
    let conn = this.connections.get(client);
    if (!conn) {
      conn = new PgConnection(client, this.reserveMs);
      this.connections.set(client, conn);
    }
    conn.lease(budget);
    return conn;
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    const conn = connection as PgConnection;
    let sql = 'begin';
    if (settings.isolationLevel) sql += ` isolation level ${settings.isolationLevel}`;
    if (settings.accessMode) sql += ` ${settings.accessMode}`;
    conn.inTransaction = true;
    conn.readOnly = settings.accessMode === 'read only';
    await conn.run(sql, [], conn.reserve);
    // Work without a bound (migrations, ../db.ts) is not cut short by the server's bounds on a
    // request's statements either: a migration rewriting a big table must finish, or the node
    // cannot start. SET LOCAL ends with the transaction: the pooled connection keeps its bounds.
    if (!Number.isFinite(conn.budget.deadline())) {
      await conn.run('set local statement_timeout = 0; set local idle_in_transaction_session_timeout = 0', [], 0);
    }
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    const conn = connection as PgConnection;
    if (conn.readOnly) {
      await conn.run('commit', [], 0);
      conn.inTransaction = false;
      return;
    }
    // Taken before COMMIT is sent: without it a lost answer could not be asked about. Null when
    // the transaction wrote nothing, and then its outcome does not matter.
    const { rows } = await conn.run('select pg_current_xact_id_if_assigned()::text as xid', [], conn.reserve);
    const xid = (rows[0] as { xid: string | null } | undefined)?.xid ?? null;
    const pid = conn.backendPid;
    try {
      await conn.run('commit', [], conn.reserve);
      conn.inTransaction = false;
      return;
    } catch (err) {
      if (xid === null || (err instanceof StoreTimeoutError && !err.sent)) throw err;
      if (isServerAnswer(err) && REFUSED.test(String((err as { code?: unknown }).code))) throw err;
      conn.destroy(err);
      let outcome: Awaited<ReturnType<FaultTolerantPgDriver['settle']>>;
      conn.budget.begin();
      try {
        // Migrations run without a bound; settling still has one.
        const deadline = conn.budget.deadline();
        outcome = await this.settle(pid, xid, Number.isFinite(deadline) ? deadline : performance.now() + this.opts.timeoutMs);
      } finally {
        conn.budget.end();
      }
      if (outcome === 'committed') {
        conn.inTransaction = false;
        return;
      }
      // Aborted for certain: the ordinary failure, nothing changed.
      if (outcome === 'aborted') throw err;
      throw outcomeUnknown();
    }
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    const conn = connection as PgConnection;
    // A failed statement spoiled it: closing the connection aborts the transaction without another
    // round trip on a link that may be what failed.
    if (conn.fault !== undefined || conn.spoiled) return;
    await conn.run('rollback', [], 0);
    conn.inTransaction = false;
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    (connection as PgConnection).release();
  }

  async destroy(): Promise<void> {
    await this.opts.pool.end();
  }

  /**
   * What became of a transaction whose COMMIT was sent without an answer: on a new connection, the
   * backend still holding it open is terminated (so it can no longer commit later, when the
   * COMMIT arrives), then pg_xact_status says whether it committed before that. The backend is
   * matched by pid and by the transaction's id, so another session on a reused pid is never touched.
   */
  private async settle(pid: number, xid: string, deadline: number): Promise<'committed' | 'aborted' | 'unknown'> {
    const xid32 = (BigInt(xid) & 0xffffffffn).toString();
    let fence = true;
    let client: pg.Client | undefined;
    const drop = () => {
      const c = client;
      client = undefined;
      c?.end().catch(() => {});
    };
    try {
      while (performance.now() < deadline) {
        try {
          if (!client) {
            const fresh = this.opts.client();
            fresh.on('error', () => {});
            client = fresh;
            await until(fresh.connect(), deadline, 'a connection to settle a commit', () => void fresh.end().catch(() => {}));
          }
          if (fence) {
            try {
              await until(client.query('select pg_terminate_backend(pid) from pg_stat_activity where pid = $1 and backend_xid = $2::xid', [pid, xid32]), deadline, 'fencing a transaction');
            } catch (err) {
              // Not allowed to (another role's backend): the server's idle timeout ends it instead.
              if (!isServerAnswer(err)) throw err;
              fence = false;
            }
          }
          const { rows } = await until(client.query<{ status: string | null }>('select pg_xact_status($1::xid8) as status', [xid]), deadline, 'a commit status');
          const status = rows[0]?.status;
          if (status === 'committed' || status === 'aborted') return status;
        } catch {
          drop();
        }
        // Still in progress: the terminated backend has not exited yet, or the store is unreachable.
        await new Promise((resolve) => setTimeout(resolve, Math.min(10, Math.max(0, deadline - performance.now()))));
      }
      return 'unknown';
    } finally {
      drop();
    }
  }
}
