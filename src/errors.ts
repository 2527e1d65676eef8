// One table of error codes, one problem+json envelope (RFC 9457), shared by handlers, OpenAPI and tests.
import { Type, type Static } from '@sinclair/typebox';

export const ERROR_CODES = {
  VALIDATION_FAILED: { status: 400, title: 'Request validation failed' },
  UNAUTHORIZED: { status: 401, title: 'Authentication required' },
  FORBIDDEN: { status: 403, title: 'Not allowed' },
  NOT_FOUND: { status: 404, title: 'Not found' },
  VERIFY_SCOPE_REQUIRED: { status: 400, title: 'Verify needs a scope: appId or a verify root key' },
  CONFLICT: { status: 409, title: 'Conflict with the current state' },
  PREFIX_TAKEN: { status: 409, title: 'This key prefix is taken' },
  ALREADY_CREATED: { status: 409, title: 'Already created with this Idempotency-Key' },
  IDEMPOTENCY_KEY_REUSED: { status: 422, title: 'Idempotency-Key reused with another request' },
  IMPORT_NOT_ENABLED: { status: 409, title: 'This app does not accept imported keys' },
  PAYLOAD_TOO_LARGE: { status: 413, title: 'Request body too large' },
  MISSING_FORWARDED_REQUEST: { status: 400, title: 'The gateway did not send the original method and URI' },
  MALFORMED_PATH: { status: 400, title: 'The forwarded path has a form routers read differently' },
  URI_TOO_LONG: { status: 414, title: 'URI too long' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, title: 'Unsupported media type' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  INTERNAL: { status: 500, title: 'Internal error' },
  SERVICE_UNAVAILABLE: { status: 503, title: 'Service unavailable' },
  OUTCOME_UNKNOWN: { status: 503, title: 'The outcome of this write is not known yet' },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface FieldError {
  path: string;
  message: string;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly errors: FieldError[] | undefined;
  readonly retryAfterSec: number | undefined;
  /** Fields the problem body carries beside the standard ones (e.g. `id` of ALREADY_CREATED). */
  readonly extra: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, detail?: string, opts: { errors?: FieldError[]; retryAfterSec?: number; extra?: Record<string, unknown> } = {}) {
    super(detail ?? ERROR_CODES[code].title);
    this.code = code;
    this.status = ERROR_CODES[code].status;
    this.errors = opts.errors;
    this.retryAfterSec = opts.retryAfterSec;
    this.extra = opts.extra;
  }
}

/** Wording of answers that must not depend on (or echo) the request. */
export const FIXED_DETAIL = {
  storeUnavailable: 'The store is unavailable; nothing was changed. Try again shortly.',
  committedThenUnavailable: 'The store stopped answering after part of this request was committed. Retry the same request (with the same Idempotency-Key for a create): the retry settles it.',
  outcomeUnknown: 'The store stopped answering while this change was being committed, and whether it was could not be learned in time. Retry the same request (with the same Idempotency-Key for a create): the retry settles it.',
  internal: 'An internal error occurred; it has been logged with this request id.',
} as const;

/** One line naming every invalid field, for a problem's `detail`. */
export const fieldErrorsDetail = (errors: FieldError[]): string => errors.map((e) => `${e.path}: ${e.message}`).join('; ');

export const notFound = (what: string): AppError => new AppError('NOT_FOUND', `${what} not found`);
export const forbidden = (detail: string): AppError => new AppError('FORBIDDEN', detail);
export const conflict = (detail: string): AppError => new AppError('CONFLICT', detail);
export const invalid = (path: string, message: string): AppError =>
  new AppError('VALIDATION_FAILED', `${path}: ${message}`, { errors: [{ path, message }] });

export const ProblemSchema = Type.Object(
  {
    type: Type.String({ description: 'URI naming the problem type', examples: ['https://keyward.dev/problems/not-found'] }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String(),
    code: Type.Union(Object.keys(ERROR_CODES).map((c) => Type.Literal(c))),
    requestId: Type.String(),
    errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
    id: Type.Optional(Type.String({ description: 'ALREADY_CREATED: the id of what the first request created' })),
  },
  { $id: 'Problem', description: 'RFC 9457 problem details' },
);
export type Problem = Static<typeof ProblemSchema>;

export function problemBody(code: ErrorCode, detail: string, requestId: string, errors?: FieldError[]): Problem {
  const body: Problem = {
    type: `https://keyward.dev/problems/${code.toLowerCase().replaceAll('_', '-')}`,
    title: ERROR_CODES[code].title,
    status: ERROR_CODES[code].status,
    detail,
    code,
    requestId,
  };
  if (errors && errors.length > 0) body.errors = errors;
  return body;
}
