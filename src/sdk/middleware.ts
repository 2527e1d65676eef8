// Verify middleware: the framework-free guard and the Express middleware (Fastify's plugin is in
// fastify.ts, the only file that needs Fastify's types). Checks the incoming request's key with
// Keyward and attaches the verdict. A tiny local cache answers repeated credentials for a few
// seconds, only where that cannot bypass a limit, and the server invalidates it through /v1/keys/changes.
import { createHash } from 'node:crypto';
import { KeywardClient, type VerifyResult } from './client.js';

export interface GuardOptions {
  /** Where Keyward runs, e.g. http://127.0.0.1:8787 (or pass `client`). */
  baseUrl?: string;
  client?: KeywardClient;
  /**
   * A root key: with `keys:verify` it lets the guard verify any key of its workspace (else give
   * `appId`); with `keys:read` the guard also subscribes to key changes.
   */
  rootKey?: string;
  /** Header carrying the credential: `authorization` (Bearer, Basic, JWT) or e.g. `x-api-key`. */
  header?: string;
  /** Accept only keys of this app; required unless `rootKey` has `keys:verify`. */
  appId?: string;
  permissions?: string[];
  /** Named limits every request is counted against (the key's and its identity's), with their costs. */
  ratelimits?: { name: string; cost?: number }[];
  /** Life of a cached verdict; 0 turns the cache off. */
  cacheTtlMs?: number;
}

/**
 * Keyward's verdict, or `MISSING_KEY` for a request that carried no credential at all (refused
 * before Keyward is asked, named as forward auth names it).
 */
export type Verdict = Omit<VerifyResult, 'code'> & { code: VerifyResult['code'] | 'MISSING_KEY' };

const STATUS: Record<string, number> = {
  IP_NOT_ALLOWED: 403, RESOURCE_FORBIDDEN: 403, INSUFFICIENT_PERMISSIONS: 403, RATE_LIMITED: 429, USAGE_EXCEEDED: 429,
};

/** The HTTP status a refused verdict should get: 401, 403 or 429. */
export const statusFor = (v: Verdict): number => (v.valid ? 200 : STATUS[v.code] ?? 401);

/**
 * A verdict may be reused only if reusing it cannot skip a count: valid keys without rate limit
 * or usage cap, and refusals that do not depend on the time (rate limits and caps do).
 */
function cacheable(v: VerifyResult): boolean {
  if (v.valid) return !v.ratelimit && !v.ratelimits?.length && (v.remaining === null || v.remaining === undefined);
  return v.code !== 'RATE_LIMITED' && v.code !== 'USAGE_EXCEEDED';
}

export class KeyGuard {
  readonly client: KeywardClient;
  private readonly cache = new Map<string, { verdict: VerifyResult; until: number }>();
  private readonly ttl: number;
  private stream: AbortController | undefined;
  private closed = false;

  constructor(private readonly options: GuardOptions) {
    if (!options.appId && !options.rootKey && !options.client) throw new Error('KeyGuard needs an appId, or a root key with the "keys:verify" permission');
    this.client = options.client ?? new KeywardClient({ baseUrl: options.baseUrl ?? 'http://127.0.0.1:8787', rootKey: options.rootKey });
    this.ttl = options.cacheTtlMs ?? 5000;
    if (this.ttl > 0 && options.rootKey) void this.subscribe(options.baseUrl ?? 'http://127.0.0.1:8787', options.rootKey);
  }

  /** Verifies a raw header value for a caller address; resource is optional domain scope. */
  async check(headerValue: string | undefined, ip?: string, resource?: string): Promise<Verdict> {
    const cred = headerValue?.trim();
    if (!cred) return { valid: false, code: 'MISSING_KEY' };
    const id = createHash('sha256').update(`${cred}\0${ip ?? ''}\0${resource ?? ''}`).digest('base64');
    const hit = this.cache.get(id);
    if (hit && hit.until > Date.now()) return hit.verdict;
    const isAuthHeader = (this.options.header ?? 'authorization').toLowerCase() === 'authorization';
    const verdict = await this.client.verify({
      ...(isAuthHeader ? { authorization: cred } : { key: cred }),
      ...(this.options.appId ? { appId: this.options.appId } : {}),
      ...(this.options.permissions ? { permissions: this.options.permissions } : {}),
      ...(this.options.ratelimits ? { ratelimits: this.options.ratelimits } : {}),
      ...(ip ? { ip } : {}),
      ...(resource ? { resource } : {}),
    });
    if (this.ttl > 0 && cacheable(verdict)) {
      if (this.cache.size >= 10_000) this.cache.clear();
      this.cache.set(id, { verdict, until: Date.now() + this.ttl });
    }
    return verdict;
  }

  /** Drops cached verdicts of one key (or all). */
  invalidate(keyId?: string): void {
    if (!keyId) return this.cache.clear();
    for (const [id, entry] of this.cache) if (entry.verdict.keyId === keyId) this.cache.delete(id);
  }

