// Usage caps spent from slices: a key's cap columns locked for a lease, and the units each node
// holds (credit_slices). Called inside one transaction per batch of leases (src/credits/slices.ts).
import { sql, type Kysely } from 'kysely';
import { lockRows } from '../dialects/sql.js';
import type { Database } from '../schema.js';

/** A node's slice of a key as the store has it: totals over the period `epoch`. */
export interface SliceRow {
  epoch: number;
  leased: number;
  released: number;
  spent: number;
}

const CAP_COLUMNS = ['remaining', 'refill_amount', 'refill_interval', 'last_refill_at', 'usage_low', 'remaining_base', 'credit_epoch'] as const;
const SLICE_COLUMNS = ['epoch', 'leased', 'released', 'spent'] as const;

/** A key's cap columns, with its id. */
/** The cap columns of a key. */
export interface CapRow {
  remaining: number | null;
  refill_amount: number | null;
  refill_interval: 'daily' | 'monthly' | null;
  last_refill_at: number | null;
  usage_low: 'due' | 'sent' | null;
  remaining_base: number | null;
  credit_epoch: number;
}

export type CapRowOf = CapRow & { id: string };

/** Statements take at most this many keys (bound parameters stay far below every store's limit). */
const CHUNK = 500;

function chunks<T>(items: readonly T[]): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += CHUNK) out.push(items.slice(i, i + CHUNK));
  return out;
}

const num = (v: unknown): number => Number(v);
const sliceOf = (r: { epoch: unknown; leased: unknown; released: unknown; spent: unknown }): SliceRow => ({ epoch: num(r.epoch), leased: num(r.leased), released: num(r.released), spent: num(r.spent) });

