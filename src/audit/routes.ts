// GET /v1/workspaces/{id}/audit: the audit trail, newest first, paginated.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Deps } from '../deps.js';
import { parseJson } from '../lib/json.js';
import { iso } from '../keys/model.js';
import { IdOf, Nullable, Page, PageQuery, setPageLinks, withErrors } from '../http/common.js';
import { authorize, requireAccess } from '../auth/principal.js';

const AuditView = Type.Object({
  id: Type.String(), at: Type.String({ format: 'date-time' }),
  actor: Type.Object({ type: Type.String(), id: Type.String() }),
  action: Type.String({ examples: ['key.revoke'] }),
  target: Type.Object({ type: Type.String(), id: Type.String() }),
  ip: Nullable(Type.String()), userAgent: Nullable(Type.String()),
  meta: Type.Object({}, { additionalProperties: true }),
});

export const auditRoutes = (deps: Deps) => async (fastify: FastifyInstance) => {
  fastify.withTypeProvider<TypeBoxTypeProvider>().get('/v1/workspaces/:id/audit', {
    schema: {
      tags: ['audit'], summary: 'Who did what, when and from where',
      params: Type.Object({ id: IdOf('workspace') }),
      querystring: Type.Object({
        ...PageQuery,
        action: Type.Optional(Type.String({ minLength: 1, maxLength: 64, examples: ['key.revoke'] })),
        targetId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
      }, { additionalProperties: false }),
      response: withErrors({ 200: Page(AuditView) }),
    },
  }, async (req, reply) => {
    const p = await authorize(deps, req, 'audit:read');
    await requireAccess(deps, req, p, req.params.id, 'audit:read');
    const { page = 1, limit = 20, action, targetId } = req.query;
    let q = deps.store.db.selectFrom('audit_log').where('workspace_id', '=', req.params.id);
    if (action) q = q.where('action', '=', action);
    if (targetId) q = q.where('target_id', '=', targetId);
    const { n } = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await q.selectAll().orderBy('created_at', 'desc').orderBy('id', 'desc').limit(limit).offset((page - 1) * limit).execute();
    setPageLinks(req, reply, page, limit, Number(n));
    return {
      total: Number(n),
      data: rows.map((a) => ({
        id: a.id, at: iso(a.created_at), actor: { type: a.actor_type, id: a.actor_id }, action: a.action,
        target: { type: a.target_type, id: a.target_id }, ip: a.ip, userAgent: a.user_agent, meta: parseJson(a.meta, {}),
      })),
    };
  });
};
