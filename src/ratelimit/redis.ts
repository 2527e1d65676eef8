// Rate limits shared by every node through Redis: the same sliding window as decide.ts. A node
// spends tokens that a Lua script has already counted in Redis (a lease), so most decisions need
// no round trip and none can exceed the limit; the grants that requests of one event-loop turn
// need go in one call. Why the limits stay exact: docs/design/rate-limits.md ("Shared limits
// are spent from leases"). When Redis cannot answer, this node decides by itself from what it last saw there
// (limiter.ts's outage window), so verify never fails on Redis; a circuit breaker keeps every
// decision off a Redis that is known not to answer until a probe finds it back (docs/design/degraded-mode.md).
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Circuit } from '../lib/circuit.js';
import { tighter, type LimitSpec, type RateDecision } from './decide.js';
import { countOutage, outageLeft, outageRoom, ownerOf, startOutage, type LimitSubject, type LimitVerdict, type OutageWindow, type RateLimiter, type SeenWindow, type SharedLimitStats } from './limiter.js';

/**
 * Grants for every bucket the requests of one event-loop turn need, in one call. First the tokens
 * a node gives back (KEYS[1..r], ARGV: the amounts): never below zero, the key's expiry kept. Then
 * for each bucket (the remaining KEYS; ARGV per bucket: limit, duration, need, spare) the sliding
 * window is estimated as in decide.ts and `grant` tokens are counted in the current window at once:
 * at most the room left (so the estimate with them stays within the limit), at least the requests
 * waiting if there is room for them, plus up to `spare` more while at most a quarter of the room
 * divided by the live nodes. Answers grant, previous-window count and current-window count per bucket.
 * Redis runs the script atomically: grants to all nodes are handed out one after another.
 *
 * First of all, KEYS[1] is the epoch of Redis's counts (ARGV[4]: the one this node knows, ARGV[5]:
 * a new one to set if there is none). An epoch that is missing (Redis restarted empty, or lost the
 * key) or not the one this node knows answers {-1, epoch} and changes nothing else: the node puts
 * back what it counted first (RESTORE). A node that knows none yet (it has counted nothing) adopts
 * it and joins the epoch's set of nodes (ARGV[6], kept ARGV[7] ms). Answers {0, epoch, triples…}.
 */
export const LIMIT_SCRIPT = `
local now = tonumber(ARGV[1])
local share = tonumber(ARGV[2])
local r = tonumber(ARGV[3])
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[5]
  redis.call('SET', KEYS[1], epoch)
end
if epoch ~= ARGV[4] then
  if ARGV[4] ~= '' then return {-1, epoch} end
  redis.call('SADD', KEYS[1] .. ':' .. epoch, ARGV[6])
  redis.call('PEXPIRE', KEYS[1] .. ':' .. epoch, ARGV[7])
end
local a = 8
for i = 2, r + 1 do
  local amount = tonumber(ARGV[a])
  a = a + 1
  local held = tonumber(redis.call('GET', KEYS[i]) or '0')
  local back = math.min(held, amount)
  if back > 0 then redis.call('DECRBY', KEYS[i], back) end
end
local out = {0, epoch}
for k = r + 2, #KEYS do
  local limit = tonumber(ARGV[a])
  local duration = tonumber(ARGV[a + 1])
  local need = tonumber(ARGV[a + 2])
  local spare = tonumber(ARGV[a + 3])
  a = a + 4
  local ws = now - (now % duration)
  local ck = KEYS[k] .. ':' .. string.format('%.0f', ws)
  local c = tonumber(redis.call('GET', ck) or '0')
  local p = tonumber(redis.call('GET', KEYS[k] .. ':' .. string.format('%.0f', ws - duration)) or '0')
  local room = math.floor(limit - (p * ((duration - (now - ws)) / duration) + c))
  local grant = 0
  if room > 0 then grant = math.min(room, need + math.min(spare, math.floor(room / (4 * share)))) end
  if grant > 0 then
    c = redis.call('INCRBY', ck, grant)
    redis.call('PEXPIRE', ck, duration * 2)
  end
  out[#out + 1] = grant
  out[#out + 1] = p
  out[#out + 1] = c
end
return out
`;

/**
 * What a node decided by itself goes back to a shared window (KEYS[i]; ARGV per window: seen, own,
 * estimate, keep ms), so that nobody gets a fresh window for free:
 * - a window Redis no longer has (it restarted empty) first gets back `seen`, the count this node
 *   last saw there; `<window>:restored` remembers it, and a node back later that saw more raises
 *   the count by the difference (the restored count is the freshest any node had);
 * - `own`, what this node admitted alone, is added;
 * - the count is raised to `estimate`, this node's estimate of the whole window (what it saw plus
 *   N times its own admissions: every node is assumed to have admitted as much), so the nodes not
 *   back yet are counted before they are; `<window>:projected` holds how much of the count is such
 *   an assumption, and the `own` of a node back later replaces it instead of adding to it.
 */
export const HAND_BACK_SCRIPT = `
for i = 1, #KEYS do
  local seen = tonumber(ARGV[4 * i - 3])
  local own = tonumber(ARGV[4 * i - 2])
  local estimate = tonumber(ARGV[4 * i - 1])
  local keep = ARGV[4 * i]
  local restored = KEYS[i] .. ':restored'
  local projected = KEYS[i] .. ':projected'
  local count
  if redis.call('EXISTS', KEYS[i]) == 0 then
    count = seen
    if seen > 0 then redis.call('SET', restored, seen, 'PX', keep) end
  else
    count = tonumber(redis.call('GET', KEYS[i]))
    local was = tonumber(redis.call('GET', restored) or '-1')
    if was >= 0 and seen > was then
      count = count + seen - was
      redis.call('SET', restored, seen, 'PX', keep)
    end
  end
  local assumed = tonumber(redis.call('GET', projected) or '0')
  local covered = math.min(assumed, own)
  assumed = assumed - covered
  count = count + own - covered
  if estimate > count then
    assumed = assumed + estimate - count
    count = estimate
  end
  if count > 0 then redis.call('SET', KEYS[i], count, 'PX', keep) end
  if assumed > 0 then redis.call('SET', projected, assumed, 'PX', keep) else redis.call('DEL', projected) end
end
return #KEYS
`;

