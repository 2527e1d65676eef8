// Where usage batches are written: the sink each dialect provides (dialects/postgres-usage.ts,
// dialects/sqlite-usage.ts). PostgreSQL writes are network round trips, already off the event
// loop. SQLite writes are synchronous and end in an fsync (~7 ms a batch, measured), so on the
// embedded store they run in a worker thread with its own connection: the event loop that answers
// verify never waits on a disk.

/**
 * Usage to write, field by field: count row i is (keys[i], buckets[i], codes[i], counts[i]), each
 * (key, minute bucket, verdict code) once; last use j is (lastUsedKeys[j], lastUsedAt[j]), written
 * only where it moves last_used_at forward. A handful of arrays rather than an array per row: a
 * batch is kept until it is written, so it lives long enough to reach V8's old generation.
 */
export interface UsageBatch {
  keys: string[];
  buckets: number[];
  codes: string[];
  counts: number[];
  lastUsedKeys: string[];
  lastUsedAt: number[];
}

export interface UsageSink {
  /**
   * Resolves once the batch is written. On failure it rejects with `committed`: how many of its
   * count rows, in batch order, were written before it failed (they must not be written again);
   * last uses only move forward, so writing them again is harmless.
   */
  write(batch: UsageBatch): Promise<void>;
  close(): Promise<void>;
}
