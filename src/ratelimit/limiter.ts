// The rate-limiter interface and its in-process implementation (one node, no Redis).
import { decideRateLimit, type LimitSpec, type RateDecision, type WindowState } from './decide.js';

export interface RateLimiter {
  /** All-or-nothing: counts the request against every spec only if every spec allows it. */
  take(specs: readonly LimitSpec[], now: number): RateDecision[] | Promise<RateDecision[]>;
  close(): Promise<void>;
}

export class MemoryRateLimiter implements RateLimiter {
  private readonly windows = new Map<string, WindowState>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(sweepEveryMs = 60_000, private readonly clock: () => number = Date.now) {
    this.sweeper = setInterval(() => this.sweep(this.clock()), sweepEveryMs);
    this.sweeper.unref();
  }

  takeSync(specs: readonly LimitSpec[], now: number): RateDecision[] {
    const results = specs.map((spec) => decideRateLimit(this.windows.get(spec.bucket), spec, now));
    if (results.every((r) => r.decision.allowed)) {
      for (let i = 0; i < specs.length; i++) this.windows.set(specs[i]!.bucket, results[i]!.next);
    }
    return results.map((r) => r.decision);
  }

  take(specs: readonly LimitSpec[], now: number): RateDecision[] {
    return this.takeSync(specs, now);
  }

  /** Drops windows that can no longer influence a decision. */
  sweep(now: number): void {
    for (const [bucket, w] of this.windows) {
      if (w.windowStart + 2 * w.durationMs <= now) this.windows.delete(bucket);
    }
  }

  get size(): number {
    return this.windows.size;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }
}