/**
 * A node's part of the windows Redis lost (KEYS[i]; ARGV per window: seen, own, keep ms; then the
 * set of nodes that restored this epoch, this node's id and that set's lifetime). Each window's
 * lost count is at least the highest count any node last saw there (`seen`), and at least the sum
 * of what every node charged in it (`own`, net of what it gave back): `<window>:seen` and
 * `<window>:own` hold the largest seen and the sum of own so far, and the window is raised by how
 * much the larger of the two grew, on top of whatever was counted in it since the restart. Answers
 * how many nodes have restored this epoch.
 */
const RESTORE = `
local n = #KEYS - 1
for i = 1, n do
  local seen = tonumber(ARGV[3 * i - 2])
  local own = tonumber(ARGV[3 * i - 1])
  local keep = ARGV[3 * i]
  local sk = KEYS[i] .. ':seen'
  local ok = KEYS[i] .. ':own'
  local s0 = tonumber(redis.call('GET', sk) or '0')
  local o0 = tonumber(redis.call('GET', ok) or '0')
  local s1 = math.max(s0, seen)
  local o1 = o0 + own
  local raise = math.max(s1, o1) - math.max(s0, o0)
  if raise > 0 then
    redis.call('INCRBY', KEYS[i], raise)
    redis.call('PEXPIRE', KEYS[i], keep)
  end
  redis.call('SET', sk, s1, 'PX', keep)
  redis.call('SET', ok, o1, 'PX', keep)
end
redis.call('SADD', KEYS[n + 1], ARGV[3 * n + 1])
redis.call('PEXPIRE', KEYS[n + 1], ARGV[3 * n + 2])
return redis.call('SCARD', KEYS[n + 1])
`;

/** The epoch of Redis's counts, set to ARGV[1] if there is none (checked by every node now and then). */
const EPOCH = `
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
return epoch
`;

/** How long the nodes that restored an epoch are remembered. */
const RESTORED_KEEP_MS = 600_000;
/** The longest a node waits for the other live nodes to restore (one may have died since its last heartbeat). */
const PEER_WAIT_MS = 3000;

export type RedisWithLimit = Redis & { keywardLimit(numKeys: number, ...args: (string | number)[]): Promise<(number | string)[]> };

/**
 * A node's lease on one shared window: tokens Redis has already counted in it, spent here without
 * a round trip until they run out, the window ends or the lease sits unspent for a while.
 */
export interface Lease {
  /** The bucket's name in Redis, without the window suffix. */
  readonly name: string;
  windowStart: number;
  durationMs: number;
  limit: number;
  /** Redis's previous-window count and current-window count at the last grant (the latter counts `tokens`). */
  previous: number;
  counted: number;
  /** Counted in Redis, not yet spent here. */
  tokens: number;
  /** Tokens asked beyond the waiting requests at the next grant, sized to the bucket's pace (see renew and topUp). */
  spare: number;
  /** When the lease last got or spent a token: unspent for `lifeMs`, its tokens go back. */
  activeAt: number;
  grantedAt: number;
  /** At or below this many tokens in hand, the next grant is asked ahead, while spending goes on. */
  low: number;
  /** A grant asked ahead is queued for the next call. */
  refill: boolean;
  /** Queued requests on this bucket: while any wait, later ones queue behind them (decisions stay in arrival order). */
  waiting: number;
  /** Grant calls in flight for this bucket. */
  inFlight: number;
  /** The limit its latest queued request was under: the one its next grant is asked for. */
  ask: LimitSpec | undefined;
  /** The flush that last listed this bucket, and the requests of that flush that commit on it. */
  flushSeq: number;
  need: number;
  /** While Redis cannot answer: this node's estimate of the window (see limiter.ts), handed back when it returns. */
  outage: OutageWindow | undefined;
  /** What this node counted in Redis in the lease's window and in the one before, net of what it gave back (restored if Redis loses them). */
  charged: number;
  chargedPrevious: number;
}

interface PendingDecision {
  subject: LimitSubject;
  now: number;
  commit: boolean;
  key: Lease | undefined;
  owner: Lease | undefined;
  resolve: (v: LimitVerdict | Promise<LimitVerdict>) => void;
}

/** What a node does with limits while Redis cannot answer. */
export type FallbackMode = 'share' | 'deny';

/** The live nodes sharing the limits: as of the last heartbeat, and read from the store now. */
export interface LiveNodes {
  live(): number;
  fresh(): Promise<number>;
}

export interface SharedLimiterOptions {
  /** Prefix of every Redis key. */
  prefix: string;
  logger: Logger;
  /** Called for every decision made without Redis. */
  onFallback: () => void;
  mode: FallbackMode;
  nodes: LiveNodes;
  /** How long unspent tokens stay with a node before they go back (0: no spare tokens, a grant per request). */
  lifeMs: number;
  /** Redis's clock as this node knows it (the store's, moved by the offset Redis TIME showed). */
  now: () => number;
  /** Added to a caller's `now` (the store's clock) to get Redis's. */
  shift: () => number;
  /** Opened by Redis failures and timeouts: while open, no decision sends anything to Redis. */
  circuit: Circuit;
  /** Asks Redis once whether it answers (TIME, which also keeps `now` on Redis's clock). */
  probe: () => Promise<boolean>;
}

/** Failures or timeouts of Redis in a row that open the circuit: one lost reply does not move every decision off Redis. */
export const REDIS_FAILURES_TO_OPEN = 2;

