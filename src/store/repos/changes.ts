// The change feed: one row per key, value or root-key change, written in the change's transaction.
import type { Kysely } from 'kysely';
import type { ChangesTable, Database } from '../schema.js';

export type ChangeKind = ChangesTable['kind'];

export interface ChangeRow {
  seq: number;
  kind: ChangeKind;
  target: string;
  workspace_id: string;
  created_at: number;
}

export class ChangeRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async record(kind: ChangeKind, target: string, workspaceId: string, now: number): Promise<void> {
    await this.db.insertInto('changes').values({ kind, target, workspace_id: workspaceId, created_at: now }).execute();
  }

  /** One change per target, in statements of a bounded size (the values of a key import). */
  async recordMany(kind: ChangeKind, targets: readonly string[], workspaceId: string, now: number): Promise<void> {
    for (let i = 0; i < targets.length; i += 1000) {
      await this.db.insertInto('changes').values(targets.slice(i, i + 1000).map((target) => ({ kind, target, workspace_id: workspaceId, created_at: now }))).execute();
    }
  }

  async latest(): Promise<number> {
    const row = await this.db.selectFrom('changes').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
    return Number(row?.seq ?? 0);
  }

  /** Changes after `seq`, oldest first. */
  after(seq: number, limit: number): Promise<ChangeRow[]> {
    return this.db.selectFrom('changes').selectAll().where('seq', '>', seq).orderBy('seq').limit(limit).execute() as Promise<ChangeRow[]>;
  }

  /** The changes with these sequence numbers (those that exist). */
  bySeq(seqs: readonly number[]): Promise<ChangeRow[]> {
    return this.db.selectFrom('changes').selectAll().where('seq', 'in', [...seqs]).orderBy('seq').execute() as Promise<ChangeRow[]>;
  }

  async prune(before: number): Promise<void> {
    await this.db.deleteFrom('changes').where('created_at', '<', before).execute();
  }
}
