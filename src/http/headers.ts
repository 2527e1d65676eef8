// Response headers that protect browsers: nosniff and no referrer everywhere, CSP and framing
// rules on pages (console, docs).
import cluster from 'node:cluster';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** No inline script anywhere; inline styles only (the docs renderer sets style attributes). */
export const CSP = [
  "default-src 'self'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:", "font-src 'self' data:",
  "connect-src 'self'", "object-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'",
].join('; ');

/** In cluster mode, which worker answered: useful when chasing a problem on one of them. */
export const WORKER = cluster.isWorker ? String(cluster.worker?.id ?? '') : undefined;

export function pageHeaders(reply: FastifyReply): void {
  reply.header('content-security-policy', CSP);
  reply.header('x-frame-options', 'DENY');
  reply.header('cross-origin-opener-policy', 'same-origin');
}

/**
 * API answers are never stored by a browser or a shared cache: they carry tokens, secrets, or
 * what one credential may read (RFC 9111 would let a cache keep a GET's answer otherwise).
 */
export function noStore(reply: FastifyReply): void {
  if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
}

export function securityHeaders(reply: FastifyReply): void {
  if (WORKER) reply.header('x-keyward-worker', WORKER);
  reply.header('x-content-type-options', 'nosniff');
  reply.header('referrer-policy', 'no-referrer');
  const type = reply.getHeader('content-type');
  if (typeof type === 'string' && type.startsWith('text/html')) pageHeaders(reply);
}

/** The credential of a management request: `Authorization: Bearer …`, else the console's X-Session-Token. */
export function bearerToken(req: FastifyRequest): string | null {
  const header = req.headers.authorization;
  if (typeof header === 'string') {
    const space = header.indexOf(' ');
    if (space > 0 && header.slice(0, space).toLowerCase() === 'bearer') return header.slice(space + 1).trim() || null;
  }
  const session = req.headers['x-session-token'];
  return typeof session === 'string' && session.length > 0 ? session : null;
}
