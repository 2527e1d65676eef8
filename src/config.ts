// The only reader of process.env: parses configuration once, fails fast, returns a frozen object.
import os from 'node:os';
import path from 'node:path';
import { parseTrustProxy } from './lib/trust-proxy.js';

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  readonly databaseUrl: string | undefined;
  readonly redisUrl: string | undefined;
  readonly redisPrefix: string;
  readonly masterKey: string | undefined;
  /** Old master keys, comma-separated, still accepted for decryption during a rotation. */
  readonly previousMasterKeys: readonly string[];
  /** Leak reports: verification keys of reporters, and what to do with a reported key. */
  readonly leakPublicKeys: readonly { id: string; pem: string }[];
  readonly leakPolicy: 'disable' | 'revoke';
  /** Chat slash commands: the signing secret of the chat app, and the Keyward app keys go to. */
  readonly slashSigningSecret: string | undefined;
  readonly slashAppId: string | undefined;
  /** Longest accepted age of an integration JWT (from its iat), in seconds. */
  readonly jwtMaxAgeSec: number;
  /** How far in the future an integration JWT's iat may be (clock skew), in seconds. */
  readonly jwtLeewaySec: number;
  readonly logLevel: string;
  /** Proxy ranges (CIDR or address text, names expanded) whose X-Forwarded-For is believed; empty = none. */
  readonly trustProxy: readonly string[];
  readonly sessionTtlMs: number;
  /** Safety-net lifetime of a cached key; invalidation normally evicts much sooner. */
  readonly cacheTtlMs: number;
  /** How long a cached key may still answer verify while the store is unreachable. */
  readonly cacheStaleMs: number;
  /** Key values held in the verify cache at most; past it, the ones not used lately are evicted. */
  readonly cacheMaxKeys: number;
  /** While the store or Redis is known to be down: the first wait before a probe asks whether it is back. */
  readonly probeMs: number;
  /** scrypt cost of password hashes, as log2 N (17 = OWASP's minimum; tests use less). */
  readonly passwordCost: number;
  /** How often a change stream re-checks that its credential still holds (a safety net: changes end streams at once). */
  readonly streamRecheckMs: number;
  /** Open change streams one session may hold at once. */
  readonly streamsPerSession: number;
  /** Open change streams one root key may hold at once (a fleet of middleware may share one). */
  readonly streamsPerRootKey: number;
  /** Login defence (src/auth/throttle.ts): attempts per 15 minutes, and password hashes in flight. */
  readonly login: {
    readonly maxPerEmailAddress: number;
    readonly maxPerAddress: number;
    readonly maxPerEmail: number;
    /** Password hashes running at once on this node; beyond, attempts get 503 at once. */
    readonly hashSlots: number;
    /** Of those, kept for logins from an address known to the account. */
    readonly hashReserved: number;
  };
  /** Rate limits while Redis is away: each live node enforces its share (`share`), or refuses (`deny`). */
  readonly ratelimitFallback: 'share' | 'deny';
  /** How long tokens leased from Redis may sit unspent on a node before they go back (0: no leases). */
  readonly ratelimitLeaseMs: number;
  /** How long units of a usage cap leased to a node may sit unspent before they go back; slices are sized to last about this long. */
  readonly creditLeaseMs: number;
  /** How often every node reads the store's change feed (revocation that does not depend on Redis). */
  readonly feedPollMs: number;
  /** How long a starting node waits for its store before giving up. */
  readonly storeWaitMs: number;
  /** Longest wait on the store (a query, a pooled connection) before answering 503. */
  readonly storeTimeoutMs: number;
  /** Worker processes sharing the port (node:cluster); more than 1 needs REDIS_URL. */
  readonly workers: number;
  readonly usageFlushMs: number;
  /** Nice value of the embedded store's usage writer thread (Linux), below the event loop's. */
  readonly usageWriterNice: number;
  readonly bodyLimitBytes: number;
  /** Connections that start with a verify request are read from the socket (src/http/wire.ts). */
  readonly verifyWire: boolean;
  /** Those connections read into one buffer shared by all (src/http/socket-read.ts), not a Buffer per read. */
  readonly verifySharedReads: boolean;
  /** On SIGTERM/SIGINT: how long open connections may finish before those left are closed. */
  readonly shutdownDrainMs: number;
  readonly publicUrl: string | undefined;
  /** SQLite synchronous pragma: FULL survives power loss, NORMAL survives process crashes only. */
  readonly sqliteSync: 'FULL' | 'NORMAL';
  /** Settings that are read but replaced or ignored, said once at boot. */
  readonly warnings: readonly string[];
  readonly webhooks: {
    /** First retry delay (doubling, with jitter, at most an hour apart); retried until delivered or the endpoint is disabled. */
    readonly retryBaseMs: number;
    /** Longest wait for one attempt. */
    readonly timeoutMs: number;
    /** Loopback and private targets allowed (development, tests). */
    readonly allowPrivate: boolean;
    /** How often each node looks for due deliveries of other nodes' events and retries. */
    readonly pollMs: number;
    /** How often keys are scanned for key.expiring, key.expired and key.usage_low (a timer also fires at the next due notice). */
    readonly scanMs: number;
    /** key.expiring is sent this long before expiresAt. */
    readonly expiryNoticeMs: number;
    /** An endpoint failing this long without a success is disabled. */
    readonly disableAfterMs: number;
    /** Settled deliveries, and those held for a disabled endpoint, are kept this long. */
    readonly retentionMs: number;
  };
}

