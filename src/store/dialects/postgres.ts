// PostgreSQL through a pg pool and a driver written for faults (./pg-driver.ts): one deadline on
// every wait of a request, no connection reused after a fault, a lost COMMIT settled before the
// answer, and the server told to abort, by itself, a transaction a node gave up on.
import pg from 'pg';
import { Kysely, PostgresDialect, sql } from 'kysely';
import type { Database } from '../schema.js';
import { postgresSink } from '../usage-sink.js';
import { FaultTolerantPgDriver } from './pg-driver.js';
import type { Dialect, KeyByHashRow, OpenedDialect, StoreOptions } from './types.js';

// int8 (bigint) columns hold epoch milliseconds and counters: well inside 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

/** Kysely's PostgreSQL dialect with its driver replaced; the SQL it writes is the same. */
class FaultTolerantPgDialect extends PostgresDialect {
  constructor(private readonly driver: FaultTolerantPgDriver) {
    super({ pool: {} as pg.Pool });
  }

  override createDriver(): FaultTolerantPgDriver {
    return this.driver;
  }
}

function settings(opts: StoreOptions, timeout: number): pg.PoolConfig {
  return {
    connectionString: opts.databaseUrl,
    connectionTimeoutMillis: timeout,
    // Server-side: a statement is cancelled too, so it does not hold locks after we gave up.
    statement_timeout: timeout,
    // A transaction is never idle longer than one request's whole bound; past twice that, its node
    // gave up on it (a link that holds its COMMIT, a node that died): the server aborts it itself.
    idle_in_transaction_session_timeout: 2 * timeout,
  };
}

function kyselyOver(pool: pg.Pool, opts: StoreOptions, timeout: number): Kysely<Database> {
  // A broken idle connection must not crash the process; the next query reports the failure.
  pool.on('error', () => {});
  // Likewise a connection that drops while checked out: its query rejects, which is reported.
  pool.on('connect', (client) => client.on('error', () => {}));
  const driver = new FaultTolerantPgDriver({ pool, client: () => new pg.Client(settings(opts, timeout)), timeoutMs: timeout });
  return new Kysely<Database>({ dialect: new FaultTolerantPgDialect(driver) });
}

async function open(opts: StoreOptions): Promise<OpenedDialect> {
  const timeout = opts.queryTimeoutMs ?? 2000;
  const db = kyselyOver(new pg.Pool({ ...settings(opts, timeout), max: 10 }), opts, timeout);
  // The change feed reads on a connection of its own: requests queueing for the pool (behind a
  // lock a held transaction keeps) never delay what every node must see within a second.
  const feedDb = kyselyOver(new pg.Pool({ ...settings(opts, timeout), max: 1 }), opts, timeout);
  return {
    db,
    feedDb,
    name: 'postgres',
    ping: async () => void (await sql`select 1`.execute(db)),
    close: async () => {
      await feedDb.destroy();
      await db.destroy();
    },
    keyByHash: (kdb) => async (hash) => (await kdb.selectFrom('key_hashes')
      .innerJoin('keys', 'keys.id', 'key_hashes.key_id')
      .innerJoin('apps', 'apps.id', 'keys.app_id')
      .leftJoin('identities', (j) => j.onRef('identities.workspace_id', '=', 'keys.workspace_id').onRef('identities.external_id', '=', 'keys.owner_id'))
      .selectAll('keys')
      .select(['key_hashes.expires_at as value_expires_at', 'apps.gateway_rules as gateway_rules',
        'identities.id as identity_id', 'identities.meta as identity_meta', 'identities.ratelimits as identity_ratelimits'])
      .where('key_hashes.hash', '=', hash)
      .executeTakeFirst()) as KeyByHashRow | undefined,
    usageSink: () => postgresSink(db),
  };
}

export const postgresDialect: Dialect = {
  name: 'postgres',
  open,
  uniqueViolation: new Set(['23505']),
  // Class 08 (connection exception) is matched by prefix in ../db.ts; these are the others.
  unavailable: new Set(['57P01', '57P02', '57P03', '53300', '57014']),
};
