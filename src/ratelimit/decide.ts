// Pure sliding-window arithmetic: the previous window's count, weighted by how much of it still
// overlaps the sliding window, plus the current window's count. Deciding reads a window; only
// `advance` changes one, so the limiters decide every limit of a request before counting any.
export interface WindowState {
  windowStart: number;
  current: number;
  previous: number;
  durationMs: number;
}

export interface LimitSpec {
  limit: number;
  durationMs: number;
}

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  resetAt: number;
}

/** What the window holds at `now`: the current count plus the overlapping share of the previous. */
export function slidingUsage(state: WindowState | undefined, durationMs: number, now: number): number {
  if (state === undefined || state.durationMs !== durationMs) return 0;
  const windowStart = now - (now % durationMs);
  if (state.windowStart === windowStart) {
    return state.previous * ((durationMs - (now - windowStart)) / durationMs) + state.current;
  }
  if (state.windowStart === windowStart - durationMs) {
    return state.current * ((durationMs - (now - windowStart)) / durationMs);
  }
  // Stale, or from the future (the clock moved back): start over rather than refuse forever.
  return 0;
}

/** Moves `state` to the window holding `now` (in place) and counts `cost` in it. */
export function advance(state: WindowState, durationMs: number, now: number, cost: number): void {
  const windowStart = now - (now % durationMs);
  if (state.durationMs === durationMs && state.windowStart === windowStart) {
    state.current += cost;
    return;
  }
  const rolled = state.durationMs === durationMs && state.windowStart === windowStart - durationMs;
  state.previous = rolled ? state.current : 0;
  state.windowStart = windowStart;
  state.durationMs = durationMs;
  state.current = cost;
}

export function newWindow(durationMs: number, now: number, cost: number): WindowState {
  return { windowStart: now - (now % durationMs), current: cost, previous: 0, durationMs };
}

/** Whether a window holding `used` has room for `cost` more under `spec`. */
export const hasRoom = (spec: LimitSpec, used: number, cost: number): boolean => used + cost <= spec.limit;

/** What a limit has left after this request (counted in `used` only if it was counted). */
export const remainingOf = (spec: LimitSpec, used: number, counted: boolean, cost: number): number =>
  Math.max(0, Math.floor(spec.limit - (counted ? used + cost : used)));

/** The decision shown for one limit, given what it held and whether the request was counted. */
export function decisionOf(spec: LimitSpec, used: number, allowed: boolean, counted: boolean, now: number, cost: number): RateDecision {
  return {
    allowed,
    limit: spec.limit,
    remaining: remainingOf(spec, used, counted, cost),
    resetAt: now - (now % spec.durationMs) + spec.durationMs,
  };
}

/** Of two limits, the one to show: the refusing one if either refused, else the one with less left. */
export function tighter(a: RateDecision | undefined, b: RateDecision | undefined): RateDecision | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  if (a.allowed !== b.allowed) return a.allowed ? b : a;
  return b.remaining < a.remaining ? b : a;
}

/** Sliding-window decision on a copy of `state`, for tests and one-off checks: nothing is mutated. */
export function decideRateLimit(
  state: WindowState | undefined,
  spec: LimitSpec,
  now: number,
  cost = 1,
): { decision: RateDecision; next: WindowState } {
  const used = slidingUsage(state, spec.durationMs, now);
  const allowed = hasRoom(spec, used, cost);
  let next: WindowState;
  if (!allowed) next = state ?? newWindow(spec.durationMs, now, 0);
  else if (state) advance((next = { ...state }), spec.durationMs, now, cost);
  else next = newWindow(spec.durationMs, now, cost);
  return { decision: decisionOf(spec, used, allowed, allowed, now, cost), next };
}
