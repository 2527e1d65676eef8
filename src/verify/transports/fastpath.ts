// POST /v1/keys/verify served straight from the HTTP server, ahead of Fastify's request pipeline:
// same schema, same validator, same serializer, same problem+json errors, but none of the
// per-request machinery that the management API needs and verify does not (see
// docs/design/verify-path.md for the measurement). Anything unusual — another content type, a query string, a server
// that is closing — falls through to the Fastify route, which stays registered and documented.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WORKER } from '../../http/headers.js';
import type { VerifyAnswer, VerifyAnswerer } from '../answer.js';

export interface FastPathOptions {
  bodyLimit: number;
  isClosing: () => boolean;
}

/**
 * Plain JSON, UTF-8 or no charset; any other media type or charset takes the Fastify route. The
 * whitespace is HTTP's (space and tab): `\s` would also take NBSP and the other Unicode spaces.
 */
export const JSON_TYPE = /^application\/json[ \t]*(?:;[ \t]*charset=(?:utf-8|"utf-8")[ \t]*)?$/i;

/** The response headers of an answer, as the flat name/value list writeHead takes. */
export function answerHeaders(a: VerifyAnswer): string[] {
  const headers = ['content-type', a.problem ? 'application/problem+json; charset=utf-8' : 'application/json; charset=utf-8', 'content-length', String(Buffer.byteLength(a.body))];
  if (WORKER) headers.push('x-keyward-worker', WORKER);
  if (a.problem) headers.push('x-content-type-options', 'nosniff');
  if (a.retryAfterSec !== undefined) headers.push('retry-after', String(a.retryAfterSec));
  if (a.close) headers.push('connection', 'close');
  return headers;
}

export function verifyFastPath(answerer: VerifyAnswerer, opts: FastPathOptions) {
  const write = (res: ServerResponse, a: VerifyAnswer) => {
    res.writeHead(a.status, answerHeaders(a));
    res.end(a.body);
  };

  const answer = (res: ServerResponse, text: string, authorization: string | undefined) => {
    const a = answerer.answer(text, authorization);
    if (a instanceof Promise) void a.then((x) => write(res, x));
    else write(res, a);
  };

  /** Handles the request and returns true, or returns false to let Fastify handle it. */
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'POST' || req.url !== '/v1/keys/verify' || opts.isClosing()) return false;
    const type = req.headers['content-type'];
    if (type === undefined || !JSON_TYPE.test(type) || req.headers['transfer-encoding'] !== undefined && req.headers['content-length'] !== undefined) return false;
    const declared = req.headers['content-length'] === undefined ? 0 : Number(req.headers['content-length']);
    if (declared > opts.bodyLimit) {
      write(res, answerer.problem('PAYLOAD_TOO_LARGE', 'Request body is too large', true));
      req.resume();
      return true;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > opts.bodyLimit) {
        if (!refused) write(res, answerer.problem('PAYLOAD_TOO_LARGE', 'Request body is too large', true));
        refused = true;
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (refused) return;
      answer(res, chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'), req.headers.authorization);
    });
    req.on('error', () => res.destroy());
    return true;
  };
}
