// `keyward store copy`: every table of one store into another (the embedded store into PostgreSQL,
// or any store into any store), planned from the migrated schema itself: tables in foreign-key order,
// rows in batches by primary key, each batch committed with a progress record in the target (so a
// killed copy resumes where it stopped), sequences moved past the copied values, and at the end the
// row count and an order-independent checksum of every table compared on both sides. Values are
// copied as stored: key hashes, sealed secrets (the same master key opens them), audit, usage,
// webhooks and their pending deliveries.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Kysely, PostgresDialect, SqliteDialect, sql } from 'kysely';
import { migrate } from './db.js';
import { sqlitePath } from './paths.js';
import type { DialectName } from './dialects/types.js';
import { dependencyOrder, readSchema, type AnyDb, type TableInfo } from './schema-info.js';

/**
 * Tables left out, and why. Each is state of the nodes of one store, not data: a table added later
 * is copied unless it is named here (and the copy test fails for one the copy cannot carry).
 */
export const SKIPPED_TABLES: ReadonlyMap<string, string> = new Map([
  ['nodes', 'heartbeats of the live nodes: each node of the target registers itself'],
  ['credit_slices', 'usage-cap units reserved by a node of the source: a node stopped cleanly gave them back, and they name nodes the target never had'],
]);

/**
 * Columns one dialect has and the other does not, each filled by its own store: left out of the
 * copy and of its checksums, so the target's default writes them.
 */
const DIALECT_COLUMNS: ReadonlyMap<string, string> = new Map([
  ['changes.xid', 'PostgreSQL only: the transaction that wrote a change, which the change feed reads (a copied change takes the copy\'s)'],
]);

/** A schema without the columns of DIALECT_COLUMNS. */
function commonColumns(schema: Map<string, TableInfo>): Map<string, TableInfo> {
  return new Map([...schema].map(([name, table]) => [name, { ...table, columns: table.columns.filter((c) => !DIALECT_COLUMNS.has(`${name}.${c}`)) }]));
}

/** The copy's own record in the target while it runs: where each table stopped. Dropped once verified. */
export const PROGRESS_TABLE = 'keyward_store_copy';

/** A store: PostgreSQL by URL, or the embedded store in a data directory. */
export type StoreLocation = { dialect: 'postgres'; url: string } | { dialect: 'sqlite'; dataDir: string };

export interface CopyOptions {
  /** Copy into a target that already holds data, emptying it first. */
  force?: boolean;
  /** Rows read and committed at a time. */
  batchRows?: number;
  /** Progress lines, as they happen. */
  progress?: (line: string) => void;
}

export interface TableCheck {
  table: string;
  rows: number;
  targetRows: number;
  checksum: string;
  targetChecksum: string;
  ok: boolean;
}

export interface CopyReport {
  tables: TableCheck[];
  skipped: string[];
  /** The master key id the copied secrets are sealed with (null: the source never recorded one). */
  masterKeyId: string | null;
  ok: boolean;
}

export class CopyRefused extends Error {}

