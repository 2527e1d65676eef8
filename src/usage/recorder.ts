// Counts verify outcomes per key per minute and last-use times in memory, and writes them to the
// store in batches off the request path. Counts survive a failed flush and are retried.
import { sql, type Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Database } from '../store/schema.js';

export const MINUTE = 60_000;
/** Beyond this many pending rows new counts are dropped (and counted) rather than growing memory. */
const MAX_PENDING = 200_000;

export class UsageRecorder {
  private counts = new Map<string, number>();
  private lastUsed = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  dropped = 0;

  constructor(
    private readonly db: Kysely<Database>,
    private readonly logger: Logger,
    private readonly flushEveryMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.flushEveryMs);
    this.timer.unref();
  }

  record(keyId: string, code: string, now: number): void {
    const id = `${keyId}\u0000${now - (now % MINUTE)}\u0000${code}`;
    const prev = this.counts.get(id);
    if (prev === undefined && this.counts.size >= MAX_PENDING) {
      this.dropped++;
      return;
    }
    this.counts.set(id, (prev ?? 0) + 1);
  }

  touch(keyId: string, now: number): void {
    const prev = this.lastUsed.get(keyId);
    if (prev === undefined || prev < now) this.lastUsed.set(keyId, now);
  }

  /** Last use not yet written, so reads are fresh before the next flush. */
  pendingLastUsed(keyId: string): number | undefined {
    return this.lastUsed.get(keyId);
  }

  flush(): Promise<void> {
    if (this.flushing) return this.flushing.then(() => this.flush());
    if (this.counts.size === 0 && this.lastUsed.size === 0) return Promise.resolve();
    const counts = this.counts;
    const lastUsed = this.lastUsed;
    this.counts = new Map();
    this.lastUsed = new Map();
    this.flushing = this.write(counts, lastUsed)
      .catch((err: unknown) => {
        this.logger.warn({ err }, 'usage flush failed; will retry');
        for (const [id, n] of counts) this.counts.set(id, (this.counts.get(id) ?? 0) + n);
        for (const [k, t] of lastUsed) this.touch(k, t);
      })
      .finally(() => {
        this.flushing = undefined;
      });
    return this.flushing;
  }

  private async write(counts: Map<string, number>, lastUsed: Map<string, number>): Promise<void> {
    const rows = [...counts].map(([id, count]) => {
      const [key_id, bucket, code] = id.split('\u0000') as [string, string, string];
      return { key_id, bucket: Number(bucket), code, count };
    });
    await this.db.transaction().execute(async (trx) => {
      for (let i = 0; i < rows.length; i += 500) {
        await trx.insertInto('usage').values(rows.slice(i, i + 500))
          .onConflict((oc) => oc.columns(['key_id', 'bucket', 'code'])
            .doUpdateSet({ count: sql<number>`usage.count + excluded.count` }))
          .execute();
      }
      for (const [keyId, at] of lastUsed) {
        await trx.updateTable('keys').set({ last_used_at: at })
          .where('id', '=', keyId)
          .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', at)]))
          .execute();
      }
    });
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush();
  }
}