/** The most spare tokens one grant asks for. */
export const MAX_SPARE = 1024;
/** A lease without tokens, unused this long, is forgotten. */
export const IDLE_MS = 30_000;

/** The deny mode's answer: every limited key refused until Redis answers again. */
function denied(subject: LimitSubject, now: number): LimitVerdict {
  const spec = subject.ratelimit ?? subject.ownerRatelimit!;
  return { allowed: false, limit: spec.limit, remaining: 0, resetAt: now + 1000 };
}

export function newLease(name: string): Lease {
  return { name, windowStart: 0, durationMs: 0, limit: 0, previous: 0, counted: 0, tokens: 0, spare: 0, activeAt: 0, grantedAt: 0, low: 0, refill: false, waiting: 0, inFlight: 0, ask: undefined, flushSeq: 0, need: 0, outage: undefined, charged: 0, chargedPrevious: 0 };
}

/** What this node last saw of a lease's window, if it is the window of `spec`. */
export function seenOf(l: Lease, spec: LimitSpec): SeenWindow | undefined {
  if (l.grantedAt === 0 || l.durationMs !== spec.durationMs || l.limit !== spec.limit) return undefined;
  return { windowStart: l.windowStart, previous: l.previous, counted: l.counted };
}

/** Whether a lease holds tokens of the window `spec` has at `now` (spendable whatever Redis does: it counted them). */
export function tokensFor(l: Lease, spec: LimitSpec, now: number): number {
  return l.tokens > 0 && l.durationMs === spec.durationMs && l.limit === spec.limit && l.windowStart === now - (now % spec.durationMs) ? l.tokens : 0;
}

/** What the window holds at `now` by this node's last word from Redis, not counting unspent tokens. */
export function used(l: Lease, now: number): number {
  return l.previous * ((l.durationMs - (now - l.windowStart)) / l.durationMs) + l.counted - l.tokens;
}

/** What the window has left, as shown. */
export function left(l: Lease, now: number): number {
  return Math.max(0, Math.floor(l.limit - used(l, now)));
}

export function shownOf(l: Lease, allowed: boolean, now: number): RateDecision {
  return { allowed, limit: l.limit, remaining: left(l, now), resetAt: l.windowStart + l.durationMs };
}

/** Whether `l` is a lease on the window `spec` has at `now`, in use recently enough to spend. */
export function current(l: Lease, spec: LimitSpec, now: number, lifeMs: number): boolean {
  return l.durationMs === spec.durationMs && l.limit === spec.limit && l.windowStart === now - (now % spec.durationMs) && now - l.activeAt < lifeMs;
}

export class RedisRateLimiter implements RateLimiter {
  private readonly redis: RedisWithLimit;
  private lastWarn = 0;
  /** Set while local decisions are being made; their counts go back to Redis once it answers again. */
  private fellBack = false;
  /** Live nodes as read when this outage began (undefined while that read is on its way). */
  private share: number | undefined;
  private sharing: Promise<void> | undefined;
  private handingBack: Promise<void> | undefined;
  /** Decisions made without Redis, and how many of them spent a token leased before. */
  private decidedAlone = 0;
  private aloneFromLease = 0;
  private readonly keyLeases = new Map<string, Lease>();
  /** app id → owner (or key id) → lease: looked up by strings the cached key holds, none built. */
  private readonly ownerLeases = new Map<string, Map<string, Lease>>();
  /** Decisions waiting for the end of this event-loop turn, sent to Redis together. */
  private batch: PendingDecision[] = [];
  /** Leases running low, to be topped up with the next call (nobody waits on them). */
  private refills: Lease[] = [];
  /** Unspent tokens to give back with the next call: exact window key → count. */
  private returns = new Map<string, number>();
  private flushScheduled = false;
  private readonly running = new Set<Promise<void>>();
  /** Decisions from tokens in hand and decisions that waited; script calls and bucket grants. */
  private fromLease = 0;
  private waited = 0;
  private calls = 0;
  private grants = 0;
  private flushSeq = 0;
  private readonly sweeper: NodeJS.Timeout;
  private readonly opts: SharedLimiterOptions;
  private readonly prefix: string;
  /** The epoch of Redis's counts this node knows ('' before its first call): a change means Redis lost them. */
  private epoch = '';
  /** The epoch this node sets when it finds none; a new one once used, so two losses never look alike. */
  private candidate = randomBytes(8).toString('hex');
  private readonly id = randomBytes(8).toString('hex');
  private readonly epochKey: string;
  private restoring: Promise<void> | undefined;
  /** Set after this node restored a lost epoch, until every live node has (or PEER_WAIT_MS passed). */
  private gate: Promise<void> | undefined;
  private checking = false;
  /** The check after the last reconnect failed: the next sweep asks again. */
  private recheck = false;
  /** A call to Redis failed and none succeeded since: no epoch check adds to what waits on it. */
  private failing = false;
  private closed = false;

  constructor(redis: Redis, options: Partial<SharedLimiterOptions> & Pick<SharedLimiterOptions, 'prefix' | 'logger'>) {
    redis.defineCommand('keywardLimit', { lua: LIMIT_SCRIPT });
    this.redis = redis as RedisWithLimit;
    this.opts = {
      onFallback: () => {},
      mode: 'share',
      nodes: { live: () => 1, fresh: async () => 1 },
      lifeMs: 2000,
      now: Date.now,
      shift: () => 0,
      circuit: new Circuit({ failuresToOpen: REDIS_FAILURES_TO_OPEN, probeMs: 1000, maxProbeMs: 4000 }),
      probe: async () => (await redis.time()).length === 2,
      ...options,
    };
    this.prefix = this.opts.prefix;
    this.epochKey = `${this.prefix}rl:epoch`;
    // Every (re)connection may be to a Redis that restarted empty: a node quiet since puts back its
    // part at once, not at its next request (which another node's decisions wait for).
    redis.on('ready', () => {
      if (!this.closed) void this.checkEpoch();
    });
    this.sweeper = setInterval(() => this.sweep(this.opts.now()), Math.max(100, Math.min(1000, this.opts.lifeMs / 2)));
    this.sweeper.unref();
  }

