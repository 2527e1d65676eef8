// POST /v1/keys/verify as a Fastify route: what the fast paths pass on (another media type, a query
// string, a server that is closing) and what inject() reaches in tests. It runs the same answerer
// as the socket path and the node:http fast path (./answer.ts): the body is handed over as the text
// it came as, parsed, validated against the same schema, verified and serialized by the same code.
import type { FastifyInstance } from 'fastify';
import { withErrors } from '../http/common.js';
import { WORKER } from '../http/headers.js';
import type { VerifyAnswerer } from './answer.js';
import { VerifyAnswer, VerifyBody } from './schemas.js';

export { VerifyAnswer, VerifyBody } from './schemas.js';

export const verifyRoutes = ({ answerer }: { answerer: VerifyAnswerer }) => async (fastify: FastifyInstance) => {
  // In this plugin only: a JSON body reaches the answerer as text (its JSON.parse, its errors).
  fastify.removeContentTypeParser('application/json');
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => done(null, body));
  fastify.post('/v1/keys/verify', {
    schema: {
      tags: ['verify'], summary: 'Verify a key',
      description: 'Answers 200 with `valid` and a `code` for every verdict. Call it from your backend for every request you serve. Name the app whose keys you accept with `appId`, or send a root key with the `keys:verify` permission as `Authorization: Bearer <root key>` to accept any key of its workspace; neither is a 400 `VERIFY_SCOPE_REQUIRED`.',
      security: [{ bearer: [] }, {}],
      body: VerifyBody, response: withErrors({ 200: VerifyAnswer }),
    },
    // The answerer validates the body against the same schema; the schema above documents it.
    validatorCompiler: () => () => true,
  }, async (req, reply) => {
    if (WORKER) reply.header('x-keyward-worker', WORKER);
    const answer = await answerer.answer(typeof req.body === 'string' ? req.body : '', req.headers.authorization);
    if (answer.retryAfterSec !== undefined) reply.header('retry-after', String(answer.retryAfterSec));
    if (answer.problem) reply.header('x-content-type-options', 'nosniff');
    if (answer.close) reply.header('connection', 'close');
    reply.code(answer.status).type(answer.problem ? 'application/problem+json; charset=utf-8' : 'application/json; charset=utf-8');
    // Already JSON text: sent as it is, past the response schema's serializer.
    return reply.serializer((payload: unknown) => payload as string).send(answer.body);
  });
};
