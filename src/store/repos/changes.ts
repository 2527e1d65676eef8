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

  async latest(): Promise<number> {
    const row = await this.db.selectFrom('changes').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
    return Number(row?.seq ?? 0);
  }

  /**
   * Changes after `seq`, and every change made since `recentSince`: a sequence number is taken when
   * a row is inserted but seen when its transaction commits, so a slow transaction can surface
   * behind a newer one. Re-reading a short recent window catches it (invalidating twice is harmless).
   */
  after(seq: number, recentSince: number, limit: number): Promise<ChangeRow[]> {
    return this.db.selectFrom('changes').selectAll()
      .where((eb) => eb.or([eb('seq', '>', seq), eb('created_at', '>=', recentSince)]))
      .orderBy('seq').limit(limit).execute() as Promise<ChangeRow[]>;
  }

  async prune(before: number): Promise<void> {
    await this.db.deleteFrom('changes').where('created_at', '<', before).execute();
  }
}
