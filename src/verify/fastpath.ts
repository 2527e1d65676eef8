// POST /v1/keys/verify served straight from the HTTP server, ahead of Fastify's request pipeline:
// same schema, same validator, same serializer, same problem+json errors, but none of the
// per-request machinery that the management API needs and verify does not (see README, design
// notes, for the measurement). Anything unusual — another content type, a query string, a server
// that is closing — falls through to the Fastify route, which stays registered and documented.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ValidateFunction } from 'ajv';
import type { Logger } from 'pino';
import { ERROR_CODES, fieldErrorsDetail, problemBody, type ErrorCode, type FieldError } from '../errors.js';
import { WORKER } from '../http/headers.js';
import { toProblem } from '../http/problem.js';
import type { Verifier } from './routes.js';
import type { VerifyInput, VerifyResult } from './verify.js';

export interface FastPathOptions {
  bodyLimit: number;
  validate: ValidateFunction;
  serialize: (result: VerifyResult) => string;
  fieldErrors: (context: string, errors: NonNullable<ValidateFunction['errors']>) => FieldError[];
  requestId: () => string;
  isClosing: () => boolean;
}

/** Plain JSON, UTF-8 or no charset; any other media type or charset takes the Fastify route. */
const JSON_TYPE = /^application\/json\s*(;\s*charset="?utf-8"?\s*)?$/i;

export function verifyFastPath(verify: Verifier, logger: Logger, opts: FastPathOptions) {
  const okHeaders = (length: number): string[] => WORKER
    ? ['content-type', 'application/json; charset=utf-8', 'content-length', String(length), 'x-keyward-worker', WORKER]
    : ['content-type', 'application/json; charset=utf-8', 'content-length', String(length)];

  const write = (res: ServerResponse, status: number, text: string, extra: Record<string, string>) => {
    res.writeHead(status, {
      'content-type': 'application/problem+json; charset=utf-8',
      'content-length': Buffer.byteLength(text),
      'x-content-type-options': 'nosniff',
      ...extra,
    });
    res.end(text);
  };

  const problem = (res: ServerResponse, code: ErrorCode, detail: string, errors?: FieldError[], close = false) => {
    write(res, ERROR_CODES[code].status, JSON.stringify(problemBody(code, detail, opts.requestId(), errors)), close ? { connection: 'close' } : {});
  };

  /** The same mapping as the Fastify error handler: toProblem. */
  const failed = (res: ServerResponse, err: unknown) => {
    const answer = toProblem(err, opts.requestId());
    if (answer.internal) logger.error({ err }, 'verify failed');
    write(res, answer.body.status, JSON.stringify(answer.body), answer.retryAfterSec !== undefined ? { 'retry-after': String(answer.retryAfterSec) } : {});
  };

  const send = (res: ServerResponse, result: VerifyResult) => {
    let body: string;
    try {
      body = opts.serialize(result);
    } catch (err) {
      return failed(res, err);
    }
    res.writeHead(200, okHeaders(Buffer.byteLength(body)));
    res.end(body);
  };

  const answer = (res: ServerResponse, text: string, authorization: string | undefined) => {
    let input: unknown;
    try {
      input = JSON.parse(text);
    } catch {
      return problem(res, 'VALIDATION_FAILED', 'The body is not valid JSON', undefined, true);
    }
    if (!opts.validate(input)) {
      const errors = opts.fieldErrors('body', opts.validate.errors ?? []);
      return problem(res, 'VALIDATION_FAILED', fieldErrorsDetail(errors), errors);
    }
    let result: VerifyResult | Promise<VerifyResult>;
    try {
      result = verify(input as VerifyInput, authorization);
    } catch (err) {
      return failed(res, err);
    }
    // A cached key under the local limiter answers in this same tick; the store or Redis, later.
    if (result instanceof Promise) result.then((r) => send(res, r), (err: unknown) => failed(res, err));
    else send(res, result);
  };

  /** Handles the request and returns true, or returns false to let Fastify handle it. */
  return (req: IncomingMessage, res: ServerResponse): boolean => {
    if (req.method !== 'POST' || req.url !== '/v1/keys/verify' || opts.isClosing()) return false;
    const type = req.headers['content-type'];
    if (type === undefined || !JSON_TYPE.test(type) || req.headers['transfer-encoding'] !== undefined && req.headers['content-length'] !== undefined) return false;
    const declared = req.headers['content-length'] === undefined ? 0 : Number(req.headers['content-length']);
    if (declared > opts.bodyLimit) {
      problem(res, 'PAYLOAD_TOO_LARGE', 'Request body is too large', undefined, true);
      req.resume();
      return true;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let refused = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > opts.bodyLimit) {
        if (!refused) problem(res, 'PAYLOAD_TOO_LARGE', 'Request body is too large', undefined, true);
        refused = true;
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (refused) return;
      if (size === 0) return problem(res, 'VALIDATION_FAILED', 'The body is empty; send a JSON object', undefined, true);
      answer(res, chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8'), req.headers.authorization);
    });
    req.on('error', () => res.destroy());
    return true;
  };
}
