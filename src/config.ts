// The only reader of process.env: parses configuration once, fails fast, returns a frozen object.
import os from 'node:os';
import path from 'node:path';

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
  readonly logLevel: string;
  /** Proxy addresses/CIDRs whose X-Forwarded-For is believed; empty = none. */
  readonly trustProxy: readonly string[];
  readonly sessionTtlMs: number;
  /** Safety-net lifetime of a cached key; invalidation normally evicts much sooner. */
  readonly cacheTtlMs: number;
  /** How long a cached key may still answer verify while the store is unreachable. */
  readonly cacheStaleMs: number;
  /** scrypt cost of password hashes, as log2 N (17 = OWASP's minimum; tests use less). */
  readonly passwordCost: number;
  /** How often a change stream re-checks that its credential still holds. */
  readonly streamRecheckMs: number;
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
  readonly publicUrl: string | undefined;
  /** SQLite synchronous pragma: FULL survives power loss, NORMAL survives process crashes only. */
  readonly sqliteSync: 'FULL' | 'NORMAL';
  readonly webhooks: {
    /** First retry delay (doubling, with jitter). */
    readonly retryBaseMs: number;
    readonly maxAttempts: number;
    /** Longest wait for one attempt. */
    readonly timeoutMs: number;
    /** Loopback and private targets allowed (development, tests). */
    readonly allowPrivate: boolean;
    /** How often each node looks for due deliveries of other nodes' events and retries. */
    readonly pollMs: number;
    /** How often keys are scanned for key.expiring, key.expired and key.usage_low. */
    readonly scanMs: number;
    /** key.expiring is sent this long before expiresAt. */
    readonly expiryNoticeMs: number;
    /** Failed attempts in a row after which an endpoint is disabled. */
    readonly disableAfter: number;
    /** Settled deliveries are kept this long. */
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

function oneOf<const T extends readonly string[]>(env: Env, name: string, values: T, fallback: T[number]): T[number] {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!values.includes(raw)) throw new ConfigError(`${name} must be one of ${values.join(', ')}, got "${raw}"`);
  return raw as T[number];
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
    slashSigningSecret: env.KEYWARD_SLASH_SIGNING_SECRET || undefined,
    slashAppId: env.KEYWARD_SLASH_APP_ID || undefined,
    logLevel: level,
    trustProxy: Object.freeze((env.KEYWARD_TRUST_PROXY ?? '').split(',').map((s) => s.trim()).filter(Boolean)),
    sessionTtlMs: int(env, 'KEYWARD_SESSION_TTL_HOURS', 24, 1, 24 * 90) * 3_600_000,
    cacheTtlMs: int(env, 'KEYWARD_CACHE_TTL_MS', 30_000, 100, 3_600_000),
    cacheStaleMs: int(env, 'KEYWARD_CACHE_STALE_MS', 3_600_000, 0, 86_400_000),
    passwordCost: int(env, 'KEYWARD_PASSWORD_COST', 17, 10, 20),
    streamRecheckMs: int(env, 'KEYWARD_STREAM_RECHECK_MS', 5000, 20, 60_000),
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
    publicUrl: url(env, 'KEYWARD_PUBLIC_URL', ['http:', 'https:']),
    sqliteSync: sync,
    webhooks: Object.freeze({
      retryBaseMs: int(env, 'KEYWARD_WEBHOOK_RETRY_BASE_MS', 5000, 10, 3_600_000),
      maxAttempts: int(env, 'KEYWARD_WEBHOOK_MAX_ATTEMPTS', 8, 1, 20),
      timeoutMs: int(env, 'KEYWARD_WEBHOOK_TIMEOUT_MS', 10_000, 100, 60_000),
      allowPrivate: flag(env, 'KEYWARD_WEBHOOK_ALLOW_PRIVATE'),
      pollMs: int(env, 'KEYWARD_WEBHOOK_POLL_MS', 1000, 10, 60_000),
      scanMs: int(env, 'KEYWARD_WEBHOOK_SCAN_MS', 60_000, 10, 3_600_000),
      expiryNoticeMs: int(env, 'KEYWARD_EXPIRY_NOTICE_HOURS', 168, 0, 24 * 365) * 3_600_000,
      disableAfter: int(env, 'KEYWARD_WEBHOOK_DISABLE_AFTER', 40, 1, 10_000),
      retentionMs: int(env, 'KEYWARD_WEBHOOK_RETENTION_DAYS', 30, 1, 3650) * 86_400_000,
    }),
  });
}
