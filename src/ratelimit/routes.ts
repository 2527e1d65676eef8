// The standalone limiter (POST /v1/ratelimit) and its namespaces' overrides, for a root key of the
// workspace whose namespaces they are (`ratelimit:limit`).
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { AppError } from '../errors.js';
import { IdOf, Page, PageQuery, setPageLinks, withErrors } from '../http/common.js';
import type { Guard } from '../auth/guard.js';
import { LimitAnswer, LimitBody, Namespace, NamespaceOverrideBody, OverrideIdentifier, OverrideView } from './schemas.js';
import { overrideView, type OverrideService, type StandaloneLimiter } from './service.js';

export interface LimiterRouteServices {
  guard: Guard;
  overrides: OverrideService;
  standalone: StandaloneLimiter;
}

/**
 * The workspace a limiter call acts in: a root key's own, or (a console session) the one named by
 * `workspaceId`. Checked through the one guard like every other route.
 */
async function workspaceOf(guard: Guard, req: FastifyRequest, named: string | undefined) {
  const principal = await guard.principal(req);
  const workspaceId = principal.kind === 'root' ? principal.workspaceId : named;
  if (workspaceId === undefined) throw new AppError('VALIDATION_FAILED', 'A session must name the workspace: workspaceId', { errors: [{ path: 'query/workspaceId', message: 'is required for a user session' }] });
  const access = await guard.workspace(req, named ?? workspaceId, 'ratelimit:limit');
  return { workspaceId: named ?? workspaceId, access };
}

export const limiterRoutes = ({ guard, overrides, standalone }: LimiterRouteServices) => async (fastify: FastifyInstance) => {
  const r = fastify.withTypeProvider<TypeBoxTypeProvider>();

  r.post('/v1/ratelimit', {
    schema: {
      tags: ['ratelimit'], summary: 'Count a request against a limit (anything that is not a key)',
      description: 'A sliding window per `identifier` within `namespace` of the root key\'s workspace, exact across nodes like key limits. An override of the namespace for the identifier replaces `limit` and `durationMs`. Answers 200 whether the request is admitted (`success`) or not. Needs a root key with `ratelimit:limit`.',
      body: LimitBody, response: withErrors({ 200: LimitAnswer }),
    },
  }, async (req) => standalone.limit(await guard.rootWorkspace(req, 'ratelimit:limit'), req.body));

  r.put('/v1/ratelimit/overrides', {
    schema: {
      tags: ['ratelimit'], summary: 'Set an override of a namespace',
      description: 'For the identifiers equal to `identifier`, or starting with it when it ends in `*` (the most specific wins). Applies on every node within a second.',
      querystring: Type.Object({ workspaceId: Type.Optional(IdOf('workspace')) }, { additionalProperties: false }),
      body: NamespaceOverrideBody, response: withErrors({ 200: OverrideView }),
    },
  }, async (req) => {
    const { workspaceId, access } = await workspaceOf(guard, req, req.query.workspaceId);
    const { namespace, ...rest } = req.body;
    return overrideView(await overrides.set(workspaceId, 'namespace', access.actor, { name: namespace, ...rest }));
  });

  r.get('/v1/ratelimit/overrides', {
    schema: {
      tags: ['ratelimit'], summary: 'List overrides of namespaces',
      querystring: Type.Object({ ...PageQuery, workspaceId: Type.Optional(IdOf('workspace')), namespace: Type.Optional(Namespace) }, { additionalProperties: false }),
      response: withErrors({ 200: Page(OverrideView) }),
    },
  }, async (req, reply) => {
    const { workspaceId } = await workspaceOf(guard, req, req.query.workspaceId);
    const { page = 1, limit = 20, namespace } = req.query;
    const { rows, total } = await overrides.list(workspaceId, 'namespace', namespace, { page, limit });
    setPageLinks(req, reply, page, limit, total);
    return { data: rows.map(overrideView), total };
  });

  r.delete('/v1/ratelimit/overrides', {
    schema: {
      tags: ['ratelimit'], summary: 'Delete an override of a namespace',
      querystring: Type.Object({ workspaceId: Type.Optional(IdOf('workspace')), namespace: Namespace, identifier: OverrideIdentifier }, { additionalProperties: false }),
      response: withErrors({ 204: Type.Null() }),
    },
  }, async (req, reply) => {
    const { workspaceId, access } = await workspaceOf(guard, req, req.query.workspaceId);
    await overrides.delete(workspaceId, 'namespace', access.actor, req.query.namespace, req.query.identifier);
    reply.code(204);
    return null;
  });
};
