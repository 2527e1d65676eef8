// POST /v1/keys/verify: 200 with a verdict for every well-formed request.
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { withErrors } from '../http/common.js';
import { VerifyAnswer, VerifyBody } from './schemas.js';
import type { VerifyCode } from './steps.js';
import { verifyKey, type VerifyDeps, type VerifyInput, type VerifyResult } from './verify.js';
import { serializeVerifyResult } from './serialize.js';
import { resolveScope, type RootKeyCache, type VerifyScope } from './scope.js';
import { invalid } from '../errors.js';
import { ipv4ToInt, parseClientIp } from '../lib/ip.js';
import { WORKER } from '../http/headers.js';

export { VerifyAnswer, VerifyBody } from './schemas.js';

/** A verify call: its body, and the request's Authorization header (a verify root key, if any). */
export type Verifier = (input: VerifyInput, authorization: string | undefined) => VerifyResult | Promise<VerifyResult>;

/**
 * The scope (appId or a verify root key), verifyKey, and the per-verdict metric: what both the
 * route and the fast path run. A missing or bad scope throws the AppError the caller answers with.
 */
export function scopedVerify(deps: VerifyDeps, roots: RootKeyCache, countVerdict: (code: VerifyCode) => void): Verifier {
  const counted = (result: VerifyResult): VerifyResult => {
    countVerdict(result.code);
    return result;
  };
  const run = (input: VerifyInput, scope: VerifyScope) => {
    const result = verifyKey(deps, input, scope);
    return result instanceof Promise ? result.then(counted) : counted(result);
  };
  return (input, authorization) => {
    // A caller address that is not an address is the integrator's bug: say so, rather than let a
    // key without an allowlist pass and one with an allowlist fail for a reason nobody sees.
    if (input.ip !== undefined && ipv4ToInt(input.ip) === null && parseClientIp(input.ip) === null) throw invalid('body/ip', 'is not an IPv4 or IPv6 address');
    const scope = resolveScope(roots, input.appId, authorization, deps.now());
    return scope instanceof Promise ? scope.then((s) => run(input, s)) : run(input, scope);
  };
}

export const verifyRoutes = ({ verify }: { verify: Verifier }) => async (fastify: FastifyInstance) => {
  fastify.withTypeProvider<TypeBoxTypeProvider>().post('/v1/keys/verify', {
    schema: {
      tags: ['verify'], summary: 'Verify a key',
      description: 'Answers 200 with `valid` and a `code` for every verdict. Call it from your backend for every request you serve. Name the app whose keys you accept with `appId`, or send a root key with the `keys:verify` permission as `Authorization: Bearer <root key>` to accept any key of its workspace; neither is a 400 `VERIFY_SCOPE_REQUIRED`.',
      security: [{ bearer: [] }, {}],
      body: VerifyBody, response: withErrors({ 200: VerifyAnswer }),
    },
  }, async (req, reply) => {
    if (WORKER) reply.header('x-keyward-worker', WORKER);
    const result = await verify(req.body, req.headers.authorization);
    // The fast path's serializer here too: one JSON form of the answer, whichever way it came.
    reply.type('application/json; charset=utf-8');
    return serializeVerifyResult(result);
  });
};
