// Usage counts per key, minute bucket and verdict (written in batches by ../usage-sink.ts).
import { sql, type Kysely } from 'kysely';
import type { Database } from '../schema.js';

export class UsageRepo {
  constructor(private readonly db: Kysely<Database>) {}

  /** Sums per (bucket of `size` ms, code) over [from, until). */
  async counts(keyId: string, from: number, until: number, size: number): Promise<{ at: number; code: string; n: number }[]> {
    const bucket = sql<number>`bucket - (bucket % ${sql.lit(size)})`;
    const rows = await this.db.selectFrom('usage')
      .select([bucket.as('at'), 'code', (eb) => eb.fn.sum<number>('count').as('n')])
      .where('key_id', '=', keyId).where('bucket', '>=', from).where('bucket', '<', until)
      .groupBy([bucket, 'code']).execute();
    return rows.map((r) => ({ at: Number(r.at), code: r.code, n: Number(r.n) }));
  }
}
