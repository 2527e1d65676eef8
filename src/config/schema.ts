// The environment, one TypeBox schema: every variable once, with its type, default, bounds and meaning.
// loadConfig (src/config.ts) parses from it, docs/configuration.md and README's table are generated from it.
import { Type, Kind, OptionalKind, type Static, type TLiteral, type TSchema, type TUnion } from '@sinclair/typebox';

/** Sections of docs/configuration.md, in order. */
export const GROUPS = {
  server: 'Server',
  store: 'Store',
  nodes: 'Several nodes and Redis',
  secrets: 'Secrets',
  verify: 'Verify, cache and degraded mode',
  limits: 'Rate limits and usage',
  sessions: 'Sessions, logins and change streams',
  webhooks: 'Webhooks',
  integrations: 'Integrations',
} as const;
export type Group = keyof typeof GROUPS;

/** What the docs say of a variable beyond TypeBox's own keywords. */
interface Doc {
  group: Group;
  /** Also in README's short table (what a newcomer needs). */
  readme?: boolean;
  /** The default as the docs show it, where the value alone says too little. */
  shownDefault?: string;
  /** Accepted values as the docs show them, where bounds or an enum cannot say it. */
  accepts?: string;
  /** One-line reason a value is refused, where a pattern says too little (never echoes the value). */
  invalid?: string;
  /** For URLs: the protocols accepted. */
  protocols?: readonly string[];
  /** For names compared without case: the spelling the value is turned into. */
  upperCase?: boolean;
}

function int(dflt: number, minimum: number, maximum: number, description: string, doc: Doc) {
  return Type.Integer({ default: dflt, minimum, maximum, description, ...doc });
}
function flag(dflt: boolean, description: string, doc: Doc) {
  return Type.Boolean({ default: dflt, description, ...doc });
}
function oneOf<const T extends readonly [string, ...string[]]>(values: T, dflt: T[number], description: string, doc: Doc) {
  // Static type: the union of the values (TypeBox cannot map a tuple of literals by itself).
  return Type.Union(values.map((v) => Type.Literal(v)), { default: dflt, description, ...doc }) as unknown as TUnion<TLiteral<T[number]>[]>;
}
function text(dflt: string, description: string, doc: Doc) {
  return Type.String({ default: dflt, description, ...doc });
}
function optionalText(description: string, doc: Doc, options: { pattern?: string; format?: 'uri' } = {}) {
  return Type.Optional(Type.String({ description, ...options, ...doc }));
}

