// First-run setup, login, logout and the current user. Sessions are random tokens stored only as SHA-256.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { withErrors } from '../http/common.js';
import { originOf, type Guard } from './guard.js';
import { Email, Password, SessionView } from './schemas.js';
import type { AuthService } from './service.js';

export interface AuthRouteServices {
  auth: AuthService;
  guard: Guard;
}

export const authRoutes = ({ auth, guard }: AuthRouteServices) => async (app: FastifyInstance) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get('/v1/setup', {
    schema: { tags: ['setup'], summary: 'Whether first-run setup is still needed', security: [],
      response: withErrors({ 200: Type.Object({ needsSetup: Type.Boolean() }) }) },
  }, async () => ({ needsSetup: await auth.needsSetup() }));

  r.post('/v1/setup', {
    schema: {
      tags: ['setup'], summary: 'Create the first user and workspace', security: [],
      description: 'Only allowed while no user exists; answers 409 afterwards.',
      body: Type.Object({
        email: Email, password: Password,
        workspaceName: Type.String({ minLength: 1, maxLength: 100, examples: ['Acme'] }),
        name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
      }, { additionalProperties: false }),
      response: withErrors({ 201: SessionView }),
    },
  }, async (req, reply) => {
    const session = await auth.setup(req.body, originOf(req));
    reply.code(201);
    return session;
  });

  r.post('/v1/auth/login', {
    schema: {
      tags: ['auth'], summary: 'Log in with email and password', security: [],
      description: 'Every attempt is counted before the password is checked, per 15 minutes: 10 per email and address, 30 per address across all emails and 100 per email from addresses unknown to the account (an address is known once setup, an invitation or a login succeeded from it), then 429 with Retry-After (defaults; see the security docs). A node checks a bounded number of passwords at once, some kept for known addresses; beyond them the answer is 503 with Retry-After at once.',
      body: Type.Object({ email: Type.String({ maxLength: 254 }), password: Type.String({ maxLength: 200 }) }, { additionalProperties: false }),
      response: withErrors({ 200: SessionView }),
    },
  }, async (req) => auth.login(req.body.email, req.body.password, originOf(req)));

  r.post('/v1/auth/logout', {
    schema: { tags: ['auth'], summary: 'End the current session', description: 'Its open change streams end at once, on every node.', response: withErrors({ 204: Type.Null() }) },
  }, async (req, reply) => {
    await auth.logout(await guard.principal(req));
    return reply.code(204).send();
  });

  r.get('/v1/auth/me', {
    schema: { tags: ['auth'], summary: 'The current user and their workspaces', response: withErrors({ 200: Type.Omit(SessionView, ['token']) }) },
  }, async (req) => auth.me(await guard.principal(req)));
};
