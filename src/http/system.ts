// Health, readiness, metrics and the console's entry page.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { Deps } from '../deps.js';

export const systemRoutes = (deps: Deps) => async (app: FastifyInstance) => {
  app.get('/healthz', { schema: { tags: ['system'], summary: 'Liveness', security: [], response: { 200: Type.Object({ status: Type.Literal('ok') }) } } },
    async () => ({ status: 'ok' as const }));

  app.get('/readyz', {
    schema: {
      tags: ['system'], summary: 'Readiness of each dependency', security: [],
      response: { '2xx': Type.Object({ status: Type.String(), checks: Type.Record(Type.String(), Type.Object({ ok: Type.Boolean(), detail: Type.Optional(Type.String()) })) }) },
    },
  }, async (_req, reply) => {
    const checks: Record<string, { ok: boolean; detail?: string }> = {};
    try {
      await deps.store.ping();
      checks.store = { ok: true, detail: deps.store.dialect };
    } catch (err) {
      checks.store = { ok: false, detail: (err as Error).message };
    }
    if (deps.redis) {
      try {
        if (deps.redis.status !== 'ready') throw new Error(`redis is ${deps.redis.status}`);
        await deps.redis.ping();
        checks.redis = { ok: true };
      } catch (err) {
        // Verify keeps answering with local limits, so Redis being away degrades but does not unready.
        checks.redis = { ok: false, detail: (err as Error).message };
      }
    }
    const ok = checks.store!.ok;
    reply.code(ok ? 200 : 503);
    return { status: ok ? (Object.values(checks).every((c) => c.ok) ? 'ready' : 'degraded') : 'unavailable', checks };
  });

  app.get('/metrics', { schema: { tags: ['system'], summary: 'Prometheus metrics', security: [] } }, async (_req, reply) => {
    const size = deps.cache.size;
    deps.metrics.cacheEntries.labels('keys').set(size.keys);
    deps.metrics.cacheEntries.labels('unknown').set(size.unknown);
    reply.type(deps.metrics.registry.contentType);
    return deps.metrics.registry.metrics();
  });
};
