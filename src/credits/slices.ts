// Usage caps at verify speed: each node spends units of a key's cap that a store transaction has
// already moved out of keys.remaining and reserved for it (a slice), so a capped verify with units
// in hand is decided in memory, synchronously, and no node can ever spend more than it was given.
// Why it stays exact, and what a crash can cost: docs/design/credits.md.
import type { Logger } from 'pino';
import { AppError, FIXED_DETAIL } from '../errors.js';
import type { Store } from '../store/db.js';
import type { WebhookOutbox } from '../webhooks/outbox.js';
import { leftNow } from './decide.js';
import { applyOps, LateWrite, type CapAnswer, type Op, type OpResult, type Slice, type Waiter } from './lease.js';

export type { CapAnswer, CapExceeded } from './lease.js';

export interface CreditOptions {
  /** How long unspent units may sit on a node before they go back; also the pace a slice is sized to. */
  lifeMs: number;
  /** The clock decisions use (periods, activity): the node's clock, a fake one in tests. */
  now: () => number;
  /** Live nodes sharing the store (the heartbeat's count). */
  liveNodes: () => number;
}

/** The most spare units one lease asks for. */
const MAX_SLICE = 1 << 20;
/** A slice that holds nothing and has told the store everything is forgotten after this long unused. */
const FORGET_MS = 30_000;
/**
 * An idle slice keeps its last quarter (its low-water mark, within a fair share of what was left)
 * through a quiet spell of up to this long, so the first requests after it are answered from units
 * in hand while the next lease is asked ahead, instead of every key's first request waiting on the
 * store. After it, those units go back too.
 */
export const KEEP_MS = 10 * 60_000;
/** Lease transactions of one node in flight at most. */
const MAX_FLUSHES = 2;
/** Keys one transaction takes at most. */
const MAX_BATCH = 64;
/** Longest a lease asked ahead waits for others to share its transaction. */
const AHEAD_MS = 20;
/** How often slices of gone nodes in ended periods are deleted. */
const PRUNE_MS = 10 * 60_000;
/** While the store fails, requests that need it are answered 503 at once for this long (doubling). */
const BACKOFF_MIN_MS = 250;
const BACKOFF_MAX_MS = 4000;

const unavailable = () => new AppError('SERVICE_UNAVAILABLE', FIXED_DETAIL.storeUnavailable, { retryAfterSec: 1 });

export class CreditSlices {
  private readonly slices = new Map<string, Slice>();
  /** Slices that want a store write at the next flush. */
  private readonly due = new Set<Slice>();
  private flushScheduled = false;
  private aheadTimer: NodeJS.Timeout | undefined;
  private readonly running = new Set<Promise<void>>();
  /** Orders this node's writes (see CreditRepo.reserve). */
  private seq = 0;
  /** performance.now() before which requests that need the store are refused at once. */
  private retryAt = 0;
  private backoffMs = 0;
  private lastWarn = 0;
  private lastPrune = 0;
  private closed = false;
  private readonly sweeper: NodeJS.Timeout;
  private counts = { fromSlice: 0, waited: 0, writes: 0, failures: 0, leases: 0, unitsLeased: 0, unitsReturned: 0 };

  constructor(
    private readonly store: Store,
    private readonly nodeId: string,
    private readonly outbox: WebhookOutbox,
    private readonly logger: Logger,
    private readonly options: CreditOptions,
  ) {
    this.sweeper = setInterval(() => this.sweep(this.options.now()), Math.max(50, Math.min(1000, options.lifeMs / 2)));
    this.sweeper.unref();
  }

  /**
   * Spends `cost` units of a capped key. Synchronous while this node holds enough units of the
   * current period; otherwise a promise on the next lease (asked together with every other key's
   * of this event-loop turn).
   */
  spend(keyId: string, cost: number, now: number): CapAnswer | Promise<CapAnswer> {
    const s = this.slices.get(keyId);
    if (s !== undefined && s.tokens >= cost && s.waiting.length === 0 && !s.giveBack && now < s.periodEnd) {
      s.tokens -= cost;
      s.spent += cost;
      s.activeAt = now;
      this.counts.fromSlice++;
      if (s.tokens <= s.low && !s.ahead && !s.busy) this.askAhead(s, now);
      return s.storeLeft + s.tokens;
    }
    return this.wait(s ?? this.create(keyId), cost, now);
  }

