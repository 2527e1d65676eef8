// Named limits and the standalone limiter shared by every node through Redis: the leases of the key
// limits (redis.ts, docs/design/rate-limits.md), over any number of buckets a request names and a
// cost per bucket. A reservation spends `cost` tokens of every bucket or of none; tokens handed
// back go back into the lease they came from (Redis counted them, so the node spends them later or
// returns them when the lease sits idle), or to the window they were counted in. While Redis cannot
// answer, each node decides from what it last saw and its share of what that left, as the key
// limits do, and hands its own counts back when Redis returns.
import type { Redis } from 'ioredis';
import type { LimitSpec, RateDecision } from './decide.js';
import type { Bucket, BucketLimiter, Held, Reservation } from './buckets.js';
import { specOf } from './buckets.js';
import { countOutage, outageLeft, outageUsage, startOutage, type OutageWindow } from './limiter.js';
import {
  HAND_BACK_SCRIPT, IDLE_MS, MAX_SPARE, REDIS_FAILURES_TO_OPEN, current, newLease, seenOf, shownOf, tokensFor, used,
  type Lease, type SharedLimiterOptions,
} from './redis.js';
import { Circuit } from '../lib/circuit.js';

/**
 * The key and owner limits' script before Redis kept an epoch of its counts (./redis.ts), for named
 * limits: grants for every bucket the requests of one event-loop turn need, in one call (tokens given
 * back first, KEYS[1..r], then per bucket: limit, duration, need, spare). Answers grant,
 * previous-window count and current-window count per bucket. Named limits do not restore their
 * windows after Redis restarts empty (the key and owner limits do): a restart between two requests
 * can hand a named limit's window out again.
 */
