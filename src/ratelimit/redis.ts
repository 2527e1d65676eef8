// Rate limits shared by every node through Redis: the same sliding window as decide.ts, evaluated
// in one Lua script, so each check-and-count is atomic and exact. The decisions of all requests a
// node handles in one event-loop turn go in one call (one round trip instead of one per request).
// When Redis cannot answer, the local limiter decides, so verify never fails on Redis.
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { tighter, type LimitSpec, type RateDecision } from './decide.js';
import { hasLimits, ownerOf, type MemoryRateLimiter, type LimitSubject, type LimitVerdict, type RateLimiter } from './limiter.js';

/**
 * The decisions of every request one node handled in one event-loop turn, in one call. For each
 * request in order (ARGV: now, request count, then per request: commit flag, limit count, and per
 * limit: limit and duration; KEYS: every limit's bucket, in the same order), each limit's sliding
 * window is estimated and, when every limit of that request allows it and it commits, counted.
 * Redis runs the script atomically, so request i sees the counts of requests 1..i-1: the same
 * decisions, in the same order, as one call per request; only the transport is shared.
 */
const SCRIPT = `
local now = tonumber(ARGV[1])
local requests = tonumber(ARGV[2])
local cost = 1
local a = 3
local k = 1
local out = {}
for r = 1, requests do
  local commit = tonumber(ARGV[a])
  local n = tonumber(ARGV[a + 1])
  a = a + 2
  local cur = {}
  local info = {}
  local all = true
  for i = 1, n do
    local limit = tonumber(ARGV[a])
    local duration = tonumber(ARGV[a + 1])
    a = a + 2
    local ws = now - (now % duration)
    local ck = KEYS[k] .. ':' .. string.format('%.0f', ws)
    local pk = KEYS[k] .. ':' .. string.format('%.0f', ws - duration)
    k = k + 1
    local c = tonumber(redis.call('GET', ck) or '0')
    local p = tonumber(redis.call('GET', pk) or '0')
    local estimate = p * ((duration - (now - ws)) / duration) + c
    if estimate + cost > limit then all = false end
    cur[i] = ck
    info[i] = { estimate + cost <= limit, limit, estimate, ws + duration, duration }
  end
  for i = 1, n do
    local x = info[i]
    local used = x[3]
    if all and commit == 1 then
      redis.call('INCRBY', cur[i], cost)
      redis.call('PEXPIRE', cur[i], x[5] * 2)
      used = used + cost
    end
    out[#out + 1] = x[1] and 1 or 0
    out[#out + 1] = math.max(0, math.floor(x[2] - used))
    out[#out + 1] = string.format('%.0f', x[4])
  end
end
return out
`;

/** Adds each window's local count to the shared one: KEYS[i] gets ARGV[2i-1], expiring after ARGV[2i]. */
const HAND_BACK = `
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[2 * i - 1])
  redis.call('PEXPIRE', KEYS[i], ARGV[2 * i])
end
return #KEYS
`;

type RedisWithLimit = Redis & { keywardLimit(numKeys: number, ...args: (string | number)[]): Promise<(number | string)[]> };

interface PendingDecision {
  subject: LimitSubject;
  now: number;
  commit: boolean;
  specs: LimitSpec[];
  keys: string[];
  resolve: (v: LimitVerdict) => void;
}

/** What a node does with limits while Redis cannot answer. */
export type FallbackMode = 'share' | 'deny';

export interface FallbackOptions {
  mode: FallbackMode;
  /** How many nodes are live (from the store's heartbeat): each takes its share of every limit. */
  liveNodes: () => number;
}

/** The deny mode's answer: every limited key refused until Redis answers again. */
function denied(subject: LimitSubject, now: number): LimitVerdict {
  const spec = subject.ratelimit ?? subject.ownerRatelimit!;
  return { allowed: false, limit: spec.limit, remaining: 0, resetAt: now + 1000 };
}

export class RedisRateLimiter implements RateLimiter {
  private readonly redis: RedisWithLimit;
  private lastWarn = 0;
  /** Set while local decisions are being made; their counts go back to Redis once it answers again. */
  private fellBack = false;
  private handingBack: Promise<void> | undefined;

  constructor(
    redis: Redis,
    private readonly prefix: string,
    private readonly fallback: MemoryRateLimiter,
    private readonly logger: Logger,
    private readonly onFallback: () => void,
    private readonly options: FallbackOptions = { mode: 'share', liveNodes: () => 1 },
  ) {
    redis.defineCommand('keywardLimit', { lua: SCRIPT });
    this.redis = redis as RedisWithLimit;
  }

