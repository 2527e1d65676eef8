// The per-app vault: names are listed, values are written, revealed (audited) and deleted.
// Values are sealed with the master key and never appear in lists, logs or the audit trail.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Deps } from '../deps.js';
import { notFound } from '../errors.js';
import { iso } from '../keys/model.js';
import { recordAudit } from '../audit/audit.js';
import { IdOf, Nullable, withErrors } from '../http/common.js';
import { authorize, requireAccess } from '../auth/principal.js';
import { loadApp } from '../apps/routes.js';

const Name = Type.String({ pattern: '^[A-Za-z0-9_.-]{1,128}$', description: 'Letters, digits, `_`, `.`, `-`', examples: ['STRIPE_SECRET_KEY'] });
const Params = Type.Object({ appId: IdOf('app'), name: Name });
const SecretInfo = Type.Object({ name: Type.String(), createdAt: Type.String(), updatedAt: Type.String(), updatedBy: Nullable(Type.String()) });

const context = (appId: string, name: string) => `vault:${appId}:${name}`;

export const vaultRoutes = (deps: Deps) => async (fastify: FastifyInstance) => {
  const r = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const db = deps.store.db;

  r.get('/v1/apps/:appId/vault', {
    schema: { tags: ['vault'], summary: 'Names of the app\'s secrets (never their values)', params: Type.Object({ appId: IdOf('app') }), response: withErrors({ 200: Type.Object({ data: Type.Array(SecretInfo) }) }) },
  }, async (req) => {
    const p = await authorize(deps, req, 'vault:read');
    const app = await loadApp(deps, req.params.appId);
    await requireAccess(deps, req, p, app.workspace_id, 'vault:read', 'App');
    const rows = await db.selectFrom('vault_secrets').select(['name', 'created_at', 'updated_at', 'updated_by']).where('app_id', '=', app.id).orderBy('name').execute();
    return { data: rows.map((s) => ({ name: s.name, createdAt: iso(s.created_at), updatedAt: iso(s.updated_at), updatedBy: s.updated_by })) };
  });

  r.put('/v1/apps/:appId/vault/:name', {
    schema: {
      tags: ['vault'], summary: 'Write a secret (creates or replaces)', params: Params,
      body: Type.Object({ value: Type.String({ minLength: 1, maxLength: 65_536 }) }, { additionalProperties: false }),
      response: withErrors({ 200: SecretInfo }),
    },
  }, async (req) => {
    const p = await authorize(deps, req, 'vault:write');
    const app = await loadApp(deps, req.params.appId);
    const access = await requireAccess(deps, req, p, app.workspace_id, 'vault:write', 'App');
    const now = deps.clock.now();
    const sealed = deps.box.seal(req.body.value, context(app.id, req.params.name));
    const created = await db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('vault_secrets').select('created_at').where('app_id', '=', app.id).where('name', '=', req.params.name).executeTakeFirst();
      await trx.insertInto('vault_secrets')
        .values({ app_id: app.id, name: req.params.name, value_enc: sealed, created_at: now, updated_at: now, updated_by: access.actor.id })
        .onConflict((oc) => oc.columns(['app_id', 'name']).doUpdateSet({ value_enc: sealed, updated_at: now, updated_by: access.actor.id }))
        .execute();
      await recordAudit(trx, access.actor, { workspaceId: app.workspace_id, action: existing ? 'vault.update' : 'vault.create', targetType: 'secret', targetId: `${app.id}/${req.params.name}` }, now);
      return existing?.created_at ?? now;
    });
    return { name: req.params.name, createdAt: iso(created), updatedAt: iso(now), updatedBy: access.actor.id };
  });

  r.get('/v1/apps/:appId/vault/:name', {
    schema: { tags: ['vault'], summary: 'Reveal a secret (audited)', params: Params, response: withErrors({ 200: Type.Object({ name: Type.String(), value: Type.String() }) }) },
  }, async (req, reply) => {
    const p = await authorize(deps, req, 'vault:read');
    const app = await loadApp(deps, req.params.appId);
    const access = await requireAccess(deps, req, p, app.workspace_id, 'vault:read', 'App');
    const row = await db.selectFrom('vault_secrets').select('value_enc').where('app_id', '=', app.id).where('name', '=', req.params.name).executeTakeFirst();
    if (!row) throw notFound('Secret');
    const value = deps.box.open(row.value_enc, context(app.id, req.params.name));
    await recordAudit(db, access.actor, { workspaceId: app.workspace_id, action: 'vault.reveal', targetType: 'secret', targetId: `${app.id}/${req.params.name}` }, deps.clock.now());
    reply.header('cache-control', 'no-store');
    return { name: req.params.name, value };
  });

  r.delete('/v1/apps/:appId/vault/:name', {
    schema: { tags: ['vault'], summary: 'Delete a secret', params: Params, response: withErrors({ 204: Type.Null() }) },
  }, async (req, reply) => {
    const p = await authorize(deps, req, 'vault:write');
    const app = await loadApp(deps, req.params.appId);
    const access = await requireAccess(deps, req, p, app.workspace_id, 'vault:write', 'App');
    const now = deps.clock.now();
    await db.transaction().execute(async (trx) => {
      const res = await trx.deleteFrom('vault_secrets').where('app_id', '=', app.id).where('name', '=', req.params.name).executeTakeFirst();
      if (Number(res.numDeletedRows) === 0) throw notFound('Secret');
      await recordAudit(trx, access.actor, { workspaceId: app.workspace_id, action: 'vault.delete', targetType: 'secret', targetId: `${app.id}/${req.params.name}` }, now);
    });
    return reply.code(204).send();
  });
};
