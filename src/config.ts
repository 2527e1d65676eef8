// The only reader of process.env: parses configuration once against the schema (src/config/schema.ts),
// fails fast with one line naming the variable, returns a frozen object.
import os from 'node:os';
import path from 'node:path';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parseTrustProxy } from './lib/trust-proxy.js';
import { REPLACED, kindOf, variables, type EnvValues, type VariableSchema } from './config/schema.js';

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
  /**
   * The node's verify policy: what every verify checks beyond the key's own settings
   * (src/verify/checks.ts reads it; a new global check adds its setting here).
   */
  readonly verifyPolicy: {
    /** Longest accepted age of an integration JWT (from its iat), in seconds. */
    readonly jwtMaxAgeSec: number;
    /** How far in the future an integration JWT's iat may be (clock skew), in seconds. */
    readonly jwtLeewaySec: number;
    /** Keys older than this (from their creation) answer EXPIRED; null = no limit. */
    readonly maxKeyAgeMs: number | null;
  };
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
  /** Connections that start with a verify request are read from the socket (src/verify/transports/wire.ts). */
  readonly verifyWire: boolean;
  /** Those connections read into one buffer shared by all (src/verify/transports/socket-read.ts), not a Buffer per read. */
  readonly verifySharedReads: boolean;
  /** On SIGTERM/SIGINT: how long open connections may finish before those left are closed. */
  readonly shutdownDrainMs: number;
  readonly publicUrl: string | undefined;
  /** SQLite synchronous pragma: FULL survives power loss, NORMAL survives process crashes only. */
  readonly sqliteSync: 'FULL' | 'NORMAL';
  /** Settings that are read but replaced or ignored, said once at boot (schema.ts, REPLACED). */
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

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function wholeNumber(name: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
  const value = Number(raw);
  if (value < min || value > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${value}`);
  return value;
}

/** One variable's text turned into its schema's type; a bad value is a ConfigError naming it (and never echoing a secret). */
function parseVariable(name: string, schema: VariableSchema, raw: string): unknown {
  switch (kindOf(schema)) {
    case 'Integer':
      return wholeNumber(name, raw, schema.minimum as number, schema.maximum as number);
    case 'Boolean':
      if (raw === '1' || raw === 'true') return true;
      if (raw === '0' || raw === 'false') return false;
      throw new ConfigError(`${name} must be 1 or 0, got "${raw}"`);
    case 'Union': {
      const members = schema.anyOf as TSchema[];
      const literals = members.filter((m) => kindOf(m) === 'Literal').map((m) => m.const as string);
      const value = schema.upperCase ? raw.toUpperCase() : raw;
      if (literals.includes(value)) return value;
      const number = members.find((m) => kindOf(m) === 'Integer');
      if (number) return wholeNumber(name, raw, number.minimum as number, number.maximum as number);
      throw new ConfigError(`${name} must be one of ${literals.join(', ')}, got "${raw}"`);
    }
    case 'String':
      if (schema.format === 'uri') {
        let parsed: URL;
        try {
          parsed = new URL(raw);
        } catch {
          throw new ConfigError(`${name} is not a valid URL`);
        }
        const protocols = schema.protocols ?? [];
        if (!protocols.includes(parsed.protocol)) throw new ConfigError(`${name} must use ${protocols.join(' or ')}, got ${parsed.protocol}`);
      }
      if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern).test(raw)) {
        throw new ConfigError(`${name} ${schema.invalid ?? `must match ${schema.pattern}`}`);
      }
      return raw;
    case 'Array': {
      const refusal = `${name} ${schema.invalid ?? 'must be JSON of the documented shape'}`;
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw);
      } catch (err) {
        throw new ConfigError(`${refusal}: ${(err as Error).message}`);
      }
      const error = Value.Errors(schema, parsed).First();
      if (error) throw new ConfigError(`${refusal}: ${error.path || '/'} ${error.message}`);
      return parsed;
    }
    default:
      throw new Error(`${name}: no parser for schema kind ${kindOf(schema)}`);
  }
}

/** Every variable of the schema, parsed; an unset or empty one takes the schema's default. */
export function readEnv(env: Env): EnvValues {
  const values: Record<string, unknown> = {};
  for (const [name, schema] of variables()) {
    const raw = env[name];
    values[name] = raw === undefined || raw === '' ? schema.default : parseVariable(name, schema, raw);
  }
  return values as EnvValues;
}

function replacedSettings(env: Env): string[] {
  return Object.entries(REPLACED).filter(([name]) => env[name] !== undefined && env[name] !== '').map(([name, what]) => `${name} ${what}`);
}

function trustProxy(text: string): readonly string[] {
  try {
    return Object.freeze(parseTrustProxy(text));
  } catch (err) {
    throw new ConfigError(`KEYWARD_TRUST_PROXY: ${(err as Error).message}`);
  }
}

export function loadConfig(env: Env = process.env): Config {
  const e = readEnv(env);
  if (e.KEYWARD_LOGIN_HASH_RESERVED >= e.KEYWARD_LOGIN_HASH_SLOTS) {
    throw new ConfigError(`KEYWARD_LOGIN_HASH_RESERVED (${e.KEYWARD_LOGIN_HASH_RESERVED}) must be below KEYWARD_LOGIN_HASH_SLOTS (${e.KEYWARD_LOGIN_HASH_SLOTS}): logins from new addresses need a slot too`);
  }
  const workers = e.KEYWARD_WORKERS === 'auto' ? os.availableParallelism() : e.KEYWARD_WORKERS;
  if (workers > 1 && !e.REDIS_URL) {
    throw new ConfigError('KEYWARD_WORKERS > 1 needs REDIS_URL: workers share rate limits and cache invalidation through Redis');
  }
  return Object.freeze({
    port: e.PORT,
    host: e.HOST,
    dataDir: path.resolve(e.KEYWARD_DATA_DIR),
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redisPrefix: e.KEYWARD_REDIS_PREFIX,
    masterKey: e.KEYWARD_MASTER_KEY,
    previousMasterKeys: Object.freeze(e.KEYWARD_MASTER_KEY_PREVIOUS.split(',').map((s) => s.trim()).filter(Boolean)),
    leakPublicKeys: Object.freeze((e.KEYWARD_LEAK_PUBLIC_KEYS ?? []).map((k) => ({ id: k.key_identifier, pem: k.key }))),
    leakPolicy: e.KEYWARD_LEAK_POLICY,
    verifyPolicy: Object.freeze({
      jwtMaxAgeSec: e.KEYWARD_JWT_MAX_AGE_SEC,
      jwtLeewaySec: e.KEYWARD_JWT_LEEWAY_SEC,
      maxKeyAgeMs: e.KEYWARD_MAX_KEY_AGE_DAYS === 0 ? null : e.KEYWARD_MAX_KEY_AGE_DAYS * 86_400_000,
    }),
    slashSigningSecret: e.KEYWARD_SLASH_SIGNING_SECRET,
    slashAppId: e.KEYWARD_SLASH_APP_ID,
    logLevel: e.LOG_LEVEL,
    trustProxy: trustProxy(e.KEYWARD_TRUST_PROXY),
    sessionTtlMs: e.KEYWARD_SESSION_TTL_HOURS * HOUR,
    cacheTtlMs: e.KEYWARD_CACHE_TTL_MS,
    cacheStaleMs: e.KEYWARD_CACHE_STALE_MS,
    cacheMaxKeys: e.KEYWARD_CACHE_MAX_KEYS,
    probeMs: e.KEYWARD_PROBE_MS,
    passwordCost: e.KEYWARD_PASSWORD_COST,
    streamRecheckMs: e.KEYWARD_STREAM_RECHECK_MS,
    streamsPerSession: e.KEYWARD_STREAMS_PER_SESSION,
    streamsPerRootKey: e.KEYWARD_STREAMS_PER_ROOT_KEY,
    login: Object.freeze({
      maxPerEmailAddress: e.KEYWARD_LOGIN_MAX_PER_EMAIL_ADDRESS,
      maxPerAddress: e.KEYWARD_LOGIN_MAX_PER_ADDRESS,
      maxPerEmail: e.KEYWARD_LOGIN_MAX_PER_EMAIL,
      hashSlots: e.KEYWARD_LOGIN_HASH_SLOTS,
      hashReserved: e.KEYWARD_LOGIN_HASH_RESERVED,
    }),
    ratelimitFallback: e.KEYWARD_RATELIMIT_FALLBACK,
    ratelimitLeaseMs: e.KEYWARD_RATELIMIT_LEASE_MS,
    creditLeaseMs: e.KEYWARD_CREDIT_LEASE_MS,
    feedPollMs: e.KEYWARD_FEED_POLL_MS,
    storeWaitMs: e.KEYWARD_STORE_WAIT_MS,
    storeTimeoutMs: e.KEYWARD_STORE_TIMEOUT_MS,
    workers,
    usageFlushMs: e.KEYWARD_USAGE_FLUSH_MS,
    usageWriterNice: e.KEYWARD_USAGE_WRITER_NICE,
    bodyLimitBytes: e.KEYWARD_BODY_LIMIT,
    verifyWire: e.KEYWARD_VERIFY_WIRE,
    verifySharedReads: e.KEYWARD_VERIFY_SHARED_READS,
    shutdownDrainMs: e.KEYWARD_SHUTDOWN_DRAIN_MS,
    publicUrl: e.KEYWARD_PUBLIC_URL,
    sqliteSync: e.KEYWARD_SQLITE_SYNC,
    warnings: Object.freeze(replacedSettings(env)),
    webhooks: Object.freeze({
      retryBaseMs: e.KEYWARD_WEBHOOK_RETRY_BASE_MS,
      timeoutMs: e.KEYWARD_WEBHOOK_TIMEOUT_MS,
      allowPrivate: e.KEYWARD_WEBHOOK_ALLOW_PRIVATE,
      pollMs: e.KEYWARD_WEBHOOK_POLL_MS,
      scanMs: e.KEYWARD_WEBHOOK_SCAN_MS,
      expiryNoticeMs: e.KEYWARD_EXPIRY_NOTICE_HOURS * HOUR,
      disableAfterMs: e.KEYWARD_WEBHOOK_DISABLE_AFTER_HOURS * HOUR,
      retentionMs: e.KEYWARD_WEBHOOK_RETENTION_DAYS * DAY,
    }),
  });
}
