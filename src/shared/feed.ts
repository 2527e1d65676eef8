// Follows the store's change feed: every few hundred milliseconds, the changes committed since the
// last read, each invalidated here. This is what makes a revoke hold on every node that reaches the
// store, whatever Redis does; Redis pub/sub only makes it arrive sooner. A change is seen however
// late it commits after others, whatever its size, and a transaction held open delays nothing
// else: no time window or gap count decides anything (docs/design/change-feed.md).
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import type { ChangeRow, FeedCursor } from '../store/repos/changes.js';
import type { Store } from '../store/db.js';
import type { ChangeEvent, Invalidatable } from './bus.js';

/** Rows a query: a node that was away reads what it missed in pages, not in one answer. */
const PAGE = 1000;
/** Changes older than this are pruned: a node away longer than that has dropped its cache anyway. */
const RETENTION_MS = 24 * 3_600_000;
const PRUNE_EVERY_MS = 10 * 60_000;

export interface FeedStatus {
  /** Milliseconds since the feed was last read successfully. */
  lagMs: number;
  /** The highest sequence number applied so far (0 before any). */
  lastSeq: number;
}

export class ChangeFeed {
  private cursor: FeedCursor | undefined;
  private lastSeq = 0;
  private lastRead: number;
  private lastPrune = 0;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private following: Promise<void> | undefined;
  private lastWarn = 0;

  constructor(
    private readonly store: Store,
    private readonly caches: Invalidatable,
    private readonly emit: (change: ChangeEvent) => void,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly everyMs: number,
  ) {
    this.lastRead = clock.now();
  }

  /**
   * Starts from now: everything committed before is already in what this node will load. A store
   * that does not answer yet does not stop the node: the first read that reaches it starts there.
   */
  async start(): Promise<void> {
    try {
      this.cursor = await this.store.changeFeed.start();
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'change feed not started yet; it starts at its first read');
    }
    this.lastRead = this.clock.now();
    // A tick that finds a read under way skips: that read is recent enough.
    this.timer = setInterval(() => this.running ?? void this.poll(), this.everyMs);
    this.timer.unref();
  }

  /**
   * Reads the feed now (also used when Redis reconnects, instead of dropping the cache): resolves
   * once a read that began after this call has finished. A read already under way may have begun
   * before what the caller wants seen, so one more follows it (one, however many callers wait).
   */
  poll(): Promise<void> {
    if (!this.running) {
      this.running = this.read().finally(() => {
        this.running = undefined;
      });
      return this.running;
    }
    this.following ??= this.running.then(() => {
      this.following = undefined;
      return this.poll();
    });
    return this.following;
  }

  status(): FeedStatus {
    return { lagMs: Math.max(0, this.clock.now() - this.lastRead), lastSeq: this.lastSeq };
  }

  private async read(): Promise<void> {
    const started = this.clock.now();
    const changes = this.store.changeFeed;
    try {
      if (!this.cursor) {
        // Started late: whatever was cached before this point may predate a change the feed will
        // not show, so it goes (a load still under way does not fill the cache either).
        this.cursor = await changes.start();
        this.caches.clear();
      }
      this.cursor = await changes.readSince(this.cursor, PAGE, (row) => this.apply(row));
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
    this.lastSeq = Math.max(this.lastSeq, Number(row.seq));
    if (row.kind === 'value') {
      this.caches.invalidateHash(row.target);
      return;
    }
    if (row.kind === 'app') {
      this.caches.invalidateApp(row.target);
      this.emit({ appId: row.target, workspaceId: row.workspace_id });
      return;
    }
    if (row.kind === 'identity') {
      this.caches.invalidateIdentity?.(row.workspace_id, row.target);
      return;
    }
    if (row.kind === 'overrides') {
      this.caches.overridesChanged?.(row.target);
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
    await this.following;
    await this.running;
  }
}
