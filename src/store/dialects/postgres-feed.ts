// The change feed's reads on PostgreSQL (../repos/changes.ts; docs/design/change-feed.md): a
// cursor is the snapshot of the last read, by what it could not see yet, and a read hands every
// row of a transaction that snapshot saw running or had not yet started, however late it commits.
import { sql, type Kysely } from 'kysely';
import type { ChangeRow, Database } from '../schema.js';

/** What a snapshot had not seen: the transactions it saw in progress, and every id from its xmax on. */
export interface SnapshotCursor {
  horizon: string;
  running: string[];
}

/** `xmin:xmax:xip,…` (pg_snapshot's text form) as the cursor of what that snapshot had not seen. */
export function cursorOfSnapshot(snapshot: string): SnapshotCursor {
  const [, xmax, xip = ''] = snapshot.split(':');
  if (xmax === undefined || !/^\d+$/.test(xmax)) throw new Error(`unexpected snapshot ${JSON.stringify(snapshot)}`);
  return { horizon: xmax, running: xip === '' ? [] : xip.split(',') };
}

/** Where a node starts following: the snapshot of now. */
export async function snapshotCursor(db: Kysely<Database>): Promise<SnapshotCursor> {
  const { rows } = await sql<{ snapshot: string }>`select pg_current_snapshot()::text as snapshot`.execute(db);
  return cursorOfSnapshot(rows[0]!.snapshot);
}

/** Hands `apply` the rows `cursor`'s snapshot did not see, in sequence order, `page` a query. */
export async function readUnseen(db: Kysely<Database>, cursor: SnapshotCursor, page: number, apply: (row: ChangeRow) => void): Promise<SnapshotCursor> {
  // One snapshot for the whole read (REPEATABLE READ): the rows and the snapshot remembered for
  // the next read agree, however many pages there are.
  return db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(async (trx) => {
    const { rows: [snap] } = await sql<{ snapshot: string }>`select pg_current_snapshot()::text as snapshot`.execute(trx);
    let seq = 0;
    for (;;) {
      // The few rows the last snapshot could not see, found by their transaction id (indexed),
      // then paged: never a walk of the whole table by sequence.
      const { rows } = await sql<ChangeRow>`
        with unseen as materialized (
          select seq, kind, target, workspace_id, created_at from changes
          where xid >= ${cursor.horizon}::xid8 or xid = any(${cursor.running}::xid8[]))
        select * from unseen where seq > ${seq} order by seq limit ${page}`.execute(trx);
      for (const row of rows) {
        seq = Number(row.seq);
        apply(row);
      }
      if (rows.length < page) break;
    }
    return cursorOfSnapshot(snap!.snapshot);
  });
}