  /** Whether `cost` units are there, spending none (dry runs, cost 0). */
  peek(keyId: string, cost: number, now: number, tries = 3): CapAnswer | Promise<CapAnswer> {
    const s = this.slices.get(keyId);
    if (s !== undefined && s.epoch >= 0 && s.tokens >= cost && !s.giveBack && now < s.periodEnd) return s.storeLeft + s.tokens;
    this.refuseWhileDown();
    // A lease on its way has moved units out of the store that are not in hand yet: read after it.
    if (s?.busy === true && tries > 0) return Promise.all(this.running).then(() => this.peek(keyId, cost, now, tries - 1));
    return this.store.repos.credits.readCap(keyId).then((row) => {
      if (row === undefined) return null;
      const left = leftNow(row, now);
      if (left === null) return null;
      const own = s !== undefined && s.epoch === row.credit_epoch && left === row.remaining && now < s.periodEnd ? s.tokens : 0;
      return left + own >= cost ? left + own : { exceeded: true, remaining: left + own };
    }, (err: unknown) => {
      throw this.failed(err);
    });
  }

  /** Units this node holds of a key in period `epoch` (what a key read adds to the stored remaining). */
  held(keyId: string, epoch: number, now: number): number {
    const s = this.slices.get(keyId);
    return s !== undefined && s.epoch === epoch && !s.giveBack && now < s.periodEnd ? s.tokens : 0;
  }

  /**
   * Runs `read` (of the key's stored cap) while no store write of this key's units is on its way
   * from this node, so that what it reads and `held` agree: exact on one node. A write that starts
   * during the read makes it read again (a few tries, then as read).
   */
  async steady<T>(keyId: string, read: () => Promise<T>): Promise<T> {
    for (let tries = 0; ; tries++) {
      const s = this.slices.get(keyId);
      if (s?.busy === true && tries < 3) {
        await Promise.all(this.running);
        continue;
      }
      const ops = s?.ops ?? 0;
      const value = await read();
      const after = this.slices.get(keyId);
      if (tries >= 3 || (after === s && after?.busy !== true && (after?.ops ?? 0) === ops)) return value;
    }
  }

  /** The key changed somewhere (PATCH, disable, revoke): unspent units go back before any more are spent. */
  keyChanged(keyId: string): void {
    const s = this.slices.get(keyId);
    if (s === undefined) return;
    s.giveBack = true;
    s.keep = false;
    this.want(s);
  }

  stats(): { slices: number; held: number; fromSlice: number; waited: number; writes: number; failures: number; leases: number; unitsLeased: number; unitsReturned: number } {
    let held = 0;
    for (const s of this.slices.values()) held += s.tokens + s.withheld;
    return { slices: this.slices.size, held, ...this.counts };
  }

  private create(keyId: string): Slice {
    const s: Slice = {
      keyId, epoch: -1, periodEnd: Infinity, leased: 0, released: 0, spent: 0, reported: 0, withheld: 0, tokens: 0, storeLeft: 0,
      size: 0, low: 0, grantedAt: 0, activeAt: 0, waiting: [], busy: false, ahead: false, noRoom: false, giveBack: false, keep: false, unsure: false, ops: 0,
    };
    this.slices.set(keyId, s);
    return s;
  }

  private wait(s: Slice, cost: number, now: number): Promise<CapAnswer> {
    this.refuseWhileDown();
    this.counts.waited++;
    s.activeAt = now;
    if (now >= s.periodEnd) this.endPeriod(s);
    return new Promise<CapAnswer>((resolve, reject) => {
      s.waiting.push({ cost, resolve, reject });
      this.want(s);
    });
  }

  /** While the store is failing, a request that needs it is refused at once, not after a timeout. */
  private refuseWhileDown(): void {
    if (this.retryAt !== 0 && performance.now() < this.retryAt) throw unavailable();
  }

  /** Units of an ended period are never spent, nor given back into the new one. */
  private endPeriod(s: Slice): void {
    s.withheld += s.tokens;
    s.tokens = 0;
  }

