// toProblem(err): what any failure answers, for the Fastify error handler and the verify fast path
// alike. Bad input is a 4xx with a stable code; the store being away a 503 with Retry-After;
// anything else a 500 that says nothing about the request.
import { AppError, FIXED_DETAIL, fieldErrorsDetail, problemBody, type ErrorCode, type FieldError, type Problem } from '../errors.js';
import { isStoreUnavailable } from '../store/db.js';
import { committedInRequest } from '../store/deadline.js';
import { fieldErrors, type AjvError } from './validation.js';

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'VALIDATION_FAILED',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'VALIDATION_FAILED',
  FST_ERR_CTP_INVALID_JSON_BODY: 'VALIDATION_FAILED',
  FST_ERR_MAX_PARAM_LENGTH: 'URI_TOO_LONG',
  FST_ERR_BAD_URL: 'VALIDATION_FAILED',
};

/** Fastify errors whose message quotes the request (a body, a path): answered with fixed words. */
const FIXED_FASTIFY_DETAIL: Record<string, string> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'The body is not valid JSON',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'This content type is not accepted here; send application/json',
  FST_ERR_CTP_BODY_TOO_LARGE: 'Request body is too large',
  FST_ERR_MAX_PARAM_LENGTH: 'A path segment is longer than 200 characters',
  FST_ERR_BAD_URL: 'The request path is malformed',
};

/** PostgreSQL: invalid byte sequence, character not in repertoire, NUL in text. */
const STORE_REFUSED_TEXT = new Set(['22021', '22P05']);

export interface ProblemAnswer {
  body: Problem;
  /** Seconds, for a Retry-After header. */
  retryAfterSec?: number;
  /** Whether the failure is ours (logged as an error) rather than the caller's. */
  internal: boolean;
}

interface ErrorLike {
  message?: string;
  code?: string;
  statusCode?: number;
  validation?: AjvError[];
  validationContext?: string;
}

export function toProblem(err: unknown, requestId: string): ProblemAnswer {
  const e = (err ?? {}) as ErrorLike;
  let code: ErrorCode;
  let detail = typeof e.message === 'string' ? e.message : '';
  let errors: FieldError[] | undefined;
  let retryAfterSec: number | undefined;
  if (err instanceof AppError) {
    code = err.code;
    errors = err.errors;
    retryAfterSec = err.retryAfterSec;
  } else if (e.validation) {
    code = 'VALIDATION_FAILED';
    errors = fieldErrors(e.validationContext ?? 'request', e.validation);
    detail = fieldErrorsDetail(errors);
  } else if (e.code && FASTIFY_CODES[e.code]) {
    code = FASTIFY_CODES[e.code]!;
    detail = FIXED_FASTIFY_DETAIL[e.code] ?? detail;
  } else if (e.code !== undefined && STORE_REFUSED_TEXT.has(e.code)) {
    // A backstop for src/http/text.ts: text the store cannot hold is the caller's error, not ours.
    code = 'VALIDATION_FAILED';
    detail = 'A text field holds characters the store cannot keep';
  } else if (isStoreUnavailable(err)) {
    // After a write of this request committed, "nothing changed" would not be true: its outcome is
    // partly known, and the retry (every such write is idempotent or under an Idempotency-Key) settles it.
    const committed = committedInRequest();
    code = committed ? 'OUTCOME_UNKNOWN' : 'SERVICE_UNAVAILABLE';
    detail = committed ? FIXED_DETAIL.committedThenUnavailable : FIXED_DETAIL.storeUnavailable;
    retryAfterSec = 1;
  } else if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    code = e.statusCode === 404 ? 'NOT_FOUND' : e.statusCode === 413 ? 'PAYLOAD_TOO_LARGE' : e.statusCode === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'VALIDATION_FAILED';
    // Fastify's own 4xx messages may quote the URL or a header: a fixed sentence instead.
    detail = code === 'VALIDATION_FAILED' ? 'The request is malformed' : detail;
  } else {
    code = 'INTERNAL';
    detail = FIXED_DETAIL.internal;
  }
  const body = problemBody(code, detail, requestId, errors);
  if (err instanceof AppError && err.extra) Object.assign(body, err.extra);
  // A store that is away (or went away during a COMMIT) is not a fault of ours to log as one.
  const storeFault = code === 'SERVICE_UNAVAILABLE' || code === 'OUTCOME_UNKNOWN';
  return { body, ...(retryAfterSec !== undefined ? { retryAfterSec } : {}), internal: body.status >= 500 && !storeFault };
}
