// Usage analytics: verify outcomes of a key per minute, hour or day, zero-filled for charts.
import { invalid } from '../errors.js';
import { DAY, HOUR, MINUTE } from '../lib/time.js';
import type { Clock } from '../lib/clock.js';
import type { Store } from '../store/db.js';

export const BUCKET_SIZES = { minute: MINUTE, hour: HOUR, day: DAY } as const;
export type Granularity = keyof typeof BUCKET_SIZES;
const MAX_BUCKETS = 1500;

export interface UsageSeries {
  from: number;
  until: number;
  buckets: { at: number; total: number; counts: Record<string, number> }[];
}

export class UsageService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    /** Writes this node's pending counts, so a read sees every verify answered before it. */
    private readonly flush: () => Promise<void>,
  ) {}

  async series(keyId: string, granularity: Granularity, since: number | undefined, until: number | undefined): Promise<UsageSeries> {
    const size = BUCKET_SIZES[granularity];
    // Without `until` the series runs through now: a verify answered at this very millisecond (the
    // first of a bucket) is in it. The bound is exclusive, so it is now + 1.
    const end = until ?? this.clock.now() + 1;
    const start = since ?? end - DAY;
    if (start >= end) throw invalid('query/since', 'must be before until');
    const from = start - (start % size);
    if ((end - from) / size > MAX_BUCKETS) throw invalid('query/granularity', `the range spans more than ${MAX_BUCKETS} ${granularity}s; choose a coarser granularity`);
    await this.flush();
    const rows = await this.store.repos.usage.counts(keyId, from, end, size);
    const buckets = new Map<number, Record<string, number>>();
    for (let t = from; t < end; t += size) buckets.set(t, {});
    for (const row of rows) {
      const counts = buckets.get(row.at);
      if (counts) counts[row.code] = (counts[row.code] ?? 0) + row.n;
    }
    return {
      from,
      until: end,
      buckets: [...buckets].map(([at, counts]) => ({ at, total: Object.values(counts).reduce((a, b) => a + b, 0), counts })),
    };
  }
}
