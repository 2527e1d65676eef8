// Pure sliding-window rate-limit decision: the previous window's count, weighted by how much of it
// still overlaps the sliding window, plus the current window's count.
export interface WindowState {
  windowStart: number;
  current: number;
  previous: number;
  durationMs: number;
}

export interface LimitSpec {
  /** Identifies the counter, e.g. `k:<keyId>` or `o:<appId>:<ownerId>`. */
  bucket: string;
  limit: number;
  durationMs: number;
}

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  resetAt: number;
}

export function rollWindow(state: WindowState | undefined, now: number, durationMs: number): WindowState {
  const windowStart = now - (now % durationMs);
  if (state && state.durationMs === durationMs) {
    if (state.windowStart === windowStart) return state;
    if (state.windowStart === windowStart - durationMs) return { windowStart, current: 0, previous: state.current, durationMs };
  }
  // New, stale, resized, or from the future (clock moved back): start over rather than refuse forever.
  return { windowStart, current: 0, previous: 0, durationMs };
}

export function decideRateLimit(
  state: WindowState | undefined,
  spec: LimitSpec,
  now: number,
  cost = 1,
): { decision: RateDecision; next: WindowState } {
  const rolled = rollWindow(state, now, spec.durationMs);
  const elapsed = now - rolled.windowStart;
  const estimate = rolled.previous * ((spec.durationMs - elapsed) / spec.durationMs) + rolled.current;
  const allowed = estimate + cost <= spec.limit;
  const used = allowed ? estimate + cost : estimate;
  const next = allowed ? { ...rolled, current: rolled.current + cost } : rolled;
  return {
    decision: {
      allowed,
      limit: spec.limit,
      remaining: Math.max(0, Math.floor(spec.limit - used)),
      resetAt: rolled.windowStart + spec.durationMs,
    },
    next,
  };
}

/** The answer shown to callers: the tightest of several limits (the refusing one if any refused). */
export function tightest(decisions: RateDecision[]): RateDecision | undefined {
  let pick: RateDecision | undefined;
  for (const d of decisions) {
    if (!pick) pick = d;
    else if (!d.allowed && pick.allowed) pick = d;
    else if (d.allowed === pick.allowed && d.remaining < pick.remaining) pick = d;
  }
  return pick;
}
