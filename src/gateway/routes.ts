// /v1/forward-auth over HTTP: served ahead of Fastify's pipeline like verify (every request a
// gateway forwards waits on it), and registered as a Fastify route too, for the docs and inject().
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { toProblem } from '../http/problem.js';
import { withErrors } from '../http/common.js';
import type { Verifier } from '../verify/engine.js';
import { FORWARD_AUTH_PATH, forwardAuth, type ForwardAnswer, type ForwardRequest } from './forward.js';
import { GATEWAY_METHODS } from '../apps/gateway-rules.js';

export interface ForwardAuthServices {
  verify: Verifier;
  trusted: (address: string | undefined) => boolean;
  now: () => number;
  logger: Logger;
}

function settle(s: ForwardAuthServices, req: ForwardRequest, requestId: string, send: (a: ForwardAnswer) => void): void {
  const fail = (err: unknown) => {
    const answer = toProblem(err, requestId);
    if (answer.internal) s.logger.error({ err }, 'forward auth failed');
    send({
      status: answer.body.status,
      headers: ['content-type', 'application/problem+json; charset=utf-8', 'x-keyward-code', answer.body.code, ...(answer.retryAfterSec !== undefined ? ['retry-after', String(answer.retryAfterSec)] : [])],
      body: JSON.stringify(answer.body),
    });
  };
  let answer: ForwardAnswer | Promise<ForwardAnswer>;
  try {
    answer = forwardAuth(s.verify, s.trusted, req, requestId, s.now());
  } catch (err) {
    return fail(err);
  }
  if (answer instanceof Promise) answer.then(send, fail);
  else send(answer);
}

/** Handles /v1/forward-auth (any method) and returns true, or returns false to let Fastify route it. */
export function forwardAuthFastPath(s: ForwardAuthServices, requestId: () => string, isClosing: () => boolean) {
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    const url = req.url ?? '';
    if (!url.startsWith(FORWARD_AUTH_PATH) || (url.length > FORWARD_AUTH_PATH.length && url[FORWARD_AUTH_PATH.length] !== '?' && url[FORWARD_AUTH_PATH.length] !== '/') || isClosing()) return false;
    // Gateways send no body (or one we do not read): drain it so the connection can be reused.
    req.resume();
    settle(s, { url, headers: req.headers, remoteAddress: req.socket.remoteAddress }, requestId(), (a) => {
      a.headers.push('content-length', a.body === '' ? '0' : String(Buffer.byteLength(a.body)), 'cache-control', 'no-store');
      res.writeHead(a.status, a.headers);
      res.end(a.body);
    });
    return true;
  };
}

const DESCRIPTION = 'The key comes from `Authorization` (Bearer, Basic, JWT) or `X-API-Key`; the original request only from `X-Forwarded-Method` and `X-Forwarded-Uri` (both required: 400 `MISSING_FORWARDED_REQUEST` without them) and `X-Forwarded-Host`; the client address from `X-Forwarded-For` only when the gateway is in KEYWARD_TRUST_PROXY. ' +
  'The forwarded path is read as routers read it: unreserved percent-escapes decoded, case ignored; forms routers disagree on (dot segments, `//`, `;`, encoded `/` or `\\`, `\\`, NUL, bad escapes) are 400 `MALFORMED_PATH`, a URI over 8 KB is 414. ' +
  '200 with `X-Keyward-Code`, `X-Keyward-Key-Id`, `X-Keyward-Owner-Id`, `X-Keyward-Environment` and `RateLimit-*`; 401 (with `WWW-Authenticate`), 403 or 429 (with `Retry-After`) and a problem+json body whose `code` is the verdict. ' +
  'Every gateway rule of the app matching the method and path adds its permissions.';

const handle = (s: ForwardAuthServices) => (req: FastifyRequest, reply: FastifyReply) => {
  settle(s, { url: req.url, headers: req.headers, remoteAddress: req.socket.remoteAddress }, String(req.id), (a) => {
    const headers: Record<string, string> = { 'cache-control': 'no-store' };
    for (let i = 0; i < a.headers.length; i += 2) headers[a.headers[i]!] = a.headers[i + 1]!;
    void reply.code(a.status).headers(headers).send(a.body);
  });
  return reply;
};

export const forwardAuthRoutes = (s: ForwardAuthServices) => async (fastify: FastifyInstance) => {
  fastify.route({
    method: [...GATEWAY_METHODS],
    url: FORWARD_AUTH_PATH,
    schema: {
      tags: ['gateway'], summary: 'Forward auth for nginx, Caddy and Traefik', description: `${DESCRIPTION} \`appId\` is required unless a root key with \`keys:verify\` is sent in \`X-Keyward-Root-Key\`.`,
      security: [],
      querystring: Type.Object({
        appId: Type.Optional(Type.String({ description: 'The app whose keys are accepted' })),
        permissions: Type.Optional(Type.String({ description: 'Comma-separated permissions every request needs', examples: ['documents.read'] })),
        cost: Type.Optional(Type.String({ description: 'Charged against the usage cap (default 1)' })),
      }),
      response: withErrors({ 200: Type.Null({ description: 'Accepted: identity in the X-Keyward-* headers' }) }),
    },
    handler: handle(s),
  });
  // Gateways that append the client's path and query to the URL they call (Envoy ext_authz) name
  // the app in the path: whatever follows it is the client's and is never read.
  for (const url of [`${FORWARD_AUTH_PATH}/:appId`, `${FORWARD_AUTH_PATH}/:appId/*`]) {
    fastify.route({
      method: [...GATEWAY_METHODS],
      url,
      schema: {
        tags: ['gateway'], summary: 'Forward auth with the app in the path (Envoy ext_authz)',
        description: `${DESCRIPTION} The path form takes no options: the gateway appends the client's path and query after the app id, and Keyward reads none of it (cost 1; permissions come from the app's gateway rules).`,
        security: [],
        params: Type.Object({ appId: Type.String({ description: 'The app whose keys are accepted' }) }, { additionalProperties: true }),
        response: withErrors({ 200: Type.Null({ description: 'Accepted: identity in the X-Keyward-* headers' }) }),
      },
      handler: handle(s),
    });
  }
};
