// A verify request body in, the HTTP answer out: JSON parse, schema check, verify, serialize, and
// the problem+json of every refusal — the same for both ways a verify request arrives without
// Fastify (src/verify/transports/fastpath.ts on node:http, src/verify/transports/wire.ts on a raw connection).
import type { ValidateFunction } from 'ajv';
import type { Logger } from 'pino';
import { ERROR_CODES, fieldErrorsDetail, problemBody, type ErrorCode, type FieldError } from '../errors.js';
import { toProblem } from '../http/problem.js';
import type { Verifier } from './engine.js';
import type { VerifyInput, VerifyResult } from './verify.js';

export interface VerifyAnswer {
  status: number;
  /** A problem+json refusal (else the verdict's JSON). */
  problem: boolean;
  body: string;
  retryAfterSec?: number | undefined;
  /** Close the connection after this answer (the request stream cannot be trusted further). */
  close: boolean;
}

export interface AnswerOptions {
  validate: ValidateFunction;
  serialize: (result: VerifyResult) => string;
  fieldErrors: (context: string, errors: NonNullable<ValidateFunction['errors']>) => FieldError[];
  requestId: () => string;
}

export interface VerifyAnswerer {
  /** The answer to a complete body (UTF-8 text) and the request's Authorization header. */
  answer(text: string, authorization: string | undefined): VerifyAnswer | Promise<VerifyAnswer>;
  /** A refusal of the contract's codes, e.g. PAYLOAD_TOO_LARGE before the body is read. */
  problem(code: ErrorCode, detail: string, close: boolean, errors?: FieldError[]): VerifyAnswer;
}

export function verifyAnswerer(verify: Verifier, logger: Logger, opts: AnswerOptions): VerifyAnswerer {
  const problem = (code: ErrorCode, detail: string, close: boolean, errors?: FieldError[]): VerifyAnswer => ({
    status: ERROR_CODES[code].status,
    problem: true,
    body: JSON.stringify(problemBody(code, detail, opts.requestId(), errors)),
    close,
  });

  /** The same mapping as the Fastify error handler: toProblem. */
  const failed = (err: unknown): VerifyAnswer => {
    const answer = toProblem(err, opts.requestId());
    if (answer.internal) logger.error({ err }, 'verify failed');
    return { status: answer.body.status, problem: true, body: JSON.stringify(answer.body), retryAfterSec: answer.retryAfterSec, close: false };
  };

  const verdict = (result: VerifyResult): VerifyAnswer => {
    try {
      return { status: 200, problem: false, body: opts.serialize(result), close: false };
    } catch (err) {
      return failed(err);
    }
  };

  return {
    problem,
    answer(text, authorization) {
      if (text.length === 0) return problem('VALIDATION_FAILED', 'The body is empty; send a JSON object', true);
      let input: unknown;
      try {
        input = JSON.parse(text);
      } catch {
        return problem('VALIDATION_FAILED', 'The body is not valid JSON', true);
      }
      if (!opts.validate(input)) {
        const errors = opts.fieldErrors('body', opts.validate.errors ?? []);
        return problem('VALIDATION_FAILED', fieldErrorsDetail(errors), false, errors);
      }
      let result: VerifyResult | Promise<VerifyResult>;
      try {
        result = verify(input as VerifyInput, authorization);
      } catch (err) {
        return failed(err);
      }
      // A cached key under the local limiter answers in this same tick; the store or Redis, later.
      return result instanceof Promise ? result.then(verdict, failed) : verdict(result);
    },
  };
}
