// Follows the store's change feed: every few hundred milliseconds one indexed query for changes
// since the last one seen, and each is invalidated here. This is what makes a revoke hold on every
// node that reaches the store, whatever Redis does; Redis pub/sub only makes it arrive sooner.
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import type { ChangeRow } from '../store/repos/changes.js';
import type { Store } from '../store/db.js';
import type { Invalidatable, KeyChange } from './bus.js';

/** A slow transaction's row can surface this long after its sequence number was taken. */
const RECENT_WINDOW_MS = 10_000;
const BATCH = 1000;
/** Changes older than this are pruned: a node away longer than that has dropped its cache anyway. */
const RETENTION_MS = 24 * 3_600_000;
const PRUNE_EVERY_MS = 10 * 60_000;

export interface FeedStatus {
  /** Milliseconds since the feed was last read successfully. */
  lagMs: number;
  lastSeq: number;
}

export class ChangeFeed {
  private lastSeq = 0;
  private lastRead: number;
  private lastPrune = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private lastWarn = 0;
  /** Sequence numbers already applied within the recent window, so each change is applied once. */
  private readonly applied = new Map<number, number>();

  constructor(
    private readonly store: Store,
    private readonly caches: Invalidatable,
    private readonly emit: (change: KeyChange) => void,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly everyMs: number,
  ) {
    this.lastRead = clock.now();
  }

  /** Starts from the newest change: everything before it is already in what this node will load. */
  async start(): Promise<void> {
    this.lastSeq = await this.store.repos.changes.latest();
    this.lastRead = this.clock.now();
    this.timer = setInterval(() => void this.poll(), this.everyMs);
    this.timer.unref();
  }

  /** Reads the feed now (also used when Redis reconnects, instead of dropping the cache). */
  poll(): Promise<void> {
    this.running ??= this.read().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  status(): FeedStatus {
    return { lagMs: Math.max(0, this.clock.now() - this.lastRead), lastSeq: this.lastSeq };
  }

  private async read(): Promise<void> {
    const started = this.clock.now();
    try {
      for (;;) {
        const rows = await this.store.repos.changes.after(this.lastSeq, started - RECENT_WINDOW_MS, BATCH);
        for (const row of rows) {
          const seq = Number(row.seq);
          if (this.applied.has(seq)) continue;
          this.applied.set(seq, row.created_at);
          this.apply(row);
        }
        const newest = rows.reduce((m, r) => Math.max(m, Number(r.seq)), this.lastSeq);
        const advanced = newest > this.lastSeq;
        this.lastSeq = newest;
        if (rows.length < BATCH || !advanced) break;
      }
      this.lastRead = started;
      for (const [seq, at] of this.applied) if (at < started - 2 * RECENT_WINDOW_MS) this.applied.delete(seq);
      if (started - this.lastPrune > PRUNE_EVERY_MS) {
        this.lastPrune = started;
        await this.store.repos.changes.prune(started - RETENTION_MS);
      }
    } catch (err) {
      if (started - this.lastWarn > 10_000) {
        this.lastWarn = started;
        this.logger.warn({ err: (err as Error).message }, 'change feed unreadable; cached keys answer until the store is back (KEYWARD_CACHE_STALE_MS)');
      }
    }
  }

  private apply(row: ChangeRow): void {
    if (row.kind === 'value') {
      this.caches.invalidateHash(row.target);
      return;
    }
    if (row.kind === 'app') {
      this.caches.invalidateApp(row.target);
      return;
    }
    this.caches.invalidateKey(row.target);
    if (row.kind === 'key') this.emit({ keyId: row.target, workspaceId: row.workspace_id });
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
