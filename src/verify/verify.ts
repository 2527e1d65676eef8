// The hot path: turns a presented credential into a verdict. Touches only the key cache, the rate
// limiter, the usage-cap slices (capped keys only) and the in-memory usage recorder.
import { sha256Hex } from '../lib/hash.js';
import { parseKey } from '../lib/key-format.js';
import { iso } from '../lib/time.js';
import { KEY_CHECKS, type VerifyPolicy } from './checks.js';
import type { RateDecision } from '../ratelimit/decide.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import type { CacheEntry, CachedKey, IntegrationLoader, KeyCache, Loader } from './cache.js';
import { decodeProtectedHeader, errors as jose, jwtVerify } from 'jose';
import type { VerifyCode } from './steps.js';
import type { VerifyScope } from './scope.js';
import type { ImportedKeys } from './imported.js';
import type { CapAnswer } from '../credits/slices.js';
import type { Bucket, BucketLimiter, Reservation } from '../ratelimit/buckets.js';
import type { WorkspaceOverrides } from '../ratelimit/overrides.js';

export { hasPermission, resourceAllowed } from './checks.js';

export interface VerifyInput {
  key?: string;
  authorization?: string;
  appId?: string;
  permissions?: readonly string[];
  resource?: string;
  ip?: string;
  cost?: number;
  /** Decide only: no usage charge, no rate-limit count, no usage analytics, no last use. */
  dryRun?: boolean;
  /** Set by gateway forward auth: the forwarded request, matched against the app's gateway rules. */
  forwarded?: { method: string; path: string };
  /** Named limits to check (with what each costs), besides every `autoApply` one. */
  ratelimits?: readonly { name: string; cost?: number }[];
}

/** A named limit as the answer shows it. */
export interface CheckedLimit {
  name: string;
  limit: number;
  remaining: number;
  resetAt: string;
  exceeded: boolean;
}

export interface VerifyResult {
  valid: boolean;
  code: VerifyCode;
  keyId?: string;
  appId?: string;
  name?: string;
  ownerId?: string | null;
  environment?: 'live' | 'test';
  permissions?: readonly string[];
  resources?: readonly string[];
  meta?: Readonly<Record<string, unknown>>;
  expiresAt?: string | null;
  remaining?: number | null;
  ratelimit?: { limit: number; remaining: number; resetAt: string };
  /** Every named limit checked (keys with named limits, or whose identity has some). */
  ratelimits?: CheckedLimit[];
  identity?: { id: string; externalId: string; meta: Readonly<Record<string, unknown>> };
}

export interface VerifyDeps {
  cache: KeyCache;
  load: Loader;
  loadIntegration: IntegrationLoader;
  /** Oldest acceptable integration JWT, by its `iat`. */
  jwtMaxAgeSec: number;
  /** How far in the future an integration JWT's `iat` may be (the client's clock ahead of ours). */
  jwtLeewaySec: number;
  /** The node's verify policy, handed to every key check. */
  policy: VerifyPolicy;
  limiter: RateLimiter;
  /** Named limits (keys' and identities'): reserved, then kept or handed back. */
  buckets: BucketLimiter;
  /** Rate-limit overrides of a workspace, in memory once read. */
  overrides: { get(workspaceId: string): WorkspaceOverrides | Promise<WorkspaceOverrides> };
  /** Usage caps: units spent from this node's slice of the cap (src/credits/slices.ts). */
  credits: {
    spend(keyId: string, cost: number, now: number): CapAnswer | Promise<CapAnswer>;
    /** Whether `cost` units are there, spending none. */
    peek(keyId: string, cost: number, now: number): CapAnswer | Promise<CapAnswer>;
  };
  record(keyId: string, code: VerifyCode, now: number, valid: boolean): void;
  /** True the first time an id is seen within ttlMs (single-use JWT ids), on every node. */
  firstUse(id: string, ttlMs: number, now: number): Promise<boolean>;
  /** Values imported into apps with importKeys on: the only values outside the format worth a lookup. */
  imported: Pick<ImportedKeys, 'has' | 'size'>;
  now(): number;
}

const MALFORMED: VerifyResult = Object.freeze({ valid: false, code: 'MALFORMED' }) as VerifyResult;
const NOT_FOUND: VerifyResult = Object.freeze({ valid: false, code: 'NOT_FOUND' }) as VerifyResult;

type Credential =
  | { kind: 'bearer'; value: string }
  | { kind: 'basic'; id: string; secret: string }
  | { kind: 'jwt'; token: string };