  /** Redis's circuit: open while Redis is known not to answer. */
  get circuit(): Circuit {
    return this.opts.circuit;
  }

  /** Whether a call may go to Redis now (connected, and not known to hang). */
  private get up(): boolean {
    return this.redis.status === 'ready' && !this.opts.circuit.open;
  }

  take(subject: LimitSubject, now: number): LimitVerdict | Promise<LimitVerdict> {
    return this.decide(subject, now, true);
  }

  peek(subject: LimitSubject, now: number): LimitVerdict | Promise<LimitVerdict> {
    return this.decide(subject, now, false);
  }

  /**
   * The request took a token of each limit (spent here from a lease Redis counted it in), or, while
   * Redis was away, a count of this node's outage window: it goes back there. A token goes back into
   * its lease only while the lease holds that window (else it stays counted: stricter, never looser).
   */
  refund(subject: LimitSubject, callerNow: number): void {
    const now = callerNow + this.opts.shift();
    const back = (l: Lease | undefined, spec: LimitSpec | null) => {
      if (l === undefined || spec === null) return;
      const o = l.outage;
      if (this.fellBack && o !== undefined && o.own > 0 && o.state.windowStart === now - (now % o.state.durationMs)) {
        o.own--;
        o.state.current = Math.max(0, o.state.current - (this.share ?? Math.max(1, this.opts.nodes.live())));
      } else if (l.durationMs === spec.durationMs && l.limit === spec.limit && l.windowStart === now - (now % spec.durationMs)) {
        l.tokens++;
      }
    };
    back(subject.ratelimit === null ? undefined : this.keyLeases.get(subject.id), subject.ratelimit);
    back(subject.ownerRatelimit === null ? undefined : this.ownerLeases.get(subject.appId)?.get(ownerOf(subject)), subject.ownerRatelimit);
  }

  private decide(subject: LimitSubject, callerNow: number, commit: boolean): LimitVerdict | Promise<LimitVerdict> {
    // Windows are Redis's: every node puts a request in the same window whatever its own clock says.
    return this.decideAt(subject, callerNow + this.opts.shift(), commit);
  }

  /** A decision at `now`, on Redis's clock. */
  private decideAt(subject: LimitSubject, now: number, commit: boolean): LimitVerdict | Promise<LimitVerdict> {
    const keySpec = subject.ratelimit;
    const ownerSpec = subject.ownerRatelimit;
    if (keySpec === null && ownerSpec === null) return undefined;
    // Spent from leases when every limit has a token in hand: no round trip, nothing allocated but the answer.
    if (commit) {
      const life = this.opts.lifeMs;
      const kl = keySpec === null ? undefined : this.keyLeases.get(subject.id);
      const ol = ownerSpec === null ? undefined : this.ownerLeases.get(subject.appId)?.get(ownerOf(subject));
      if ((keySpec === null || (kl !== undefined && kl.tokens > 0 && kl.waiting === 0 && current(kl, keySpec, now, life)))
        && (ownerSpec === null || (ol !== undefined && ol.tokens > 0 && ol.waiting === 0 && current(ol, ownerSpec, now, life)))) {
        if (kl !== undefined) {
          kl.activeAt = now;
          if (--kl.tokens <= kl.low) this.topUp(kl, now);
        }
        if (ol !== undefined) {
          ol.activeAt = now;
          if (--ol.tokens <= ol.low) this.topUp(ol, now);
        }
        this.fromLease++;
        return this.allowed(kl, ol, now);
      }
    }
    if (!this.up) return this.alone(subject, now, commit, this.redis.status === 'ready' ? 'redis does not answer' : 'redis not connected');
    // Redis lost its counts: nothing more is admitted through it until every live node put back its part.
    if (this.gate !== undefined) return this.gate.then(() => this.decideAt(subject, now, commit));
    return this.queue(subject, now, commit);
  }

  /** The decision to show when every limit allowed: the one with less left (the key's on a tie); only it is built. */
  private allowed(kl: Lease | undefined, ol: Lease | undefined, now: number): RateDecision {
    if (kl === undefined) return shownOf(ol!, true, now);
    if (ol === undefined) return shownOf(kl, true, now);
    return left(ol, now) < left(kl, now) ? shownOf(ol, true, now) : shownOf(kl, true, now);
  }

  private queue(subject: LimitSubject, now: number, commit: boolean): Promise<LimitVerdict> {
    // Bucket names as they have always been: `k:<keyId>` and `o:<appId>:<ownerId or keyId>`.
    let key: Lease | undefined;
    let owner: Lease | undefined;
    if (subject.ratelimit !== null) {
      key = this.keyLeases.get(subject.id);
      if (key === undefined) this.keyLeases.set(subject.id, (key = this.newLease(`${this.prefix}rl:k:${subject.id}`)));
      this.renew(key, subject.ratelimit, now, commit);
      key.ask = subject.ratelimit;
      key.waiting++;
    }
    if (subject.ownerRatelimit !== null) {
      let owners = this.ownerLeases.get(subject.appId);
      if (owners === undefined) this.ownerLeases.set(subject.appId, (owners = new Map()));
      const name = ownerOf(subject);
      owner = owners.get(name);
      if (owner === undefined) owners.set(name, (owner = this.newLease(`${this.prefix}rl:o:${subject.appId}:${name}`)));
      this.renew(owner, subject.ownerRatelimit, now, commit);
      owner.ask = subject.ownerRatelimit;
      owner.waiting++;
    }
    this.waited++;
    return new Promise<LimitVerdict>((resolve) => {
      this.batch.push({ subject, now, commit, key, owner, resolve });
      this.schedule();
    });
  }

