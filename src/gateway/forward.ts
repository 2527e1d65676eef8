// Gateway forward auth (contract v2, v3): nginx auth_request, Caddy forward_auth, Traefik
// ForwardAuth and Envoy ext_authz ask /v1/forward-auth before forwarding a request. The answer is
// the verify verdict as HTTP: 200 with identity headers, or 401/403/429 with a problem+json body.
// Only the gateway speaks: the original request is read from the four X-Forwarded-* headers that
// every shipped config sets itself (deploy/), and nothing else the client could have sent.
import type { IncomingHttpHeaders } from 'node:http';
import { AppError, ERROR_CODES } from '../errors.js';
import { digits } from '../lib/digits.js';
import { idPattern } from '../lib/ids.js';
import { canonicalPath, PATH_PROBLEMS } from '../lib/request-path.js';
import type { Verifier } from '../verify/engine.js';
import type { VerifyCode } from '../verify/steps.js';
import type { VerifyInput, VerifyResult } from '../verify/verify.js';

export const FORWARD_AUTH_PATH = '/v1/forward-auth';
/** Longest forwarded URI read (path and query); longer is 414. */
export const MAX_FORWARDED_URI = 8192;

/** What a verdict becomes for a gateway. */
const STATUS: Partial<Record<VerifyCode, number>> = {
  IP_NOT_ALLOWED: 403, RESOURCE_FORBIDDEN: 403, INSUFFICIENT_PERMISSIONS: 403,
  RATE_LIMITED: 429, USAGE_EXCEEDED: 429,
};
const TITLES: Record<number, string> = { 401: 'Authentication required', 403: 'Not allowed', 429: 'Too many requests' };

export interface ForwardRequest {
  url: string;
  headers: IncomingHttpHeaders;
  remoteAddress: string | undefined;
}

export interface ForwardAnswer {
  status: number;
  /** Flat name, value, name, value … as `writeHead` takes them: no header object per answer. */
  headers: string[];
  body: string;
}

const APP_ID = new RegExp(idPattern('app'));
const MAX_PERMISSIONS = 50;

