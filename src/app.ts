// buildApp(services): the Fastify instance with validation, the problem+json error handler and every
// feature plugin. It never listens; server.ts and the tests decide how it is served.
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { ProblemSchema, problemBody } from './errors.js';
import { registerDocs, registerDocsUi } from './docs/plugin.js';
import { authRoutes } from './auth/routes.js';
import type { AuthService } from './auth/service.js';
import type { Guard } from './auth/guard.js';
import type { StreamSlots } from './auth/streams.js';
import { workspaceRoutes } from './workspaces/routes.js';
import type { WorkspaceService } from './workspaces/service.js';
import type { InvitationService } from './workspaces/invitations.js';
import { appRoutes } from './apps/routes.js';
import type { AppService } from './apps/service.js';
import { keyRoutes } from './keys/routes.js';
import type { KeyService } from './keys/service.js';
import { keyChangesRoute } from './keys/changes.js';
import { importRoutes } from './imports/routes.js';
import type { ImportService } from './imports/service.js';
import { usageRoute } from './usage/routes.js';
import type { UsageService } from './usage/service.js';
import { verifyRoutes, VerifyBody } from './verify/routes.js';
import type { VerifyEngine } from './verify/engine.js';
import { attachVerifyTransports, type VerifyTransports } from './verify/transports/index.js';
import { verifyAnswerer } from './verify/answer.js';
import { forwardAuthFastPath, forwardAuthRoutes, type ForwardAuthServices } from './gateway/routes.js';
import { FORWARD_AUTH_PATH } from './gateway/forward.js';
import { AccessLog, type ObserveRequest } from './http/access-log.js';
import { trustedProxies } from './lib/trust-proxy.js';
import { serializeVerifyResult } from './verify/serialize.js';
import { auditRoutes } from './audit/routes.js';
import { systemRoutes, type SystemRouteServices } from './http/system.js';
import { registerConsole, wantsConsole } from './http/console.js';
import { noStore, securityHeaders } from './http/headers.js';
import { toProblem } from './http/problem.js';
import type { Idempotency } from './http/idempotency.js';
import { checkRequestText } from './http/text.js';
import { ajvFor, fieldErrors, type AjvError } from './http/validation.js';
import { vaultRoutes } from './vault/routes.js';
import type { VaultService } from './vault/service.js';
import { leakRoutes } from './leaks/routes.js';
import type { LeakService } from './leaks/service.js';
import { slashRoutes } from './integrations/slash.js';
import { webhookRoutes } from './webhooks/routes.js';
import { identityRoutes } from './identities/routes.js';
import type { IdentityService } from './identities/service.js';
import { limiterRoutes } from './ratelimit/routes.js';
import type { OverrideService, StandaloneLimiter } from './ratelimit/service.js';
import type { WebhookService } from './webhooks/service.js';
import type { Clock } from './lib/clock.js';
import type { InvalidationBus } from './shared/bus.js';
import type { ReplayGuard } from './shared/replay.js';
import type { AuditRepo } from './store/repos/audit.js';
import { beginStoreBudget } from './store/deadline.js';

export type App = FastifyInstance;

/** Everything the HTTP layer uses, built in deps.ts; each route module takes only its part. */
export interface AppServices {
  logger: Logger;
  clock: Clock;
  http: { bodyLimitBytes: number; trustProxy: readonly string[]; streamRecheckMs: number; streamsPerSession: number; streamsPerRootKey: number; verifyWire: boolean; verifySharedReads: boolean; publicUrl?: string | undefined; storeTimeoutMs: number };
  auth: AuthService;
  guard: Guard;
  /** Open change streams per session or root key. */
  streams: StreamSlots;
  idempotency: Idempotency;
  workspaces: WorkspaceService;
  invitations: InvitationService;
  apps: AppService;
  keys: KeyService;
  imports: ImportService;
  usage: UsageService;
  vault: VaultService;
  webhooks: WebhookService;
  identities: IdentityService;
  overrides: OverrideService;
  standalone: StandaloneLimiter;
  audit: Pick<AuditRepo, 'list'>;
  leaks: LeakService;
  leakPublicKeys: readonly { id: string; pem: string }[];
  bus: InvalidationBus;
  replay: ReplayGuard;
  slash: { signingSecret: string | undefined; appId: string | undefined };
  /** The verify engine: POST /v1/keys/verify (every transport) and forward auth. */
  verify: VerifyEngine;
  system: SystemRouteServices;
  /** Every management request's duration, for /metrics (verify and forward auth are counted by verdict instead). */
  observeRequest?: ObserveRequest;
}

/** Unique request ids without a UUID per request: a random process prefix and a counter. */
function requestIds(): () => string {
  const prefix = `req_${randomUUID().slice(0, 8)}`;
  let n = 0;
  return () => `${prefix}${(n++).toString(36).padStart(6, '0')}`;
}