  private newLease(name: string): Lease {
    return newLease(name);
  }

  /**
   * Before a lease is asked for more: a lease that ran out while current is re-sized to its pace;
   * one whose window ended, whose limit changed or that sat unspent gives its unspent tokens back
   * (to the window they were counted in) and asks for fewer.
   */
  private renew(l: Lease, spec: LimitSpec, now: number, commit: boolean): void {
    if (l.waiting > 0 || l.inFlight > 0 || !commit) return;
    if (current(l, spec, now, this.opts.lifeMs)) {
      if (l.tokens === 0 && this.opts.lifeMs > 0) this.pace(l, now);
    }
    else this.giveBack(l);
  }

  /**
   * A lease down to its last quarter asks for its next grant now, so the requests after it find
   * tokens in hand instead of waiting on Redis; sized by the same pace rule as a lease that ran out.
   */
  private topUp(l: Lease, now: number): void {
    if (l.refill || l.inFlight > 0 || this.opts.lifeMs === 0 || !this.up) return;
    // The last grant found the window full: the next request asks for itself.
    if (l.limit - (used(l, now) + l.tokens) < 1) return;
    this.pace(l, now);
    l.refill = true;
    this.refills.push(l);
    this.schedule();
  }

  /** Spare tokens sized to the bucket's pace: doubled if the last grant lasted less than lifeMs, else halved. */
  private pace(l: Lease, now: number): void {
    l.spare = now - l.grantedAt < this.opts.lifeMs ? Math.min(MAX_SPARE, Math.max(1, l.spare * 2)) : l.spare >> 1;
  }

