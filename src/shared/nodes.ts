// This node's heartbeat in the store, and how many nodes are live: while Redis is away, each node
// enforces its share of every rate limit, so together they stay near the limit, not N times it.
import { randomBytes } from 'node:crypto';
import type { Clock } from '../lib/clock.js';
import type { Store } from '../store/db.js';

const BEAT_MS = 5000;
/** A node not seen for three beats is taken as gone. */
const LIVE_WITHIN_MS = 3 * BEAT_MS;

export class NodeRegistry {
  readonly id = `node_${randomBytes(8).toString('hex')}`;
  private count = 1;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly store: Store, private readonly clock: Clock) {}

  async start(): Promise<void> {
    await this.beat();
    this.timer = setInterval(() => void this.beat(), BEAT_MS);
    this.timer.unref();
  }

  /** Live nodes as of the last heartbeat (at least this one). */
  live(): number {
    return this.count;
  }

  async beat(): Promise<void> {
    const now = this.clock.now();
    try {
      await this.store.repos.nodes.beat(this.id, now);
      this.count = Math.max(1, await this.store.repos.nodes.liveSince(now - LIVE_WITHIN_MS));
      await this.store.repos.nodes.prune(now - 10 * LIVE_WITHIN_MS);
    } catch {
      // The store is away too: keep the last count; the limits stay shared as they were.
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.store.repos.nodes.leave(this.id).catch(() => {});
  }
}