  private askAhead(s: Slice, now: number): void {
    // A fair share of what the store had left would be nothing: the next request asks for itself.
    if (s.noRoom || Math.floor(s.storeLeft / (4 * Math.max(1, this.options.liveNodes()))) < 1 || now >= s.periodEnd) return;
    s.ahead = true;
    this.due.add(s);
    // Nobody waits on a lease asked ahead: it goes with the next flush, or within AHEAD_MS, so
    // that the leases of many keys share one transaction (one fsync on the embedded store).
    if (this.flushScheduled || this.aheadTimer !== undefined || this.closed) return;
    this.aheadTimer = setTimeout(() => {
      this.aheadTimer = undefined;
      this.schedule();
    }, AHEAD_MS);
  }

  private want(s: Slice): void {
    this.due.add(s);
    this.schedule();
  }

  private schedule(): void {
    if (this.flushScheduled || this.closed) return;
    clearTimeout(this.aheadTimer);
    this.aheadTimer = undefined;
    this.flushScheduled = true;
    // setImmediate runs once this turn's I/O callbacks are done: every request parsed in it is in.
    setImmediate(() => {
      this.flushScheduled = false;
      // Few transactions at a time: the rest wait for one to finish rather than for a pooled
      // connection (verify's key loads need those too).
      if (this.running.size >= MAX_FLUSHES) return;
      const run = this.flush();
      this.running.add(run);
      void run.finally(() => {
        this.running.delete(run);
        if (this.due.size > 0) this.schedule();
      });
    });
  }

  /** The op a slice wants now, if any; it is marked busy until the op is answered. */
  private opFor(s: Slice, now: number): Op | undefined {
    if (s.busy) return undefined;
    // A slice whose first lease is in doubt has no period yet: the same write reads its totals.
    if (s.giveBack && (s.epoch >= 0 || s.unsure)) {
      // What is unspent goes back (but an idle slice's reserve), and what was spent is reported, in one write.
      const keep = s.keep ? this.reserveOf(s) : 0;
      const units = s.tokens - keep;
      s.withheld += units;
      s.tokens = keep;
      return { kind: 'release', slice: s, epoch: s.epoch, units, spent: s.spent };
    }
    s.giveBack = false;
    s.keep = false;
    if (s.waiting.length > 0) {
      let sum = 0;
      let least = Infinity;
      for (const w of s.waiting) {
        sum += w.cost;
        least = Math.min(least, w.cost);
      }
      // Requests in hand are served first from tokens in hand.
      const need = Math.max(0, sum - s.tokens);
      // The first lease of a key takes what is asked; later ones add spare units at its pace.
      let spare = 0;
      if (s.size === 0) s.size = Math.max(1, least);
      else {
        this.pace(s, now);
        spare = s.size;
      }
      return { kind: 'lease', slice: s, need, least: Math.max(1, least - s.tokens), spare, waiters: s.waiting.splice(0), spent: s.spent };
    }
    if (s.ahead) {
      this.pace(s, now);
      return { kind: 'lease', slice: s, need: 0, least: 1, spare: s.size, waiters: [], spent: s.spent };
    }
    return undefined;
  }

  /**
   * Units an idle slice keeps: its low-water mark (what it asks ahead at), never more than a fair
   * share of what the store had left, nor past the period or the keep time.
   */
  private reserveOf(s: Slice): number {
    const share = Math.floor(s.storeLeft / (4 * Math.max(1, this.options.liveNodes())));
    return Math.max(0, Math.min(s.tokens, s.low, share));
  }

  /** Slice size follows the key's pace: doubled while the last lasted less than its life, else halved. */
  private pace(s: Slice, now: number): void {
    s.size = now - s.grantedAt < this.options.lifeMs ? Math.min(MAX_SLICE, Math.max(1, s.size * 2)) : Math.max(1, s.size >> 1);
  }