const KEY_ID = /^key_[0-9A-Za-z]{20}$/;
const JWT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** What the caller presented: `key`, or an Authorization value (Bearer key, Bearer JWT, Basic). */
export function credentialOf(input: VerifyInput): Credential | null {
  if (input.key !== undefined) return { kind: 'bearer', value: input.key.trim() };
  const auth = input.authorization?.trim();
  if (!auth) return null;
  const space = auth.indexOf(' ');
  if (space < 0) return null;
  const scheme = auth.slice(0, space).toLowerCase();
  const value = auth.slice(space + 1).trim();
  if (scheme === 'bearer') return JWT.test(value) ? { kind: 'jwt', token: value } : { kind: 'bearer', value };
  if (scheme !== 'basic') return null;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return null;
  return { kind: 'basic', id: decoded.slice(0, colon), secret: decoded.slice(colon + 1) };
}

type Found = CacheEntry | VerifyResult;

/** A key can only be found if it is at most this long (the format's own bound, checked by parseKey). */
const MAX_KEY_LENGTH = 64;
/** The longest value an app may import (POST /v1/apps/{id}/keys/import). */
export const MAX_IMPORTED_KEY_LENGTH = 256;

/**
 * Finds the key for a credential, or the verdict that ends verification before the key checks.
 * A cache hit answers synchronously: no promise on the hot path.
 */
function authenticate(deps: VerifyDeps, input: VerifyInput, scope: VerifyScope, now: number): Found | Promise<Found> {
  let value: string;
  let basicId: string | undefined;
  if (input.key !== undefined) {
    value = input.key.trim();
  } else {
    const cred = credentialOf(input);
    if (!cred) return MALFORMED;
    if (cred.kind === 'jwt') return authenticateJwt(deps, input, scope, cred.token, now);
    if (cred.kind === 'basic') {
      if (!KEY_ID.test(cred.id)) return MALFORMED;
      basicId = cred.id;
      value = cred.secret;
    } else {
      value = cred.value;
    }
  }
  const long = value.length > MAX_KEY_LENGTH;
  if (long && (value.length > MAX_IMPORTED_KEY_LENGTH || deps.imported.size === 0)) return MALFORMED;
  const hash = sha256Hex(value);
  const cached = deps.cache.lookup(hash, now, deps.load);
  // Only generated and imported values are ever stored, so a value found in the cache is a key: the
  // format and checksum are checked only before the store would be asked (or for a known miss).
  if (cached) return matchCredential(cached, scope, basicId, value);
  if (long || !parseKey(value)) return importedKey(deps, hash, scope, basicId, now);
  if (cached === null) return NOT_FOUND;
  return deps.cache.get(hash, now, deps.load).then((entry) => (entry ? matchCredential(entry, scope, basicId, value) : NOT_FOUND));
}

/**
 * A value outside Keyward's format: a key only if it was imported into an app in scope that accepts
 * imported keys (known in memory), else MALFORMED without asking the store.
 */
function importedKey(deps: VerifyDeps, hash: string, scope: VerifyScope, basicId: string | undefined, now: number): Found | Promise<Found> {
  if (!deps.imported.has(hash, scope)) return MALFORMED;
  return deps.cache.get(hash, now, deps.load).then((entry) => (entry ? matchCredential(entry, scope, basicId, null) : MALFORMED));
}

/** A key outside the scope is not found, exactly like a key that does not exist. */
function inScope(key: CachedKey, scope: VerifyScope): boolean {
  return (scope.appId === undefined || key.appId === scope.appId) && (scope.workspaceId === undefined || key.workspaceId === scope.workspaceId);
}

/**
 * A bearer value must be a bearer key; Basic needs the integration key's own id and secret. Outside
 * the scope, an imported value outside the format is MALFORMED, as it is for every app but its own
 * (a cached copy must not tell another tenant that it exists).
 */
function matchCredential(entry: CacheEntry, scope: VerifyScope, basicId: string | undefined, value: string | null): Found {
  const key = entry.key;
  if (!inScope(key, scope)) return value === null || parseKey(value) ? NOT_FOUND : MALFORMED;
  if (basicId === undefined ? key.kind !== 'bearer' : key.kind !== 'integration' || key.id !== basicId) return NOT_FOUND;
  return entry;
}