export const EnvSchema = Type.Object({
  // Server
  PORT: int(8787, 0, 65535, 'HTTP port (`0` picks a free one)', { group: 'server', readme: true }),
  HOST: text('127.0.0.1', 'address to listen on (`0.0.0.0` to serve other machines)', { group: 'server', readme: true }),
  KEYWARD_PUBLIC_URL: optionalText('the URL printed at start and used in invitation links, when behind a proxy', { group: 'server', readme: true, protocols: ['http:', 'https:'] }, { format: 'uri' }),
  KEYWARD_TRUST_PROXY: text('', 'comma-separated proxy addresses, CIDRs or `loopback`/`linklocal`/`uniquelocal` whose `X-Forwarded-For` is believed (login, audit, forward auth alike; anything else stops the server)', { group: 'server', readme: true, shownDefault: 'none', accepts: 'addresses, CIDRs, `loopback`, `linklocal`, `uniquelocal`' }),
  KEYWARD_WORKERS: Type.Union([Type.Literal('auto'), Type.Integer({ minimum: 1, maximum: 256 })], { default: 1, description: 'worker processes sharing the port (`auto` = one per core); more than 1 needs `REDIS_URL`', group: 'server', readme: true }),
  KEYWARD_BODY_LIMIT: int(256 * 1024, 1024, 16 * 1024 * 1024, 'largest accepted request body, bytes', { group: 'server' }),
  KEYWARD_SHUTDOWN_DRAIN_MS: int(10_000, 0, 600_000, "on SIGTERM/SIGINT, how long open connections may finish before those left are closed (a client that sent half a request would otherwise hold node:http's close for ever); the process exits 5 s after at the latest", { group: 'server' }),
  LOG_LEVEL: oneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], 'info', 'pino level (`silent` … `trace`); at `info` and below every request but verify and forward auth writes one access line', { group: 'server', readme: true }),

  // Store
  KEYWARD_DATA_DIR: text('./data', 'embedded store directory (SQLite file `keyward.db`, mode 0700)', { group: 'store', readme: true }),
  DATABASE_URL: optionalText('`postgres://…`: use PostgreSQL instead of the embedded store', { group: 'store', readme: true, protocols: ['postgres:', 'postgresql:'] }, { format: 'uri' }),
  KEYWARD_SQLITE_SYNC: oneOf(['FULL', 'NORMAL'], 'FULL', '`FULL` survives power loss; `NORMAL` only process crashes, but writes faster', { group: 'store', upperCase: true }),
  KEYWARD_STORE_WAIT_MS: int(60_000, 0, 3_600_000, 'how long a starting node waits for an unreachable store (with backoff, one log line per attempt) before giving up', { group: 'store' }),
  KEYWARD_STORE_TIMEOUT_MS: int(2000, 100, 60_000, 'longest a request waits on the store, pooled connection and every statement together; past it the answer is a 503 with `Retry-After`. PostgreSQL aborts a transaction left idle twice as long. Migrations at start run without either bound', { group: 'store' }),
  KEYWARD_USAGE_FLUSH_MS: int(1000, 10, 60_000, 'how often usage counts and last-use times are written', { group: 'store' }),
  KEYWARD_USAGE_WRITER_NICE: int(19, 0, 19, "nice value (0–19, Linux) of the embedded store's usage writer thread: below the event loop's, so on a shared core it writes in the loop's idle moments instead of cutting in for a few milliseconds at every batch (`0` keeps the process's priority)", { group: 'store' }),

  // Several nodes and Redis
  REDIS_URL: optionalText('`redis://…`: share rate limits, cache invalidation and replay protection between nodes (usage caps are always reserved in the store)', { group: 'nodes', readme: true, protocols: ['redis:', 'rediss:'] }, { format: 'uri' }),
  KEYWARD_REDIS_PREFIX: text('keyward:', 'prefix of every Redis key and channel (several deployments can share a Redis)', { group: 'nodes' }),
  KEYWARD_FEED_POLL_MS: int(250, 10, 1000, "how often every node reads the store's change feed (revocation that holds without Redis)", { group: 'nodes' }),

  // Secrets
  KEYWARD_MASTER_KEY: optionalText('32 random bytes (base64) encrypting integration secrets and the vault', { group: 'secrets', readme: true, shownDefault: 'generated into the data dir', invalid: 'must be 32 random bytes, base64 or base64url encoded' }, { pattern: '^[A-Za-z0-9+/=_-]{43,}$' }),
  KEYWARD_MASTER_KEY_PREVIOUS: text('', 'old master key(s), comma-separated, accepted for decryption while rotating', { group: 'secrets', shownDefault: '—' }),
  KEYWARD_JWT_MAX_AGE_SEC: int(300, 1, 86_400, 'oldest accepted integration JWT, by its `iat`', { group: 'secrets' }),
  KEYWARD_JWT_LEEWAY_SEC: int(30, 0, 3600, "how far in the future an integration JWT's `iat` may be (a client clock ahead); no leeway for age, `exp`, `nbf`", { group: 'secrets' }),
  KEYWARD_LEAK_PUBLIC_KEYS: Type.Optional(Type.Array(Type.Object({ key_identifier: Type.String(), key: Type.String() }), { description: 'JSON `[{key_identifier, key}]`: PEM keys that sign leak reports', group: 'secrets', accepts: 'JSON array', invalid: 'must be a JSON array of {key_identifier, key (PEM)}' })),
  KEYWARD_LEAK_POLICY: oneOf(['disable', 'revoke'], 'disable', 'what a reported app key gets: `disable` or `revoke` (root keys are always revoked)', { group: 'secrets' }),
  KEYWARD_PASSWORD_COST: int(17, 10, 20, 'scrypt cost of password hashes as log2 N (r = 8); older, cheaper hashes are replaced at the next login', { group: 'secrets' }),

  // Verify, cache and degraded mode
  KEYWARD_MAX_KEY_AGE_DAYS: int(0, 0, 36_500, 'a key older than this many days (from its creation) answers `EXPIRED`, whatever its own expiry; `0` = no limit', { group: 'verify' }),
  KEYWARD_CACHE_TTL_MS: int(30_000, 100, 3_600_000, 'safety-net lifetime of a cached key (changes invalidate at once)', { group: 'verify' }),
  KEYWARD_CACHE_STALE_MS: int(3_600_000, 0, 86_400_000, 'how long past its TTL a cached key may still answer verify while the store is unreachable', { group: 'verify' }),
  KEYWARD_CACHE_MAX_KEYS: int(1_000_000, 100, 100_000_000, 'key values the verify cache holds at most; past it the ones not used lately are evicted (about 35 MB per 100k)', { group: 'verify' }),
  KEYWARD_PROBE_MS: int(1000, 10, 60_000, 'while the store or Redis is known to be down, the first wait before one probe asks whether it is back (doubling, up to 4×)', { group: 'verify' }),
  KEYWARD_VERIFY_WIRE: flag(true, '`0` serves verify through node:http only (see [design/verify-path.md](design/verify-path.md#verify-connections-are-read-from-the-socket): verify connections are read from the socket)', { group: 'verify' }),
  KEYWARD_VERIFY_SHARED_READS: flag(true, "`0` reads verify connections through the socket's `data` events, a Buffer per read, instead of into one buffer they share (kept: on Node 24 they cost 11% less CPU per request and a third of the p99, [verify-wire.md](verify-wire.md#shared-reads-keep-or-remove))", { group: 'verify' }),

  // Rate limits and usage
  KEYWARD_RATELIMIT_FALLBACK: oneOf(['share', 'deny'], 'share', 'while Redis cannot answer: `share` (each live node enforces its share of every limit) or `deny` (limited keys are refused)', { group: 'limits' }),
  KEYWARD_RATELIMIT_LEASE_MS: int(2000, 0, 60_000, 'how long tokens leased from Redis may sit unspent on a node before it gives them back; `0`: a grant per request', { group: 'limits' }),
  KEYWARD_CREDIT_LEASE_MS: int(2000, 10, 60_000, 'how long units of a usage cap leased to a node may sit unspent before they go back; slices are sized to last about this long', { group: 'limits' }),

  // Sessions, logins and change streams
  KEYWARD_SESSION_TTL_HOURS: int(24, 1, 24 * 90, 'console/API session lifetime', { group: 'sessions' }),
  KEYWARD_LOGIN_MAX_PER_EMAIL_ADDRESS: int(10, 1, 100_000, 'login attempts per 15 minutes for one email from one address', { group: 'sessions' }),
  KEYWARD_LOGIN_MAX_PER_ADDRESS: int(30, 1, 100_000, 'login attempts per 15 minutes from one address (IPv4, or IPv6 /64) across all emails, addresses known to the account aside', { group: 'sessions' }),
  KEYWARD_LOGIN_MAX_PER_EMAIL: int(100, 1, 100_000, 'login attempts per 15 minutes for one email from addresses unknown to its account', { group: 'sessions' }),
  KEYWARD_LOGIN_HASH_SLOTS: int(3, 1, 64, 'password hashes running at once on a node; beyond, a login is refused at once (`503`, `Retry-After`)', { group: 'sessions' }),
  KEYWARD_LOGIN_HASH_RESERVED: int(1, 0, 63, 'of those, kept for logins from an address known to the account (below `KEYWARD_LOGIN_HASH_SLOTS`)', { group: 'sessions' }),
  KEYWARD_STREAM_RECHECK_MS: int(60_000, 20, 3_600_000, 'how often an open `/v1/keys/changes` stream re-checks its credential: a safety net, since logout, removal and revocation end it at once on every node', { group: 'sessions' }),
  KEYWARD_STREAMS_PER_SESSION: int(5, 1, 1000, 'open `/v1/keys/changes` streams one session may hold (`409` beyond; across nodes with Redis)', { group: 'sessions' }),
  KEYWARD_STREAMS_PER_ROOT_KEY: int(100, 1, 100_000, 'the same for one root key (each SDK middleware process holds one stream)', { group: 'sessions' }),

  // Webhooks
  KEYWARD_WEBHOOK_RETRY_BASE_MS: int(5000, 10, 3_600_000, 'first webhook retry delay; each next one doubles (with jitter), at most an hour apart, until delivered or the endpoint is disabled', { group: 'webhooks' }),
  KEYWARD_WEBHOOK_TIMEOUT_MS: int(10_000, 100, 60_000, 'longest wait for one delivery attempt', { group: 'webhooks' }),
  KEYWARD_WEBHOOK_ALLOW_PRIVATE: flag(false, '`1` lets webhooks go to loopback and private addresses (development only)', { group: 'webhooks' }),
  KEYWARD_WEBHOOK_DISABLE_AFTER_HOURS: int(120, 1, 24 * 365, "an endpoint failing this long without a success is disabled (audited, shown in the console, sent as `webhook.disabled` to the workspace's other endpoints); its events are kept. Replaces `KEYWARD_WEBHOOK_DISABLE_AFTER` and `KEYWARD_WEBHOOK_MAX_ATTEMPTS`, which are ignored with a warning", { group: 'webhooks' }),
  KEYWARD_WEBHOOK_POLL_MS: int(1000, 10, 60_000, 'how often each node looks for deliveries due (its own events wake it at once)', { group: 'webhooks' }),
  KEYWARD_WEBHOOK_SCAN_MS: int(5000, 10, 3_600_000, 'how often keys are scanned for `key.expiring`, `key.expired` and `key.usage_low` (a timer also fires at the next notice due)', { group: 'webhooks' }),
  KEYWARD_EXPIRY_NOTICE_HOURS: int(168, 0, 24 * 365, '`key.expiring` is sent this long before `expiresAt`', { group: 'webhooks' }),
  KEYWARD_WEBHOOK_RETENTION_DAYS: int(30, 1, 3650, 'settled deliveries, and those held for a disabled endpoint, are kept this long', { group: 'webhooks' }),

  // Integrations
  KEYWARD_SLASH_SIGNING_SECRET: optionalText('signing secret of the chat app that sends `/api-keys`', { group: 'integrations' }),
  KEYWARD_SLASH_APP_ID: optionalText('the app whose keys `/api-keys generate` creates', { group: 'integrations' }),
});