  /** Drops cached verdicts of every key of one app. */
  invalidateApp(appId: string): void {
    for (const [id, entry] of this.cache) if (entry.verdict.appId === appId) this.cache.delete(id);
  }

  get cached(): number {
    return this.cache.size;
  }

  private async subscribe(baseUrl: string, rootKey: string): Promise<void> {
    let delay = 500;
    while (!this.closed) {
      this.stream = new AbortController();
      try {
        const res = await fetch(`${baseUrl.replace(/\/+$/, '')}/v1/keys/changes`, { headers: { authorization: `Bearer ${rootKey}` }, signal: this.stream.signal });
        if (!res.ok || !res.body) throw new Error(`change stream answered ${res.status}`);
        // Changes may have been missed while disconnected.
        this.invalidate();
        delay = 500;
        let buffer = '';
        const decoder = new TextDecoder();
        for await (const chunk of res.body) {
          buffer += decoder.decode(chunk as Uint8Array, { stream: true });
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const event = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = event.split('\n').find((l) => l.startsWith('data: '));
            if (!data) continue;
            // key.changed names a key; app.changed an app all of whose keys changed (it was deleted).
            const change = JSON.parse(data.slice(6)) as { keyId?: string; appId?: string };
            if (change.appId !== undefined) this.invalidateApp(change.appId);
            else this.invalidate(change.keyId);
          }
        }
      } catch {
        if (this.closed) return;
      }
      this.invalidate();
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  }

  close(): void {
    this.closed = true;
    this.stream?.abort();
  }
}

/** The answer to a refused request: status, headers and a problem+json body like forward auth's. */
export function refusal(verdict: Verdict, header = 'authorization') {
  const status = statusFor(verdict);
  const headers: Record<string, string> = {};
  // The refusing limit's window: a named one's, else the key's or owner's.
  const refusing = 'ratelimits' in verdict ? verdict.ratelimits?.find((l) => l.exceeded) ?? verdict.ratelimit : 'ratelimit' in verdict ? verdict.ratelimit : undefined;
  if (refusing && status === 429) headers['retry-after'] = String(Math.max(1, Math.ceil((Date.parse(refusing.resetAt) - Date.now()) / 1000)));
  if (status === 401) headers['www-authenticate'] = 'Bearer realm="keyward"';
  const missing = verdict.code === 'MISSING_KEY';
  return {
    status,
    headers,
    body: JSON.stringify({
      type: `https://keyward.dev/problems/${verdict.code.toLowerCase().replaceAll('_', '-')}`,
      title: status === 429 ? 'Too many requests' : status === 403 ? 'Not allowed' : 'Authentication required',
      status,
      detail: missing ? (header.toLowerCase() === 'authorization' ? 'Send the key as "Authorization: Bearer <key>" (or Basic, or a JWT)' : `Send the key in the "${header}" header`) : `API key refused: ${verdict.code}`,
      code: verdict.code,
    }),
  };
}

/** The parts of an Express request the middleware reads (Express's own Request has them). */
export interface ExpressLikeRequest {
  headers: Record<string, string | string[] | undefined>;
  ip?: string | undefined;
  keyward?: Verdict | undefined;
}
/** The parts of an Express response the middleware uses. */
export interface ExpressLikeResponse {
  status(code: number): ExpressLikeResponse;
  set(name: string, value: string): ExpressLikeResponse;
  type(t: string): ExpressLikeResponse;
  send(body: unknown): unknown;
}

export interface ExpressGuardOptions extends GuardOptions {
  resource?: (req: ExpressLikeRequest) => string | undefined;
}

// `req.keyward` in an Express app. Express's types declare Request in this global namespace; without
// them the declaration stands alone and harms nothing, so no Express (or its types) is needed here.
declare global {
  namespace Express {
    interface Request {
      /** The verdict on the request's key, set by keywardExpress. */
      keyward?: Verdict | undefined;
    }
  }
}

/** Express middleware: `app.use(keywardExpress({ baseUrl }))`; `req.keyward` holds the verdict. */
export function keywardExpress(options: ExpressGuardOptions) {
  const guard = new KeyGuard(options);
  const header = (options.header ?? 'authorization').toLowerCase();
  const middleware = (req: ExpressLikeRequest, res: ExpressLikeResponse, next: (err?: unknown) => void): void => {
    const value = req.headers[header];
    guard.check(Array.isArray(value) ? value[0] : value, req.ip, options.resource?.(req)).then((verdict) => {
      req.keyward = verdict;
      if (verdict.valid) return next();
      const r = refusal(verdict, header);
      for (const [name, v] of Object.entries(r.headers)) res.set(name, v);
      res.status(r.status).type('application/problem+json').send(r.body);
    }, next);
  };
  return Object.assign(middleware, { guard });
}
