// The verify guard as a Fastify plugin: `@keyward/sdk/fastify`, the one entry that needs Fastify (an
// optional peer dependency), so a project without Fastify type-checks the rest of the SDK.
import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { KeyGuard, refusal, type GuardOptions, type Verdict } from './middleware.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verdict on the request's key, set by keywardFastify. */
    keyward?: Verdict;
  }
}

export interface FastifyGuardOptions extends GuardOptions {
  /** Domain scope to check, from the request. */
  resource?: (req: FastifyRequest) => string | undefined;
}

async function keywardGuard(fastify: FastifyInstance, options: FastifyGuardOptions): Promise<void> {
  const guard = new KeyGuard(options);
  const header = (options.header ?? 'authorization').toLowerCase();
  fastify.decorateRequest('keyward', undefined);
  fastify.addHook('onClose', async () => guard.close());
  fastify.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    const value = req.headers[header];
    const verdict = await guard.check(Array.isArray(value) ? value[0] : value, req.ip, options.resource?.(req));
    req.keyward = verdict;
    if (!verdict.valid) {
      const r = refusal(verdict, header);
      return reply.code(r.status).headers(r.headers).type('application/problem+json').send(r.body);
    }
  });
}

/**
 * Fastify plugin: every request in the scope that registers it must carry an accepted key;
 * `request.keyward` holds the verdict. Marked the way fastify-plugin marks plugins (so its hook
 * applies to the registering scope), without depending on it: the SDK has no runtime dependency.
 */
export const keywardFastify: FastifyPluginAsync<FastifyGuardOptions> = Object.assign(keywardGuard, {
  [Symbol.for('skip-override')]: true,
  [Symbol.for('fastify.display-name')]: 'keyward-guard',
  [Symbol.for('plugin-meta')]: { name: 'keyward-guard', fastify: '5.x' },
});

export type { Verdict } from './middleware.js';