const header = (h: IncomingHttpHeaders, name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

/**
 * The right-most X-Forwarded-For entry that is not a trusted proxy, else (every hop trusted: a
 * request from inside) the first entry. Nothing when the gateway itself is not trusted.
 */
function clientAddress(req: ForwardRequest, trusted: (a: string | undefined) => boolean): string | undefined {
  if (!trusted(req.remoteAddress)) return undefined;
  const xff = header(req.headers, 'x-forwarded-for');
  // One address (a single gateway in front): no list to build.
  if (xff !== undefined && !xff.includes(',')) {
    const only = xff.trim();
    if (only !== '' && !trusted(only)) return only;
  }
  const chain = (xff ?? '').split(',').map((s) => s.trim()).filter(Boolean);
  for (let i = chain.length - 1; i >= 0; i--) if (!trusted(chain[i])) return chain[i];
  return chain[0];
}

function problem(status: number, code: string, detail: string, requestId: string, extra: string[] = [], title = TITLES[status] ?? 'Refused'): ForwardAnswer {
  const body = JSON.stringify({ type: `https://keyward.dev/problems/${code.toLowerCase().replaceAll('_', '-')}`, title, status, detail, code, requestId });
  return { status, headers: ['content-type', 'application/problem+json; charset=utf-8', 'x-keyward-code', code, ...extra], body };
}

const WWW_AUTHENTICATE = ['www-authenticate', 'Bearer realm="keyward"'];

function badQuery(path: string, message: string): never {
  throw new AppError('VALIDATION_FAILED', `${path}: ${message}`, { errors: [{ path, message }] });
}

/** What a forward-auth URL asks for: the same few URLs come from a gateway again and again. */
interface QueryAsk {
  appId?: string;
  permissions?: readonly string[];
  cost: number;
}

const parsedQueries = new Map<string, QueryAsk>();
const MAX_PARSED_QUERIES = 1000;
const ONE_UNIT: QueryAsk = Object.freeze({ cost: 1 });

/**
 * `/v1/forward-auth?appId=…&permissions=…&cost=…`, or `/v1/forward-auth/{appId}/…` for gateways
 * that append the client's path and query to the URL they call (Envoy): then all after the app id
 * is the client's and is never read, so the path form takes no options.
 */
function parseAsk(url: string): QueryAsk {
  if (url.charCodeAt(FORWARD_AUTH_PATH.length) === 47) {
    const from = FORWARD_AUTH_PATH.length + 1;
    let to = from;
    while (to < url.length && url.charCodeAt(to) !== 47 && url.charCodeAt(to) !== 63) to++;
    // Remembered by the app's own URL: the client's path after it differs on every request.
    const own = url.slice(0, to);
    const known = parsedQueries.get(own);
    if (known !== undefined) return known;
    const appId = url.slice(from, to);
    if (!APP_ID.test(appId)) badQuery('path/appId', 'is not an app id');
    return remember(own, Object.freeze({ appId, cost: 1 }));
  }
  const known = parsedQueries.get(url);
  if (known !== undefined) return known;
  const q = url.indexOf('?');
  if (q === -1) return ONE_UNIT;
  const query = new URLSearchParams(url.slice(q + 1));
  const parsed: QueryAsk = { cost: 1 };
  const appId = query.get('appId');
  if (appId !== null) {
    if (!APP_ID.test(appId)) badQuery('query/appId', 'is not an app id');
    parsed.appId = appId;
  }
  const permissions = query.get('permissions');
  if (permissions) {
    const list = permissions.split(',').map((p) => p.trim()).filter(Boolean);
    if (list.length > MAX_PERMISSIONS || list.some((p) => p.length > 128)) badQuery('query/permissions', `must be at most ${MAX_PERMISSIONS} comma-separated permissions`);
    parsed.permissions = Object.freeze(list);
  }
  const cost = query.get('cost');
  if (cost !== null) {
    if (!/^\d{1,7}$/.test(cost) || Number(cost) > 1_000_000) badQuery('query/cost', 'must be a whole number from 0 to 1000000');
    parsed.cost = Number(cost);
  }
  return remember(url, Object.freeze(parsed));
}

function remember(url: string, ask: QueryAsk): QueryAsk {
  if (parsedQueries.size >= MAX_PARSED_QUERIES) parsedQueries.clear();
  parsedQueries.set(url, ask);
  return ask;
}

/** Methods arrive upper-case from every gateway: no new string then. */
const upper = (m: string): string => (m === 'GET' || m === 'POST' || m === 'PUT' || m === 'DELETE' || m === 'PATCH' || m === 'HEAD' ? m : m.toUpperCase());
const METHOD = /^[A-Za-z][A-Za-z_-]{0,31}$/;

/**
 * The last host of X-Forwarded-Host (the one the gateway next to Keyward set), without its port.
 * The shipped configs send exactly one.
 */
function lastHost(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let host = value;
  const comma = host.lastIndexOf(',');
  if (comma !== -1) host = host.slice(comma + 1);
  host = host.trim();
  if (host.includes(':')) host = host.replace(/:\d+$/, '');
  return host;
}

/**
 * The original request, from the headers the gateway sets (never X-Original-*: a config that lets
 * the client's own header through must not be able to steer the rules). Without them, 400: a
 * config that does not send them would otherwise skip every rule.
 */
function forwardedOf(headers: IncomingHttpHeaders): { method: string; path: string } {
  const method = header(headers, 'x-forwarded-method');
  const uri = header(headers, 'x-forwarded-uri');
  if (method === undefined || uri === undefined) throw new AppError('MISSING_FORWARDED_REQUEST', 'The gateway must send X-Forwarded-Method and X-Forwarded-Uri with the original request\'s method and URI');
  if (!METHOD.test(method)) badQuery('header/x-forwarded-method', 'is not an HTTP method');
  if (uri.length > MAX_FORWARDED_URI) throw new AppError('URI_TOO_LONG', `The forwarded URI is longer than ${MAX_FORWARDED_URI} characters`);
  const read = canonicalPath(uri);
  if (!read.ok) throw new AppError('MALFORMED_PATH', `The forwarded path is refused: ${PATH_PROBLEMS[read.problem]}`);
  return { method: upper(method), path: read.path };
}

/** The verify input a forwarded request stands for; throws a 400 for a bad URL or forwarded request. */
function inputOf(req: ForwardRequest, trusted: (a: string | undefined) => boolean): { input: VerifyInput; rootKey: string | undefined } | null {
  const ask = parseAsk(req.url);
  const forwarded = forwardedOf(req.headers);
  const input: VerifyInput = { cost: ask.cost, forwarded };
  if (ask.appId !== undefined) input.appId = ask.appId;
  if (ask.permissions !== undefined) input.permissions = ask.permissions;
  const authorization = header(req.headers, 'authorization')?.trim();
  const apiKey = header(req.headers, 'x-api-key')?.trim();
  if (authorization) input.authorization = authorization.slice(0, 8192);
  else if (apiKey) input.key = apiKey.slice(0, 512);
  else return null;
  const host = lastHost(header(req.headers, 'x-forwarded-host'));
  if (host) input.resource = host.slice(0, 253);
  const ip = clientAddress(req, trusted);
  if (ip !== undefined) input.ip = ip;
  const rootKey = header(req.headers, 'x-keyward-root-key')?.trim();
  return { input, rootKey: rootKey ? `Bearer ${rootKey}` : undefined };
}

/** A window's end comes as ISO text; the same few ends repeat (one per window), so parse each once. */
let lastResetIso = '';
let lastResetMs = 0;
function resetMs(iso: string): number {
  if (iso !== lastResetIso) {
    lastResetMs = Date.parse(iso);
    lastResetIso = iso;
  }
  return lastResetMs;
}

/** The RateLimit headers of a limited key's answer, added to `headers` (no array of their own). */
function pushRateHeaders(headers: string[], limit: NonNullable<VerifyResult['ratelimit']>, reset: number): void {
  headers.push('ratelimit-limit', String(limit.limit), 'ratelimit-remaining', digits(limit.remaining), 'ratelimit-reset', String(reset));
}

/**
 * The limit the RateLimit headers describe: the one closest to exhaustion (the refusing one first),
 * of the key and owner limits and the named limits checked.
 */
function closestLimit(verdict: VerifyResult): VerifyResult['ratelimit'] {
  const named = verdict.ratelimits;
  if (named === undefined || named.length === 0) return verdict.ratelimit;
  let best = verdict.ratelimit;
  let bestExceeded = best !== undefined && verdict.code === 'RATE_LIMITED' && !named.some((n) => n.exceeded);
  for (const n of named) {
    if (best === undefined || (n.exceeded && !bestExceeded) || (n.exceeded === bestExceeded && n.remaining < best.remaining)) {
      best = n;
      bestExceeded = n.exceeded;
    }
  }
  return best;
}

function answerFor(verdict: VerifyResult, now: number, requestId: string): ForwardAnswer {
  const limit = closestLimit(verdict);
  const reset = limit ? Math.max(0, Math.ceil((resetMs(limit.resetAt) - now) / 1000)) : 0;
  if (verdict.valid) {
    const headers = ['x-keyward-code', 'VALID', 'x-keyward-key-id', verdict.keyId ?? '', 'x-keyward-owner-id', verdict.ownerId ?? '', 'x-keyward-environment', verdict.environment ?? ''];
    if (limit) pushRateHeaders(headers, limit, reset);
    return { status: 200, headers, body: '' };
  }
  const status = STATUS[verdict.code] ?? 401;
  const extra: string[] = [];
  if (limit) pushRateHeaders(extra, limit, reset);
  if (status === 401) extra.push(...WWW_AUTHENTICATE);
  if (verdict.code === 'RATE_LIMITED') extra.push('retry-after', reset > 0 ? String(reset) : '1');
  return problem(status, verdict.code, `The key was refused: ${verdict.code}`, requestId, extra);
}

/** The gateway's answer: synchronous when verify is (a cached key under the local limiter). */
export function forwardAuth(verify: Verifier, trusted: (a: string | undefined) => boolean, req: ForwardRequest, requestId: string, now: number): ForwardAnswer | Promise<ForwardAnswer> {
  const failed = (err: unknown): ForwardAnswer => {
    if (!(err instanceof AppError) || ERROR_CODES[err.code].status >= 500) throw err;
    return problem(ERROR_CODES[err.code].status, err.code, err.message, requestId, err.code === 'UNAUTHORIZED' ? WWW_AUTHENTICATE : [], ERROR_CODES[err.code].title);
  };
  try {
    const parsed = inputOf(req, trusted);
    if (parsed === null) return problem(401, 'MISSING_KEY', 'Send the key as "Authorization: Bearer <key>" (or Basic, or a JWT) or "X-API-Key: <key>"', requestId, WWW_AUTHENTICATE);
    const verdict = verify(parsed.input, parsed.rootKey);
    return verdict instanceof Promise ? verdict.then((v) => answerFor(v, now, requestId), failed) : answerFor(verdict, now, requestId);
  } catch (err) {
    return failed(err);
  }
}
