// This node's heartbeat in the store, and how many nodes are live: while Redis is away, each node
// enforces its share of every rate limit, so together they stay near the limit, not N times it.
// Heartbeats are stamped on the store's clock (sampled at every beat), so nodes whose own clocks
// disagree still agree on who is live.
import { randomBytes } from 'node:crypto';
import type { SharedClock } from '../lib/clock.js';
import type { Store } from '../store/db.js';

const BEAT_MS = 5000;
/** A node not seen for three beats is taken as gone. */
const LIVE_WITHIN_MS = 3 * BEAT_MS;

export class NodeRegistry {
  readonly id = `node_${randomBytes(8).toString('hex')}`;
  private count = 1;
  private timer: NodeJS.Timeout | undefined;
  private beating: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    /** The store's clock: sampled here at every beat. */
    private readonly clock: SharedClock,
    /** Whether the store is known to be down (its circuit is open): then nothing is asked of it. */
    private readonly storeDown: () => boolean = () => false,
  ) {}

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), BEAT_MS);
    this.timer.unref();
  }

  /** Live nodes as of the last heartbeat (at least this one). */
  live(): number {
    return this.count;
  }

  /**
   * Live nodes read from the store now, this node's beat first: what a node divides limits by when
   * Redis stops answering. A count from the last beat may be one that other nodes never had (nodes
   * started together each saw a different number). The last count when the store is known down or
   * does not answer (each wait is bounded by the store's timeout).
   */
  async fresh(): Promise<number> {
    if (this.storeDown()) return this.count;
    await this.beat();
    return this.count;
  }

  beat(): Promise<void> {
    this.beating ??= this.beatOnce().finally(() => {
      this.beating = undefined;
    });
    return this.beating;
  }

  private async beatOnce(): Promise<void> {
    try {
      await this.clock.sample();
      const now = this.clock.now();
      await this.store.repos.nodes.beat(this.id, now);
      this.count = Math.max(1, await this.store.repos.nodes.liveSince(now - LIVE_WITHIN_MS));
      await this.store.repos.nodes.prune(now - 10 * LIVE_WITHIN_MS);
    } catch {
      // The store is away too: keep the last count; the limits stay shared as they were.
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.beating;
    await this.store.repos.nodes.leave(this.id).catch(() => {});
  }
}
