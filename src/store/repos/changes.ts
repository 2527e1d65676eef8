// The change feed: one row per key, value, root-key or app change, written in the change's own
// transaction, and the reads that hand every committed row to every node exactly once, however
// late it commits (docs/design/change-feed.md says why they are correct).
import type { Kysely } from 'kysely';
import { isPostgres } from '../dialects/sql.js';
import { readUnseen, snapshotCursor, type SnapshotCursor } from '../dialects/postgres-feed.js';
import type { ChangeKind, ChangeRow, Database } from '../schema.js';

export type { ChangeKind, ChangeRow };

/**
 * Where the next read starts. SQLite: the last sequence number applied (commits are serial, so
 * sequence order is commit order). PostgreSQL: the snapshot of the last read, by what it could not
 * see yet: the transactions it saw in progress (`running`) and every id from `horizon` (its xmax) on.
 */
export type FeedCursor = { seq: number } | SnapshotCursor;


const COLUMNS = ['seq', 'kind', 'target', 'workspace_id', 'created_at'] as const;

export class ChangeRepo {
  private readonly postgres: boolean;

  constructor(private readonly db: Kysely<Database>) {
    this.postgres = isPostgres(db);
  }

  async record(kind: ChangeKind, target: string, workspaceId: string, now: number): Promise<void> {
    await this.db.insertInto('changes').values({ kind, target, workspace_id: workspaceId, created_at: now }).execute();
  }

  /** One change per target, in statements of a bounded size (the values of a key import). */
  async recordMany(kind: ChangeKind, targets: readonly string[], workspaceId: string, now: number): Promise<void> {
    for (let i = 0; i < targets.length; i += 1000) {
      await this.db.insertInto('changes').values(targets.slice(i, i + 1000).map((target) => ({ kind, target, workspace_id: workspaceId, created_at: now }))).execute();
    }
  }

  /** Where a node starts following: what committed before now is already what its (empty) cache will load. */
  async start(): Promise<FeedCursor> {
    if (this.postgres) return snapshotCursor(this.db);
    const row = await this.db.selectFrom('changes').select((eb) => eb.fn.max('seq').as('seq')).executeTakeFirst();
    return { seq: Number(row?.seq ?? 0) };
  }

  /**
   * Hands `apply` every change committed since `cursor`'s read and not seen by it, oldest sequence
   * first, `page` rows a query; answers the cursor of this read. A read that fails part way leaves
   * the cursor where it was: the next one hands the same rows again (applying one twice is harmless).
   */
  async readSince(cursor: FeedCursor, page: number, apply: (row: ChangeRow) => void): Promise<FeedCursor> {
    if ('seq' in cursor) {
      let seq = cursor.seq;
      for (;;) {
        const rows = await this.db.selectFrom('changes').select(COLUMNS).where('seq', '>', seq).orderBy('seq').limit(page).execute() as ChangeRow[];
        for (const row of rows) {
          seq = Number(row.seq);
          apply(row);
        }
        if (rows.length < page) return { seq };
      }
    }
    return readUnseen(this.db, cursor, page, apply);
  }

  async prune(before: number): Promise<void> {
    await this.db.deleteFrom('changes').where('created_at', '<', before).execute();
  }
}