export class CreditRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /**
   * The cap columns of these keys, their rows locked until the transaction ends, in id order (so
   * two batches never wait on each other in a cycle; SQLite's transactions hold the write lock from
   * their start). Every lease and give-back of a key begins here, so one node's writes to a key are
   * serialized in the store even when the node gave up waiting on an earlier one.
   */
  async lockCaps(ids: readonly string[]): Promise<CapRowOf[]> {
    const out: CapRowOf[] = [];
    for (const part of chunks([...ids].sort())) {
      const query = this.db.selectFrom('keys').select(['id', ...CAP_COLUMNS]).where('id', 'in', part).orderBy('id');
      for (const row of await lockRows(this.db, query).execute()) {
        out.push({ ...row, remaining: row.remaining === null ? null : num(row.remaining), credit_epoch: num(row.credit_epoch) });
      }
    }
    return out;
  }

  /** The cap columns without a lock: what a dry run reads. */
  readCap(id: string): Promise<CapRow | undefined> {
    return this.db.selectFrom('keys').select(CAP_COLUMNS).where('id', '=', id).executeTakeFirst();
  }

  /** Writes what leases decided, one statement for many keys (rows locked by lockCaps). */
  async setCaps(rows: readonly { id: string; remaining: number; last_refill_at: number | null; credit_epoch: number; usage_low: CapRow['usage_low'] }[]): Promise<void> {
    for (const part of chunks(rows)) {
      const values = sql.join(part.map((r) => sql`(CAST(${r.id} AS text), CAST(${r.remaining} AS bigint), CAST(${r.last_refill_at} AS bigint), CAST(${r.credit_epoch} AS bigint), CAST(${r.usage_low} AS text))`));
      await sql`WITH v(id, remaining, last_refill_at, credit_epoch, usage_low) AS (VALUES ${values})
        UPDATE keys SET remaining = v.remaining, last_refill_at = v.last_refill_at, credit_epoch = v.credit_epoch, usage_low = v.usage_low
        FROM v WHERE keys.id = v.id`.execute(this.db);
    }
  }

  /**
   * Adds units to what this node holds of each key in period `epoch` (a new period starts the
   * totals again); `spent` only ever grows within a period. A row that holds a later write of this
   * node (`seq`) is left alone and missing from the answer: a write that lands late never overrides
   * a newer one.
   */
  async reserve(nodeId: string, rows: readonly { keyId: string; epoch: number; units: number; spent: number }[], seq: number, now: number): Promise<Map<string, SliceRow>> {
    const out = new Map<string, SliceRow>();
    for (const part of chunks(rows)) {
      const got = await this.db.insertInto('credit_slices')
        .values(part.map((r) => ({ key_id: r.keyId, node_id: nodeId, epoch: r.epoch, leased: r.units, released: 0, spent: r.spent, seq, updated_at: now })))
        .onConflict((oc) => oc.columns(['key_id', 'node_id']).doUpdateSet({
          leased: sql`CASE WHEN credit_slices.epoch = excluded.epoch THEN credit_slices.leased + excluded.leased ELSE excluded.leased END`,
          released: sql`CASE WHEN credit_slices.epoch = excluded.epoch THEN credit_slices.released ELSE 0 END`,
          spent: sql`CASE WHEN credit_slices.epoch = excluded.epoch AND credit_slices.spent > excluded.spent THEN credit_slices.spent ELSE excluded.spent END`,
          epoch: sql`excluded.epoch`,
          seq: sql`excluded.seq`,
          updated_at: sql`excluded.updated_at`,
        }).where(sql<boolean>`credit_slices.seq < excluded.seq`))
        .returning(['key_id', ...SLICE_COLUMNS])
        .execute();
      for (const r of got) out.set(r.key_id, sliceOf(r));
    }
    return out;
  }

  /** This node's slices of these keys, as stored (read under the keys' locks). */
  async slices(nodeId: string, keyIds: readonly string[]): Promise<Map<string, SliceRow>> {
    const out = new Map<string, SliceRow>();
    for (const part of chunks(keyIds)) {
      const got = await this.db.selectFrom('credit_slices').select(['key_id', ...SLICE_COLUMNS]).where('node_id', '=', nodeId).where('key_id', 'in', part).execute();
      for (const r of got) out.set(r.key_id, sliceOf(r));
    }
    return out;
  }

  /** Unspent units back into each key's remaining, only while the key is still in the units' period. */
  async giveBack(rows: readonly { keyId: string; epoch: number; units: number }[]): Promise<void> {
    for (const part of chunks(rows)) {
      const values = sql.join(part.map((r) => sql`(CAST(${r.keyId} AS text), CAST(${r.epoch} AS bigint), CAST(${r.units} AS bigint))`));
      await sql`WITH v(id, epoch, units) AS (VALUES ${values})
        UPDATE keys SET remaining = keys.remaining + v.units
        FROM v WHERE keys.id = v.id AND keys.credit_epoch = v.epoch AND keys.remaining IS NOT NULL`.execute(this.db);
    }
  }

  /**
   * Records units this node gave up (given back, or void) and what it has spent, in period
   * `epoch`; a row already in another period only takes the new `seq`. Rows missing from the
   * answer do not exist or hold a later write of this node.
   */
  async release(nodeId: string, rows: readonly { keyId: string; epoch: number; units: number; spent: number }[], seq: number, now: number): Promise<Map<string, SliceRow>> {
    const out = new Map<string, SliceRow>();
    for (const part of chunks(rows)) {
      const values = sql.join(part.map((r) => sql`(CAST(${r.keyId} AS text), CAST(${r.epoch} AS bigint), CAST(${r.units} AS bigint), CAST(${r.spent} AS bigint))`));
      const got = await sql<{ key_id: string; epoch: unknown; leased: unknown; released: unknown; spent: unknown }>`
        WITH v(id, epoch, units, spent) AS (VALUES ${values})
        UPDATE credit_slices SET
          released = CASE WHEN credit_slices.epoch = v.epoch THEN credit_slices.released + v.units ELSE credit_slices.released END,
          spent = CASE WHEN credit_slices.epoch = v.epoch AND credit_slices.spent < v.spent THEN v.spent ELSE credit_slices.spent END,
          seq = CAST(${seq} AS bigint), updated_at = CAST(${now} AS bigint)
        FROM v WHERE credit_slices.key_id = v.id AND credit_slices.node_id = ${nodeId} AND credit_slices.seq < CAST(${seq} AS bigint)
        RETURNING credit_slices.key_id, credit_slices.epoch, credit_slices.leased, credit_slices.released, credit_slices.spent`.execute(this.db);
      for (const r of got.rows) out.set(r.key_id, sliceOf(r));
    }
    return out;
  }

  /** On a clean stop: this node's slices that hold nothing any more are forgotten. */
  async forgetNode(nodeId: string): Promise<void> {
    await this.db.deleteFrom('credit_slices').where('node_id', '=', nodeId).where(sql<boolean>`leased = released + spent`).execute();
  }

  /**
   * Slices of nodes that are gone (no heartbeat) and whose period has ended, or whose key is gone:
   * their units can no longer be spent or given back, so the rows only take space. Slices of a gone
   * node in a current period stay: they are the units its crash stranded, there to be read.
   */
  async prune(): Promise<number> {
    const res = await this.db.deleteFrom('credit_slices')
      .where(sql<boolean>`NOT EXISTS (SELECT 1 FROM nodes WHERE nodes.id = credit_slices.node_id)`)
      .where(sql<boolean>`NOT EXISTS (SELECT 1 FROM keys WHERE keys.id = credit_slices.key_id AND keys.credit_epoch = credit_slices.epoch)`)
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }

  /** Units reserved for nodes and not yet given back or reported spent, per key (tests, operators). */
  async held(keyId: string): Promise<{ nodeId: string; epoch: number; held: number }[]> {
    const rows = await this.db.selectFrom('credit_slices').select(['node_id', 'epoch', 'leased', 'released', 'spent']).where('key_id', '=', keyId).execute();
    return rows.map((r) => ({ nodeId: r.node_id, epoch: Number(r.epoch), held: Number(r.leased) - Number(r.released) - Number(r.spent) }));
  }
}
