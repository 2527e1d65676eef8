// Counts verify outcomes per key per minute and last-use times in memory, and writes them to the
// store in batches off the request path (see sink.ts). Counts survive a failed flush and are retried.
import type { Logger } from 'pino';
import type { UsageBatch, UsageSink } from '../store/usage-sink.js';
import { CODE_INDEX, VERIFY_CODES, type VerifyCode } from '../verify/codes.js';

export const MINUTE = 60_000;
/** Beyond this many pending rows new counts are dropped (and counted) rather than growing memory. */
const MAX_PENDING = 200_000;
/** A key's stored last use is written at most this often; reads on this node see the exact time. */
const LAST_USED_EVERY = 60_000;
/**
 * Due last uses are written over about this long rather than all in one flush: keys first used
 * together come due together, a minute later and every minute after, and each is a scattered
 * page of the keys table (a burst that took 200 ms of the writer's time at a million keys).
 */
const LAST_USED_SPREAD_MS = 20_000;
/** At least this many due last uses per flush. */
const LAST_USED_MIN_BATCH = 100;

/** The slot after the counts: the key's latest accepted use since the last flush (0 = none). */
const LAST_USE = VERIFY_CODES.length;
/** Then: how many flushes in a row found the key unused (it is forgotten at IDLE_FLUSHES). */
const IDLE = LAST_USE + 1;
const IDLE_FLUSHES = 2;

/** A count not in the current minute's slots: of an earlier minute, or back from a failed write. */
interface HeldRow {
  keyId: string;
  bucket: number;
  code: number;
  n: number;
}

export class UsageRecorder {
  /**
   * Key id → its counts per verdict (by index in VERIFY_CODES) in minute `bucket`, its latest
   * accepted use, and its idle flushes. The same slots serve a key from one flush to the next
   * (a flush reads and zeroes them): new ones every second for every busy key lived just long
   * enough to be promoted to V8's old generation, whose collections then paused verify.
   */
  private readonly live = new Map<string, number[]>();
  /** The minute the live counts belong to. */
  private bucket = -1;
  /** Counts of other minutes, by bucket, code and key: never a row that is also in `live`. */
  private readonly held = new Map<string, HeldRow>();
  /** Distinct (bucket, key, code) rows pending, to bound memory. */
  private rows = 0;
  /** Last uses seen but held back: their key's last use was written less than a minute ago. */
  private readonly waiting = new Map<string, number>();
  /** key id → [last use written, when it was written]. */
  private readonly lastWritten = new Map<string, [number, number]>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  dropped = 0;

  constructor(
    private readonly sink: UsageSink,
    private readonly logger: Logger,
    private readonly flushEveryMs: number,
    private readonly clock: () => number = Date.now,
  ) {}

  start(): void {
    // A tick during a flush skips: chained behind it, ticks would pile up while the store is away
    // (each waiting out its bound in turn), and stop() would wait for every one of them.
    this.timer = setInterval(() => this.flushing ?? void this.flush(), this.flushEveryMs);
    this.timer.unref();
  }

  /** Counts `n` verdicts; an accepted one (`valid`) is also the key's latest use. */
  record(keyId: string, code: VerifyCode, now: number, valid: boolean, n = 1): void {
    const bucket = now - (now % MINUTE);
    if (bucket !== this.bucket) {
      if (bucket < this.bucket) {
        // A verdict of an earlier minute (the clock stepped back): counted beside the live ones.
        if (valid) this.holdLastUse(keyId, now);
        this.hold(keyId, bucket, CODE_INDEX[code], n);
        return;
      }
      this.newMinute(bucket);
    }
    const slots = this.slots(keyId);
    if (valid && now > slots[LAST_USE]!) slots[LAST_USE] = now;
    this.add(slots, CODE_INDEX[code], n);
  }

  private slots(keyId: string): number[] {
    let slots = this.live.get(keyId);
    if (slots === undefined) this.live.set(keyId, (slots = new Array<number>(IDLE + 1).fill(0)));
    return slots;
  }

  private add(slots: number[], i: number, n: number): void {
    if (slots[i] === 0) {
      if (this.rows >= MAX_PENDING) {
        this.dropped += n;
        return;
      }
      this.rows++;
    }
    slots[i]! += n;
  }

  /** Counts a row outside the live minute; a row already held for it grows. */
  private hold(keyId: string, bucket: number, code: number, n: number): void {
    const id = `${bucket} ${code} ${keyId}`;
    const row = this.held.get(id);
    if (row !== undefined) {
      row.n += n;
      return;
    }
    if (this.rows >= MAX_PENDING) {
      this.dropped += n;
      return;
    }
    this.rows++;
    this.held.set(id, { keyId, bucket, code, n });
  }

