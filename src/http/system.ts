// Health, readiness and metrics.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';

export interface Check {
  ok: boolean;
  detail?: string;
}

export interface Readiness {
  /** `store` must be ok to be ready; any other check failing only degrades. */
  checks(): Promise<Record<string, Check> & { store: Check }>;
}

export interface SystemRouteServices {
  readiness: Readiness;
  /** The Prometheus exposition and its content type. */
  metrics: { contentType: string; render(): Promise<string> };
}

export const systemRoutes = ({ readiness, metrics }: SystemRouteServices) => async (app: FastifyInstance) => {
  app.get('/healthz', { schema: { tags: ['system'], summary: 'Liveness', security: [], response: { 200: Type.Object({ status: Type.Literal('ok') }) } } },
    async () => ({ status: 'ok' as const }));

  app.get('/readyz', {
    schema: {
      tags: ['system'], summary: 'Readiness of each dependency', security: [],
      response: { '2xx': Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.Object({ ok: Type.Boolean(), detail: Type.Optional(Type.String()) })) }) },
    },
  }, async (_req, reply) => {
    const checks = await readiness.checks();
    const ok = checks.store.ok;
    reply.code(ok ? 200 : 503);
    return { status: ok ? (Object.values(checks).every((c) => c.ok) ? 'ready' : 'degraded') : 'unavailable', checks };
  });

  app.get('/metrics', { schema: { tags: ['system'], summary: 'Prometheus metrics', security: [] } }, async (_req, reply) => {
    reply.type(metrics.contentType);
    return metrics.render();
  });
};
