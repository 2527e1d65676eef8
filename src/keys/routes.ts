// Key management routes: create, list, read, change, roll, revoke, usage.
import { Type } from '@sinclair/typebox';
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Deps } from '../deps.js';
import { IdOf, Page, setPageLinks, withErrors } from '../http/common.js';
import { authorize, requireAccess } from '../auth/principal.js';
import { loadApp } from '../apps/routes.js';
import { CreateKeyBody, CreatedKey, KeyView, ListKeysQuery, PatchKeyBody, RollBody } from './schemas.js';
import { createKey, freshView, loadKey, revokeKey, rollKey, updateKey, type Created } from './service.js';
import { usageRoute } from '../usage/routes.js';
import { keyChangesRoute } from './changes.js';

const KeyParams = Type.Object({ keyId: IdOf('key') });

/** Bearer keys answer with `key`; integration keys with their `id` and `secret`. */
function shownOnce(created: Created) {
  return created.view.kind === 'integration' ? { ...created.view, secret: created.value } : { ...created.view, key: created.value };
}

export const keyRoutes = (deps: Deps) => async (fastify: FastifyInstance) => {
  const r = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const db = deps.store.db;

  r.post('/v1/apps/:appId/keys', {
    schema: {
      tags: ['keys'], summary: 'Create a key', description: 'The key value is in `key` and is shown only in this response; only its SHA-256 is stored.',
      params: Type.Object({ appId: IdOf('app') }), body: CreateKeyBody, response: withErrors({ 201: CreatedKey }),
    },
  }, async (req, reply) => {
    const p = await authorize(deps, req, 'keys:write');
    const app = await loadApp(deps, req.params.appId);
    const access = await requireAccess(deps, req, p, app.workspace_id, 'keys:write', 'App');
    const created = await createKey(deps, app, access.actor, req.body);
    reply.code(201).header('cache-control', 'no-store');
    return shownOnce(created);
  });

  r.get('/v1/apps/:appId/keys', {
    schema: {
      tags: ['keys'], summary: 'List keys of an app (paginated, newest first)', params: Type.Object({ appId: IdOf('app') }),
      querystring: ListKeysQuery, response: withErrors({ 200: Page(KeyView) }),
    },
  }, async (req, reply) => {
    const p = await authorize(deps, req, 'keys:read');
    const app = await loadApp(deps, req.params.appId);
    await requireAccess(deps, req, p, app.workspace_id, 'keys:read', 'App');
    const { page = 1, limit = 20, ownerId, status, environment, q } = req.query;
    let query = db.selectFrom('keys').where('app_id', '=', app.id);
    if (ownerId !== undefined) query = query.where('owner_id', '=', ownerId);
    if (status !== undefined) query = query.where('status', '=', status);
    if (environment !== undefined) query = query.where('environment', '=', environment);
    if (q !== undefined) {
      const like = `%${q.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      // ESCAPE is explicit: SQLite has no default escape character, PostgreSQL uses backslash.
      query = query.where(sql<boolean>`(lower(name) like ${like} escape '\\' or lower(start) like ${like} escape '\\' or lower(coalesce(owner_id, '')) like ${like} escape '\\' or id = ${q})`);
    }
    const { n } = await query.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const total = Number(n);
    const rows = await query.selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).offset((page - 1) * limit).execute();
    setPageLinks(req, reply, page, limit, total);
    return { data: await Promise.all(rows.map((row) => freshView(deps, row))), total };
  });

  r.get('/v1/keys/:keyId', {
    schema: { tags: ['keys'], summary: 'Read a key (never its value)', params: KeyParams, response: withErrors({ 200: KeyView }) },
  }, async (req) => {
    const p = await authorize(deps, req, 'keys:read');
    const key = await loadKey(deps, req.params.keyId);
    await requireAccess(deps, req, p, key.workspace_id, 'keys:read', 'Key');
    return freshView(deps, key);
  });

  r.patch('/v1/keys/:keyId', {
    schema: {
      tags: ['keys'], summary: 'Change a key (anything but its value)', description: 'Takes effect on every node before the answer; `status: "disabled"` refuses the key until enabled again.',
      params: KeyParams, body: PatchKeyBody, response: withErrors({ 200: KeyView }),
    },
  }, async (req) => {
    const p = await authorize(deps, req, 'keys:write');
    const key = await loadKey(deps, req.params.keyId);
    const access = await requireAccess(deps, req, p, key.workspace_id, 'keys:write', 'Key');
    return updateKey(deps, key, access.actor, req.body);
  });

  r.post('/v1/keys/:keyId/roll', {
    schema: {
      tags: ['keys'], summary: 'Give a key a new value (shown once); the old one works until the grace period ends',
      params: KeyParams, body: Type.Optional(RollBody), response: withErrors({ 200: CreatedKey }),
    },
  }, async (req, reply) => {
    const p = await authorize(deps, req, 'keys:write');
    const key = await loadKey(deps, req.params.keyId);
    const access = await requireAccess(deps, req, p, key.workspace_id, 'keys:write', 'Key');
    const app = await loadApp(deps, key.app_id);
    const rolled = await rollKey(deps, key, app, access.actor, req.body?.gracePeriodMs ?? 0);
    reply.header('cache-control', 'no-store');
    return shownOnce(rolled);
  });

  r.delete('/v1/keys/:keyId', {
    schema: { tags: ['keys'], summary: 'Revoke a key: immediate and irreversible; the record stays for audit', params: KeyParams, response: withErrors({ 200: KeyView }) },
  }, async (req) => {
    const p = await authorize(deps, req, 'keys:write');
    const key = await loadKey(deps, req.params.keyId);
    const access = await requireAccess(deps, req, p, key.workspace_id, 'keys:write', 'Key');
    return revokeKey(deps, key, access.actor);
  });

  await fastify.register(usageRoute(deps));
  await fastify.register(keyChangesRoute(deps));
};
