// Usage caps spent from slices: a key's cap columns locked for a lease, and the units each node
// holds (credit_slices). Called inside one transaction per batch of leases (src/credits/slices.ts).
import { PostgresAdapter, sql, type Kysely } from 'kysely';
import type { CapRow } from '../../credits/decide.js';
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

export class CreditRepo {
  private readonly postgres: boolean;

  constructor(private readonly db: Kysely<Database>) {
    this.postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  }

  /**
   * A key's cap columns, its row locked until the transaction ends (SQLite's transactions hold the
   * write lock from their start). Every lease and give-back of a key begins here, so one node's
   * writes to a key are serialized in the store even when the node gave up waiting on an earlier one.
   */
  lockCap(id: string): Promise<CapRow | undefined> {
    const query = this.db.selectFrom('keys').select(CAP_COLUMNS).where('id', '=', id);
    return (this.postgres ? query.forUpdate() : query).executeTakeFirst();
  }

  /** The cap columns without a lock: what a dry run reads. */
  readCap(id: string): Promise<CapRow | undefined> {
    return this.db.selectFrom('keys').select(CAP_COLUMNS).where('id', '=', id).executeTakeFirst();
  }

  async setCap(id: string, cap: { remaining: number; last_refill_at: number | null; credit_epoch: number; usage_low: CapRow['usage_low'] }): Promise<void> {
    await this.db.updateTable('keys').set(cap).where('id', '=', id).execute();
  }

  /**
   * Adds `units` to what this node holds of the key in period `epoch` (a new period starts the
   * totals again). `spent` only ever grows within a period. Nothing is written, and undefined comes
   * back, when the row holds a later write of this node (`seq`): a write that lands late never
   * overrides a newer one.
   */
  reserve(keyId: string, nodeId: string, epoch: number, units: number, spent: number, seq: number, now: number): Promise<SliceRow | undefined> {
    return this.db.insertInto('credit_slices')
      .values({ key_id: keyId, node_id: nodeId, epoch, leased: units, released: 0, spent, seq, updated_at: now })
      .onConflict((oc) => oc.columns(['key_id', 'node_id']).doUpdateSet({
        leased: sql`CASE WHEN credit_slices.epoch = excluded.epoch THEN credit_slices.leased + excluded.leased ELSE excluded.leased END`,
        released: sql`CASE WHEN credit_slices.epoch = excluded.epoch THEN credit_slices.released ELSE 0 END`,
        spent: sql`CASE WHEN credit_slices.epoch = excluded.epoch AND credit_slices.spent > excluded.spent THEN credit_slices.spent ELSE excluded.spent END`,
        epoch: sql`excluded.epoch`,
        seq: sql`excluded.seq`,
        updated_at: sql`excluded.updated_at`,
      }).where(sql<boolean>`credit_slices.seq < excluded.seq`))
      .returning(SLICE_COLUMNS)
      .executeTakeFirst();
  }

  /** This node's slice of a key, as stored (read under the key's lock). */
  slice(keyId: string, nodeId: string): Promise<SliceRow | undefined> {
    return this.db.selectFrom('credit_slices').select(SLICE_COLUMNS).where('key_id', '=', keyId).where('node_id', '=', nodeId).executeTakeFirst();
  }

  /** Unspent units back into the key's remaining, only while the key is still in period `epoch`. */
  async giveBack(keyId: string, epoch: number, units: number): Promise<boolean> {
    const res = await this.db.updateTable('keys').set({ remaining: sql`remaining + CAST(${units} AS bigint)` })
      .where('id', '=', keyId).where('credit_epoch', '=', epoch).where('remaining', 'is not', null).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /**
   * Records units this node gave up (given back, or void) and what it has spent, in period
   * `epoch`; a row already in a later period only takes the new `seq`. Undefined when there is no
   * row or it holds a later write of this node.
   */
  release(keyId: string, nodeId: string, epoch: number, units: number, spent: number, seq: number, now: number): Promise<SliceRow | undefined> {
    return this.db.updateTable('credit_slices')
      .set({
        released: sql`CASE WHEN epoch = CAST(${epoch} AS bigint) THEN released + CAST(${units} AS bigint) ELSE released END`,
        spent: sql`CASE WHEN epoch = CAST(${epoch} AS bigint) AND spent < CAST(${spent} AS bigint) THEN CAST(${spent} AS bigint) ELSE spent END`,
        seq,
        updated_at: now,
      })
      .where('key_id', '=', keyId).where('node_id', '=', nodeId).where('seq', '<', seq)
      .returning(SLICE_COLUMNS)
      .executeTakeFirst();
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