/** HS256 only, signed with a live secret of the key named by `kid`, fresh by exp, nbf and iat. */
async function authenticateJwt(deps: VerifyDeps, input: VerifyInput, scope: VerifyScope, token: string, now: number): Promise<CacheEntry | VerifyResult> {
  let header;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    return MALFORMED;
  }
  if (typeof header.kid !== 'string' || !KEY_ID.test(header.kid)) return MALFORMED;
  const found = await deps.cache.getIntegration(header.kid, now, deps.loadIntegration);
  if (!found || !inScope(found.key, scope)) return NOT_FOUND;
  const refuse = (code: VerifyCode): VerifyResult => {
    if (input.dryRun !== true) deps.record(found.key.id, code, now, false);
    return described(found.key, code);
  };
  if (header.alg !== 'HS256') return refuse('INVALID_SIGNATURE');
  for (const { secret, valueExpiresAt } of found.secrets) {
    if (valueExpiresAt !== null && valueExpiresAt <= now) continue;
    try {
      // exp and nbf are checked as they are; `iat` (required) below, with leeway for a client ahead of us.
      const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'], currentDate: new Date(now), requiredClaims: ['iat'] });
      if (!freshIat(payload.iat!, now, deps)) return refuse('TOKEN_EXPIRED');
      // A token with a `jti` is good once: a replay while its `iat` is accepted is refused like a stale one.
      if (typeof payload.jti === 'string' && input.dryRun !== true && !(await deps.firstUse(`jti:${found.key.id}:${payload.jti}`, (deps.jwtMaxAgeSec + deps.jwtLeewaySec) * 1000, now))) {
        return refuse('TOKEN_EXPIRED');
      }
      return { key: found.key, valueExpiresAt };
    } catch (err) {
      if (err instanceof jose.JWSSignatureVerificationFailed) continue;
      // The signature held, so the token is ours but not (or no longer) acceptable: exp, nbf, iat.
      if (err instanceof jose.JWTExpired || err instanceof jose.JWTClaimValidationFailed) return refuse('TOKEN_EXPIRED');
      return refuse('INVALID_SIGNATURE');
    }
  }
  return refuse('INVALID_SIGNATURE');
}

/**
 * A JWT is fresh while its `iat` is at most jwtMaxAgeSec old, and at most jwtLeewaySec in the
 * future: clocks disagree by a few seconds, and a client a little ahead of this node must not be
 * refused. Only a future `iat` gets leeway; age, `exp` and `nbf` are as the token says.
 */
function freshIat(iat: number, now: number, deps: VerifyDeps): boolean {
  const age = Math.floor(now / 1000) - iat;
  return age <= deps.jwtMaxAgeSec && age >= -deps.jwtLeewaySec;
}

function described(key: CachedKey, code: VerifyCode): VerifyResult {
  return {
    valid: false,
    code,
    keyId: key.id,
    appId: key.appId,
    name: key.name,
    ownerId: key.ownerId,
    environment: key.environment,
    expiresAt: key.expiresAtIso,
  };
}

// Window ends repeat for a whole window: format each once.
let lastReset = 0;
let lastResetIso = '';
function resetIso(ms: number): string {
  if (ms !== lastReset) {
    lastReset = ms;
    lastResetIso = iso(ms);
  }
  return lastResetIso;
}

function shownLimit(d: RateDecision): NonNullable<VerifyResult['ratelimit']> {
  return { limit: d.limit, remaining: d.remaining, resetAt: resetIso(d.resetAt) };
}

function refused(deps: VerifyDeps, input: VerifyInput, key: CachedKey, code: VerifyCode, now: number): VerifyResult {
  if (input.dryRun !== true) deps.record(key.id, code, now, false);
  return described(key, code);
}

/**
 * The verdict for a presented credential. Synchronous whenever everything it needs is in memory
 * (a cached key, the local limiter, no usage cap); a promise only when it must wait for the store
 * or Redis.
 */
export function verifyKey(deps: VerifyDeps, input: VerifyInput, scope: VerifyScope): VerifyResult | Promise<VerifyResult> {
  const now = deps.now();
  const found = authenticate(deps, input, scope, now);
  return found instanceof Promise ? found.then((f) => checkKey(deps, input, f, now)) : checkKey(deps, input, found, now);
}

/** The key checks of checks.ts in their order, then the rate limits. */
function checkKey(deps: VerifyDeps, input: VerifyInput, found: Found, now: number): VerifyResult | Promise<VerifyResult> {
  if (!('key' in found)) return found;
  const key = found.key;
  for (const check of KEY_CHECKS) {
    if (check.fails(key, found, input, now, deps.policy)) return refused(deps, input, key, check.code, now);
  }
  if (key.named.length > 0) return checkNamed(deps, input, key, now);
  const limit = input.dryRun === true ? deps.limiter.peek(key, now) : deps.limiter.take(key, now);
  return limit instanceof Promise ? limit.then((l) => charged(deps, input, key, now, l)) : charged(deps, input, key, now, limit);
}

/** The buckets a verify of `key` is decided against: every autoApply limit, and those it names. */
export function bucketsOf(key: CachedKey, input: VerifyInput, overrides: WorkspaceOverrides): { buckets: Bucket[]; names: string[] } {
  const buckets: Bucket[] = [];
  const names: string[] = [];
  const asked = input.ratelimits;
  for (const l of key.named) {
    let cost = -1;
    if (asked !== undefined) {
      for (const a of asked) if (a.name === l.name) cost = Math.max(cost, 0) + (a.cost ?? 1);
    }
    if (cost < 0) {
      if (!l.autoApply) continue;
      cost = 1;
    }
    const o = overrides.resolve('limit', l.name, l.identifier);
    buckets.push({ id: l.bucket, limit: o?.limit ?? l.limit, durationMs: o?.durationMs ?? l.durationMs, cost });
    names.push(l.name);
  }
  return { buckets, names };
}

