// What a migrated store holds, read from the store itself on either dialect: its tables, their
// columns, primary keys, the tables each refers to, and the columns a sequence feeds. The store copy
// (./copy.ts) is planned from this, so a table a later migration adds is copied without a change here.
import { sql, type Kysely } from 'kysely';
import type { DialectName } from './dialects/types.js';

// Any table of any schema version: the copy names tables only as the store reports them.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyDb = Kysely<any>;

export interface TableInfo {
  name: string;
  /** Every column, sorted by name (the order is the same on both dialects). */
  columns: string[];
  /** Primary key columns in key order; empty when the table has none. */
  primaryKey: string[];
  /** Tables this one has foreign keys to (itself excluded). */
  references: string[];
  /** Columns fed by a sequence (PostgreSQL serial or identity; SQLite AUTOINCREMENT). */
  sequenced: string[];
}

interface Named {
  name: string;
}

/** The store's tables (Kysely's migration tables and views left out), each with its keys. */
export async function readSchema(db: AnyDb, dialect: DialectName, ignore: ReadonlySet<string> = new Set()): Promise<Map<string, TableInfo>> {
  const current = dialect === 'postgres' ? (await sql<{ schema: string }>`select current_schema() as schema`.execute(db)).rows[0]?.schema : undefined;
  const tables = (await db.introspection.getTables()).filter((t) => !t.isView && !ignore.has(t.name) && (current === undefined || t.schema === current));
  const out = new Map<string, TableInfo>();
  for (const t of tables) {
    const keys = dialect === 'postgres' ? await postgresKeys(db, t.name) : await sqliteKeys(db, t.name);
    out.set(t.name, {
      name: t.name,
      columns: t.columns.map((c) => c.name).sort(),
      primaryKey: keys.primaryKey,
      references: [...new Set(keys.references)].filter((r) => r !== t.name).sort(),
      sequenced: t.columns.filter((c) => c.isAutoIncrementing).map((c) => c.name),
    });
  }
  return out;
}

async function sqliteKeys(db: AnyDb, table: string): Promise<{ primaryKey: string[]; references: string[] }> {
  const columns = (await sql<{ name: string; pk: number }>`select name, pk from pragma_table_info(${table})`.execute(db)).rows;
  const refs = (await sql<{ table: string }>`select "table" from pragma_foreign_key_list(${table})`.execute(db)).rows;
  return {
    primaryKey: columns.filter((c) => Number(c.pk) > 0).sort((a, b) => Number(a.pk) - Number(b.pk)).map((c) => c.name),
    references: refs.map((r) => r.table),
  };
}

async function postgresKeys(db: AnyDb, table: string): Promise<{ primaryKey: string[]; references: string[] }> {
  const pk = await sql<Named>`
    select a.attname as name from pg_index i
    join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
    where i.indrelid = to_regclass(quote_ident(${table})) and i.indisprimary
    order by array_position(i.indkey, a.attnum)`.execute(db);
  const refs = await sql<Named>`
    select ref.relname as name from pg_constraint c join pg_class ref on ref.oid = c.confrelid
    where c.contype = 'f' and c.conrelid = to_regclass(quote_ident(${table}))`.execute(db);
  return { primaryKey: pk.rows.map((r) => r.name), references: refs.rows.map((r) => r.name) };
}

/** Parents before children: the order rows can be inserted in with every foreign key checked. */
export function dependencyOrder(tables: Map<string, TableInfo>): TableInfo[] {
  const ordered: TableInfo[] = [];
  const placed = new Set<string>();
  const pending = [...tables.values()].sort((a, b) => a.name.localeCompare(b.name));
  while (pending.length > 0) {
    const ready = pending.findIndex((t) => t.references.every((r) => placed.has(r) || !tables.has(r)));
    if (ready < 0) throw new Error(`foreign keys form a cycle among ${pending.map((t) => t.name).join(', ')}; the copy cannot order them`);
    const [next] = pending.splice(ready, 1);
    ordered.push(next!);
    placed.add(next!.name);
  }
  return ordered;
}
