// Prometheus metrics for /metrics: one registry per app instance so tests can build many apps.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { CODE_INDEX, VERIFY_CODES, type VerifyCode } from './verify/codes.js';
import type { KeyCacheStats } from './verify/cache.js';
import type { SharedLimitStats } from './ratelimit/limiter.js';

export type { SharedLimitStats };

export interface Metrics {
  registry: Registry;
  /** Counts one verify verdict: a plain array slot, read by prom-client at scrape time. */
  countVerdict(code: VerifyCode): void;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  cacheEntries: Gauge<'kind'>;
  cacheCapacity: Gauge;
  usageFlushFailures: Counter;
  limiterFallbacks: Counter;
  /** POST /v1/ratelimit answers by result (the route writes no access line). */
  standaloneLimits: Counter<'result'>;
  feedLag: Gauge;
  webhookAttempts: Counter<'outcome'>;
  /** Shared limits' own counters, read at scrape time (the Redis limiter registers them). */
  watchSharedLimits(read: () => SharedLimitStats): void;
  /** The cache's counts and the circuits of the store and Redis, read at scrape time. */
  watchDegraded(read: () => DegradedStats): void;
  /** Usage caps' own counters, read at scrape time (src/credits/slices.ts registers them). */
  watchCredits(read: () => CreditStats): void;
}

export interface CreditStats {
  /** Capped verifies decided from units in hand, and those that waited for the store. */
  fromSlice: number;
  waited: number;
  /** Store transactions (leases and give-backs), and those that failed. */
  writes: number;
  failures: number;
  /** Units of caps this node holds, unspent. */
  held: number;
}

/** A shared service as this node sees it: its circuit, and its clock against the machine's. */
export interface ServiceStats {
  open: boolean;
  probes: number;
  offsetMs: number;
}

export interface DegradedStats {
  cache: KeyCacheStats;
  /** The store, with the verify path's queries: sent, and refused while it was known down. */
  store: ServiceStats & { sent: number; refused: number };
  redis?: ServiceStats;
}