/**
 * A key with named limits: its overrides (in memory once read), then every applicable limit reserved
 * all-or-nothing, then the key and owner limits and the usage cap; a refusal after the reservation
 * hands it back, so a refused verify charges no named limit.
 */
function checkNamed(deps: VerifyDeps, input: VerifyInput, key: CachedKey, now: number): VerifyResult | Promise<VerifyResult> {
  const overrides = deps.overrides.get(key.workspaceId);
  const go = (o: WorkspaceOverrides): VerifyResult | Promise<VerifyResult> => {
    const { buckets, names } = bucketsOf(key, input, o);
    const reserved = deps.buckets.reserve(buckets, now, input.dryRun !== true);
    const next = (r: Reservation) => reservedNamed(deps, input, key, now, r, names);
    return reserved instanceof Promise ? reserved.then(next) : next(reserved);
  };
  return overrides instanceof Promise ? overrides.then(go) : go(overrides);
}

function checkedOf(r: Reservation, names: readonly string[]): CheckedLimit[] {
  return r.decisions.map((d, i) => ({ name: names[i]!, limit: d.limit, remaining: d.remaining, resetAt: resetIso(d.resetAt), exceeded: !d.allowed }));
}

function reservedNamed(deps: VerifyDeps, input: VerifyInput, key: CachedKey, now: number, r: Reservation, names: readonly string[]): VerifyResult | Promise<VerifyResult> {
  const checked = checkedOf(r, names);
  if (!r.allowed) {
    const result = refused(deps, input, key, 'RATE_LIMITED', now);
    result.ratelimits = checked;
    return result;
  }
  const limit = input.dryRun === true ? deps.limiter.peek(key, now) : deps.limiter.take(key, now);
  const settle = (result: VerifyResult): VerifyResult => {
    if (!result.valid) deps.buckets.handBack(r, now);
    result.ratelimits = checked;
    return result;
  };
  const after = (l: RateDecision | undefined) => {
    const result = charged(deps, input, key, now, l);
    return result instanceof Promise ? result.then(settle) : settle(result);
  };
  return limit instanceof Promise ? limit.then(after) : after(limit);
}

/** Rate-limit verdict, then the usage cap (charged only now that every other check passed). */
function charged(deps: VerifyDeps, input: VerifyInput, key: CachedKey, now: number, limit: RateDecision | undefined): VerifyResult | Promise<VerifyResult> {
  if (limit !== undefined && !limit.allowed) {
    const result = refused(deps, input, key, 'RATE_LIMITED', now);
    result.ratelimit = shownLimit(limit);
    return result;
  }
  if (!key.capped) return accepted(deps, input, key, now, null, limit);
  const cost = input.cost ?? 1;
  // A dry run, or a call that costs nothing, reads the balance: it must not spend it. Units in
  // hand answer at once; otherwise the answer waits for the store.
  const cap = cost === 0 || input.dryRun === true ? deps.credits.peek(key.id, cost, now) : deps.credits.spend(key.id, cost, now);
  return cap instanceof Promise ? cap.then((c) => capped(deps, input, key, now, limit, c)) : capped(deps, input, key, now, limit, cap);
}

function capped(deps: VerifyDeps, input: VerifyInput, key: CachedKey, now: number, limit: RateDecision | undefined, cap: CapAnswer): VerifyResult {
  if (cap === null || typeof cap === 'number') return accepted(deps, input, key, now, cap, limit);
  // The key and owner limits counted this request: a refused verify charges no limit.
  if (limit !== undefined && input.dryRun !== true) deps.limiter.refund(key, now);
  const result = refused(deps, input, key, 'USAGE_EXCEEDED', now);
  result.remaining = cap.remaining;
  if (limit) result.ratelimit = shownLimit(limit);
  if (key.identity !== null) result.identity = key.identity;
  return result;
}

function accepted(deps: VerifyDeps, input: VerifyInput, key: CachedKey, now: number, remaining: number | null, limit: RateDecision | undefined): VerifyResult {
  if (input.dryRun !== true) deps.record(key.id, 'VALID', now, true);
  const result: VerifyResult = {
    valid: true,
    code: 'VALID',
    keyId: key.id,
    appId: key.appId,
    name: key.name,
    ownerId: key.ownerId,
    environment: key.environment,
    permissions: key.permissions,
    resources: key.resources,
    meta: key.meta,
    expiresAt: key.expiresAtIso,
    remaining,
  };
  if (limit) result.ratelimit = shownLimit(limit);
  if (key.identity !== null) result.identity = key.identity;
  return result;
}