/** `postgres://…` or `postgresql://…`, else `sqlite:<data dir>` (a bare path is a data dir too). */
export function parseLocation(text: string): StoreLocation {
  if (/^postgres(ql)?:\/\//.test(text)) return { dialect: 'postgres', url: text };
  const dir = text.startsWith('sqlite:') ? text.slice('sqlite:'.length) : text;
  if (dir === '' || /^[a-z][a-z0-9+.-]*:\/\//i.test(dir)) throw new CopyRefused(`"${text}" is neither a postgres:// URL nor sqlite:<data dir>`);
  return { dialect: 'sqlite', dataDir: path.resolve(dir) };
}

/** How a store is named in output: never with a password. */
export function describeLocation(loc: StoreLocation): string {
  if (loc.dialect === 'sqlite') return `sqlite:${loc.dataDir}`;
  const url = new URL(loc.url);
  if (url.password) url.password = '***';
  return url.toString();
}

interface Opened {
  db: AnyDb;
  dialect: DialectName;
  close(): Promise<void>;
}

async function open(loc: StoreLocation, role: 'source' | 'target'): Promise<Opened> {
  if (loc.dialect === 'postgres') {
    const { default: pg } = await import('pg');
    // int8 holds epoch milliseconds and counters, well inside 2^53 (as the server reads them).
    pg.types.setTypeParser(20, (v) => Number(v));
    const pool = new pg.Pool({ connectionString: loc.url, max: 2 });
    pool.on('error', () => {});
    return { db: new Kysely({ dialect: new PostgresDialect({ pool }) }), dialect: 'postgres', close: async () => void (await pool.end()) };
  }
  const { default: SQLite } = await import('better-sqlite3');
  const file = sqlitePath(loc.dataDir);
  if (role === 'source' && !fs.existsSync(file)) throw new CopyRefused(`no embedded store at ${file}`);
  if (role === 'target') fs.mkdirSync(loc.dataDir, { recursive: true, mode: 0o700 });
  const database = new SQLite(file);
  database.pragma('busy_timeout = 10000');
  if (role === 'target') {
    database.pragma('journal_mode = WAL');
    database.pragma('foreign_keys = ON');
    // Each batch commits with its progress record: a crash loses at most the last batches, which
    // the next run copies again.
    database.pragma('synchronous = NORMAL');
  }
  const db = new Kysely({ dialect: new SqliteDialect({ database }) });
  return {
    db, dialect: 'sqlite',
    close: async () => {
      if (role === 'target') database.pragma('wal_checkpoint(TRUNCATE)');
      await db.destroy();
    },
  };
}

function sameStore(a: StoreLocation, b: StoreLocation): boolean {
  if (a.dialect === 'sqlite' && b.dialect === 'sqlite') return a.dataDir === b.dataDir;
  if (a.dialect === 'postgres' && b.dialect === 'postgres') {
    const x = new URL(a.url);
    const y = new URL(b.url);
    return x.hostname === y.hostname && (x.port || '5432') === (y.port || '5432') && x.pathname === y.pathname;
  }
  return false;
}

type Row = Record<string, unknown>;

/** A value as the target dialect can bind it (better-sqlite3 takes no booleans, dates or objects). */
function forTarget(value: unknown, dialect: DialectName): unknown {
  if (dialect !== 'sqlite' || value === null || typeof value !== 'object' && typeof value !== 'boolean') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value instanceof Date) return value.getTime();
  if (Buffer.isBuffer(value)) return value;
  return JSON.stringify(value);
}

/** One form for a value whichever dialect read it: what the checksum hashes. */
function canonical(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (typeof value === 'bigint') return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  if (value instanceof Date) return value.getTime();
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return `bytes:${Buffer.from(value).toString('base64')}`;
  if (typeof value === 'object') return JSON.stringify(value, Object.keys(value as object).sort());
  return value;
}

/** Rows of a table after `after` (its primary key values) in key order; every row when it has no key. */
async function readBatch(db: AnyDb, table: TableInfo, after: unknown[] | null, limit: number): Promise<Row[]> {
  const pk = table.primaryKey;
  if (pk.length === 0) {
    return (await sql<Row>`select * from ${sql.table(table.name)} order by ${sql.join(table.columns.map((c) => sql.ref(c)))}`.execute(db)).rows;
  }
  const keys = sql.join(pk.map((c) => sql.ref(c)));
  const where = after === null ? sql`` : pk.length === 1 ? sql`where ${sql.ref(pk[0]!)} > ${after[0]}` : sql`where (${keys}) > (${sql.join(after)})`;
  return (await sql<Row>`select * from ${sql.table(table.name)} ${where} order by ${keys} limit ${limit}`.execute(db)).rows;
}

async function countRows(db: AnyDb, table: string): Promise<number> {
  return Number((await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)}`.execute(db)).rows[0]?.n ?? 0);
}

/** Row count and the XOR of each row's SHA-256 (columns by name, values canonical): independent of order and dialect. */
async function checksum(db: AnyDb, table: TableInfo, batchRows: number): Promise<{ rows: number; checksum: string }> {
  const acc = Buffer.alloc(32);
  let rows = 0;
  let after: unknown[] | null = null;
  for (;;) {
    const batch = await readBatch(db, table, after, batchRows);
    for (const row of batch) {
      const digest = createHash('sha256').update(JSON.stringify(table.columns.map((c) => canonical(row[c])))).digest();
      for (let i = 0; i < 32; i++) acc[i]! ^= digest[i]!;
    }
    rows += batch.length;
    if (table.primaryKey.length === 0 || batch.length < batchRows) break;
    after = table.primaryKey.map((c) => batch[batch.length - 1]![c]);
  }
  return { rows, checksum: acc.toString('hex').slice(0, 32) };
}

/** Parameters per INSERT: inside SQLite's 32,766 and PostgreSQL's 65,535. */
const MAX_PARAMS = 16_000;

async function insertRows(db: AnyDb, dialect: DialectName, table: TableInfo, rows: Row[], overriding: boolean): Promise<void> {
  const per = Math.max(1, Math.floor(MAX_PARAMS / table.columns.length));
  const cols = sql.join(table.columns.map((c) => sql.ref(c)));
  // An identity column GENERATED ALWAYS takes the copied value only when told so.
  const override = overriding ? sql`overriding system value` : sql``;
  for (let i = 0; i < rows.length; i += per) {
    const values = rows.slice(i, i + per).map((row) => sql`(${sql.join(table.columns.map((c) => forTarget(row[c], dialect)))})`);
    await sql`insert into ${sql.table(table.name)} (${cols}) ${override} values ${sql.join(values)}`.execute(db);
  }
}

interface Progress {
  /** Primary key of the last row copied; null before the first. */
  after: unknown[] | null;
  rows: number;
  done: boolean;
}

async function readProgress(db: AnyDb): Promise<Map<string, string> | null> {
  const tables = await db.introspection.getTables();
  if (!tables.some((t) => t.name === PROGRESS_TABLE)) return null;
  const rows = (await sql<{ name: string; value: string }>`select name, value from ${sql.table(PROGRESS_TABLE)}`.execute(db)).rows;
  return new Map(rows.map((r) => [r.name, r.value]));
}

async function saveProgress(db: AnyDb, name: string, value: string): Promise<void> {
  await sql`delete from ${sql.table(PROGRESS_TABLE)} where name = ${name}`.execute(db);
  await sql`insert into ${sql.table(PROGRESS_TABLE)} (name, value) values (${name}, ${value})`.execute(db);
}

async function masterKeyIdOf(db: AnyDb): Promise<string | null> {
  const row = (await sql<{ value: string }>`select value from settings where name = 'master_key_id'`.execute(db)).rows[0];
  return row?.value ?? null;
}

/** Identity columns PostgreSQL generates ALWAYS: an explicit value needs OVERRIDING SYSTEM VALUE. */
async function generatedAlways(db: AnyDb, dialect: DialectName): Promise<Set<string>> {
  if (dialect !== 'postgres') return new Set();
  const rows = (await sql<{ t: string }>`select table_name as t from information_schema.columns where table_schema = current_schema() and is_identity = 'YES' and identity_generation = 'ALWAYS'`.execute(db)).rows;
  return new Set(rows.map((r) => r.t));
}

/**
 * Copies `source` into `target`. Refuses a target that holds data (unless `force`), another copy's
 * partial target, and a target sealed under another master key. Resumes a copy from the same source.
 * The source is read in one snapshot (a read transaction), so the copy and its check agree even if a
 * node still writes; what is written after the snapshot is not carried (see docs/scaling-out.md).
 */
export async function copyStore(from: StoreLocation, to: StoreLocation, opts: CopyOptions = {}): Promise<CopyReport> {
  const say = opts.progress ?? (() => {});
  const batchRows = opts.batchRows ?? 1000;
  if (sameStore(from, to)) throw new CopyRefused('the source and the target are the same store');
  const source = await open(from, 'source');
  let target: Opened | undefined;
  try {
    target = await open(to, 'target');
    const t = target;
    // Both at the newest schema: the copy needs one schema on both sides.
    await migrate(source.db as never);
    await migrate(t.db as never);
    const sourceSchema = commonColumns(await readSchema(source.db, source.dialect, new Set([PROGRESS_TABLE])));
    const targetSchema = commonColumns(await readSchema(t.db, t.dialect, new Set([PROGRESS_TABLE])));
    const differences = schemaDifferences(sourceSchema, targetSchema);
    if (differences.length > 0) throw new CopyRefused(`the two stores' schemas differ after migrating: ${differences.join('; ')}`);
    const plan = dependencyOrder(new Map([...targetSchema].filter(([name]) => !SKIPPED_TABLES.has(name))));
    const skipped = [...targetSchema.keys()].filter((name) => SKIPPED_TABLES.has(name)).sort();

    const masterKeyId = await masterKeyIdOf(source.db);
    const targetKeyId = await masterKeyIdOf(t.db);
    if (targetKeyId !== null && masterKeyId !== null && targetKeyId !== masterKeyId) {
      throw new CopyRefused(`the target's secrets are sealed under master key ${targetKeyId}, the source's under ${masterKeyId}: the copied secrets would not open there. Give the target's nodes the source's KEYWARD_MASTER_KEY, or copy into an empty database`);
    }

    const origin = describeLocation(from);
    let progress = await readProgress(t.db);
    if (progress !== null && progress.get('source') !== origin && !opts.force) {
      throw new CopyRefused(`the target holds a partial copy of another store (${progress.get('source') ?? 'unknown'}); run with --force to empty it and copy again`);
    }
    if (progress === null || opts.force) {
      const held = await heldRows(t.db, plan, masterKeyId);
      if (held.length > 0 && !opts.force) throw new CopyRefused(`the target is not empty (${held.join(', ')}); run with --force to empty it first`);
      if (held.length > 0 || progress !== null) say(`emptying the target (${held.length > 0 ? held.join(', ') : 'a partial copy'})`);
      await t.db.transaction().execute(async (trx) => {
        for (const table of [...plan].reverse()) await sql`delete from ${sql.table(table.name)}`.execute(trx);
        await trx.schema.dropTable(PROGRESS_TABLE).ifExists().execute();
        await trx.schema.createTable(PROGRESS_TABLE).addColumn('name', 'text', (c) => c.primaryKey()).addColumn('value', 'text', (c) => c.notNull()).execute();
        await saveProgress(trx, 'source', origin);
      });
      progress = new Map([['source', origin]]);
    } else {
      say(`resuming the copy from ${origin}`);
    }
    const started = progress;
    const overriding = await generatedAlways(t.db, t.dialect);

    say(`copying ${origin} → ${describeLocation(to)}: ${plan.length} tables${skipped.length > 0 ? ` (not copied: ${skipped.join(', ')})` : ''}`);
    // One snapshot of the source for the whole copy and its check. SQLite: a deferred transaction
    // (a reader beside the server's writer); PostgreSQL: repeatable read, read only.
    const snapshot = source.dialect === 'postgres' ? source.db.transaction().setIsolationLevel('repeatable read') : source.db.transaction();
    const tables = await snapshot.execute(async (src) => {
      if (source.dialect === 'postgres') await sql`set transaction read only`.execute(src);
      for (const table of plan) {
        const state: Progress = JSON.parse(started.get(`table:${table.name}`) ?? 'null') as Progress | null ?? { after: null, rows: 0, done: false };
        if (state.done) continue;
        const total = await countRows(src, table.name);
        for (;;) {
          const batch = await readBatch(src, table, state.after, batchRows);
          const last = batch[batch.length - 1];
          const next: Progress = {
            after: last === undefined ? state.after : table.primaryKey.map((c) => last[c]),
            rows: state.rows + batch.length,
            done: table.primaryKey.length === 0 || batch.length < batchRows,
          };
          await t.db.transaction().execute(async (trx) => {
            if (batch.length > 0) await insertRows(trx, t.dialect, table, batch, overriding.has(table.name));
            await saveProgress(trx, `table:${table.name}`, JSON.stringify(next));
          });
          Object.assign(state, next);
          say(`${table.name}: ${state.rows}/${total} rows${state.done ? ' done' : ''}`);
          if (state.done) break;
        }
      }
      await continueSequences(t, plan, say);
      const checks: TableCheck[] = [];
      for (const table of plan) {
        const a = await checksum(src, table, batchRows);
        const b = await checksum(t.db, table, batchRows);
        const ok = a.rows === b.rows && a.checksum === b.checksum;
        checks.push({ table: table.name, rows: a.rows, targetRows: b.rows, checksum: a.checksum, targetChecksum: b.checksum, ok });
        say(`checked ${table.name}: ${a.rows} rows, checksum ${a.checksum} ${ok ? 'matches' : `DIFFERS (target: ${b.rows} rows, ${b.checksum})`}`);
      }
      return checks;
    });
    const ok = tables.every((c) => c.ok);
    if (ok) await t.db.schema.dropTable(PROGRESS_TABLE).ifExists().execute();
    return { tables, skipped, masterKeyId, ok };
  } finally {
    await target?.close();
    await source.close();
  }
}

