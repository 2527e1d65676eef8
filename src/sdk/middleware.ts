// Verify middleware for Fastify and Express: checks the incoming request's key with Keyward and
// attaches the verdict. A tiny local cache answers repeated credentials for a few seconds, only
// where that cannot bypass a limit, and the server invalidates it through /v1/keys/changes.
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
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
  /** Life of a cached verdict; 0 turns the cache off. */
  cacheTtlMs?: number;
}

export type Verdict = VerifyResult;

const STATUS: Record<string, number> = {
  IP_NOT_ALLOWED: 403, RESOURCE_FORBIDDEN: 403, INSUFFICIENT_PERMISSIONS: 403, RATE_LIMITED: 429, USAGE_EXCEEDED: 429,
};

/** The HTTP status a refused verdict should get: 401, 403 or 429. */
export const statusFor = (v: Verdict): number => (v.valid ? 200 : STATUS[v.code] ?? 401);

/**
 * A verdict may be reused only if reusing it cannot skip a count: valid keys without rate limit
 * or usage cap, and refusals that do not depend on the time (rate limits and caps do).
 */
function cacheable(v: Verdict): boolean {
  if (v.valid) return !v.ratelimit && (v.remaining === null || v.remaining === undefined);
  return v.code !== 'RATE_LIMITED' && v.code !== 'USAGE_EXCEEDED';
}

export class KeyGuard {
  readonly client: KeywardClient;
  private readonly cache = new Map<string, { verdict: Verdict; until: number }>();
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
    if (!cred) return { valid: false, code: 'MALFORMED' };
    const id = createHash('sha256').update(`${cred}\0${ip ?? ''}\0${resource ?? ''}`).digest('base64');
    const hit = this.cache.get(id);
    if (hit && hit.until > Date.now()) return hit.verdict;
    const isAuthHeader = (this.options.header ?? 'authorization').toLowerCase() === 'authorization';
    const verdict = await this.client.verify({
      ...(isAuthHeader ? { authorization: cred } : { key: cred }),
      ...(this.options.appId ? { appId: this.options.appId } : {}),
      ...(this.options.permissions ? { permissions: this.options.permissions } : {}),
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

function refuse(verdict: Verdict) {
  const status = statusFor(verdict);
  return {
    status,
    retryAfter: verdict.ratelimit && status === 429 ? Math.max(1, Math.ceil((Date.parse(verdict.ratelimit.resetAt) - Date.now()) / 1000)) : undefined,
    body: {
      type: `https://keyward.dev/problems/${verdict.code.toLowerCase().replaceAll('_', '-')}`,
      title: status === 429 ? 'Too many requests' : status === 403 ? 'Not allowed' : 'Authentication required',
      status,
      detail: `API key refused: ${verdict.code}`,
      code: verdict.code,
    },
  };
}

declare module 'fastify' {
  interface FastifyRequest {
    keyward?: Verdict;
  }
}

export interface FastifyGuardOptions extends GuardOptions {
  /** Domain scope to check, from the request. */
  resource?: (req: FastifyRequest) => string | undefined;
}

async function keywardGuard(fastify: FastifyInstance, options: FastifyGuardOptions): Promise<void> {
  const guard = new KeyGuard(options);
  fastify.decorateRequest('keyward', undefined);
  fastify.addHook('onClose', async () => guard.close());
  fastify.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const header = req.headers[(options.header ?? 'authorization').toLowerCase()];
    const verdict = await guard.check(Array.isArray(header) ? header[0] : header, req.ip, options.resource?.(req));
    req.keyward = verdict;
    if (!verdict.valid) {
      const r = refuse(verdict);
      if (r.retryAfter) void reply.header('retry-after', String(r.retryAfter));
      return reply.code(r.status).type('application/problem+json').send(JSON.stringify(r.body));
    }
  });
}

/**
 * Fastify plugin: every request in the scope that registers it must carry an accepted key;
 * `request.keyward` holds the verdict. Marked the way fastify-plugin marks plugins (so its hook
 * applies to the registering scope), without depending on it: the SDK has no runtime dependency.
 */
export const keywardFastify: FastifyPluginAsync<FastifyGuardOptions> = Object.assign(keywardGuard, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'keyward-guard',
  [Symbol.for('plugin-meta')]: { name: 'keyward-guard', fastify: '5.x' },
});

interface ExpressLikeRequest {
  headers: Record<string, string | string[] | undefined>;
  ip?: string;
  keyward?: Verdict;
}
interface ExpressLikeResponse {
  status(code: number): ExpressLikeResponse;
  set(name: string, value: string): ExpressLikeResponse;
  type(t: string): ExpressLikeResponse;
  send(body: string): unknown;
}

export interface ExpressGuardOptions extends GuardOptions {
  resource?: (req: ExpressLikeRequest) => string | undefined;
}

/** Express middleware: `app.use(keywardExpress({ baseUrl }))`; `req.keyward` holds the verdict. */
export function keywardExpress(options: ExpressGuardOptions) {
  const guard = new KeyGuard(options);
  const middleware = (req: ExpressLikeRequest, res: ExpressLikeResponse, next: (err?: unknown) => void): void => {
    const header = req.headers[(options.header ?? 'authorization').toLowerCase()];
    guard.check(Array.isArray(header) ? header[0] : header, req.ip, options.resource?.(req)).then((verdict) => {
      req.keyward = verdict;
      if (verdict.valid) return next();
      const r = refuse(verdict);
      if (r.retryAfter) res.set('retry-after', String(r.retryAfter));
      res.status(r.status).type('application/problem+json').send(JSON.stringify(r.body));
    }, next);
  };
  return Object.assign(middleware, { guard });
}
