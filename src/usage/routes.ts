// GET /v1/keys/{keyId}/usage: verify outcomes per bucket, zero-filled for charts.
import { Type } from '@sinclair/typebox';
import { sql } from 'kysely';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Deps } from '../deps.js';
import { invalid } from '../errors.js';
import { IdOf, Timestamp, withErrors } from '../http/common.js';
import { authorize, requireAccess } from '../auth/principal.js';
import { iso } from '../keys/model.js';
import { loadKey } from '../keys/service.js';

const SIZES = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;
const MAX_BUCKETS = 1500;

const UsageView = Type.Object({
  keyId: Type.String(),
  granularity: Type.String(),
  since: Type.String(),
  until: Type.String(),
  data: Type.Array(Type.Object({
    at: Type.String({ description: 'Start of the bucket' }),
    total: Type.Integer(),
    counts: Type.Record(Type.String(), Type.Integer(), { description: 'Verify outcomes by code', examples: [{ VALID: 120, RATE_LIMITED: 3 }] }),
  })),
});

export const usageRoute = (deps: Deps) => async (fastify: FastifyInstance) => {
  fastify.withTypeProvider<TypeBoxTypeProvider>().get('/v1/keys/:keyId/usage', {
    schema: {
      tags: ['keys'], summary: 'Verify outcomes of a key per minute, hour or day',
      params: Type.Object({ keyId: IdOf('key') }),
      querystring: Type.Object({
        since: Type.Optional(Timestamp), until: Type.Optional(Timestamp),
        granularity: Type.Optional(Type.Union([Type.Literal('minute'), Type.Literal('hour'), Type.Literal('day')], { default: 'hour' })),
      }, { additionalProperties: false }),
      response: withErrors({ 200: UsageView }),
    },
  }, async (req) => {
    const p = await authorize(deps, req, 'keys:read');
    const key = await loadKey(deps, req.params.keyId);
    await requireAccess(deps, req, p, key.workspace_id, 'keys:read', 'Key');
    const granularity = req.query.granularity ?? 'hour';
    const size = SIZES[granularity];
    const now = deps.clock.now();
    const until = req.query.until ? Date.parse(req.query.until) : now;
    const since = req.query.since ? Date.parse(req.query.since) : until - 86_400_000;
    if (since >= until) throw invalid('query/since', 'must be before until');
    const from = since - (since % size);
    if ((until - from) / size > MAX_BUCKETS) throw invalid('query/granularity', `the range spans more than ${MAX_BUCKETS} ${granularity}s; choose a coarser granularity`);
    await deps.usage.flush();
    const rows = await deps.store.db.selectFrom('usage')
      .select([sql<number>`bucket - (bucket % ${sql.lit(size)})`.as('at'), 'code', (eb) => eb.fn.sum<number>('count').as('n')])
      .where('key_id', '=', key.id).where('bucket', '>=', from).where('bucket', '<', until)
      .groupBy([sql`bucket - (bucket % ${sql.lit(size)})`, 'code']).execute();
    const buckets = new Map<number, Record<string, number>>();
    for (let t = from; t < until; t += size) buckets.set(t, {});
    for (const row of rows) {
      const counts = buckets.get(Number(row.at));
      if (counts) counts[row.code] = (counts[row.code] ?? 0) + Number(row.n);
    }
    return {
      keyId: key.id, granularity, since: iso(from), until: iso(until),
      data: [...buckets].map(([at, counts]) => ({ at: iso(at), total: Object.values(counts).reduce((a, b) => a + b, 0), counts })),
    };
  });
};
