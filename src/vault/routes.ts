// The per-app vault: names are listed, values are written, revealed (audited) and deleted.
// Values are sealed with the master key and never appear in lists, logs or the audit trail.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { iso } from '../lib/time.js';
import { IdOf, withErrors } from '../http/common.js';
import type { Guard } from '../auth/guard.js';
import type { SecretInfo, VaultService } from './service.js';
import { SecretInfoView } from './schemas.js';

const Name = Type.String({ pattern: '^[A-Za-z0-9_.-]{1,128}$', description: 'Letters, digits, `_`, `.`, `-`', examples: ['STRIPE_SECRET_KEY'] });
const Params = Type.Object({ appId: IdOf('app'), name: Name });

const infoView = (s: SecretInfo) => ({ name: s.name, createdAt: iso(s.created_at), updatedAt: iso(s.updated_at), updatedBy: s.updated_by });

export interface VaultRouteServices {
  vault: VaultService;
  guard: Guard;
}

export const vaultRoutes = ({ vault, guard }: VaultRouteServices) => async (fastify: FastifyInstance) => {
  const r = fastify.withTypeProvider<TypeBoxTypeProvider>();

  r.get('/v1/apps/:appId/vault', {
    schema: { tags: ['vault'], summary: 'Names of the app\'s secrets (never their values)', params: Type.Object({ appId: IdOf('app') }), response: withErrors({ 200: Type.Object({ data: Type.Array(SecretInfoView) }) }) },
  }, async (req) => {
    const { target: app } = await guard.app(req, req.params.appId, 'vault:read');
    return { data: (await vault.list(app)).map(infoView) };
  });

  r.put('/v1/apps/:appId/vault/:name', {
    schema: {
      tags: ['vault'], summary: 'Write a secret (creates or replaces)', params: Params,
      body: Type.Object({ value: Type.String({ minLength: 1, maxLength: 65_536 }) }, { additionalProperties: false }),
      response: withErrors({ 200: SecretInfoView }),
    },
  }, async (req) => {
    const { target: app, access } = await guard.app(req, req.params.appId, 'vault:write');
    return infoView(await vault.write(app, req.params.name, req.body.value, access.actor));
  });

  r.get('/v1/apps/:appId/vault/:name', {
    schema: { tags: ['vault'], summary: 'Reveal a secret (audited)', params: Params, response: withErrors({ 200: Type.Object({ name: Type.String(), value: Type.String() }) }) },
  }, async (req, reply) => {
    const { target: app, access } = await guard.app(req, req.params.appId, 'vault:read');
    const value = await vault.reveal(app, req.params.name, access.actor);
    reply.header('cache-control', 'no-store');
    return { name: req.params.name, value };
  });

  r.delete('/v1/apps/:appId/vault/:name', {
    schema: { tags: ['vault'], summary: 'Delete a secret', params: Params, response: withErrors({ 204: Type.Null() }) },
  }, async (req, reply) => {
    const { target: app, access } = await guard.app(req, req.params.appId, 'vault:write');
    await vault.delete(app, req.params.name, access.actor);
    return reply.code(204).send();
  });
};