  private giveBack(l: Lease): void {
    if (l.tokens > 0) {
      const at = `${l.name}:${l.windowStart}`;
      this.returns.set(at, (this.returns.get(at) ?? 0) + l.tokens);
      l.charged -= l.tokens;
      l.tokens = 0;
      l.spare >>= 1;
    }
  }

  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    // setImmediate runs once this turn's I/O callbacks are done: every request parsed in it is in.
    setImmediate(() => {
      this.flushScheduled = false;
      const call = this.flush();
      this.running.add(call);
      void call.finally(() => this.running.delete(call));
    });
  }

  private async flush(): Promise<void> {
    const batch = this.batch;
    this.batch = [];
    const returns = this.returns;
    this.returns = new Map();
    const refills = this.refills;
    this.refills = [];
    if (batch.length === 0 && returns.size === 0 && refills.length === 0) return;
    if (!this.up) {
      // Redis went away after these were queued: they are decided here, and the tokens to give
      // back wait for its return.
      for (const [at, n] of returns) this.returns.set(at, (this.returns.get(at) ?? 0) + n);
      for (const l of refills) l.refill = false;
      for (const d of batch) {
        if (d.key) d.key.waiting--;
        if (d.owner) d.owner.waiting--;
        d.resolve(this.alone(d.subject, d.now, d.commit, 'redis does not answer'));
      }
      return;
    }
    if (this.gate !== undefined) {
      // Redis lost its counts after these were queued: they wait until every live node put back its part.
      for (const [at, n] of returns) this.returns.set(at, (this.returns.get(at) ?? 0) + n);
      for (const l of refills) l.refill = false;
      for (const d of batch) {
        if (d.key) d.key.waiting--;
        if (d.owner) d.owner.waiting--;
        d.resolve(this.decideAt(d.subject, d.now, d.commit));
      }
      return;
    }
    const now = batch.length > 0 ? batch[batch.length - 1]!.now : this.opts.now();
    const seq = ++this.flushSeq;
    const leases: Lease[] = [];
    const list = (l: Lease | undefined, commit: boolean) => {
      if (l === undefined) return;
      if (l.flushSeq !== seq) {
        l.flushSeq = seq;
        l.need = 0;
        leases.push(l);
      }
      if (commit) l.need++;
    };
    for (const d of batch) {
      list(d.key, d.commit);
      list(d.owner, d.commit);
    }
    for (const l of refills) if (l.ask !== undefined) list(l, false);
    const keys: string[] = [this.epochKey, ...returns.keys()];
    const args: (number | string)[] = [now, Math.max(1, this.opts.nodes.live()), returns.size, this.epoch, this.candidate, this.id, RESTORED_KEEP_MS, ...returns.values()];
    const specs: LimitSpec[] = [];
    for (const l of leases) {
      const spec = l.ask!;
      specs.push(spec);
      keys.push(l.name);
      // Tokens in hand count toward the need unless an earlier grant is still on its way (its
      // tokens are promised to the requests queued before these). Spare tokens only with a need:
      // a dry run asks for none.
      const need = Math.max(0, l.need - (l.inFlight === 0 ? l.tokens : 0));
      args.push(spec.limit, spec.durationMs, need, (need > 0 || l.refill) && this.opts.lifeMs > 0 ? l.spare : 0);
      l.refill = false;
      l.inFlight++;
    }
    this.calls++;
    this.grants += leases.length;
    try {
      if (this.fellBack) await this.handBack(now);
      const out = await this.redis.keywardLimit(keys.length, ...keys, ...args);
      this.opts.circuit.success(false);
      this.failing = false;
      if (Number(out[0]) !== 0) {
        // Redis lost its counts: nothing was done with this call. What this node counted goes
        // back first (the tokens it gave back in it are already out of that), then its requests
        // are decided again.
        for (const l of leases) l.inFlight--;
        await this.restore(String(out[1]), true);
        for (const d of batch) {
          if (d.key) d.key.waiting--;
          if (d.owner) d.owner.waiting--;
          d.resolve(this.decideAt(d.subject, d.now, d.commit));
        }
        return;
      }
      if (this.epoch === '') this.adopt(String(out[1]));
      for (const [i, l] of leases.entries()) {
        l.inFlight--;
        this.granted(l, specs[i]!, now, Number(out[2 + 3 * i]), Number(out[3 + 3 * i]), Number(out[4 + 3 * i]));
      }
    } catch (err) {
      // Tokens given back or granted in a call that failed stay counted in Redis: limits only get
      // stricter, for at most two windows.
      this.opts.circuit.failure(this.opts.now(), false);
      this.failing = true;
      for (const l of leases) l.inFlight--;
      for (const d of batch) {
        if (d.key) d.key.waiting--;
        if (d.owner) d.owner.waiting--;
        d.resolve(this.alone(d.subject, d.now, d.commit, (err as Error).message));
      }
      return;
    }
    for (const d of batch) d.resolve(this.settle(d, now));
  }

  private granted(l: Lease, spec: LimitSpec, now: number, grant: number, previous: number, counted: number): void {
    const windowStart = now - (now % spec.durationMs);
    if (l.windowStart !== windowStart || l.durationMs !== spec.durationMs || l.limit !== spec.limit) {
      // Tokens of another window (or limit) cannot be spent in this one.
      this.giveBack(l);
      l.chargedPrevious = l.durationMs === spec.durationMs && l.windowStart === windowStart - spec.durationMs ? l.charged : 0;
      l.charged = 0;
      l.windowStart = windowStart;
      l.durationMs = spec.durationMs;
      l.limit = spec.limit;
    }
    l.previous = previous;
    l.counted = counted;
    l.tokens += grant;
    l.charged += grant;
    l.activeAt = now;
    l.grantedAt = now;
    l.low = l.spare >> 2;
  }

  /** A queued request, in arrival order, once its buckets' grants are in. */
  private settle(d: PendingDecision, now: number): LimitVerdict {
    const { key, owner } = d;
    if (key) key.waiting--;
    if (owner) owner.waiting--;
    if (d.commit) {
      const keyOk = key === undefined || key.tokens > 0;
      const ownerOk = owner === undefined || owner.tokens > 0;
      if (keyOk && ownerOk) {
        if (key && --key.tokens <= key.low) this.topUp(key, now);
        if (owner && --owner.tokens <= owner.low) this.topUp(owner, now);
        return this.allowed(key, owner, now);
      }
      return !keyOk ? shownOf(key!, false, now) : shownOf(owner!, false, now);
    }
    // A dry run: would a request be admitted now (a token in hand, or room in Redis)?
    const roomy = (l: Lease) => l.tokens > 0 || l.limit - (used(l, now) + l.tokens) >= 1;
    const keyOk = key === undefined || roomy(key);
    const ownerOk = owner === undefined || roomy(owner);
    if (!keyOk) return shownOf(key!, false, now);
    if (!ownerOk) return shownOf(owner!, false, now);
    const k = key && shownOf(key, true, now);
    const o = owner && shownOf(owner, true, now);
    return tighter(k, o);
  }

  /**
   * Unspent tokens of ended windows or old leases go back; leases idle for long are forgotten. Not
   * while Redis is away: the tokens are spent here meanwhile, and the leases hold what this node
   * last saw and admitted.
   */
  sweep(now: number): void {
    // A check after a reconnect that failed is asked again; never beside a call in flight, nor after
    // a call failed (one that hangs is what opens the breaker, and nothing else may be sent meanwhile).
    if (this.recheck && this.up && !this.failing && !this.checking && this.restoring === undefined && this.running.size === 0 && !this.flushScheduled) void this.checkEpoch();
    if (this.fellBack) return;
    const visit = (l: Lease): boolean => {
      if (l.waiting > 0 || l.inFlight > 0) return true;
      if (l.tokens > 0 && (now - l.activeAt >= this.opts.lifeMs || now >= l.windowStart + l.durationMs)) this.giveBack(l);
      return l.tokens > 0 || now - l.activeAt < IDLE_MS;
    };
    for (const [id, l] of this.keyLeases) if (!visit(l)) this.keyLeases.delete(id);
    for (const [app, owners] of this.ownerLeases) {
      for (const [owner, l] of owners) if (!visit(l)) owners.delete(owner);
      if (owners.size === 0) this.ownerLeases.delete(app);
    }
    if (this.returns.size > 0 && this.up) this.schedule();
  }

  stats(): SharedLimitStats {
    return { fromLease: this.fromLease, waited: this.waited, calls: this.calls, grants: this.grants, tokensHeld: this.leaseStats().tokens };
  }

  /** Leases held, and unspent tokens in them (for tests and metrics). */
  leaseStats(): { leases: number; tokens: number } {
    let leases = 0;
    let tokens = 0;
    const add = (l: Lease) => {
      leases++;
      tokens += l.tokens;
    };
    for (const l of this.keyLeases.values()) add(l);
    for (const owners of this.ownerLeases.values()) for (const l of owners.values()) add(l);
    return { leases, tokens };
  }

  /** What this node last saw in Redis of a subject's windows (the bound of an outage depends on it). */
  lastSeen(subject: LimitSubject): { key: SeenWindow | undefined; owner: SeenWindow | undefined } {
    const key = this.keyLeases.get(subject.id);
    const owner = this.ownerLeases.get(subject.appId)?.get(ownerOf(subject));
    return {
      key: key === undefined || subject.ratelimit === null ? undefined : seenOf(key, subject.ratelimit),
      owner: owner === undefined || subject.ownerRatelimit === null ? undefined : seenOf(owner, subject.ownerRatelimit),
    };
  }

  /** Decisions made without Redis since start, and how many of them spent a token leased before. */
  fallbackStats(): { decisions: number; fromLease: number } {
    return { decisions: this.decidedAlone, fromLease: this.aloneFromLease };
  }

  /**
   * A decision without Redis. The first one of an outage reads the live-node count from the store
   * (the count the limits are shared by must be the one every node reads now, not each node's
   * last heartbeat); decisions wait for that read only. While the circuit is open, the probe due
   * goes out from here, in the background.
   */
  private alone(subject: LimitSubject, now: number, commit: boolean, reason: string): LimitVerdict | Promise<LimitVerdict> {
    this.opts.onFallback();
    this.decidedAlone++;
    if (!this.fellBack) {
      this.fellBack = true;
      this.share = undefined;
      const sharing = this.opts.nodes.fresh().then((n) => Math.max(1, n), () => Math.max(1, this.opts.nodes.live())).then((n) => {
        if (this.sharing === sharing) this.share = n;
      });
      this.sharing = sharing;
    }
    if (now - this.lastWarn > 10_000) {
      this.lastWarn = now;
      this.opts.logger.warn({ reason, mode: this.opts.mode }, 'shared rate limiter unavailable; deciding locally');
    }
    if (this.opts.circuit.open) this.probe();
    if (this.opts.mode === 'deny') return denied(subject, now);
    if (this.share === undefined) return this.sharing!.then(() => this.outageDecision(subject, now, commit));
    return this.outageDecision(subject, now, commit);
  }

  /** The one probe due, if any: its success closes the circuit, and decisions go to Redis again (counts handed back first). */
  private probe(): void {
    const circuit = this.opts.circuit;
    if (circuit.enter(this.opts.now()) !== 'probe') return;
    this.opts.probe().then((ok) => {
      if (ok) {
        circuit.success(true);
        this.failing = false;
      } else circuit.failure(this.opts.now(), true);
    }, () => circuit.failure(this.opts.now(), true));
  }

  /** The lease of each limit a subject has, made if this node never had one (an outage window needs a home). */
  private leasesOf(subject: LimitSubject): { key: Lease | undefined; owner: Lease | undefined } {
    let key: Lease | undefined;
    let owner: Lease | undefined;
    if (subject.ratelimit !== null) {
      key = this.keyLeases.get(subject.id);
      if (key === undefined) this.keyLeases.set(subject.id, (key = this.newLease(`${this.prefix}rl:k:${subject.id}`)));
    }
    if (subject.ownerRatelimit !== null) {
      let owners = this.ownerLeases.get(subject.appId);
      if (owners === undefined) this.ownerLeases.set(subject.appId, (owners = new Map()));
      const name = ownerOf(subject);
      owner = owners.get(name);
      if (owner === undefined) owners.set(name, (owner = this.newLease(`${this.prefix}rl:o:${subject.appId}:${name}`)));
    }
    return { key, owner };
  }

  /** The outage window of a lease under `spec`, begun from what the lease last saw. */
  private outageOf(l: Lease, spec: LimitSpec, now: number): OutageWindow {
    if (l.outage === undefined || l.outage.limit !== spec.limit || l.outage.state.durationMs !== spec.durationMs) {
      l.outage = startOutage(spec, seenOf(l, spec), now);
    }
    return l.outage;
  }

  /**
   * All-or-nothing over the key's and the owner's limit, as with Redis: each admits with a token
   * leased before the outage, else with room in this node's share of what the last shared count left.
   */
  private outageDecision(subject: LimitSubject, now: number, commit: boolean): LimitVerdict {
    const share = this.share ?? Math.max(1, this.opts.nodes.live());
    const { key, owner } = this.leasesOf(subject);
    const check = (l: Lease | undefined, spec: LimitSpec | null) => {
      if (l === undefined || spec === null) return undefined;
      const outage = this.outageOf(l, spec, now);
      const tokens = tokensFor(l, spec, now);
      return { l, spec, outage, tokens, ok: tokens > 0 || outageRoom(outage, now, share) };
    };
    const k = check(key, subject.ratelimit);
    const o = check(owner, subject.ownerRatelimit);
    const allowed = (k === undefined || k.ok) && (o === undefined || o.ok);
    if (allowed && commit) {
      for (const c of [k, o]) {
        if (c === undefined) continue;
        if (c.tokens > 0) {
          c.l.tokens--;
          c.tokens--;
          this.aloneFromLease++;
        } else countOutage(c.outage, now, share);
      }
    }
    const shown = (c: NonNullable<typeof k>): RateDecision => ({
      allowed: c.ok,
      limit: c.spec.limit,
      remaining: c.tokens + outageLeft(c.outage, now, share),
      resetAt: now - (now % c.spec.durationMs) + c.spec.durationMs,
    });
    if (k !== undefined && !k.ok) return shown(k);
    if (o !== undefined && !o.ok) return shown(o);
    return tighter(k && shown(k), o && shown(o));
  }

  /** From now on this node's counts are in `epoch`; the one it would set next is new, so no later loss looks like this one. */
  private adopt(epoch: string): void {
    this.epoch = epoch;
    if (epoch === this.candidate) this.candidate = randomBytes(8).toString('hex');
  }

  /** Asks Redis for the epoch of its counts (after each connection); one this node does not know has it restore its part. */
  private async checkEpoch(): Promise<void> {
    this.checking = true;
    this.recheck = false;
    try {
      const epoch = String(await this.redis.eval(EPOCH, 1, this.epochKey, this.candidate));
      if (epoch !== this.epoch) {
        // As a grant call does: what this node admitted alone goes back before it restores, so both
        // ways back from an outage put counts back in one order (a loss can then only make limits
        // stricter: the restored window and the hand-back may both count what was admitted).
        if (this.fellBack) await this.handBack(this.opts.now());
        await this.restore(epoch, this.epoch !== '');
      }
    } catch {
      // Asked again by a sweep once calls succeed; a call that finds the epoch changed restores meanwhile.
      this.failing = true;
      this.recheck = true;
    } finally {
      this.checking = false;
    }
  }

  /**
   * Puts back, in the windows of `epoch`, what this node counted in the windows still current: the
   * count it last saw there and what it charged (RESTORE), and counts itself among the nodes that
   * did. After a loss (`lost`), nothing more goes through Redis until every live node has.
   */
  private restore(epoch: string, lost: boolean): Promise<void> {
    this.restoring ??= (async () => {
      const now = this.opts.now();
      const windows = new Map<string, { seen: number; own: number; keepMs: number }>();
      const put = (at: string, windowStart: number, durationMs: number, seen: number, own: number) => {
        const keepMs = Math.ceil(windowStart + 2 * durationMs - now);
        if (keepMs <= 0 || (seen <= 0 && own <= 0)) return;
        const w = windows.get(at) ?? { seen: 0, own: 0, keepMs };
        w.seen = Math.max(w.seen, seen);
        w.own += Math.max(0, own);
        windows.set(at, w);
      };
      const collect = (l: Lease) => {
        if (!lost || l.grantedAt === 0) return;
        put(`${l.name}:${l.windowStart}`, l.windowStart, l.durationMs, l.counted, l.charged);
        put(`${l.name}:${l.windowStart - l.durationMs}`, l.windowStart - l.durationMs, l.durationMs, l.previous, l.chargedPrevious);
      };
      for (const l of this.keyLeases.values()) collect(l);
      for (const owners of this.ownerLeases.values()) for (const l of owners.values()) collect(l);
      // Tokens waiting to go back are already out of what is charged: they are not taken off again.
      if (lost) this.returns.clear();
      const keys = [...windows.keys(), `${this.epochKey}:${epoch}`];
      const args = [...[...windows.values()].flatMap((w) => [w.seen, w.own, w.keepMs]), this.id, RESTORED_KEEP_MS];
      const restored = Number(await this.redis.eval(RESTORE, keys.length, ...keys, ...args));
      this.adopt(epoch);
      if (lost && restored < Math.max(1, this.opts.nodes.live())) this.gate ??= this.waitForPeers(epoch);
    })().finally(() => {
      this.restoring = undefined;
    });
    return this.restoring;
  }

  /** Resolves once every live node restored `epoch`, or after PEER_WAIT_MS (a node may have died since its heartbeat). */
  private waitForPeers(epoch: string): Promise<void> {
    const until = performance.now() + PEER_WAIT_MS;
    return (async () => {
      while (!this.closed && performance.now() < until) {
        await new Promise((resolve) => setTimeout(resolve, 25));
        try {
          if ((await this.redis.scard(`${this.epochKey}:${epoch}`)) >= Math.max(1, this.opts.nodes.live())) break;
        } catch {
          break;
        }
      }
    })().finally(() => {
      this.gate = undefined;
    });
  }

  /**
   * Redis is back, perhaps empty: what this node admitted by itself goes to the shared windows
   * before the next shared decision, so nobody gets a fresh window for free; a window Redis lost
   * gets back the count this node last saw in it.
   */
  private handBack(now: number): Promise<void> {
    this.handingBack ??= (async () => {
      // Decisions still waiting for the live-node count are made (and counted) first.
      await this.sharing;
      const windows = new Map<string, { seen: number; own: number; estimate: number; keepMs: number }>();
      const put = (at: string, windowStart: number, durationMs: number, seen: number, own: number, estimate: number) => {
        const keepMs = Math.ceil(windowStart + 2 * durationMs - now);
        if (keepMs <= 0 || (seen <= 0 && own <= 0 && estimate <= 0)) return;
        const w = windows.get(at) ?? { seen: 0, own: 0, estimate: 0, keepMs };
        w.seen = Math.max(w.seen, seen);
        w.own += own;
        w.estimate = Math.max(w.estimate, Math.ceil(estimate));
        windows.set(at, w);
      };
      const outages: Lease[] = [];
      const collect = (l: Lease) => {
        // Every window this node has seen (no grant came since the outage began) is restored if lost.
        if (l.grantedAt > 0) {
          put(`${l.name}:${l.windowStart}`, l.windowStart, l.durationMs, l.counted, 0, 0);
          put(`${l.name}:${l.windowStart - l.durationMs}`, l.windowStart - l.durationMs, l.durationMs, l.previous, 0, 0);
        }
        const o = l.outage;
        if (o === undefined) return;
        outages.push(l);
        const d = o.state.durationMs;
        put(`${l.name}:${o.state.windowStart}`, o.state.windowStart, d, 0, o.own, o.state.current);
        put(`${l.name}:${o.state.windowStart - d}`, o.state.windowStart - d, d, 0, o.ownPrevious, o.state.previous);
      };
      for (const l of this.keyLeases.values()) collect(l);
      for (const owners of this.ownerLeases.values()) for (const l of owners.values()) collect(l);
      const keys = [...windows.keys()];
      const args = [...windows.values()].flatMap((w) => [w.seen, w.own, w.estimate, w.keepMs]);
      // One awaited script rather than a pipeline: a connection that drops mid-way rejects this
      // one promise, which the caller handles, and leaves no stray command promise behind.
      if (keys.length > 0) await this.redis.eval(HAND_BACK_SCRIPT, keys.length, ...keys, ...args);
      for (const l of outages) l.outage = undefined;
      this.fellBack = false;
      this.share = undefined;
      this.sharing = undefined;
    })().finally(() => {
      this.handingBack = undefined;
    });
    return this.handingBack;
  }

  /** Resolves once no call is queued or in flight (each is bounded by the command timeout). */
  async drain(): Promise<void> {
    while (this.flushScheduled || this.running.size > 0) {
      if (this.running.size > 0) await Promise.all(this.running);
      else await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Waits for grants on their way, gives every unspent token (and what it admitted alone) back, then stops. */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.closed = true;
    await this.gate;
    await this.drain();
    for (const l of this.keyLeases.values()) this.giveBack(l);
    for (const owners of this.ownerLeases.values()) for (const l of owners.values()) this.giveBack(l);
    if (!this.up) return;
    if (this.fellBack) await this.handBack(this.opts.now()).catch(() => undefined);
    if (this.returns.size > 0) await this.flush().catch(() => undefined);
  }
}
