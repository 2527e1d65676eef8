// The rate-limiter interface, its in-process implementation (one node, no Redis), and what a node of
// many decides by itself while Redis cannot answer (the outage window).
import { advance, decisionOf, hasRoom, newWindow, remainingOf, slidingUsage, type LimitSpec, type RateDecision, type WindowState } from './decide.js';

export type { WindowState } from './decide.js';

/** What a verify asks of the limiter: a key's own limit and its owner's; a cached key is one. */
export interface LimitSubject {
  readonly id: string;
  readonly appId: string;
  /** null: the key is its own owner. */
  readonly ownerId: string | null;
  readonly ratelimit: LimitSpec | null;
  readonly ownerRatelimit: LimitSpec | null;
}

export type LimitVerdict = RateDecision | undefined;

export interface RateLimiter {
  /**
   * All-or-nothing: counts one request against the key's and the owner's windows only if both
   * allow it. Answers the decision to show (the refusing one, else the one with less left), or
   * undefined when the key has no limit.
   */
  take(subject: LimitSubject, now: number): LimitVerdict | Promise<LimitVerdict>;
  /** The same decision without counting the request (dry runs). */
  peek(subject: LimitSubject, now: number): LimitVerdict | Promise<LimitVerdict>;
  /**
   * Gives back one request that `take` admitted at `now` on this node: the usage cap refused it
   * after all, and a refused verify charges no limit.
   */
  refund(subject: LimitSubject, now: number): void;
  close(): Promise<void>;
}

export const hasLimits = (s: LimitSubject): boolean => s.ratelimit !== null || s.ownerRatelimit !== null;

/** The owner's window name within its app: the owner id, or the key's id for a key without owner. */
export const ownerOf = (s: LimitSubject): string => s.ownerId ?? s.id;

/**
 * Windows live in maps keyed by strings the cached key already holds (its id, its app id, its
 * owner id), so a decision builds no string and allocates nothing but the answer.
 */
export class MemoryRateLimiter implements RateLimiter {
  private readonly keyWindows = new Map<string, WindowState>();
  /** app id → owner (or key id) → window. */
  private readonly ownerWindows = new Map<string, Map<string, WindowState>>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(sweepEveryMs = 60_000, private readonly clock: () => number = Date.now) {
    this.sweeper = setInterval(() => this.sweep(this.clock()), sweepEveryMs);
    this.sweeper.unref();
  }

  takeSync(s: LimitSubject, now: number, count = true): LimitVerdict {
    const keySpec = s.ratelimit;
    const ownerSpec = s.ownerRatelimit;
    if (keySpec === null && ownerSpec === null) return undefined;
    let keyWindow: WindowState | undefined;
    let keyUsed = 0;
    if (keySpec !== null) {
      keyWindow = this.keyWindows.get(s.id);
      keyUsed = slidingUsage(keyWindow, keySpec.durationMs, now);
    }
    let owners: Map<string, WindowState> | undefined;
    let ownerWindow: WindowState | undefined;
    let ownerUsed = 0;
    if (ownerSpec !== null) {
      owners = this.ownerWindows.get(s.appId);
      ownerWindow = owners?.get(ownerOf(s));
      ownerUsed = slidingUsage(ownerWindow, ownerSpec.durationMs, now);
    }
    const keyOk = keySpec === null || hasRoom(keySpec, keyUsed, 1);
    const ownerOk = ownerSpec === null || hasRoom(ownerSpec, ownerUsed, 1);
    const counted = keyOk && ownerOk && count;
    if (counted) {
      if (keySpec !== null) {
        if (keyWindow) advance(keyWindow, keySpec.durationMs, now, 1);
        else this.keyWindows.set(s.id, newWindow(keySpec.durationMs, now, 1));
      }
      if (ownerSpec !== null) {
        if (ownerWindow) advance(ownerWindow, ownerSpec.durationMs, now, 1);
        else {
          if (!owners) this.ownerWindows.set(s.appId, (owners = new Map()));
          owners.set(ownerOf(s), newWindow(ownerSpec.durationMs, now, 1));
        }
      }
    }
    // The same choice as `tighter`, made on numbers so that only the shown decision is built.
    const showKey = ownerSpec === null
      || (keySpec !== null && (keyOk !== ownerOk ? !keyOk : remainingOf(keySpec, keyUsed, counted, 1) <= remainingOf(ownerSpec, ownerUsed, counted, 1)));
    return showKey ? decisionOf(keySpec!, keyUsed, keyOk, counted, now, 1) : decisionOf(ownerSpec!, ownerUsed, ownerOk, counted, now, 1);
  }

