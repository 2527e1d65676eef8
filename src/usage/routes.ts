// GET /v1/keys/{keyId}/usage: verify outcomes per bucket, zero-filled for charts.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { invalid } from '../errors.js';
import { IdOf, StringEnum, Timestamp, withErrors } from '../http/common.js';
import { iso, parseInstant } from '../lib/time.js';
import type { Guard } from '../auth/guard.js';
import { BUCKET_SIZES, type Granularity, type UsageService } from './service.js';
import { UsageView } from './schemas.js';


/** A query date-time, or a 400 when it names no real instant (a leap second, say). */
function instant(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const ms = parseInstant(text);
  if (ms === null) throw invalid(`query/${name}`, 'is not a valid date-time');
  return ms;
}

export interface UsageRouteServices {
  usage: UsageService;
  guard: Guard;
}

export const usageRoute = ({ usage, guard }: UsageRouteServices) => async (fastify: FastifyInstance) => {
  fastify.withTypeProvider<TypeBoxTypeProvider>().get('/v1/keys/:keyId/usage', {
    schema: {
      tags: ['keys'], summary: 'Verify outcomes of a key per minute, hour or day',
      params: Type.Object({ keyId: IdOf('key') }),
      querystring: Type.Object({
        since: Type.Optional(Timestamp), until: Type.Optional(Timestamp),
        granularity: Type.Optional(StringEnum(Object.keys(BUCKET_SIZES) as Granularity[], { default: 'hour' })),
      }, { additionalProperties: false }),
      response: withErrors({ 200: UsageView }),
    },
  }, async (req) => {
    const { target: key } = await guard.key(req, req.params.keyId, 'keys:read');
    const granularity = req.query.granularity ?? 'hour';
    const series = await usage.series(key.id, granularity, instant('since', req.query.since), instant('until', req.query.until));
    return {
      keyId: key.id, granularity, since: iso(series.from), until: iso(series.until),
      data: series.buckets.map((b) => ({ at: iso(b.at), total: b.total, counts: b.counts })),
    };
  });
};