export async function buildApp(s: AppServices): Promise<App> {
  const bodyAjv = ajvFor('body');
  const otherAjv = ajvFor('other');
  const requestId = requestIds();
  let closing = false;
  const answerer = verifyAnswerer(s.verify.verify, s.logger, {
    validate: bodyAjv.compile(VerifyBody),
    serialize: serializeVerifyResult,
    fieldErrors: (context, errors) => fieldErrors(context, errors as AjvError[]),
    requestId,
  });
  let transports: VerifyTransports | undefined;
  // One reading of KEYWARD_TRUST_PROXY for every route: Fastify's request.ip (login throttling,
  // audit) and forward auth's client address ask the same predicate.
  const trusted = trustedProxies(s.http.trustProxy);
  const forward: ForwardAuthServices = { verify: s.verify.verify, trusted, now: () => s.clock.now(), logger: s.logger };
  const fastForward = forwardAuthFastPath(forward, requestId, () => closing);
  /** Every failure's answer: problem+json, the page-safe headers, never stored. */
  const sendProblem = (err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const answer = toProblem(err, String(req.id));
    if (answer.retryAfterSec !== undefined) reply.header('retry-after', String(answer.retryAfterSec));
    securityHeaders(reply);
    noStore(reply);
    if (answer.internal) s.logger.error({ err, requestId: req.id, method: req.method, url: req.url.split('?')[0] }, 'request failed');
    else s.logger.debug({ code: answer.body.code, requestId: req.id }, 'request refused');
    void reply.code(answer.body.status).type('application/problem+json').send(JSON.stringify(answer.body));
  };
  const app = Fastify({
    // Verify and forward auth are answered before Fastify's pipeline (src/verify/transports/fastpath.ts,
    // src/gateway/routes.ts); all else goes through it.
    serverFactory: (handler) => {
      const server = http.createServer((req, res) => {
        if (!verifyAhead.handle(req, res) && !fastForward(req, res)) handler(req, res);
      });
      const verifyAhead = (transports = attachVerifyTransports(server, answerer, { bodyLimit: s.http.bodyLimitBytes, isClosing: () => closing, wire: s.http.verifyWire, sharedReads: s.http.verifySharedReads }));
      return server;
    },
    // Verify and forward auth never meet this logger (their fast paths answer first, and their
    // Fastify routes write no access line), nor does the standalone limiter (called as often as
    // verify; counted in /metrics); every other request writes one (src/http/access-log.ts).
    loggerInstance: s.logger as FastifyBaseLogger,
    logController: new AccessLog((route) => route === '/v1/keys/verify' || route === '/v1/ratelimit' || (route !== undefined && route.startsWith(FORWARD_AUTH_PATH)), s.observeRequest),
    bodyLimit: s.http.bodyLimitBytes,
    trustProxy: s.http.trustProxy.length > 0 ? (address: string) => trusted(address) : false,
    genReqId: requestId,
    requestIdHeader: false,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    // What the router refuses before any route (a path parameter over 200 characters, a bad
    // percent-encoding) is answered like every other failure, never with Fastify's own JSON.
    frameworkErrors: sendProblem,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
  });

  app.addHook('preClose', async () => {
    closing = true;
    transports?.stop();
  });
  // Text no store keeps faithfully, and absurd nesting, are refused before validation (src/http/text.ts).
  // Verify stores no text, and its fast path answers it alike without this walk.
  app.addHook('preValidation', (req, _reply, done) => {
    if (req.routeOptions.url === '/v1/keys/verify') return done();
    try {
      if (req.body !== undefined) checkRequestText(req.body, 'body');
      if (req.query !== undefined) checkRequestText(req.query, 'query');
      done();
    } catch (err) {
      done(err as Error);
    }
  });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : otherAjv).compile(schema));
  app.addSchema(ProblemSchema);

  app.setErrorHandler(sendProblem);

  const consolePage = await registerConsole(app);
  app.setNotFoundHandler((req, reply) => {
    securityHeaders(reply);
    if (wantsConsole(req)) return consolePage(req, reply);
    const body = problemBody('NOT_FOUND', 'No route for this method and path', String(req.id));
    noStore(reply);
    void reply.code(404).type('application/problem+json').send(JSON.stringify(body));
  });

  await registerDocs(app, { publicUrl: s.http.publicUrl });
  // Verify sits outside the scope below: its JSON answers need none of the page headers, and the
  // hook that sets them measurably slows the hot path.
  await app.register(verifyRoutes({ answerer }));
  await app.register(forwardAuthRoutes(forward));
  await app.register(async (scope) => {
    scope.addHook('onSend', (req, reply, payload, done) => {
      securityHeaders(reply);
      if (req.url.startsWith('/v1/') || req.headers.authorization !== undefined || req.headers['x-session-token'] !== undefined) noStore(reply);
      done(null, payload);
    });
    // One budget for everything a management request waits for in the store (KEYWARD_STORE_TIMEOUT_MS),
    // however many statements it runs; it ends with the answer. The change stream lives on, and
    // its periodic checks take their own bounds.
    scope.addHook('preHandler', (req, reply, done) => {
      if (req.routeOptions.url === '/v1/keys/changes') return done();
      const end = beginStoreBudget(s.http.storeTimeoutMs, done);
      reply.raw.once('close', end);
    });
    await registerDocsUi(scope, consolePage);
    await scope.register(systemRoutes(s.system));
    await scope.register(authRoutes(s));
    await scope.register(workspaceRoutes(s));
    await scope.register(appRoutes(s));
    await scope.register(keyRoutes(s));
    await scope.register(importRoutes(s));
    await scope.register(usageRoute(s));
    await scope.register(keyChangesRoute({ ...s, streamRecheckMs: s.http.streamRecheckMs, streamLimits: { session: s.http.streamsPerSession, rootKey: s.http.streamsPerRootKey } }));
    await scope.register(auditRoutes(s));
    await scope.register(vaultRoutes(s));
    await scope.register(webhookRoutes(s));
    await scope.register(identityRoutes(s));
    await scope.register(limiterRoutes(s));
    await scope.register(leakRoutes({ leaks: s.leaks, publicKeys: s.leakPublicKeys }));
    await scope.register(slashRoutes({ ...s, signingSecret: s.slash.signingSecret, appId: s.slash.appId }));
  });
  return app;
}
