// Identity routes and the workspace's overrides of named limits.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { IdOf, Page, PageQuery, setPageLinks, withErrors } from '../http/common.js';
import type { Guard } from '../auth/guard.js';
import type { Idempotency } from '../http/idempotency.js';
import type { KeyService } from '../keys/service.js';
import { KeyView } from '../keys/schemas.js';
import { LimitName, OverrideIdentifier, OverrideView, WorkspaceOverrideBody } from '../ratelimit/schemas.js';
import { overrideView, type OverrideService } from '../ratelimit/service.js';
import { CreateIdentityBody, DeleteIdentityQuery, IdentityView, ListIdentitiesQuery, PatchIdentityBody } from './schemas.js';
import { identityView, type IdentityService } from './service.js';

const WorkspaceParams = Type.Object({ id: IdOf('workspace') });
const IdentityParams = Type.Object({ identityId: IdOf('identity') });

export interface IdentityRouteServices {
  identities: IdentityService;
  overrides: OverrideService;
  keys: KeyService;
  guard: Guard;
  idempotency: Idempotency;
}

export const identityRoutes = ({ identities, overrides, keys, guard, idempotency }: IdentityRouteServices) => async (fastify: FastifyInstance) => {
  const r = fastify.withTypeProvider<TypeBoxTypeProvider>();

  r.post('/v1/workspaces/:id/identities', {
    schema: {
      tags: ['identities'], summary: 'Create an identity',
      description: 'Keys whose `ownerId` is this `externalId` (in any app of the workspace) share its `meta` and named limits. A key with a new owner creates its identity by itself; this creates one ahead, with limits. 409 if the workspace has one with this externalId.',
      params: WorkspaceParams, body: CreateIdentityBody, response: withErrors({ 201: IdentityView }),
    },
  }, async (req, reply) => {
    const access = await guard.workspace(req, req.params.id, 'identities:write');
    const row = await idempotency.run(req, (claim) => identities.create(req.params.id, access.actor, req.body, claim));
    reply.code(201);
    return identityView(row);
  });

  r.get('/v1/workspaces/:id/identities', {
    schema: { tags: ['identities'], summary: 'List identities (paginated, by externalId)', params: WorkspaceParams, querystring: ListIdentitiesQuery, response: withErrors({ 200: Page(IdentityView) }) },
  }, async (req, reply) => {
    await guard.workspace(req, req.params.id, 'identities:read');
    const { page = 1, limit = 20, q } = req.query;
    const { rows, total } = await identities.list(req.params.id, q, { page, limit });
    setPageLinks(req, reply, page, limit, total);
    return { data: rows.map(identityView), total };
  });

  r.get('/v1/identities/:identityId', {
    schema: { tags: ['identities'], summary: 'Read an identity', params: IdentityParams, response: withErrors({ 200: IdentityView }) },
  }, async (req) => identityView((await guard.identity(req, req.params.identityId, 'identities:read')).target));

  r.get('/v1/identities/:identityId/keys', {
    schema: {
      tags: ['identities'], summary: 'Keys of an identity (every app of the workspace, newest first)',
      params: IdentityParams, querystring: Type.Object(PageQuery, { additionalProperties: false }), response: withErrors({ 200: Page(KeyView) }),
    },
  }, async (req, reply) => {
    const { target } = await guard.identity(req, req.params.identityId, 'keys:read');
    const { page = 1, limit = 20 } = req.query;
    const { rows, total } = await keys.listByOwner(target.workspace_id, target.external_id, { page, limit });
    setPageLinks(req, reply, page, limit, total);
    return { data: rows, total };
  });

  r.patch('/v1/identities/:identityId', {
    schema: {
      tags: ['identities'], summary: 'Change an identity\'s meta or named limits',
      description: 'Applies to every key of the identity on every node within a second.',
      params: IdentityParams, body: PatchIdentityBody, response: withErrors({ 200: IdentityView }),
    },
  }, async (req) => {
    const { target, access } = await guard.identity(req, req.params.identityId, 'identities:write');
    return identityView(await identities.update(target, access.actor, req.body));
  });

  r.delete('/v1/identities/:identityId', {
    schema: {
      tags: ['identities'], summary: 'Delete an identity',
      description: '409 while keys that are not revoked name it as their owner, unless `force=true`: then they keep verifying, without the identity\'s limits and meta, until an identity with this externalId is created again.',
      params: IdentityParams, querystring: DeleteIdentityQuery, response: withErrors({ 204: Type.Null() }),
    },
  }, async (req, reply) => {
    const { target, access } = await guard.identity(req, req.params.identityId, 'identities:write');
    await identities.delete(target, access.actor, req.query.force === true);
    reply.code(204);
    return null;
  });

  r.put('/v1/workspaces/:id/ratelimit-overrides', {
    schema: {
      tags: ['identities'], summary: 'Set an override of a named limit',
      description: 'Replaces `limit` and `durationMs` of the named limit `name` for the identities whose externalId (or keys whose id) is `identifier`, or starts with it when it ends in `*`. The most specific override wins: an exact one, then the longest prefix. Applies on every node within a second.',
      params: WorkspaceParams, body: WorkspaceOverrideBody, response: withErrors({ 200: OverrideView }),
    },
  }, async (req) => {
    const access = await guard.workspace(req, req.params.id, 'identities:write');
    return overrideView(await overrides.set(req.params.id, 'limit', access.actor, req.body));
  });

  r.get('/v1/workspaces/:id/ratelimit-overrides', {
    schema: {
      tags: ['identities'], summary: 'List overrides of named limits', params: WorkspaceParams,
      querystring: Type.Object({ ...PageQuery, name: Type.Optional(LimitName) }, { additionalProperties: false }), response: withErrors({ 200: Page(OverrideView) }),
    },
  }, async (req, reply) => {
    await guard.workspace(req, req.params.id, 'identities:read');
    const { page = 1, limit = 20, name } = req.query;
    const { rows, total } = await overrides.list(req.params.id, 'limit', name, { page, limit });
    setPageLinks(req, reply, page, limit, total);
    return { data: rows.map(overrideView), total };
  });

  r.delete('/v1/workspaces/:id/ratelimit-overrides', {
    schema: {
      tags: ['identities'], summary: 'Delete an override of a named limit', params: WorkspaceParams,
      querystring: Type.Object({ name: LimitName, identifier: OverrideIdentifier }, { additionalProperties: false }), response: withErrors({ 204: Type.Null() }),
    },
  }, async (req, reply) => {
    const access = await guard.workspace(req, req.params.id, 'identities:write');
    await overrides.delete(req.params.id, 'limit', access.actor, req.query.name, req.query.identifier);
    reply.code(204);
    return null;
  });
};
