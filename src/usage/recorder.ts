// Counts verify outcomes per key per minute and last-use times in memory, and writes them to the
// store in batches off the request path (see sink.ts). Counts survive a failed flush and are retried.
import type { Logger } from 'pino';
import type { UsageRow, UsageSink } from '../store/usage-sink.js';
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

/** The slot after the counts: the latest accepted use in that minute (0 = none). */
const LAST_USE = VERIFY_CODES.length;

/** minute bucket → key id → count per verdict (by its index in VERIFY_CODES), then the last use. */
type Counts = Map<number, Map<string, number[]>>;

export class UsageRecorder {
  private counts: Counts = new Map();
  /** The minute being counted and its map: a verdict costs one map lookup. */
  private bucket = -1;
  private current: Map<string, number[]> | undefined;
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
    this.timer = setInterval(() => void this.flush(), this.flushEveryMs);
    this.timer.unref();
  }

  /** Counts `n` verdicts; an accepted one (`valid`) is also the key's latest use. */
  record(keyId: string, code: VerifyCode, now: number, valid: boolean, n = 1): void {
    const bucket = now - (now % MINUTE);
    let keys = bucket === this.bucket ? this.current : undefined;
    if (keys === undefined) {
      keys = this.counts.get(bucket);
      if (!keys) this.counts.set(bucket, (keys = new Map()));
      this.bucket = bucket;
      this.current = keys;
    }
    let slots = keys.get(keyId);
    if (!slots) keys.set(keyId, (slots = new Array<number>(LAST_USE + 1).fill(0)));
    if (valid && now > slots[LAST_USE]!) slots[LAST_USE] = now;
    const i = CODE_INDEX[code];
    if (slots[i] === 0) {
      if (this.rows >= MAX_PENDING) {
        this.dropped += n;
        return;
      }
      this.rows++;
    }
    slots[i]! += n;
  }

  /** Last use seen by this node, written or not, so reads are exact here. */
  pendingLastUsed(keyId: string): number | undefined {
    let at = Math.max(this.waiting.get(keyId) ?? 0, this.lastWritten.get(keyId)?.[0] ?? 0);
    for (const keys of this.counts.values()) at = Math.max(at, keys.get(keyId)?.[LAST_USE] ?? 0);
    return at > 0 ? at : undefined;
  }

  /** Writes what is pending; `all` also writes last-use times that were written recently (stop). */
  flush(all = false): Promise<void> {
    if (this.flushing) return this.flushing.then(() => this.flush(all));
    const counts = this.counts;
    const rows = this.rows;
    this.counts = new Map();
    this.current = undefined;
    this.bucket = -1;
    this.rows = 0;
    for (const keys of counts.values()) {
      for (const [keyId, slots] of keys) this.holdLastUse(keyId, slots[LAST_USE]!);
    }
    // Last uses of keys written less than a minute ago wait for a later flush (readable here meanwhile).
    const now = this.clock();
    const lastUsed = new Map<string, number>();
    const budget = all ? Infinity : Math.max(LAST_USED_MIN_BATCH, Math.ceil((this.waiting.size * this.flushEveryMs) / LAST_USED_SPREAD_MS));
    for (const [keyId, at] of this.waiting) {
      if (lastUsed.size >= budget) break;
      const written = this.lastWritten.get(keyId);
      if (all || written === undefined || now - written[1] >= LAST_USED_EVERY) {
        lastUsed.set(keyId, at);
        this.waiting.delete(keyId);
      }
    }
    if (rows === 0 && lastUsed.size === 0) return Promise.resolve();
    this.flushing = this.write(counts, lastUsed, now)
      .catch((err: unknown) => {
        this.logger.warn({ err }, 'usage flush failed; will retry');
        for (const [bucket, keys] of counts) {
          for (const [keyId, slots] of keys) {
            for (let i = 0; i < LAST_USE; i++) if (slots[i]! > 0) this.record(keyId, VERIFY_CODES[i]!, bucket, false, slots[i]);
          }
        }
        for (const [keyId, at] of lastUsed) this.holdLastUse(keyId, at);
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

  private async write(counts: Counts, lastUsed: Map<string, number>, now: number): Promise<void> {
    const rows: UsageRow[] = [];
    for (const [bucket, keys] of counts) {
      for (const [keyId, slots] of keys) {
        for (let i = 0; i < LAST_USE; i++) if (slots[i]! > 0) rows.push([keyId, bucket, VERIFY_CODES[i]!, slots[i]!]);
      }
    }
    await this.sink.write({ rows, lastUsed: [...lastUsed] });
    for (const [keyId, at] of lastUsed) this.lastWritten.set(keyId, [at, now]);
    if (this.lastWritten.size > MAX_PENDING) this.lastWritten.clear();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush(true);
    await this.sink.close();
  }
}
