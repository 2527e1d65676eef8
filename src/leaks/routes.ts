// POST /v1/leaks: secret-scanning reports (GitHub's partner format). A signed report of a live key
// disables or revokes it by policy, audits it, and answers what happened to each token.
import { createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { AppError } from '../errors.js';
import { withErrors } from '../http/common.js';
import type { Actor } from '../store/repos/index.js';
import type { LeakOutcome, LeakService } from './service.js';

const Report = Type.Array(Type.Object({
  token: Type.String({ maxLength: 512 }),
  type: Type.String({ maxLength: 128 }),
  url: Type.Optional(Type.String({ maxLength: 2048 })),
  source: Type.Optional(Type.String({ maxLength: 128 })),
}), { maxItems: 1000 });

const Outcome = Type.Object({
  token_hash: Type.String({ description: 'SHA-256 of the reported token, hex' }),
  token_type: Type.String(),
  label: Type.Union([Type.Literal('true_positive'), Type.Literal('false_positive')]),
  action: Type.Union([Type.Literal('disabled'), Type.Literal('revoked'), Type.Literal('already_inactive'), Type.Literal('none')]),
});

type RawRequest = FastifyRequest & { rawBody?: string };

export interface LeakRouteServices {
  leaks: LeakService;
  /** Reporters' verification keys (KEYWARD_LEAK_PUBLIC_KEYS). */
  publicKeys: readonly { id: string; pem: string }[];
}

export const leakRoutes = ({ leaks, publicKeys }: LeakRouteServices) => async (fastify: FastifyInstance) => {
  const keys = new Map<string, KeyObject>(publicKeys.map((k) => [k.id, createPublicKey(k.pem)]));
  // The signature covers the exact bytes sent, so this route keeps them.
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    (req as RawRequest).rawBody = body as string;
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(new AppError('VALIDATION_FAILED', 'Body is not valid JSON'), undefined);
    }
  });

  fastify.withTypeProvider<TypeBoxTypeProvider>().post('/v1/leaks', {
    schema: {
      tags: ['leaks'], summary: 'Report leaked keys (secret-scanning partner format)', security: [],
      description: 'Signed with ECDSA P-256/SHA-256 over the raw body: headers `Github-Public-Key-Identifier` and `Github-Public-Key-Signature` (base64). ' +
        'Verification keys come from KEYWARD_LEAK_PUBLIC_KEYS; a reported key is disabled or revoked per KEYWARD_LEAK_POLICY, root keys are always revoked.',
      body: Report, response: withErrors({ 200: Type.Array(Outcome) }),
    },
    preValidation: async (req) => {
      const id = req.headers['github-public-key-identifier'];
      const signature = req.headers['github-public-key-signature'];
      const key = typeof id === 'string' ? keys.get(id) : undefined;
      const raw = (req as RawRequest).rawBody;
      if (!key || typeof signature !== 'string' || raw === undefined ||
          !verifySignature('sha256', Buffer.from(raw), key, Buffer.from(signature, 'base64'))) {
        throw new AppError('UNAUTHORIZED', 'The report signature is missing or does not verify');
      }
    },
  }, async (req) => {
    const actor: Actor = { type: 'system', id: 'leak-report', ip: req.ip ?? null, userAgent: req.headers['user-agent'] ?? null };
    const out: LeakOutcome[] = [];
    for (const item of req.body) out.push(await leaks.handle(actor, item));
    return out;
  });
};
