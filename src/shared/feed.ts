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
/** Gaps remembered at most (a burst of rolled-back inserts cannot grow memory without bound). */
const MAX_GAPS = 10_000;
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
  /**
   * Sequence numbers skipped over, with when they were first missed. A PostgreSQL sequence is
   * taken at insert but seen at commit, so a slower transaction's row can appear behind a newer
   * one; each gap is looked up again until it appears or is older than the window (a rollback).
   */
  private readonly gaps = new Map<number, number>();

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
    const changes = this.store.repos.changes;
    try {
      // New changes, in order, each applied once.
      for (;;) {
        const rows = await changes.after(this.lastSeq, BATCH);
        for (const row of rows) {
          const seq = Number(row.seq);
          for (let missing = this.lastSeq + 1; missing < seq && this.gaps.size < MAX_GAPS; missing++) this.gaps.set(missing, started);
          this.lastSeq = seq;
          this.apply(row);
        }
        if (rows.length < BATCH) break;
      }
      // Late commits: the gaps that have appeared since.
      for (const [seq, at] of this.gaps) if (at < started - RECENT_WINDOW_MS) this.gaps.delete(seq);
      if (this.gaps.size > 0) {
        for (const row of await changes.bySeq([...this.gaps.keys()])) {
          this.gaps.delete(Number(row.seq));
          this.apply(row);
        }
      }
      this.lastRead = started;
      if (started - this.lastPrune > PRUNE_EVERY_MS) {
        this.lastPrune = started;
        await changes.prune(started - RETENTION_MS);
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
    if (row.kind === 'imports') {
      this.caches.importsChanged?.(row.target);
      return;
    }
    if (row.kind === 'session' || row.kind === 'member' || row.kind === 'root_key') {
      // A credential's rights changed: its open change streams end (or recheck) on this node too.
      this.caches.invalidateAccess?.({ kind: row.kind, target: row.target, workspaceId: row.workspace_id });
      if (row.kind !== 'root_key') return;
    }
    this.caches.invalidateKey(row.target);
    if (row.kind === 'key') this.emit({ keyId: row.target, workspaceId: row.workspace_id });
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }
}
