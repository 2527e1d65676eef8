// Counts verify outcomes per key per minute and last-use times in memory, and writes them to the
// store in batches off the request path (see sink.ts). Counts survive a failed flush and are retried.
import type { Logger } from 'pino';
import type { UsageRow, UsageSink } from './sink.js';
import { CODE_INDEX, VERIFY_CODES, type VerifyCode } from '../verify/codes.js';

export const MINUTE = 60_000;
/** Beyond this many pending rows new counts are dropped (and counted) rather than growing memory. */
const MAX_PENDING = 200_000;
/** A key's stored last use is refreshed at most this often; reads on this node see the exact time. */
const LAST_USED_EVERY = 60_000;

/** minute bucket → key id → count per verdict (by its index in VERIFY_CODES). */
type Counts = Map<number, Map<string, number[]>>;

export class UsageRecorder {
  private counts: Counts = new Map();
  /** The minute being counted and its map: a verdict costs one map lookup. */
  private bucket = -1;
  private current: Map<string, number[]> | undefined;
  /** Distinct (bucket, key, code) rows pending, to bound memory. */
  private rows = 0;
  private lastUsed = new Map<string, number>();
  private readonly lastWritten = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  dropped = 0;

  constructor(
    private readonly sink: UsageSink,
    private readonly logger: Logger,
    private readonly flushEveryMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.flushEveryMs);
    this.timer.unref();
  }

  record(keyId: string, code: VerifyCode, now: number, n = 1): void {
    const bucket = now - (now % MINUTE);
    let keys = bucket === this.bucket ? this.current : undefined;
    if (keys === undefined) {
      keys = this.counts.get(bucket);
      if (!keys) this.counts.set(bucket, (keys = new Map()));
      this.bucket = bucket;
      this.current = keys;
    }
    let slots = keys.get(keyId);
    if (!slots) keys.set(keyId, (slots = new Array<number>(VERIFY_CODES.length).fill(0)));
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

  touch(keyId: string, now: number): void {
    const prev = this.lastUsed.get(keyId);
    if (prev === undefined || prev < now) this.lastUsed.set(keyId, now);
  }

  /** Last use seen by this node, written or not, so reads are exact here. */
  pendingLastUsed(keyId: string): number | undefined {
    return this.lastUsed.get(keyId) ?? this.lastWritten.get(keyId);
  }

  /** Writes what is pending; `all` also writes last-use times that were written recently (stop). */
  flush(all = false): Promise<void> {
    if (this.flushing) return this.flushing.then(() => this.flush(all));
    if (this.rows === 0 && this.lastUsed.size === 0) return Promise.resolve();
    const counts = this.counts;
    // Last-use times that were written recently wait for a later flush (they stay readable here).
    const lastUsed = new Map<string, number>();
    for (const [keyId, at] of this.lastUsed) {
      if (all || at - (this.lastWritten.get(keyId) ?? 0) >= LAST_USED_EVERY) {
        lastUsed.set(keyId, at);
        this.lastUsed.delete(keyId);
      }
    }
    const rows = this.rows;
    this.counts = new Map();
    this.current = undefined;
    this.bucket = -1;
    this.rows = 0;
    if (rows === 0 && lastUsed.size === 0) return Promise.resolve();
    this.flushing = this.write(counts, lastUsed)
      .catch((err: unknown) => {
        this.logger.warn({ err }, 'usage flush failed; will retry');
        for (const [bucket, keys] of counts) {
          for (const [keyId, slots] of keys) slots.forEach((n, i) => n > 0 && this.record(keyId, VERIFY_CODES[i]!, bucket, n));
        }
        for (const [k, t] of lastUsed) this.touch(k, t);
      })
      .finally(() => {
        this.flushing = undefined;
      });
    return this.flushing;
  }

  private async write(counts: Counts, lastUsed: Map<string, number>): Promise<void> {
    const rows: UsageRow[] = [];
    for (const [bucket, keys] of counts) {
      for (const [keyId, slots] of keys) slots.forEach((count, i) => count > 0 && rows.push([keyId, bucket, VERIFY_CODES[i]!, count]));
    }
    await this.sink.write({ rows, lastUsed: [...lastUsed] });
    for (const [keyId, at] of lastUsed) this.lastWritten.set(keyId, at);
    if (this.lastWritten.size > MAX_PENDING) this.lastWritten.clear();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush(true);
    await this.sink.close();
  }
}