const BUCKET_LIMIT_SCRIPT = `
local now = tonumber(ARGV[1])
local share = tonumber(ARGV[2])
local r = tonumber(ARGV[3])
local a = 4
for i = 1, r do
  local amount = tonumber(ARGV[a])
  a = a + 1
  local held = tonumber(redis.call('GET', KEYS[i]) or '0')
  local back = math.min(held, amount)
  if back > 0 then redis.call('DECRBY', KEYS[i], back) end
end
local out = {}
for k = r + 1, #KEYS do
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

type RedisWithBucketLimit = Redis & { keywardBucketLimit(numKeys: number, ...args: (string | number)[]): Promise<number[]> };

interface Pending {
  buckets: readonly Bucket[];
  leases: Lease[];
  now: number;
  commit: boolean;
  resolve: (r: Reservation | Promise<Reservation>) => void;
}

/** Units counted by this node alone while Redis was away: handed back by lowering its estimate. */
interface OutageHeld {
  outage: OutageWindow;
  share: number;
}

const EMPTY: Reservation = Object.freeze({ allowed: true, decisions: [], held: [] }) as Reservation;

export class RedisBucketLimiter implements BucketLimiter {
  private readonly redis: RedisWithBucketLimit;
  private readonly opts: SharedLimiterOptions;
  private readonly leases = new Map<string, Lease>();
  private batch: Pending[] = [];
  private refills: Lease[] = [];
  private returns = new Map<string, number>();
  private flushScheduled = false;
  private readonly running = new Set<Promise<void>>();
  private flushSeq = 0;
  private fellBack = false;
  private share: number | undefined;
  private sharing: Promise<void> | undefined;
  private handingBack: Promise<void> | undefined;
  private lastWarn = 0;
  private readonly sweeper: NodeJS.Timeout;
  /** Reservations decided from tokens in hand, and those that waited on Redis. */
  fromLease = 0;
  waited = 0;

  constructor(redis: Redis, options: Partial<SharedLimiterOptions> & Pick<SharedLimiterOptions, 'prefix' | 'logger'>) {
    redis.defineCommand('keywardBucketLimit', { lua: BUCKET_LIMIT_SCRIPT });
    this.redis = redis as RedisWithBucketLimit;
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
    this.sweeper = setInterval(() => this.sweep(this.opts.now()), Math.max(100, Math.min(1000, this.opts.lifeMs / 2)));
    this.sweeper.unref();
  }

  private get up(): boolean {
    return this.redis.status === 'ready' && !this.opts.circuit.open;
  }

  reserve(buckets: readonly Bucket[], callerNow: number, commit: boolean): Reservation | Promise<Reservation> {
    if (buckets.length === 0) return EMPTY;
    const now = callerNow + this.opts.shift();
    if (commit) {
      const life = this.opts.lifeMs;
      let inHand = true;
      for (const b of buckets) {
        const l = this.leases.get(b.id);
        if (l === undefined || l.waiting > 0 || l.tokens < b.cost || !current(l, specOf(b), now, life)) {
          inHand = false;
          break;
        }
      }
      if (inHand) {
        this.fromLease++;
        return this.spend(buckets, buckets.map((b) => this.leases.get(b.id)!), now);
      }
    }
    if (!this.up) return this.alone(buckets, now, commit, this.redis.status === 'ready' ? 'redis does not answer' : 'redis not connected');
    return this.queue(buckets, now, commit);
  }

  /** Spends every bucket's cost from tokens in hand (the caller checked there are enough). */
  private spend(buckets: readonly Bucket[], leases: Lease[], now: number): Reservation {
    const held: Held[] = [];
    const decisions: RateDecision[] = [];
    for (const [i, b] of buckets.entries()) {
      const l = leases[i]!;
      if (b.cost > 0) {
        l.tokens -= b.cost;
        l.activeAt = now;
        held.push({ bucket: b, windowStart: l.windowStart, cost: b.cost, via: l });
        if (l.tokens <= l.low) this.topUp(l, now);
      }
      decisions.push(shownOf(l, true, now));
    }
    return { allowed: true, decisions, held };
  }

  handBack(reservation: Reservation, _now: number): void {
    for (const h of reservation.held) {
      const via = h.via as Lease | OutageHeld | undefined;
      if (via === undefined) continue;
      if ('share' in via) {
        const o = via.outage;
        if (o.state.windowStart === h.windowStart) {
          o.own = Math.max(0, o.own - h.cost);
          o.state.current = Math.max(0, o.state.current - h.cost * via.share);
        }
        continue;
      }
      // Back into the lease while it holds that window (Redis counted them: they are spent later, or
      // returned with the lease's other unspent tokens); else back to the window in Redis.
      if (via.windowStart === h.windowStart && via.durationMs === h.bucket.durationMs && !this.fellBack) via.tokens += h.cost;
      else {
        const at = `${via.name}:${h.windowStart}`;
        this.returns.set(at, (this.returns.get(at) ?? 0) + h.cost);
        if (this.up) this.schedule();
      }
    }
  }

  private lease(id: string): Lease {
    let l = this.leases.get(id);
    if (l === undefined) this.leases.set(id, (l = newLease(`${this.opts.prefix}rl:${id}`)));
    return l;
  }

  private queue(buckets: readonly Bucket[], now: number, commit: boolean): Promise<Reservation> {
    const leases = buckets.map((b) => {
      const l = this.lease(b.id);
      const spec = specOf(b);
      this.renew(l, spec, now, commit);
      l.ask = spec;
      l.waiting++;
      return l;
    });
    this.waited++;
    return new Promise<Reservation>((resolve) => {
      this.batch.push({ buckets, leases, now, commit, resolve });
      this.schedule();
    });
  }

  private renew(l: Lease, spec: LimitSpec, now: number, commit: boolean): void {
    if (l.waiting > 0 || l.inFlight > 0 || !commit) return;
    if (current(l, spec, now, this.opts.lifeMs)) {
      if (l.tokens === 0 && this.opts.lifeMs > 0) this.pace(l, now);
    } else this.giveBack(l);
  }

  private topUp(l: Lease, now: number): void {
    if (l.refill || l.inFlight > 0 || this.opts.lifeMs === 0 || !this.up) return;
    if (l.limit - (used(l, now) + l.tokens) < 1) return;
    this.pace(l, now);
    l.refill = true;
    this.refills.push(l);
    this.schedule();
  }

  private pace(l: Lease, now: number): void {
    l.spare = now - l.grantedAt < this.opts.lifeMs ? Math.min(MAX_SPARE, Math.max(1, l.spare * 2)) : l.spare >> 1;
  }

  private giveBack(l: Lease): void {
    if (l.tokens > 0) {
      const at = `${l.name}:${l.windowStart}`;
      this.returns.set(at, (this.returns.get(at) ?? 0) + l.tokens);
      l.tokens = 0;
      l.spare >>= 1;
    }
  }

  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
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
    const fail = (reason: string) => {
      for (const d of batch) {
        for (const l of d.leases) l.waiting--;
        d.resolve(this.alone(d.buckets, d.now, d.commit, reason));
      }
    };
    if (!this.up) {
      for (const [at, n] of returns) this.returns.set(at, (this.returns.get(at) ?? 0) + n);
      for (const l of refills) l.refill = false;
      fail('redis does not answer');
      return;
    }
    const now = batch.length > 0 ? batch[batch.length - 1]!.now : this.opts.now();
    const seq = ++this.flushSeq;
    const leases: Lease[] = [];
    const list = (l: Lease, cost: number) => {
      if (l.flushSeq !== seq) {
        l.flushSeq = seq;
        l.need = 0;
        leases.push(l);
      }
      l.need += cost;
    };
    for (const d of batch) for (const [i, l] of d.leases.entries()) list(l, d.commit ? d.buckets[i]!.cost : 0);
    for (const l of refills) if (l.ask !== undefined) list(l, 0);
    const keys: string[] = [...returns.keys()];
    const args: number[] = [now, Math.max(1, this.opts.nodes.live()), returns.size, ...returns.values()];
    const specs: LimitSpec[] = [];
    for (const l of leases) {
      const spec = l.ask!;
      specs.push(spec);
      keys.push(l.name);
      const need = Math.max(0, l.need - (l.inFlight === 0 ? l.tokens : 0));
      args.push(spec.limit, spec.durationMs, need, (need > 0 || l.refill) && this.opts.lifeMs > 0 ? l.spare : 0);
      l.refill = false;
      l.inFlight++;
    }
    try {
      if (this.fellBack) await this.handBackOutage(now);
      const out = keys.length > 0 ? await this.redis.keywardBucketLimit(keys.length, ...keys, ...args) : [];
      this.opts.circuit.success(false);
      for (const [i, l] of leases.entries()) {
        l.inFlight--;
        this.granted(l, specs[i]!, now, out[3 * i]!, out[3 * i + 1]!, out[3 * i + 2]!);
      }
    } catch (err) {
      this.opts.circuit.failure(this.opts.now(), false);
      for (const l of leases) l.inFlight--;
      fail((err as Error).message);
      return;
    }
    for (const d of batch) d.resolve(this.settle(d, now));
  }

  private granted(l: Lease, spec: LimitSpec, now: number, grant: number, previous: number, counted: number): void {
    const windowStart = now - (now % spec.durationMs);
    if (l.windowStart !== windowStart || l.durationMs !== spec.durationMs || l.limit !== spec.limit) {
      this.giveBack(l);
      l.windowStart = windowStart;
      l.durationMs = spec.durationMs;
      l.limit = spec.limit;
    }
    l.previous = previous;
    l.counted = counted;
    l.tokens += grant;
    l.activeAt = now;
    l.grantedAt = now;
    l.low = l.spare >> 2;
  }

  /** A queued request, in arrival order, once its buckets' grants are in. */
  private settle(d: Pending, now: number): Reservation {
    for (const l of d.leases) l.waiting--;
    if (d.commit) {
      const ok = d.buckets.map((b, i) => d.leases[i]!.tokens >= b.cost);
      if (ok.every(Boolean)) return this.spend(d.buckets, d.leases, now);
      return { allowed: false, decisions: d.leases.map((l, i) => shownOf(l, ok[i]!, now)), held: [] };
    }
    const ok = d.buckets.map((b, i) => {
      const l = d.leases[i]!;
      return l.tokens >= b.cost || l.limit - (used(l, now) + l.tokens) >= b.cost;
    });
    return { allowed: ok.every(Boolean), decisions: d.leases.map((l, i) => shownOf(l, ok[i]!, now)), held: [] };
  }

  sweep(now: number): void {
    if (this.fellBack) return;
    for (const [id, l] of this.leases) {
      if (l.waiting > 0 || l.inFlight > 0) continue;
      if (l.tokens > 0 && (now - l.activeAt >= this.opts.lifeMs || now >= l.windowStart + l.durationMs)) this.giveBack(l);
      if (l.tokens === 0 && now - l.activeAt >= IDLE_MS) this.leases.delete(id);
    }
    if (this.returns.size > 0 && this.up) this.schedule();
  }

  /** Leases held, and unspent tokens in them (tests and metrics). */
  leaseStats(): { leases: number; tokens: number } {
    let tokens = 0;
    for (const l of this.leases.values()) tokens += l.tokens;
    return { leases: this.leases.size, tokens };
  }

  private alone(buckets: readonly Bucket[], now: number, commit: boolean, reason: string): Reservation | Promise<Reservation> {
    this.opts.onFallback();
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
      this.opts.logger.warn({ reason, mode: this.opts.mode }, 'shared rate limiter unavailable; deciding named limits locally');
    }
    if (this.opts.circuit.open) this.probe();
    if (this.opts.mode === 'deny') {
      return { allowed: false, decisions: buckets.map((b) => ({ allowed: false, limit: b.limit, remaining: 0, resetAt: now + 1000 })), held: [] };
    }
    if (this.share === undefined) return this.sharing!.then(() => this.outageDecision(buckets, now, commit));
    return this.outageDecision(buckets, now, commit);
  }

  private probe(): void {
    const circuit = this.opts.circuit;
    if (circuit.enter(this.opts.now()) !== 'probe') return;
    this.opts.probe().then((ok) => {
      if (ok) circuit.success(true);
      else circuit.failure(this.opts.now(), true);
    }, () => circuit.failure(this.opts.now(), true));
  }

  private outageOf(l: Lease, spec: LimitSpec, now: number): OutageWindow {
    if (l.outage === undefined || l.outage.limit !== spec.limit || l.outage.state.durationMs !== spec.durationMs) {
      l.outage = startOutage(spec, seenOf(l, spec), now);
    }
    return l.outage;
  }

  /** All-or-nothing as with Redis: each bucket admits from tokens leased before, else from this node's share. */
  private outageDecision(buckets: readonly Bucket[], now: number, commit: boolean): Reservation {
    const share = this.share ?? Math.max(1, this.opts.nodes.live());
    const checks = buckets.map((b) => {
      const spec = specOf(b);
      const l = this.lease(b.id);
      const outage = this.outageOf(l, spec, now);
      const tokens = tokensFor(l, spec, now);
      return { b, l, outage, tokens, ok: tokens >= b.cost || outageUsage(outage, now) + b.cost * share <= b.limit };
    });
    const allowed = checks.every((c) => c.ok);
    const held: Held[] = [];
    if (allowed && commit) {
      for (const c of checks) {
        if (c.b.cost === 0) continue;
        if (c.tokens >= c.b.cost) {
          c.l.tokens -= c.b.cost;
          c.tokens -= c.b.cost;
          held.push({ bucket: c.b, windowStart: c.l.windowStart, cost: c.b.cost, via: c.l });
        } else {
          for (let i = 0; i < c.b.cost; i++) countOutage(c.outage, now, share);
          held.push({ bucket: c.b, windowStart: c.outage.state.windowStart, cost: c.b.cost, via: { outage: c.outage, share } satisfies OutageHeld });
        }
      }
    }
    const decisions = checks.map((c) => ({
      allowed: c.ok,
      limit: c.b.limit,
      remaining: c.tokens + outageLeft(c.outage, now, share),
      resetAt: now - (now % c.b.durationMs) + c.b.durationMs,
    }));
    return { allowed, decisions, held };
  }

  /** Redis is back: what this node admitted alone goes to the shared windows first (see redis.ts). */
  private handBackOutage(now: number): Promise<void> {
    this.handingBack ??= (async () => {
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
      for (const l of this.leases.values()) {
        if (l.grantedAt > 0) {
          put(`${l.name}:${l.windowStart}`, l.windowStart, l.durationMs, l.counted, 0, 0);
          put(`${l.name}:${l.windowStart - l.durationMs}`, l.windowStart - l.durationMs, l.durationMs, l.previous, 0, 0);
        }
        const o = l.outage;
        if (o === undefined) continue;
        outages.push(l);
        const d = o.state.durationMs;
        put(`${l.name}:${o.state.windowStart}`, o.state.windowStart, d, 0, o.own, o.state.current);
        put(`${l.name}:${o.state.windowStart - d}`, o.state.windowStart - d, d, 0, o.ownPrevious, o.state.previous);
      }
      const keys = [...windows.keys()];
      const args = [...windows.values()].flatMap((w) => [w.seen, w.own, w.estimate, w.keepMs]);
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

  async drain(): Promise<void> {
    while (this.flushScheduled || this.running.size > 0) {
      if (this.running.size > 0) await Promise.all(this.running);
      else await new Promise((resolve) => setImmediate(resolve));
    }
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await this.drain();
    for (const l of this.leases.values()) this.giveBack(l);
    if (!this.up) return;
    if (this.fellBack) await this.handBackOutage(this.opts.now()).catch(() => undefined);
    if (this.returns.size > 0) await this.flush().catch(() => undefined);
  }
}
