// Apps: list, create, read, change, delete (which revokes every key of the app).
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { IdOf, withErrors } from '../http/common.js';
import type { Guard } from '../auth/guard.js';
import type { Idempotency } from '../http/idempotency.js';
import { AppDefaultsSchema, AppView, ImportKeysSetting, KeyPrefix, appView } from './model.js';
import { GatewayRulesSchema } from './schemas.js';
import type { AppService } from './service.js';

const AppParams = Type.Object({ appId: IdOf('app') });

export interface AppRouteServices {
  apps: AppService;
  guard: Guard;
  idempotency: Idempotency;
}

export const appRoutes = ({ apps, guard, idempotency }: AppRouteServices) => async (fastify: FastifyInstance) => {
  const r = fastify.withTypeProvider<TypeBoxTypeProvider>();

  r.get('/v1/apps', {
    schema: {
      tags: ['apps'], summary: 'Apps of a workspace',
      querystring: Type.Object({ workspaceId: IdOf('workspace') }, { additionalProperties: false }),
      response: withErrors({ 200: Type.Object({ data: Type.Array(AppView) }) }),
    },
  }, async (req) => {
    await guard.workspace(req, req.query.workspaceId, 'apps:read');
    return { data: (await apps.list(req.query.workspaceId)).map(appView) };
  });

  r.post('/v1/apps', {
    schema: {
      tags: ['apps'], summary: 'Create an app',
      body: Type.Object({
        workspaceId: IdOf('workspace'),
        name: Type.String({ minLength: 1, maxLength: 100, examples: ['Acme API'] }),
        keyPrefix: Type.Optional(KeyPrefix),
        defaults: Type.Optional(AppDefaultsSchema),
        gatewayRules: Type.Optional(GatewayRulesSchema),
        importKeys: Type.Optional(ImportKeysSetting),
      }, { additionalProperties: false }),
      response: withErrors({ 201: AppView }),
    },
  }, async (req, reply) => {
    const access = await guard.workspace(req, req.body.workspaceId, 'apps:write');
    const row = await idempotency.run(req, (claim) => apps.create(req.body.workspaceId, access.actor, req.body, claim));
    reply.code(201);
    return appView(row);
  });

  r.get('/v1/apps/:appId', {
    schema: { tags: ['apps'], summary: 'Read an app', params: AppParams, response: withErrors({ 200: AppView }) },
  }, async (req) => appView((await guard.app(req, req.params.appId, 'apps:read')).target));

  r.patch('/v1/apps/:appId', {
    schema: {
      tags: ['apps'], summary: 'Rename an app, change its defaults (keys created afterwards) or its gateway rules (at once, on every node)', params: AppParams,
      body: Type.Object({ name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })), keyPrefix: Type.Optional(KeyPrefix), defaults: Type.Optional(AppDefaultsSchema), gatewayRules: Type.Optional(GatewayRulesSchema), importKeys: Type.Optional(ImportKeysSetting) }, { additionalProperties: false, minProperties: 1 }),
      response: withErrors({ 200: AppView }),
    },
  }, async (req) => {
    const { target, access } = await guard.app(req, req.params.appId, 'apps:write');
    return appView(await apps.update(target, access.actor, req.body));
  });

  r.delete('/v1/apps/:appId', {
    schema: { tags: ['apps'], summary: 'Delete an app and revoke all of its keys (deleting it again answers the same)', params: AppParams, response: withErrors({ 204: Type.Null() }) },
  }, async (req, reply) => {
    const { target, access } = await guard.appToDelete(req, req.params.appId);
    await apps.delete(target, access.actor);
    return reply.code(204).send();
  });
};