export function createMetrics(): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'keyward_' });
  const verdicts = new Array<number>(VERIFY_CODES.length).fill(0);
  new Counter({
    name: 'keyward_verify_total', help: 'Verify verdicts by code', labelNames: ['code'], registers: [registry],
    collect() {
      this.reset();
      VERIFY_CODES.forEach((code, i) => this.inc({ code }, verdicts[i]!));
    },
  });
  let sharedLimits: (() => SharedLimitStats) | undefined;
  new Counter({
    name: 'keyward_ratelimit_shared_decisions_total', help: 'Shared rate-limit decisions by how they were made (lease: tokens in hand; redis: waited for a grant)', labelNames: ['via'], registers: [registry],
    collect() {
      if (!sharedLimits) return;
      const s = sharedLimits();
      this.reset();
      this.inc({ via: 'lease' }, s.fromLease);
      this.inc({ via: 'redis' }, s.waited);
    },
  });
  const sharedCount = (name: string, help: string, field: 'calls' | 'grants') =>
    new Counter({
      name, help, registers: [registry],
      collect() {
        if (!sharedLimits) return;
        this.reset();
        this.inc(sharedLimits()[field]);
      },
    });
  sharedCount('keyward_ratelimit_redis_calls_total', 'Rate-limit script calls to Redis', 'calls');
  sharedCount('keyward_ratelimit_grants_total', 'Bucket grants asked of Redis (several per call)', 'grants');
  new Gauge({
    name: 'keyward_ratelimit_leased_tokens', help: 'Tokens leased from Redis and not yet spent on this node', registers: [registry],
    collect() {
      if (sharedLimits) this.set(sharedLimits().tokensHeld);
    },
  });
  let degraded: (() => DegradedStats) | undefined;
  type Sample = [labels: Record<string, string>, value: number];
  const degradedCounter = (name: string, help: string, labelNames: string[], samples: (d: DegradedStats) => Sample[]) =>
    new Counter({
      name, help, labelNames, registers: [registry],
      collect() {
        if (!degraded) return;
        this.reset();
        for (const [labels, value] of samples(degraded())) this.inc(labels, value);
      },
    });
  const degradedGauge = (name: string, help: string, labelNames: string[], samples: (d: DegradedStats) => Sample[]) =>
    new Gauge({
      name, help, labelNames, registers: [registry],
      collect() {
        if (!degraded) return;
        this.reset();
        for (const [labels, value] of samples(degraded())) this.set(labels, value);
      },
    });
  const perService = (d: DegradedStats, value: (s: ServiceStats) => number): Sample[] =>
    [[{ service: 'store' }, value(d.store)], ...(d.redis ? [[{ service: 'redis' }, value(d.redis)] as Sample] : [])];
  degradedCounter('keyward_key_cache_evictions_total', 'Cached key values and integration keys evicted to stay within KEYWARD_CACHE_MAX_KEYS', [], (d) => [[{}, d.cache.evictions]]);
  degradedCounter('keyward_key_cache_stale_answers_total', 'Verify answers from a cached key past its TTL, given at once while it is refreshed in the background', [], (d) => [[{}, d.cache.staleAnswers]]);
  degradedCounter('keyward_key_cache_load_failures_total', 'Loads of a key from the store that failed (those refused while the store was known down included)', [], (d) => [[{}, d.cache.loadFailures]]);
  degradedCounter('keyward_store_verify_queries_total', 'Verify-path queries to the store: sent, or refused at once while the store was known down', ['outcome'], (d) => [[{ outcome: 'sent' }, d.store.sent], [{ outcome: 'refused' }, d.store.refused]]);
  degradedGauge('keyward_circuit_open', 'Whether this node takes a shared service as down (1): it then sends it only probes', ['service'], (d) => perService(d, (s) => (s.open ? 1 : 0)));
  degradedCounter('keyward_circuit_probes_total', 'Probes sent to a shared service taken as down', ['service'], (d) => perService(d, (s) => s.probes));
  degradedGauge('keyward_clock_offset_seconds', "A shared service's clock minus this machine's, as last sampled (0 when within 100 ms)", ['service'], (d) => perService(d, (s) => s.offsetMs / 1000));
  let credits: (() => CreditStats) | undefined;
  new Counter({
    name: 'keyward_credit_decisions_total', help: 'Capped verifies by how their units were found (slice: in hand; store: waited for a lease)', labelNames: ['via'], registers: [registry],
    collect() {
      if (!credits) return;
      const s = credits();
      this.reset();
      this.inc({ via: 'slice' }, s.fromSlice);
      this.inc({ via: 'store' }, s.waited);
    },
  });
  new Counter({
    name: 'keyward_credit_store_writes_total', help: 'Usage-cap lease and give-back transactions by outcome', labelNames: ['outcome'], registers: [registry],
    collect() {
      if (!credits) return;
      const s = credits();
      this.reset();
      this.inc({ outcome: 'ok' }, s.writes - s.failures);
      this.inc({ outcome: 'failed' }, s.failures);
    },
  });
  new Gauge({
    name: 'keyward_credit_units_held', help: 'Units of usage caps leased to this node and not yet spent', registers: [registry],
    collect() {
      if (credits) this.set(credits().held);
    },
  });
  return {
    registry,
    watchSharedLimits: (read) => {
      sharedLimits = read;
    },
    watchDegraded: (read) => {
      degraded = read;
    },
    watchCredits: (read) => {
      credits = read;
    },
    countVerdict: (code) => {
      verdicts[CODE_INDEX[code]]!++;
    },
    httpDuration: new Histogram({
      name: 'keyward_http_request_duration_seconds',
      help: 'Management API request duration',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers: [registry],
    }),
    cacheEntries: new Gauge({ name: 'keyward_key_cache_entries', help: 'Verify cache entries: keys, key values, values known not to exist, integration keys', labelNames: ['kind'], registers: [registry] }),
    cacheCapacity: new Gauge({ name: 'keyward_key_cache_capacity', help: 'Key values the verify cache holds at most (KEYWARD_CACHE_MAX_KEYS)', registers: [registry] }),
    usageFlushFailures: new Counter({ name: 'keyward_usage_flush_failures_total', help: 'Failed usage flushes', registers: [registry] }),
    feedLag: new Gauge({ name: 'keyward_change_feed_lag_seconds', help: 'Time since this node last read the change feed', registers: [registry] }),
    webhookAttempts: new Counter({ name: 'keyward_webhook_attempts_total', help: 'Webhook delivery attempts by outcome (delivered, retry, failed)', labelNames: ['outcome'], registers: [registry] }),
    limiterFallbacks: new Counter({ name: 'keyward_ratelimit_fallback_total', help: 'Decisions taken by the local limiter because the shared one failed', registers: [registry] }),
    standaloneLimits: new Counter({ name: 'keyward_ratelimit_requests_total', help: 'POST /v1/ratelimit answers by result (admitted, refused)', labelNames: ['result'], registers: [registry] }),
  };
}
