// PostgreSQL through a pg pool, with bounded waits: a query, and a wait for a pooled connection,
// each fail after queryTimeoutMs instead of hanging on a store that accepts but does not answer.
import pg from 'pg';
import { Kysely, PostgresDialect, sql } from 'kysely';
import type { Database } from '../schema.js';
import { postgresSink } from '../usage-sink.js';
import type { Dialect, KeyByHashRow, OpenedDialect, StoreOptions } from './types.js';

// int8 (bigint) columns hold epoch milliseconds and counters: well inside 2^53.
pg.types.setTypeParser(20, (v) => Number(v));

async function open(opts: StoreOptions): Promise<OpenedDialect> {
  const timeout = opts.queryTimeoutMs ?? 2000;
  const pool = new pg.Pool({
    connectionString: opts.databaseUrl,
    max: 10,
    connectionTimeoutMillis: timeout,
    // Client-side: the promise rejects even when the server never answers (a blackholed link).
    query_timeout: timeout,
    // Server-side: the statement is cancelled too, so it does not hold locks after we gave up.
    statement_timeout: timeout,
  });
  // A broken idle connection must not crash the process; the next query reports the failure.
  pool.on('error', () => {});
  // Likewise a connection that drops while checked out: its query rejects, which is reported.
  pool.on('connect', (client) => client.on('error', () => {}));
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    name: 'postgres',
    ping: async () => void (await sql`select 1`.execute(db)),
    close: () => db.destroy(),
    keyByHash: (kdb) => async (hash) => (await kdb.selectFrom('key_hashes')
      .innerJoin('keys', 'keys.id', 'key_hashes.key_id')
      .innerJoin('apps', 'apps.id', 'keys.app_id')
      .selectAll('keys')
      .select(['key_hashes.expires_at as value_expires_at', 'apps.gateway_rules as gateway_rules'])
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