export class ConfigError extends Error {}

type Env = Record<string, string | undefined>;

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}

function flag(env: Env, name: string): boolean {
  const raw = env[name];
  if (raw === undefined || raw === '' || raw === '0' || raw === 'false') return false;
  if (raw === '1' || raw === 'true') return true;
  throw new ConfigError(`${name} must be 1 or 0, got "${raw}"`);
}

/** Settings an earlier version read and this one replaced: what each becomes, said once at boot. */
const REPLACED: Record<string, string> = {
  KEYWARD_WEBHOOK_DISABLE_AFTER: 'is replaced by KEYWARD_WEBHOOK_DISABLE_AFTER_HOURS (default 120): an endpoint is disabled after failing that long without a success, not after a count of failures; the value is ignored',
  KEYWARD_WEBHOOK_MAX_ATTEMPTS: 'is no longer read: a delivery is retried (at most an hour apart) until it succeeds or its endpoint is disabled (KEYWARD_WEBHOOK_DISABLE_AFTER_HOURS); the value is ignored',
};

function replacedSettings(env: Env): string[] {
  return Object.entries(REPLACED).filter(([name]) => env[name] !== undefined && env[name] !== '').map(([name, what]) => `${name} ${what}`);
}

function oneOf<const T extends readonly string[]>(env: Env, name: string, values: T, fallback: T[number]): T[number] {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!values.includes(raw)) throw new ConfigError(`${name} must be one of ${values.join(', ')}, got "${raw}"`);
  return raw as T[number];
}

function trustProxy(env: Env): readonly string[] {
  try {
    return Object.freeze(parseTrustProxy(env.KEYWARD_TRUST_PROXY ?? ''));
  } catch (err) {
    throw new ConfigError(`KEYWARD_TRUST_PROXY: ${(err as Error).message}`);
  }
}

