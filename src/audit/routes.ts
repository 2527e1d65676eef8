// GET /v1/workspaces/{id}/audit: the audit trail, newest first, paginated.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { parseJson } from '../lib/json.js';
import { iso, parseInstant } from '../lib/time.js';
import { invalid } from '../errors.js';
import { IdOf, Page, PageQuery, setPageLinks, Timestamp, withErrors } from '../http/common.js';
import type { Guard } from '../auth/guard.js';
import type { AuditRepo } from '../store/repos/audit.js';
import { AuditView } from './schemas.js';

const invalidDate = (name: string): never => {
  throw invalid(`query/${name}`, 'is not a valid date-time');
};

export interface AuditRouteServices {
  audit: Pick<AuditRepo, 'list'>;
  guard: Guard;
}

export const auditRoutes = ({ audit, guard }: AuditRouteServices) => async (fastify: FastifyInstance) => {
  fastify.withTypeProvider<TypeBoxTypeProvider>().get('/v1/workspaces/:id/audit', {
    schema: {
      tags: ['audit'], summary: 'Who did what, when and from where',
      params: Type.Object({ id: IdOf('workspace') }),
      querystring: Type.Object({
        ...PageQuery,
        action: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'An action or its start: `vault` finds every `vault.*`', examples: ['key.revoke'] })),
        targetId: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
        since: Type.Optional(Timestamp),
        until: Type.Optional(Timestamp),
      }, { additionalProperties: false }),
      response: withErrors({ 200: Page(AuditView) }),
    },
  }, async (req, reply) => {
    await guard.workspace(req, req.params.id, 'audit:read');
    const { page = 1, limit = 20, action, targetId } = req.query;
    const since = req.query.since === undefined ? undefined : parseInstant(req.query.since) ?? invalidDate('since');
    const until = req.query.until === undefined ? undefined : parseInstant(req.query.until) ?? invalidDate('until');
    const { rows, total } = await audit.list(req.params.id, { action, targetId, since, until }, { page, limit });
    setPageLinks(req, reply, page, limit, total);
    return {
      total,
      data: rows.map((a) => ({
        id: a.id, at: iso(a.created_at), actor: { type: a.actor_type, id: a.actor_id, ...(a.actor_email ? { email: a.actor_email } : {}) }, action: a.action,
        target: { type: a.target_type, id: a.target_id }, ip: a.ip, userAgent: a.user_agent, meta: parseJson(a.meta, {}),
      })),
    };
  });
};