  private async flush(): Promise<void> {
    const now = this.options.now();
    const ops: Op[] = [];
    for (const s of this.due) {
      if (ops.length === MAX_BATCH) {
        // The rest go in the next transaction: on the embedded store each statement holds the
        // event loop, so a transaction is kept short rather than one for a thousand keys.
        this.schedule();
        break;
      }
      // A busy slice leaves the list too: its answer (settle) asks again if it still wants a write.
      this.due.delete(s);
      const op = this.opFor(s, now);
      if (op === undefined) continue;
      s.busy = true;
      s.ops++;
      s.ahead = false;
      ops.push(op);
    }
    if (ops.length === 0) return;
    // Keys in one order on every node: two batches never wait on each other's locks in a cycle.
    ops.sort((a, b) => (a.slice.keyId < b.slice.keyId ? -1 : a.slice.keyId > b.slice.keyId ? 1 : 0));
    const seq = ++this.seq;
    const nodes = Math.max(1, this.options.liveNodes());
    this.counts.writes++;
    let results: OpResult[];
    try {
      results = await this.store.transaction(async (r) => {
        return applyOps(r, ops, { nodeId: this.nodeId, outbox: this.outbox, seq, nodes, now });
      }, { syncOffLoop: true });
    } catch (err) {
      this.counts.failures++;
      const error = this.failed(err);
      for (const op of ops) {
        op.slice.busy = false;
        op.slice.unsure = true;
        // A give-back whose outcome is unknown keeps its units withheld until the next answer tells.
        if (op.kind === 'lease') for (const w of op.waiters) w.reject(error);
        for (const w of op.slice.waiting.splice(0)) w.reject(error);
      }
      return;
    }
    this.retryAt = 0;
    this.backoffMs = 0;
    for (const [i, op] of ops.entries()) this.settle(op, results[i]!, now);
  }

  /** An answered op: the slice takes the store's word, then serves whoever waits, in order. */
  private settle(op: Op, res: OpResult, now: number): void {
    const s = op.slice;
    s.busy = false;
    s.unsure = false;
    if (op.kind === 'release') {
      s.giveBack = false;
      this.counts.unitsReturned += op.units;
    } else {
      this.counts.leases++;
      this.counts.unitsLeased += res.granted;
      // Asked ahead and got nothing: no more asking ahead until a lease grants something again.
      s.noRoom = res.granted === 0 && op.waiters.length === 0;
    }
    if (res.uncapped) {
      // The key has no cap now (or is gone): nothing to spend from, nothing held.
      this.reset(s, -1, Infinity);
      const waiters = op.kind === 'lease' ? [...op.waiters, ...s.waiting.splice(0)] : s.waiting.splice(0);
      for (const w of waiters) w.resolve(null);
      this.slices.delete(s.keyId);
      return;
    }
    if (res.epoch !== s.epoch) {
      // A new period (a refill, a changed cap) or the first answer: the old one's units are void.
      const known = res.row !== undefined && res.row.epoch === res.epoch;
      this.reset(s, res.epoch, res.periodEnd);
      // A slice forgotten and made again: what this node spent before is what it last reported.
      s.spent = known ? res.row!.spent : 0;
      s.reported = s.spent;
    }
    s.periodEnd = res.periodEnd;
    if (res.row !== undefined && res.row.epoch === s.epoch) {
      s.leased = res.row.leased;
      s.released = res.row.released;
      s.reported = Math.max(s.reported, Math.min(s.spent, res.row.spent));
    } else {
      s.leased = 0;
      s.released = 0;
    }
    if (op.kind === 'release' && op.epoch === s.epoch) s.reported = Math.max(s.reported, op.spent);
    // Whatever was withheld for a give-back is settled by this answer: the store's totals say
    // whether it went (see docs/design/credits.md, "A write the node gave up on").
    s.withheld = now >= s.periodEnd ? Math.max(0, s.leased - s.released - s.spent) : 0;
    s.tokens = Math.max(0, s.leased - s.released - s.spent - s.withheld);
    s.storeLeft = res.storeLeft;
    if (op.kind === 'lease' && res.granted > 0) {
      s.grantedAt = now;
      s.low = s.size >> 2;
    }
    const first = op.kind === 'lease' ? op.waiters : [];
    for (const w of first) this.serve(s, w, now);
    // Requests that came while the write was on its way: served from tokens in hand, else they ask.
    while (s.waiting.length > 0 && s.tokens >= s.waiting[0]!.cost && !s.giveBack) this.serve(s, s.waiting.shift()!, now);
    if (s.waiting.length > 0 || s.giveBack) this.want(s);
    else if (op.kind === 'lease' && res.granted > 0 && s.tokens <= s.low && now - s.activeAt < this.options.lifeMs) this.askAhead(s, now);
  }

