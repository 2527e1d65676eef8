// POST /v1/keys/verify: 200 with a verdict for every well-formed request.
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { withErrors } from '../http/common.js';
import { VerifyAnswer, VerifyBody } from './schemas.js';
import type { VerifyCode } from './steps.js';
import { verifyKey, type VerifyDeps, type VerifyInput, type VerifyResult } from './verify.js';
import { serializeVerifyResult } from './serialize.js';
import { WORKER } from '../http/headers.js';

export { VerifyAnswer, VerifyBody } from './schemas.js';

export type Verifier = (input: VerifyInput) => VerifyResult | Promise<VerifyResult>;

/** verifyKey plus the per-verdict metric: what both the route and the fast path run. */
export function countedVerify(deps: VerifyDeps, countVerdict: (code: VerifyCode) => void): Verifier {
  const counted = (result: VerifyResult): VerifyResult => {
    countVerdict(result.code);
    return result;
  };
  return (input) => {
    const result = verifyKey(deps, input);
    return result instanceof Promise ? result.then(counted) : counted(result);
  };
}

export const verifyRoutes = ({ verify }: { verify: Verifier }) => async (fastify: FastifyInstance) => {
  fastify.withTypeProvider<TypeBoxTypeProvider>().post('/v1/keys/verify', {
    schema: {
      tags: ['verify'], summary: 'Verify a key', security: [],
      description: 'Answers 200 with `valid` and a `code` for every verdict. Call it from your backend for every request you serve.',
      body: VerifyBody, response: withErrors({ 200: VerifyAnswer }),
    },
  }, async (req, reply) => {
    if (WORKER) reply.header('x-keyward-worker', WORKER);
    const result = await verify(req.body);
    // The fast path's serializer here too: one JSON form of the answer, whichever way it came.
    reply.type('application/json; charset=utf-8');
    return serializeVerifyResult(result);
  });
};