/** Tables in one and not the other, or with other columns. */
function schemaDifferences(a: Map<string, TableInfo>, b: Map<string, TableInfo>): string[] {
  const out: string[] = [];
  for (const name of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(name);
    const y = b.get(name);
    if (!x || !y) out.push(`table ${name} only in the ${x ? 'source' : 'target'}`);
    else if (x.columns.join() !== y.columns.join()) out.push(`${name} has columns (${x.columns.join(', ')}) in the source and (${y.columns.join(', ')}) in the target`);
  }
  return out;
}

/** Tables of the target that hold rows, bar the master key id a node records on its first start. */
async function heldRows(db: AnyDb, plan: TableInfo[], masterKeyId: string | null): Promise<string[]> {
  const held: string[] = [];
  for (const table of plan) {
    let n = await countRows(db, table.name);
    if (table.name === 'settings' && n > 0) {
      const rows = (await sql<{ name: string; value: string }>`select name, value from settings`.execute(db)).rows;
      n = rows.filter((r) => !(r.name === 'master_key_id' && (masterKeyId === null || r.value === masterKeyId))).length;
    }
    if (n > 0) held.push(`${table.name}: ${n} rows`);
  }
  return held;
}

/** PostgreSQL sequences continue after the copied values (SQLite's AUTOINCREMENT follows by itself). */
async function continueSequences(t: Opened, plan: TableInfo[], say: (line: string) => void): Promise<void> {
  if (t.dialect !== 'postgres') return;
  for (const table of plan) {
    for (const column of table.sequenced) {
      const result = await sql<{ next: number | string }>`
        select setval(pg_get_serial_sequence(quote_ident(${table.name}), ${column}), coalesce((select max(${sql.ref(column)}) from ${sql.table(table.name)}), 0) + 1, false) as next`.execute(t.db);
      say(`sequence ${table.name}.${column} continues at ${result.rows[0]?.next}`);
    }
  }
}
