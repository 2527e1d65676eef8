// Named limits and the standalone limiter: any number of buckets, each with its own limit, decided
// together. A request reserves `cost` units of every bucket or of none; what reserved them is then
// either kept (committed: the units stay counted) or handed back when something after the limits
// refused the request (the usage cap), so a refused verify charges no limit. In-process twin here;
// the Redis one (redis-buckets.ts) spends from leases like the key limits.
import { advance, decisionOf, hasRoom, newWindow, slidingUsage, type LimitSpec, type RateDecision, type WindowState } from './decide.js';

/** One bucket a request is decided against. `id` names its window (the same on every node). */
export interface Bucket {
  readonly id: string;
  readonly limit: number;
  readonly durationMs: number;
  /** Units the request spends of it (0: checked, nothing spent). */
  readonly cost: number;
}

/** What reserve answers: the decision of every bucket (in order) and whether all admitted. */
export interface Reservation {
  readonly allowed: boolean;
  readonly decisions: readonly RateDecision[];
  /** Units reserved, to hand back: the bucket's window and how many. Empty unless allowed and counted. */
  readonly held: readonly Held[];
}

export interface Held {
  readonly bucket: Bucket;
  readonly windowStart: number;
  readonly cost: number;
  /** Implementation's own record of where the units came from. */
  readonly via?: unknown;
}

export interface BucketLimiter {
  /** All-or-nothing over `buckets`: counted only if every one admits (and `commit`). */
  reserve(buckets: readonly Bucket[], now: number, commit: boolean): Reservation | Promise<Reservation>;
  /** Gives back what a reservation counted: the request it was for was refused after all. */
  handBack(reservation: Reservation, now: number): void;
  close(): Promise<void>;
}

export const specOf = (b: Bucket): LimitSpec => ({ limit: b.limit, durationMs: b.durationMs });

/** One node, no Redis: windows in a Map. */
export class MemoryBucketLimiter implements BucketLimiter {
  private readonly windows = new Map<string, WindowState>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(sweepEveryMs = 60_000, private readonly clock: () => number = Date.now) {
    this.sweeper = setInterval(() => this.sweep(this.clock()), sweepEveryMs);
    this.sweeper.unref();
  }

  reserve(buckets: readonly Bucket[], now: number, commit: boolean): Reservation {
    const used = buckets.map((b) => slidingUsage(this.windows.get(b.id), b.durationMs, now));
    const ok = buckets.map((b, i) => hasRoom(b, used[i]!, b.cost));
    const allowed = ok.every(Boolean);
    const counted = allowed && commit;
    const held: Held[] = [];
    if (counted) {
      for (const b of buckets) {
        if (b.cost === 0) continue;
        const w = this.windows.get(b.id);
        if (w) advance(w, b.durationMs, now, b.cost);
        else this.windows.set(b.id, newWindow(b.durationMs, now, b.cost));
        held.push({ bucket: b, windowStart: now - (now % b.durationMs), cost: b.cost });
      }
    }
    return { allowed, decisions: buckets.map((b, i) => decisionOf(b, used[i]!, ok[i]!, counted, now, b.cost)), held };
  }

  handBack(reservation: Reservation, _now: number): void {
    for (const h of reservation.held) {
      const w = this.windows.get(h.bucket.id);
      // Units of a window that has rolled are part of its previous count now: taken from there.
      if (w === undefined || w.durationMs !== h.bucket.durationMs) continue;
      if (w.windowStart === h.windowStart) w.current = Math.max(0, w.current - h.cost);
      else if (w.windowStart === h.windowStart + h.bucket.durationMs) w.previous = Math.max(0, w.previous - h.cost);
    }
  }

  sweep(now: number): void {
    for (const [id, w] of this.windows) if (w.windowStart + 2 * w.durationMs <= now) this.windows.delete(id);
  }

  get size(): number {
    return this.windows.size;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }
}