  private serve(s: Slice, w: Waiter, now: number): void {
    if (s.tokens >= w.cost && now < s.periodEnd) {
      s.tokens -= w.cost;
      s.spent += w.cost;
      s.activeAt = now;
      w.resolve(s.storeLeft + s.tokens);
    } else {
      w.resolve({ exceeded: true, remaining: s.storeLeft + s.tokens });
    }
  }

  private reset(s: Slice, epoch: number, end: number): void {
    s.epoch = epoch;
    s.periodEnd = end;
    s.leased = 0;
    s.released = 0;
    s.spent = 0;
    s.reported = 0;
    s.withheld = 0;
    s.tokens = 0;
  }

  /** The error a request that needed the store gets, and the backoff it starts. */
  private failed(err: unknown): unknown {
    const down = err instanceof LateWrite || this.store.isUnavailable(err);
    this.backoffMs = Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_MIN_MS, this.backoffMs * 2));
    this.retryAt = performance.now() + this.backoffMs;
    const at = performance.now();
    if (at - this.lastWarn > 10_000) {
      this.lastWarn = at;
      this.logger.warn({ err: (err as Error).message }, 'usage caps: the store did not answer a lease; capped keys spend only the units this node holds');
    }
    return down ? unavailable() : err;
  }

  /** Units unspent for a while go back; units of an ended period are void; long-unused slices are forgotten. */
  sweep(now: number): void {
    if (now - this.lastPrune >= PRUNE_MS) {
      this.lastPrune = now;
      this.store.repos.credits.prune().catch(() => {});
    }
    for (const s of this.slices.values()) {
      if (s.busy || s.waiting.length > 0) continue;
      if (now >= s.periodEnd && s.tokens > 0) this.endPeriod(s);
      if (now - s.activeAt < this.options.lifeMs) continue;
      // Withheld units of the current period are those of a give-back whose outcome is unknown: the
      // next write learns where they are.
      // An idle slice keeps its reserve (KEEP_MS), then gives that back too. A reserve already kept
      // is left alone until then, unless a report or a give-back in doubt is owed.
      const keeping = now - s.activeAt < KEEP_MS;
      const owed = s.unsure || (s.epoch >= 0 && s.spent > s.reported) || (s.withheld > 0 && now < s.periodEnd);
      const spare = s.epoch >= 0 && s.tokens > (keeping ? this.reserveOf(s) : 0);
      if (owed || spare) {
        s.giveBack = true;
        s.keep = keeping;
        this.want(s);
      } else if ((s.tokens === 0 || s.epoch < 0) && now - s.activeAt >= FORGET_MS) {
        // Forgotten only once it holds nothing: a slice holding its reserve stays through the spell.
        this.slices.delete(s.keyId);
        this.due.delete(s);
      }
    }
  }

  /** Resolves once no write is queued or on its way. */
  async drain(): Promise<void> {
    if (this.aheadTimer !== undefined) this.schedule();
    while (this.flushScheduled || this.running.size > 0) {
      if (this.running.size > 0) await Promise.all(this.running);
      else await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Whether the store does not yet know all of this slice: units to give back, spending to report, a write in doubt. */
  private unsettled(s: Slice): boolean {
    return s.unsure || (s.epoch >= 0 && (s.tokens > 0 || s.spent > s.reported));
  }

  /**
   * A clean stop: every unspent unit goes back and this node's empty slices are forgotten. A write
   * in doubt is read back first, so units it reserved are given back too (a few rounds at most).
   */
  async close(): Promise<void> {
    clearInterval(this.sweeper);
    clearTimeout(this.aheadTimer);
    await this.drain();
    this.closed = true;
    try {
      for (let round = 0; round < 3; round++) {
        for (const s of this.slices.values()) {
          if (!this.unsettled(s)) continue;
          s.giveBack = true;
          s.keep = false;
          this.due.add(s);
        }
        if (this.due.size === 0) break;
        this.retryAt = 0;
        // A transaction takes MAX_BATCH keys: as many as it takes, while each makes progress.
        for (let left = this.due.size; left > 0; left = this.due.size) {
          await this.flush();
          if (this.due.size >= left) break;
        }
      }
      await this.store.repos.credits.forgetNode(this.nodeId);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, 'usage caps: unspent units could not be given back at stop; they stay reserved for this node');
    }
  }
}
