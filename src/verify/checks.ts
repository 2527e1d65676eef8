// The key checks of verify, in order: each a named predicate with the verdict it gives. A new
// check is one entry here (and a new verdict one in steps.ts; a test holds the two in the same
// order). A check that a node's configuration sets reads it from the verify policy below, which
// config.ts builds from the environment and the engine hands to every check.
import { ipAllowed, ipv4Allowed, ipv4ToInt, parseClientIp } from '../lib/ip.js';
import type { CacheEntry, CachedKey } from './cache.js';
import type { VerifyCode } from './steps.js';
import { permissionsFor } from '../apps/gateway-rules.js';

/** What a check may look at; the input fields it needs are the ones verify was called with. */
export interface CheckInput {
  permissions?: readonly string[] | undefined;
  resource?: string | undefined;
  ip?: string | undefined;
  /** A forwarded request (gateway forward auth): the app's gateway rules may add permissions. */
  forwarded?: { method: string; path: string } | undefined;
}

/** What the node's configuration asks of every verify (Config['verifyPolicy']). */
export interface VerifyPolicy {
  /** Longest accepted age of an integration JWT (from its iat), in seconds. */
  readonly jwtMaxAgeSec: number;
  /** How far in the future an integration JWT's iat may be (clock skew), in seconds. */
  readonly jwtLeewaySec: number;
  /** Keys older than this (from their creation) answer EXPIRED; null = no limit (KEYWARD_MAX_KEY_AGE_DAYS). */
  readonly maxKeyAgeMs: number | null;
}

export interface KeyCheck {
  code: VerifyCode;
  /** True when the key fails: verify answers with `code` and stops. */
  fails(key: CachedKey, found: CacheEntry, input: CheckInput, now: number, policy: VerifyPolicy): boolean;
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

/** Fails closed: a key with an allowlist refuses callers whose address is missing or unparsable. */
function clientAllowed(ipText: string | undefined, key: CachedKey): boolean {
  if (ipText === undefined) return false;
  const v4 = ipv4ToInt(ipText);
  if (v4 !== null) return ipv4Allowed(v4, key.ipv4Ranges);
  const ip = parseClientIp(ipText);
  return ip !== null && ipAllowed(ip, key.ipRanges ?? []);
}

function lacksPermission(key: CachedKey, wanted: readonly string[] | undefined): boolean {
  if (!wanted) return false;
  for (const p of wanted) if (!hasPermission(key.permissions, p)) return true;
  return false;
}

export const KEY_CHECKS: readonly KeyCheck[] = [
  { code: 'REVOKED', fails: (key) => key.status === 'revoked' },
  { code: 'DISABLED', fails: (key) => key.status === 'disabled' },
  {
    code: 'EXPIRED',
    fails: (key, found, _input, now, policy) => (key.expiresAt !== null && key.expiresAt <= now) || (found.valueExpiresAt !== null && found.valueExpiresAt <= now)
      || (policy.maxKeyAgeMs !== null && key.createdAt + policy.maxKeyAgeMs <= now),
  },
  { code: 'IP_NOT_ALLOWED', fails: (key, _found, input) => key.ipRanges !== null && !clientAllowed(input.ip, key) },
  { code: 'RESOURCE_FORBIDDEN', fails: (key, _found, input) => input.resource !== undefined && !resourceAllowed(key.resources, input.resource) },
  {
    code: 'INSUFFICIENT_PERMISSIONS',
    fails: (key, _found, input) => lacksPermission(key, input.permissions)
      || (input.forwarded !== undefined && lacksPermission(key, permissionsFor(key.gatewayRules, input.forwarded.method, input.forwarded.path) ?? undefined)),
  },
];
