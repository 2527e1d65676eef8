// POST /v1/apps/{appId}/keys/import: up to 1,000 keys issued elsewhere, by plaintext or SHA-256.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { IdOf, withErrors } from '../http/common.js';
import type { Guard } from '../auth/guard.js';
import { ImportKeysAnswer, ImportKeysBody, MAX_IMPORT_KEYS } from './schemas.js';
import type { ImportService } from './service.js';

export interface ImportRouteServices {
  imports: ImportService;
  guard: Guard;
  http: { bodyLimitBytes: number };
}

export const importRoutes = ({ imports, guard, http }: ImportRouteServices) => async (fastify: FastifyInstance) => {
  fastify.withTypeProvider<TypeBoxTypeProvider>().post('/v1/apps/:appId/keys/import', {
    // A thousand entries with their fields outgrow the default body limit: four times it here.
    bodyLimit: http.bodyLimitBytes * 4,
    schema: {
      tags: ['keys'], summary: 'Import keys issued elsewhere (plaintext or SHA-256)',
      description: `Up to ${MAX_IMPORT_KEYS} keys a call, each as \`key\` (plaintext) or \`hash\` (SHA-256, hex or base64), with the usual key fields. The app must have \`importKeys: true\`; its verify then accepts these values whatever their format. All or nothing: one invalid entry and nothing is imported (400, one error per entry). A value this app already has is \`existing\` and left unchanged, so a repeated call creates nothing; a value held anywhere else is refused like any other invalid entry. Answers 201 when something was created, else 200. Needs the \`keys:import\` permission. Audited (\`key.import\` per key).`,
      params: Type.Object({ appId: IdOf('app') }), body: ImportKeysBody,
      response: withErrors({ 200: ImportKeysAnswer, 201: ImportKeysAnswer }),
    },
  }, async (req, reply) => {
    const { target: app, access } = await guard.app(req, req.params.appId, 'keys:import');
    const result = await imports.import(app, access.actor, req.body.keys);
    reply.code(result.created > 0 ? 201 : 200);
    return result;
  });
};