export type EnvName = keyof typeof EnvSchema.properties;
export type EnvValues = Static<typeof EnvSchema>;

/** Settings an earlier version read and this one replaced: what each becomes, said once at boot. */
export const REPLACED: Readonly<Record<string, string>> = {
  KEYWARD_WEBHOOK_DISABLE_AFTER: 'is replaced by KEYWARD_WEBHOOK_DISABLE_AFTER_HOURS (default 120): an endpoint is disabled after failing that long without a success, not after a count of failures; the value is ignored',
  KEYWARD_WEBHOOK_MAX_ATTEMPTS: 'is no longer read: a delivery is retried (at most an hour apart) until it succeeds or its endpoint is disabled (KEYWARD_WEBHOOK_DISABLE_AFTER_HOURS); the value is ignored',
};

/** Read by the `keyward` command's client side (src/cli), never by the server. */
export const CLI_VARIABLES: Readonly<Record<string, string>> = {
  KEYWARD_URL: 'server URL for client commands when `--url` is not given (else the saved profile, else `http://localhost:8787`)',
  KEYWARD_ROOT_KEY: 'root key for client commands when `--root-key` is not given (else the saved profile)',
  KEYWARD_APP_ID: 'the app of `keyward keys …` commands when `--app` is not given',
  KEYWARD_CHECK_KEY: '`keyward gateway check`: a valid key that lacks the permission protecting `--path`, when `--key` is not given',
  KEYWARD_CONFIG_DIR: 'where `keyward login` saves its profile (mode 0600); default `$XDG_CONFIG_HOME/keyward`, else `~/.config/keyward`',
};

/** The schema of one variable, with what the docs say of it. */
export type VariableSchema = TSchema & Partial<Doc> & { default?: unknown; description: string };

export function variables(): [EnvName, VariableSchema][] {
  return Object.entries(EnvSchema.properties) as [EnvName, VariableSchema][];
}

export function isOptional(schema: TSchema): boolean {
  return schema[OptionalKind] === 'Optional';
}

export function kindOf(schema: TSchema): string {
  return schema[Kind] as string;
}