  take(s: LimitSubject, now: number): LimitVerdict {
    return this.takeSync(s, now);
  }

  peek(s: LimitSubject, now: number): LimitVerdict {
    return this.takeSync(s, now, false);
  }

  refund(s: LimitSubject, now: number): void {
    const back = (w: WindowState | undefined, spec: LimitSpec) => {
      if (w !== undefined && w.durationMs === spec.durationMs && w.windowStart === now - (now % spec.durationMs)) w.current = Math.max(0, w.current - 1);
    };
    if (s.ratelimit !== null) back(this.keyWindows.get(s.id), s.ratelimit);
    if (s.ownerRatelimit !== null) back(this.ownerWindows.get(s.appId)?.get(ownerOf(s)), s.ownerRatelimit);
  }

  /** Drops windows that can no longer influence a decision. */
  sweep(now: number): void {
    const stale = (w: WindowState) => w.windowStart + 2 * w.durationMs <= now;
    for (const [id, w] of this.keyWindows) if (stale(w)) this.keyWindows.delete(id);
    for (const [app, owners] of this.ownerWindows) {
      for (const [owner, w] of owners) if (stale(w)) owners.delete(owner);
      if (owners.size === 0) this.ownerWindows.delete(app);
    }
  }

  get size(): number {
    let n = this.keyWindows.size;
    for (const owners of this.ownerWindows.values()) n += owners.size;
    return n;
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }
}

/** What a node last saw of one shared window in Redis (at its last grant). */
export interface SeenWindow {
  windowStart: number;
  /** Redis's previous-window count and current-window count (leased tokens included). */
  previous: number;
  counted: number;
}

/**
 * One shared window as a node estimates it while Redis cannot answer: the counts it last saw there,
 * plus what it admits itself counted `share` times, as if every live node admitted as much as this
 * one. A request is admitted while the estimate with it stays within the limit, so the nodes
 * together admit at most what the last shared count left (each its share of it); tokens leased
 * before the outage are spent besides, since Redis counted them already. Windows that begin during
 * the outage roll over the estimate as decide.ts rolls any window.
 */
export interface OutageWindow {
  /** The estimate (every node's counts together), in decide.ts's terms. */
  readonly state: WindowState;
  readonly limit: number;
  /** Admitted here without a leased token, in the estimate's current and previous window: handed back to Redis. */
  own: number;
  ownPrevious: number;
}

export function startOutage(spec: LimitSpec, seen: SeenWindow | undefined, now: number): OutageWindow {
  const state = seen === undefined
    ? newWindow(spec.durationMs, now, 0)
    : { windowStart: seen.windowStart, previous: seen.previous, current: seen.counted, durationMs: spec.durationMs };
  return { state, limit: spec.limit, own: 0, ownPrevious: 0 };
}

/** What the window holds by the estimate at `now`. */
export const outageUsage = (o: OutageWindow, now: number): number => slidingUsage(o.state, o.state.durationMs, now);

/** Whether this node may admit one more request without a token: the estimate with `share` more stays within the limit. */
export const outageRoom = (o: OutageWindow, now: number, share: number): boolean => outageUsage(o, now) + share <= o.limit;

/** What this node may still admit by itself (without tokens). */
export const outageLeft = (o: OutageWindow, now: number, share: number): number => Math.max(0, Math.floor((o.limit - outageUsage(o, now)) / share));

/** Counts one request admitted here: once in this node's own count, `share` times in the estimate. */
export function countOutage(o: OutageWindow, now: number, share: number): void {
  const d = o.state.durationMs;
  const windowStart = now - (now % d);
  if (windowStart !== o.state.windowStart) {
    o.ownPrevious = windowStart - d === o.state.windowStart ? o.own : 0;
    o.own = 0;
  }
  advance(o.state, d, now, share);
  o.own++;
}

export interface SharedLimitStats {
  /** Decisions made from tokens in hand, and decisions that waited for Redis. */
  fromLease: number;
  waited: number;
  /** Script calls, and bucket grants in them. */
  calls: number;
  grants: number;
  /** Tokens leased and not yet spent. */
  tokensHeld: number;
}