  /** The minute turned: the live counts move to the held rows, the slots start over. */
  private newMinute(bucket: number): void {
    for (const [keyId, slots] of this.live) {
      for (let i = 0; i < LAST_USE; i++) {
        const n = slots[i]!;
        if (n === 0) continue;
        slots[i] = 0;
        this.rows--;
        this.hold(keyId, this.bucket, i, n);
      }
    }
    this.bucket = bucket;
  }

  /** Puts a row that could not be written back where the next flush finds it. */
  private requeue(keyId: string, bucket: number, code: number, n: number): void {
    if (bucket === this.bucket) this.add(this.slots(keyId), code, n);
    else this.hold(keyId, bucket, code, n);
  }

  /** Last use seen by this node, written or not, so reads are exact here. */
  pendingLastUsed(keyId: string): number | undefined {
    const at = Math.max(this.waiting.get(keyId) ?? 0, this.lastWritten.get(keyId)?.[0] ?? 0, this.live.get(keyId)?.[LAST_USE] ?? 0);
    return at > 0 ? at : undefined;
  }

  /** Writes what is pending; `all` also writes last-use times that were written recently (stop). */
  flush(all = false): Promise<void> {
    if (this.flushing) return this.flushing.then(() => this.flush(all));
    const batch: UsageBatch = { keys: [], buckets: [], codes: [], counts: [], lastUsedKeys: [], lastUsedAt: [] };
    const push = (keyId: string, bucket: number, code: number, n: number) => {
      batch.keys.push(keyId);
      batch.buckets.push(bucket);
      batch.codes.push(VERIFY_CODES[code]!);
      batch.counts.push(n);
    };
    for (const row of this.held.values()) push(row.keyId, row.bucket, row.code, row.n);
    this.held.clear();
    for (const [keyId, slots] of this.live) {
      let used = false;
      for (let i = 0; i < LAST_USE; i++) {
        if (slots[i] === 0) continue;
        push(keyId, this.bucket, i, slots[i]!);
        slots[i] = 0;
        used = true;
      }
      if (slots[LAST_USE] !== 0) {
        this.holdLastUse(keyId, slots[LAST_USE]!);
        slots[LAST_USE] = 0;
        used = true;
      }
      // A key unused for a few flushes gives its slots up (deleting while iterating a Map is safe).
      if (used) slots[IDLE] = 0;
      else if (++slots[IDLE]! >= IDLE_FLUSHES) this.live.delete(keyId);
    }
    this.rows = 0;
    // Last uses of keys written less than a minute ago wait for a later flush (readable here meanwhile).
    const now = this.clock();
    const budget = all ? Infinity : Math.max(LAST_USED_MIN_BATCH, Math.ceil((this.waiting.size * this.flushEveryMs) / LAST_USED_SPREAD_MS));
    for (const [keyId, at] of this.waiting) {
      if (batch.lastUsedKeys.length >= budget) break;
      const written = this.lastWritten.get(keyId);
      if (all || written === undefined || now - written[1] >= LAST_USED_EVERY) {
        batch.lastUsedKeys.push(keyId);
        batch.lastUsedAt.push(at);
        this.waiting.delete(keyId);
      }
    }
    if (batch.keys.length === 0 && batch.lastUsedKeys.length === 0) return Promise.resolve();
    this.flushing = this.sink.write(batch)
      .then(() => {
        for (let i = 0; i < batch.lastUsedKeys.length; i++) this.lastWritten.set(batch.lastUsedKeys[i]!, [batch.lastUsedAt[i]!, now]);
        if (this.lastWritten.size > MAX_PENDING) this.lastWritten.clear();
      }, (err: unknown) => {
        this.logger.warn({ err }, 'usage flush failed; will retry');
        // Rows the store reports written before the failure are not written again.
        const committed = (err as { committed?: number }).committed ?? 0;
        for (let i = committed; i < batch.keys.length; i++) this.requeue(batch.keys[i]!, batch.buckets[i]!, CODE_INDEX[batch.codes[i] as VerifyCode], batch.counts[i]!);
        for (let i = 0; i < batch.lastUsedKeys.length; i++) this.holdLastUse(batch.lastUsedKeys[i]!, batch.lastUsedAt[i]!);
      })
      .finally(() => {
        this.flushing = undefined;
      });
    return this.flushing;
  }

  /** Keeps a last use for a later write; only a later one replaces what is held. */
  private holdLastUse(keyId: string, at: number): void {
    if (at > (this.waiting.get(keyId) ?? 0)) this.waiting.set(keyId, at);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush(true);
    await this.sink.close();
  }
}
