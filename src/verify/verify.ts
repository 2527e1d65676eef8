// The hot path: turns a presented credential into a verdict. Touches only the key cache, the rate
// limiter, the usage-cap charge (capped keys only) and the in-memory usage recorder.
import { sha256Hex } from '../lib/hash.js';
import { parseKey } from '../keys/format.js';
import { ipAllowed, ipv4Allowed, ipv4ToInt, parseClientIp } from '../keys/ip.js';
import { iso } from '../keys/model.js';
import type { LimitSpec, RateDecision } from '../ratelimit/decide.js';
import { tightest } from '../ratelimit/decide.js';
import type { RateLimiter } from '../ratelimit/limiter.js';
import type { CachedKey, KeyCache, Loader } from './cache.js';
import type { VerifyCode } from './codes.js';

export interface VerifyInput {
  key?: string;
  authorization?: string;
  appId?: string;
  permissions?: readonly string[];
  resource?: string;
  ip?: string;
  cost?: number;
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
}

export interface VerifyDeps {
  cache: KeyCache;
  load: Loader;
  limiter: RateLimiter;
  charge(keyId: string, cost: number, now: number): Promise<number | null>;
  peekRemaining(keyId: string, now: number): Promise<number | null>;
  record(keyId: string, code: VerifyCode, now: number, valid: boolean): void;
  now(): number;
}

const MALFORMED: VerifyResult = Object.freeze({ valid: false, code: 'MALFORMED' }) as VerifyResult;
const NOT_FOUND: VerifyResult = Object.freeze({ valid: false, code: 'NOT_FOUND' }) as VerifyResult;

/** Pulls the bearer key out of `key` or an Authorization header value. */
export function presentedKey(input: VerifyInput): string | null {
  if (input.key !== undefined) return input.key.trim();
  const auth = input.authorization?.trim();
  if (!auth) return null;
  const space = auth.indexOf(' ');
  if (space < 0) return null;
  if (auth.slice(0, space).toLowerCase() !== 'bearer') return null;
  return auth.slice(space + 1).trim();
}

/** `*` grants everything; `docs.*` grants `docs.read` and `docs.write.all`. */
export function hasPermission(granted: readonly string[], wanted: string): boolean {
  for (const g of granted) {
    if (g === wanted || g === '*') return true;
    if (g.endsWith('*') && wanted.startsWith(g.slice(0, -1))) return true;
  }
  return false;
}

/** Empty scope = every resource; `*.example.com` matches subdomains; a trailing `*` matches a prefix. */
export function resourceAllowed(scope: readonly string[], resource: string): boolean {
  if (scope.length === 0) return true;
  const r = resource.toLowerCase();
  for (const s of scope) {
    const p = s.toLowerCase();
    if (p === r || p === '*') return true;
    if (p.startsWith('*.') && r.endsWith(p.slice(1))) return true;
    if (p.endsWith('*') && r.startsWith(p.slice(0, -1))) return true;
  }
  return false;
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

function limitSpecs(key: CachedKey): LimitSpec[] {
  const specs: LimitSpec[] = [];
  if (key.ratelimit) specs.push({ bucket: `k:${key.id}`, ...key.ratelimit });
  if (key.ownerRatelimit) specs.push({ bucket: `o:${key.appId}:${key.ownerId ?? key.id}`, ...key.ownerRatelimit });
  return specs;
}

/** Fails closed: a key with an allowlist refuses callers whose address is missing or unparsable. */
function clientAllowed(ipText: string | undefined, key: CachedKey): boolean {
  if (ipText === undefined) return false;
  const v4 = ipv4ToInt(ipText);
  if (v4 !== null) return ipv4Allowed(v4, key.ipv4Ranges);
  const ip = parseClientIp(ipText);
  return ip !== null && ipAllowed(ip, key.ipRanges ?? []);
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

function shownLimit(d: RateDecision | undefined): VerifyResult['ratelimit'] {
  return d ? { limit: d.limit, remaining: d.remaining, resetAt: resetIso(d.resetAt) } : undefined;
}

export async function verifyKey(deps: VerifyDeps, input: VerifyInput): Promise<VerifyResult> {
  const plaintext = presentedKey(input);
  if (!plaintext || !parseKey(plaintext)) return MALFORMED;
  const now = deps.now();
  const hash = sha256Hex(plaintext);
  // A cache hit stays synchronous: no promise on the hot path.
  const cached = deps.cache.peek(hash, now);
  const entry = cached !== undefined ? cached : await deps.cache.get(hash, now, deps.load);
  if (!entry || (input.appId !== undefined && entry.key.appId !== input.appId)) return NOT_FOUND;
  const key = entry.key;
  const verdict = (code: VerifyCode): VerifyResult => {
    deps.record(key.id, code, now, false);
    return described(key, code);
  };

  if (key.status === 'revoked') return verdict('REVOKED');
  if (key.status === 'disabled') return verdict('DISABLED');
  if ((key.expiresAt !== null && key.expiresAt <= now) || (entry.valueExpiresAt !== null && entry.valueExpiresAt <= now)) {
    return verdict('EXPIRED');
  }
  if (key.ipRanges !== null && !clientAllowed(input.ip, key)) return verdict('IP_NOT_ALLOWED');
  if (input.resource !== undefined && !resourceAllowed(key.resources, input.resource)) return verdict('RESOURCE_FORBIDDEN');
  if (input.permissions) {
    for (const p of input.permissions) {
      if (!hasPermission(key.permissions, p)) return verdict('INSUFFICIENT_PERMISSIONS');
    }
  }

  const specs = limitSpecs(key);
  let decisions: RateDecision[] = [];
  if (specs.length > 0) {
    const taken = deps.limiter.take(specs, now);
    decisions = Array.isArray(taken) ? taken : await taken;
  }
  const limit = tightest(decisions);
  if (limit && !limit.allowed) return { ...verdict('RATE_LIMITED'), ratelimit: shownLimit(limit) };

  let remaining: number | null = null;
  if (key.capped) {
    remaining = await deps.charge(key.id, input.cost ?? 1, now);
    if (remaining === null) {
      return { ...verdict('USAGE_EXCEEDED'), remaining: (await deps.peekRemaining(key.id, now)) ?? 0, ratelimit: shownLimit(limit) };
    }
  }

  deps.record(key.id, 'VALID', now, true);
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
  return result;
}