  take(subject: LimitSubject, now: number): LimitVerdict | Promise<LimitVerdict> {
    return this.decide(subject, now, true);
  }

  peek(subject: LimitSubject, now: number): LimitVerdict | Promise<LimitVerdict> {
    return this.decide(subject, now, false);
  }

  private decide(subject: LimitSubject, now: number, commit: boolean): LimitVerdict | Promise<LimitVerdict> {
    if (!hasLimits(subject)) return undefined;
    if (this.redis.status !== 'ready') return this.local(subject, now, commit, 'redis not connected');
    return this.shared(subject, now, commit);
  }

  /** Decisions waiting for the end of this event-loop turn, sent to Redis together. */
  private batch: PendingDecision[] = [];

  private shared(subject: LimitSubject, now: number, commit: boolean): Promise<LimitVerdict> {
    // Bucket names as they have always been: `k:<keyId>` and `o:<appId>:<ownerId or keyId>`.
    const specs: LimitSpec[] = [];
    const keys: string[] = [];
    if (subject.ratelimit) {
      specs.push(subject.ratelimit);
      keys.push(`${this.prefix}rl:k:${subject.id}`);
    }
    if (subject.ownerRatelimit) {
      specs.push(subject.ownerRatelimit);
      keys.push(`${this.prefix}rl:o:${subject.appId}:${ownerOf(subject)}`);
    }
    return new Promise<LimitVerdict>((resolve) => {
      // setImmediate runs once this turn's I/O callbacks are done: every request parsed in it is in.
      if (this.batch.length === 0) setImmediate(() => void this.flush());
      this.batch.push({ subject, now, commit, specs, keys, resolve });
    });
  }

  private async flush(): Promise<void> {
    const batch = this.batch;
    this.batch = [];
    if (batch.length === 0) return;
    const now = batch[batch.length - 1]!.now;
    const keys: string[] = [];
    const args: (string | number)[] = [now, batch.length];
    for (const d of batch) {
      keys.push(...d.keys);
      args.push(d.commit ? 1 : 0, d.specs.length);
      for (const s of d.specs) args.push(s.limit, s.durationMs);
    }
    try {
      if (this.fellBack) await this.handBack();
      const out = await this.redis.keywardLimit(keys.length, ...keys, ...args);
      let at = 0;
      for (const d of batch) {
        let shown: RateDecision | undefined;
        for (const s of d.specs) {
          shown = tighter(shown, { allowed: Number(out[at]) === 1, limit: s.limit, remaining: Number(out[at + 1]), resetAt: Number(out[at + 2]) });
          at += 3;
        }
        d.resolve(shown);
      }
    } catch (err) {
      for (const d of batch) d.resolve(this.local(d.subject, d.now, d.commit, (err as Error).message));
    }
  }

  private local(subject: LimitSubject, now: number, commit: boolean, reason: string): LimitVerdict {
    this.onFallback();
    this.fellBack = true;
    if (now - this.lastWarn > 10_000) {
      this.lastWarn = now;
      this.logger.warn({ reason, mode: this.options.mode }, 'shared rate limiter unavailable; deciding locally');
    }
    if (this.options.mode === 'deny') return denied(subject, now);
    return this.fallback.takeSync(subject, now, commit, this.options.liveNodes());
  }

  /**
   * Redis is back, perhaps empty: what this node admitted meanwhile is added to the shared windows
   * before the next shared decision, so nobody gets a fresh full window for free.
   */
  private handBack(): Promise<void> {
    this.handingBack ??= (async () => {
      const keys: string[] = [];
      const args: number[] = [];
      for (const { name, state } of this.fallback.windows()) {
        const base = `${this.prefix}rl:${name}:`;
        if (state.current > 0) {
          keys.push(`${base}${state.windowStart}`);
          args.push(state.current, state.durationMs * 2);
        }
        if (state.previous > 0) {
          keys.push(`${base}${state.windowStart - state.durationMs}`);
          args.push(state.previous, state.durationMs * 2);
        }
      }
      // One awaited script rather than a pipeline: a connection that drops mid-way rejects this
      // one promise, which the caller handles, and leaves no stray command promise behind.
      if (keys.length > 0) await this.redis.eval(HAND_BACK, keys.length, ...keys, ...args);
      this.fallback.clear();
      this.fellBack = false;
    })().finally(() => {
      this.handingBack = undefined;
    });
    return this.handingBack;
  }

  async close(): Promise<void> {
    await this.fallback.close();
  }
}
