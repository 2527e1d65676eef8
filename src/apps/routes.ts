// Apps: list, create, read, change, delete (which revokes every key of the app).
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Deps } from '../deps.js';
import { invalid, notFound } from '../errors.js';
import { newId } from '../lib/random.js';
import { recordAudit } from '../audit/audit.js';
import { IdOf, withErrors } from '../http/common.js';
import { authorize, requireAccess, ROOT_KEY_PREFIX } from '../auth/principal.js';
import { AppDefaultsSchema, AppView, DEFAULTS, KeyPrefix, appDefaults, appView, prefixFromName } from './model.js';

const AppParams = Type.Object({ appId: IdOf('app') });

export async function loadApp(deps: Deps, appId: string) {
  const app = await deps.store.db.selectFrom('apps').selectAll().where('id', '=', appId).where('deleted_at', 'is', null).executeTakeFirst();
  if (!app) throw notFound('App');
  return app;
}

export const appRoutes = (deps: Deps) => async (fastify: FastifyInstance) => {
  const r = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const db = deps.store.db;

  r.get('/v1/apps', {
    schema: {
      tags: ['apps'], summary: 'Apps of a workspace',
      querystring: Type.Object({ workspaceId: IdOf('workspace') }, { additionalProperties: false }),
      response: withErrors({ 200: Type.Object({ data: Type.Array(AppView) }) }),
    },
  }, async (req) => {
    const p = await authorize(deps, req, 'apps:read');
    await requireAccess(deps, req, p, req.query.workspaceId, 'apps:read');
    const rows = await db.selectFrom('apps').selectAll().where('workspace_id', '=', req.query.workspaceId)
      .where('deleted_at', 'is', null).orderBy('created_at').execute();
    return { data: rows.map(appView) };
  });

  r.post('/v1/apps', {
    schema: {
      tags: ['apps'], summary: 'Create an app',
      body: Type.Object({
        workspaceId: IdOf('workspace'),
        name: Type.String({ minLength: 1, maxLength: 100, examples: ['Acme API'] }),
        keyPrefix: Type.Optional(KeyPrefix),
        defaults: Type.Optional(AppDefaultsSchema),
      }, { additionalProperties: false }),
      response: withErrors({ 201: AppView }),
    },
  }, async (req, reply) => {
    const p = await authorize(deps, req, 'apps:write');
    const access = await requireAccess(deps, req, p, req.body.workspaceId, 'apps:write');
    const prefix = req.body.keyPrefix ?? prefixFromName(req.body.name);
    if (prefix === ROOT_KEY_PREFIX) throw invalid('body/keyPrefix', `"${ROOT_KEY_PREFIX}" is reserved for root keys`);
    const now = deps.clock.now();
    const row = {
      id: newId('app'), workspace_id: req.body.workspaceId, name: req.body.name, key_prefix: prefix,
      defaults: JSON.stringify({ ...DEFAULTS, ...req.body.defaults }), created_at: now, updated_at: now, deleted_at: null,
    };
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('apps').values(row).execute();
      await recordAudit(trx, access.actor, { workspaceId: row.workspace_id, action: 'app.create', targetType: 'app', targetId: row.id, meta: { name: row.name } }, now);
    });
    reply.code(201);
    return appView(row);
  });

  r.get('/v1/apps/:appId', {
    schema: { tags: ['apps'], summary: 'Read an app', params: AppParams, response: withErrors({ 200: AppView }) },
  }, async (req) => {
    const p = await authorize(deps, req, 'apps:read');
    const app = await loadApp(deps, req.params.appId);
    await requireAccess(deps, req, p, app.workspace_id, 'apps:read', 'App');
    return appView(app);
  });

  r.patch('/v1/apps/:appId', {
    schema: {
      tags: ['apps'], summary: 'Rename an app or change its defaults (affects keys created afterwards)', params: AppParams,
      body: Type.Object({ name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })), keyPrefix: Type.Optional(KeyPrefix), defaults: Type.Optional(AppDefaultsSchema) }, { additionalProperties: false, minProperties: 1 }),
      response: withErrors({ 200: AppView }),
    },
  }, async (req) => {
    const p = await authorize(deps, req, 'apps:write');
    const app = await loadApp(deps, req.params.appId);
    const access = await requireAccess(deps, req, p, app.workspace_id, 'apps:write', 'App');
    if (req.body.keyPrefix === ROOT_KEY_PREFIX) throw invalid('body/keyPrefix', `"${ROOT_KEY_PREFIX}" is reserved for root keys`);
    const now = deps.clock.now();
    const next = {
      ...app,
      name: req.body.name ?? app.name,
      key_prefix: req.body.keyPrefix ?? app.key_prefix,
      defaults: JSON.stringify({ ...appDefaults(app), ...req.body.defaults }),
      updated_at: now,
    };
    await db.transaction().execute(async (trx) => {
      await trx.updateTable('apps').set({ name: next.name, key_prefix: next.key_prefix, defaults: next.defaults, updated_at: now }).where('id', '=', app.id).execute();
      await recordAudit(trx, access.actor, { workspaceId: app.workspace_id, action: 'app.update', targetType: 'app', targetId: app.id, meta: { changes: Object.keys(req.body) } }, now);
    });
    return appView(next);
  });

  r.delete('/v1/apps/:appId', {
    schema: { tags: ['apps'], summary: 'Delete an app and revoke all of its keys', params: AppParams, response: withErrors({ 204: Type.Null() }) },
  }, async (req, reply) => {
    const p = await authorize(deps, req, 'apps:write');
    const app = await loadApp(deps, req.params.appId);
    const access = await requireAccess(deps, req, p, app.workspace_id, 'apps:write', 'App');
    const now = deps.clock.now();
    const revoked = await db.transaction().execute(async (trx) => {
      const ids = (await trx.selectFrom('keys').select('id').where('app_id', '=', app.id).where('status', '!=', 'revoked').execute()).map((k) => k.id);
      await trx.updateTable('keys').set({ status: 'revoked', revoked_at: now, updated_at: now }).where('app_id', '=', app.id).where('status', '!=', 'revoked').execute();
      await trx.updateTable('apps').set({ deleted_at: now, updated_at: now }).where('id', '=', app.id).execute();
      await recordAudit(trx, access.actor, { workspaceId: app.workspace_id, action: 'app.delete', targetType: 'app', targetId: app.id, meta: { revokedKeys: ids.length } }, now);
      return ids;
    });
    for (const id of revoked) deps.keyChanged(id, app.workspace_id);
    return reply.code(204).send();
  });
};