function url(env: Env, name: string, protocols: readonly string[]): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(`${name} is not a valid URL`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${name} must use ${protocols.join(' or ')}, got ${parsed.protocol}`);
  }
  return raw;
}

export function loadConfig(env: Env = process.env): Config {
  const masterKey = env.KEYWARD_MASTER_KEY || undefined;
  if (masterKey !== undefined && !/^[A-Za-z0-9+/=_-]{43,}$/.test(masterKey)) {
    throw new ConfigError('KEYWARD_MASTER_KEY must be 32 random bytes, base64 or base64url encoded');
  }
  let leakPublicKeys: { id: string; pem: string }[] = [];
  if (env.KEYWARD_LEAK_PUBLIC_KEYS) {
    try {
      const parsed = JSON.parse(env.KEYWARD_LEAK_PUBLIC_KEYS) as { key_identifier?: string; key?: string }[];
      leakPublicKeys = parsed.map((k) => {
        if (typeof k.key_identifier !== 'string' || typeof k.key !== 'string') throw new Error('entry without key_identifier/key');
        return { id: k.key_identifier, pem: k.key };
      });
    } catch (err) {
      throw new ConfigError(`KEYWARD_LEAK_PUBLIC_KEYS must be a JSON array of {key_identifier, key (PEM)}: ${(err as Error).message}`);
    }
  }
  const leakPolicy = env.KEYWARD_LEAK_POLICY ?? 'disable';
  if (leakPolicy !== 'disable' && leakPolicy !== 'revoke') throw new ConfigError('KEYWARD_LEAK_POLICY must be disable or revoke');
  const sync = (env.KEYWARD_SQLITE_SYNC ?? 'FULL').toUpperCase();
  if (sync !== 'FULL' && sync !== 'NORMAL') throw new ConfigError('KEYWARD_SQLITE_SYNC must be FULL or NORMAL');
  const level = env.LOG_LEVEL ?? 'info';
  if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(level)) {
    throw new ConfigError(`LOG_LEVEL "${level}" is not a pino level`);
  }
  const hashSlots = int(env, 'KEYWARD_LOGIN_HASH_SLOTS', 3, 1, 64);
  const hashReserved = int(env, 'KEYWARD_LOGIN_HASH_RESERVED', 1, 0, 63);
  if (hashReserved >= hashSlots) throw new ConfigError(`KEYWARD_LOGIN_HASH_RESERVED (${hashReserved}) must be below KEYWARD_LOGIN_HASH_SLOTS (${hashSlots}): logins from new addresses need a slot too`);
  const workers = env.KEYWARD_WORKERS === 'auto' ? os.availableParallelism() : int(env, 'KEYWARD_WORKERS', 1, 1, 256);
  const redisUrl = url(env, 'REDIS_URL', ['redis:', 'rediss:']);
  if (workers > 1 && !redisUrl) {
    throw new ConfigError('KEYWARD_WORKERS > 1 needs REDIS_URL: workers share rate limits and cache invalidation through Redis');
  }
  return Object.freeze({
    port: int(env, 'PORT', 8787, 0, 65535),
    host: env.HOST || '127.0.0.1',
    dataDir: path.resolve(env.KEYWARD_DATA_DIR || './data'),
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    redisUrl,
    redisPrefix: env.KEYWARD_REDIS_PREFIX || 'keyward:',
    masterKey,
    previousMasterKeys: Object.freeze((env.KEYWARD_MASTER_KEY_PREVIOUS ?? '').split(',').map((s) => s.trim()).filter(Boolean)),
    leakPublicKeys: Object.freeze(leakPublicKeys),
    leakPolicy,
    jwtMaxAgeSec: int(env, 'KEYWARD_JWT_MAX_AGE_SEC', 300, 1, 86_400),
    jwtLeewaySec: int(env, 'KEYWARD_JWT_LEEWAY_SEC', 30, 0, 3600),
    slashSigningSecret: env.KEYWARD_SLASH_SIGNING_SECRET || undefined,
    slashAppId: env.KEYWARD_SLASH_APP_ID || undefined,
    logLevel: level,
    trustProxy: trustProxy(env),
    sessionTtlMs: int(env, 'KEYWARD_SESSION_TTL_HOURS', 24, 1, 24 * 90) * 3_600_000,
    cacheTtlMs: int(env, 'KEYWARD_CACHE_TTL_MS', 30_000, 100, 3_600_000),
    cacheStaleMs: int(env, 'KEYWARD_CACHE_STALE_MS', 3_600_000, 0, 86_400_000),
    cacheMaxKeys: int(env, 'KEYWARD_CACHE_MAX_KEYS', 1_000_000, 100, 100_000_000),
    probeMs: int(env, 'KEYWARD_PROBE_MS', 1000, 10, 60_000),
    passwordCost: int(env, 'KEYWARD_PASSWORD_COST', 17, 10, 20),
    streamRecheckMs: int(env, 'KEYWARD_STREAM_RECHECK_MS', 60_000, 20, 3_600_000),
    streamsPerSession: int(env, 'KEYWARD_STREAMS_PER_SESSION', 5, 1, 1000),
    streamsPerRootKey: int(env, 'KEYWARD_STREAMS_PER_ROOT_KEY', 100, 1, 100_000),
    login: Object.freeze({
      maxPerEmailAddress: int(env, 'KEYWARD_LOGIN_MAX_PER_EMAIL_ADDRESS', 10, 1, 100_000),
      maxPerAddress: int(env, 'KEYWARD_LOGIN_MAX_PER_ADDRESS', 30, 1, 100_000),
      maxPerEmail: int(env, 'KEYWARD_LOGIN_MAX_PER_EMAIL', 100, 1, 100_000),
      hashSlots,
      hashReserved,
    }),
    ratelimitFallback: oneOf(env, 'KEYWARD_RATELIMIT_FALLBACK', ['share', 'deny'] as const, 'share'),
    ratelimitLeaseMs: int(env, 'KEYWARD_RATELIMIT_LEASE_MS', 2000, 0, 60_000),
    creditLeaseMs: int(env, 'KEYWARD_CREDIT_LEASE_MS', 2000, 10, 60_000),
    feedPollMs: int(env, 'KEYWARD_FEED_POLL_MS', 250, 10, 1000),
    storeWaitMs: int(env, 'KEYWARD_STORE_WAIT_MS', 60_000, 0, 3_600_000),
    storeTimeoutMs: int(env, 'KEYWARD_STORE_TIMEOUT_MS', 2000, 100, 60_000),
    workers,
    usageFlushMs: int(env, 'KEYWARD_USAGE_FLUSH_MS', 1000, 10, 60_000),
    usageWriterNice: int(env, 'KEYWARD_USAGE_WRITER_NICE', 19, 0, 19),
    bodyLimitBytes: int(env, 'KEYWARD_BODY_LIMIT', 256 * 1024, 1024, 16 * 1024 * 1024),
    verifyWire: env.KEYWARD_VERIFY_WIRE === undefined || flag(env, 'KEYWARD_VERIFY_WIRE'),
    verifySharedReads: env.KEYWARD_VERIFY_SHARED_READS === undefined || flag(env, 'KEYWARD_VERIFY_SHARED_READS'),
    shutdownDrainMs: int(env, 'KEYWARD_SHUTDOWN_DRAIN_MS', 10_000, 0, 600_000),
    publicUrl: url(env, 'KEYWARD_PUBLIC_URL', ['http:', 'https:']),
    sqliteSync: sync,
    warnings: Object.freeze(replacedSettings(env)),
    webhooks: Object.freeze({
      retryBaseMs: int(env, 'KEYWARD_WEBHOOK_RETRY_BASE_MS', 5000, 10, 3_600_000),
      timeoutMs: int(env, 'KEYWARD_WEBHOOK_TIMEOUT_MS', 10_000, 100, 60_000),
      allowPrivate: flag(env, 'KEYWARD_WEBHOOK_ALLOW_PRIVATE'),
      pollMs: int(env, 'KEYWARD_WEBHOOK_POLL_MS', 1000, 10, 60_000),
      scanMs: int(env, 'KEYWARD_WEBHOOK_SCAN_MS', 5000, 10, 3_600_000),
      expiryNoticeMs: int(env, 'KEYWARD_EXPIRY_NOTICE_HOURS', 168, 0, 24 * 365) * 3_600_000,
      disableAfterMs: int(env, 'KEYWARD_WEBHOOK_DISABLE_AFTER_HOURS', 120, 1, 24 * 365) * 3_600_000,
      retentionMs: int(env, 'KEYWARD_WEBHOOK_RETENTION_DAYS', 30, 1, 3650) * 86_400_000,
    }),
  });
}
