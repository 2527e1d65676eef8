// Key management routes: create, list, read, change, roll, revoke.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { IdOf, Page, setPageLinks, withErrors } from '../http/common.js';
import type { Guard } from '../auth/guard.js';
import type { Idempotency } from '../http/idempotency.js';
import type { AppService } from '../apps/service.js';
import { CreateKeyBody, CreatedKey, KeyView, ListKeysQuery, PatchKeyBody, RollBody } from './schemas.js';
import type { Created, KeyService } from './service.js';

const KeyParams = Type.Object({ keyId: IdOf('key') });

/** Bearer keys answer with `key`; integration keys with their `id` and `secret`. */
function shownOnce(created: Created) {
  return created.view.kind === 'integration' ? { ...created.view, secret: created.value } : { ...created.view, key: created.value };
}

export interface KeyRouteServices {
  keys: KeyService;
  apps: AppService;
  guard: Guard;
  idempotency: Idempotency;
}

export const keyRoutes = ({ keys, apps, guard, idempotency }: KeyRouteServices) => async (fastify: FastifyInstance) => {
  const r = fastify.withTypeProvider<TypeBoxTypeProvider>();

  r.post('/v1/apps/:appId/keys', {
    schema: {
      tags: ['keys'], summary: 'Create a key', description: 'The key value is in `key` and is shown only in this response; only its SHA-256 is stored.',
      params: Type.Object({ appId: IdOf('app') }), body: CreateKeyBody, response: withErrors({ 201: CreatedKey }),
    },
  }, async (req, reply) => {
    const { target: app, access } = await guard.app(req, req.params.appId, 'keys:write');
    const created = await idempotency.run(req, (claim) => keys.create(app, access.actor, req.body, claim));
    reply.code(201).header('cache-control', 'no-store');
    return shownOnce(created);
  });

  r.get('/v1/apps/:appId/keys', {
    schema: {
      tags: ['keys'], summary: 'List keys of an app (paginated, newest first)', params: Type.Object({ appId: IdOf('app') }),
      querystring: ListKeysQuery, response: withErrors({ 200: Page(KeyView) }),
    },
  }, async (req, reply) => {
    const { target: app } = await guard.app(req, req.params.appId, 'keys:read');
    const { page = 1, limit = 20, ...filters } = req.query;
    const { rows, total } = await keys.list(app.id, filters, { page, limit });
    setPageLinks(req, reply, page, limit, total);
    return { data: rows, total };
  });

  r.get('/v1/keys/:keyId', {
    schema: { tags: ['keys'], summary: 'Read a key (never its value)', params: KeyParams, response: withErrors({ 200: KeyView }) },
  }, async (req) => keys.view((await guard.key(req, req.params.keyId, 'keys:read')).target));

  r.patch('/v1/keys/:keyId', {
    schema: {
      tags: ['keys'], summary: 'Change a key (anything but its value)', description: 'Takes effect on every node before the answer; `status: "disabled"` refuses the key until enabled again.',
      params: KeyParams, body: PatchKeyBody, response: withErrors({ 200: KeyView }),
    },
  }, async (req) => {
    const { target, access } = await guard.key(req, req.params.keyId, 'keys:write');
    return keys.update(target, access.actor, req.body);
  });

  r.post('/v1/keys/:keyId/roll', {
    schema: {
      tags: ['keys'], summary: 'Give a key a new value (shown once); the old one works until the grace period ends',
      params: KeyParams, body: Type.Optional(RollBody), response: withErrors({ 200: CreatedKey }),
    },
  }, async (req, reply) => {
    const { target, access } = await guard.key(req, req.params.keyId, 'keys:write');
    const app = await apps.get(target.app_id);
    const rolled = await idempotency.run(req, (claim) => keys.roll(target, app, access.actor, req.body?.gracePeriodMs ?? 0, req.body?.environment, claim));
    reply.header('cache-control', 'no-store');
    return shownOnce(rolled);
  });

  r.delete('/v1/keys/:keyId', {
    schema: { tags: ['keys'], summary: 'Revoke a key: immediate and irreversible; the record stays for audit', params: KeyParams, response: withErrors({ 200: KeyView }) },
  }, async (req) => {
    const { target, access } = await guard.key(req, req.params.keyId, 'keys:write');
    return keys.revoke(target, access.actor);
  });
};
