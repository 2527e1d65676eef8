// buildApp(deps): the Fastify instance with validation, the problem+json error handler and every
// feature plugin. It never listens; main.ts and the tests decide how it is served.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import { Ajv } from 'ajv';
import formatsPlugin from 'ajv-formats';
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Deps } from './deps.js';
import { AppError, FIXED_DETAIL, fieldErrorsDetail, ProblemSchema, problemBody, type ErrorCode, type FieldError } from './errors.js';
import { registerDocs, registerDocsUi } from './docs/plugin.js';
import { authRoutes } from './auth/routes.js';
import { workspaceRoutes } from './workspaces/routes.js';
import { appRoutes } from './apps/routes.js';
import { keyRoutes } from './keys/routes.js';
import { verifyRoutes } from './verify/routes.js';
import { auditRoutes } from './audit/routes.js';
import { systemRoutes } from './http/system.js';
import { registerConsole, wantsConsole } from './http/console.js';
import { securityHeaders } from './http/headers.js';
import { isStoreUnavailable } from './store/db.js';
import { verifyFastPath } from './verify/fastpath.js';
import { VerifyBody } from './verify/routes.js';
import { serializeVerifyResult } from './verify/serialize.js';
import { vaultRoutes } from './vault/routes.js';
import { leakRoutes } from './leaks/routes.js';
import { slashRoutes } from './integrations/slash.js';

export type App = FastifyInstance;

// ajv-formats is CommonJS with a default export; under NodeNext it arrives wrapped.
const addFormats = ((formatsPlugin as unknown as { default?: typeof formatsPlugin }).default ?? formatsPlugin) as unknown as (ajv: Ajv) => void;

function ajvFor(part: 'body' | 'other'): Ajv {
  // Bodies are taken as sent: no type coercion, no silently dropped fields, so a wrong type or an
  // unknown field is a 400. Query strings and path params arrive as text and are coerced.
  const ajv = new Ajv({
    allErrors: true,
    strict: false,
    useDefaults: true,
    removeAdditional: false,
    coerceTypes: part === 'body' ? false : 'array',
  });
  addFormats(ajv);
  return ajv;
}

interface AjvError {
  instancePath: string;
  keyword: string;
  message?: string;
  params: Record<string, unknown>;
}

function fieldErrors(context: string, errors: AjvError[]): FieldError[] {
  return errors.slice(0, 20).map((e) => {
    let path = `${context}${e.instancePath}`;
    let message = e.message ?? 'is invalid';
    if (e.keyword === 'additionalProperties') {
      path += `/${String(e.params.additionalProperty)}`;
      message = 'unknown field';
    } else if (e.keyword === 'required') {
      path += `/${String(e.params.missingProperty)}`;
      message = 'is required';
    }
    return { path, message };
  });
}

const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'VALIDATION_FAILED',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'VALIDATION_FAILED',
  FST_ERR_CTP_INVALID_JSON_BODY: 'VALIDATION_FAILED',
};

/** Unique request ids without a UUID per request: a random process prefix and a counter. */
function requestIds(): () => string {
  const prefix = `req_${randomUUID().slice(0, 8)}`;
  let n = 0;
  return () => `${prefix}${(n++).toString(36).padStart(6, '0')}`;
}

export async function buildApp(deps: Deps): Promise<App> {
  const bodyAjv = ajvFor('body');
  const otherAjv = ajvFor('other');
  const requestId = requestIds();
  let closing = false;
  const fastVerify = verifyFastPath(deps, {
    bodyLimit: deps.config.bodyLimitBytes,
    validate: bodyAjv.compile(VerifyBody),
    serialize: serializeVerifyResult,
    fieldErrors: (context, errors) => fieldErrors(context, errors as AjvError[]),
    requestId,
    isClosing: () => closing,
  });
  const app = Fastify({
    // Verify is answered before Fastify's pipeline (src/verify/fastpath.ts); all else goes through it.
    serverFactory: (handler) => http.createServer((req, res) => {
      if (!fastVerify(req, res)) handler(req, res);
    }),
    // No per-request logger at all (it costs the verify hot path measurably): the error handler
    // logs to deps.logger with the request id, and there are no access logs.
    logger: false,
    bodyLimit: deps.config.bodyLimitBytes,
    trustProxy: deps.config.trustProxy.length > 0 ? [...deps.config.trustProxy] : false,
    genReqId: requestId,
    requestIdHeader: false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
  });

  app.addHook('preClose', async () => {
    closing = true;
  });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : otherAjv).compile(schema));
  app.addSchema(ProblemSchema);

  app.setErrorHandler((err: FastifyError & Partial<AppError>, req, reply) => {
    let code: ErrorCode;
    let detail = err.message;
    let errors: FieldError[] | undefined;
    if (err instanceof AppError) {
      code = err.code;
      errors = err.errors;
      if (err.retryAfterSec !== undefined) reply.header('retry-after', String(err.retryAfterSec));
    } else if (err.validation) {
      code = 'VALIDATION_FAILED';
      errors = fieldErrors(err.validationContext ?? 'request', err.validation as AjvError[]);
      detail = fieldErrorsDetail(errors);
    } else if (err.code && FASTIFY_CODES[err.code]) {
      code = FASTIFY_CODES[err.code]!;
      // The parser's message quotes the body, which may hold a credential: never echo it.
      if ((err.code as string) === 'FST_ERR_CTP_INVALID_JSON_BODY') detail = 'The body is not valid JSON';
    } else if (isStoreUnavailable(err)) {
      code = 'SERVICE_UNAVAILABLE';
      detail = FIXED_DETAIL.storeUnavailable;
      reply.header('retry-after', '1');
    } else if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      code = err.statusCode === 404 ? 'NOT_FOUND' : err.statusCode === 413 ? 'PAYLOAD_TOO_LARGE' : err.statusCode === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'VALIDATION_FAILED';
    } else {
      code = 'INTERNAL';
      detail = FIXED_DETAIL.internal;
    }
    const body = problemBody(code, detail, String(req.id), errors);
    securityHeaders(reply);
    if (body.status >= 500) deps.logger.error({ err, requestId: req.id, method: req.method, url: req.url.split('?')[0] }, 'request failed');
    else deps.logger.debug({ code, requestId: req.id }, 'request refused');
    void reply.code(body.status).type('application/problem+json').send(JSON.stringify(body));
  });

  const consolePage = await registerConsole(app);
  app.setNotFoundHandler((req, reply) => {
    securityHeaders(reply);
    if (wantsConsole(req)) return consolePage(req, reply);
    const body = problemBody('NOT_FOUND', `No route for ${req.method} ${req.url.split('?')[0]}`, String(req.id));
    void reply.code(404).type('application/problem+json').send(JSON.stringify(body));
  });

  await registerDocs(app);
  // Verify sits outside the scope below: its JSON answers need none of the page headers, and the
  // hook that sets them measurably slows the hot path.
  await app.register(verifyRoutes(deps));
  await app.register(async (scope) => {
    scope.addHook('onSend', (_req, reply, payload, done) => {
      securityHeaders(reply);
      done(null, payload);
    });
    await registerDocsUi(scope);
    await scope.register(systemRoutes(deps));
    await scope.register(authRoutes(deps));
    await scope.register(workspaceRoutes(deps));
    await scope.register(appRoutes(deps));
    await scope.register(keyRoutes(deps));
    await scope.register(auditRoutes(deps));
    await scope.register(vaultRoutes(deps));
    await scope.register(leakRoutes(deps));
    await scope.register(slashRoutes(deps));
  });
  return app;
}
