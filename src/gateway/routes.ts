// /v1/forward-auth over HTTP: served ahead of Fastify's pipeline like verify (every request a
// gateway forwards waits on it), and registered as a Fastify route too, for the docs and inject().
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { toProblem } from '../http/problem.js';
import { withErrors } from '../http/common.js';
import type { Verifier } from '../verify/routes.js';
import { FORWARD_AUTH_PATH, forwardAuth, type ForwardAnswer, type ForwardRequest } from './forward.js';
import { GATEWAY_METHODS } from './rules.js';

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
    if (!url.startsWith(FORWARD_AUTH_PATH) || (url.length > FORWARD_AUTH_PATH.length && url[FORWARD_AUTH_PATH.length] !== '?') || isClosing()) return false;
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

export const forwardAuthRoutes = (s: ForwardAuthServices) => async (fastify: FastifyInstance) => {
  fastify.route({
    method: [...GATEWAY_METHODS],
    url: FORWARD_AUTH_PATH,
    schema: {
      tags: ['gateway'], summary: 'Forward auth for nginx, Caddy, Traefik and Envoy',
      description: 'The key comes from `Authorization` (Bearer, Basic, JWT) or `X-API-Key`; the original request from `X-Forwarded-Method`/`X-Original-Method`, `X-Forwarded-Uri`/`X-Original-URI` and `X-Forwarded-Host`; the client address from `X-Forwarded-For`/`X-Real-IP` only when the gateway is in KEYWARD_TRUST_PROXY. ' +
        '200 with `X-Keyward-Code`, `X-Keyward-Key-Id`, `X-Keyward-Owner-Id`, `X-Keyward-Environment` and `RateLimit-*`; 401 (with `WWW-Authenticate`), 403 or 429 (with `Retry-After`) and a problem+json body whose `code` is the verdict. ' +
        '`appId` is required unless a root key with `keys:verify` is sent in `X-Keyward-Root-Key`; the app\'s `gatewayRules` add permissions by method and path.',
      security: [],
      querystring: Type.Object({
        appId: Type.Optional(Type.String({ description: 'The app whose keys are accepted' })),
        permissions: Type.Optional(Type.String({ description: 'Comma-separated permissions every request needs', examples: ['documents.read'] })),
        cost: Type.Optional(Type.String({ description: 'Charged against the usage cap (default 1)' })),
      }),
      response: withErrors({ 200: Type.Null({ description: 'Accepted: identity in the X-Keyward-* headers' }) }),
    },
    handler: (req, reply) => {
      settle(s, { url: req.url, headers: req.headers, remoteAddress: req.socket.remoteAddress }, String(req.id), (a) => {
        const headers: Record<string, string> = { 'cache-control': 'no-store' };
        for (let i = 0; i < a.headers.length; i += 2) headers[a.headers[i]!] = a.headers[i + 1]!;
        void reply.code(a.status).headers(headers).send(a.body);
      });
      return reply;
    },
  });
};
