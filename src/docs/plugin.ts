// OpenAPI 3.1 built from the route schemas (/openapi.json), interactive docs (/docs) and an
// llms.txt digest generated from the same spec, so none of them can drift from the code.
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { renderLlmsTxt } from './llms.js';

/** The OpenAPI generator: registered first, at the root, so it sees every route. */
export async function registerDocs(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Keyward API',
        version: '1.0.0',
        description: 'Self-hosted API key management. Every error is application/problem+json (RFC 9457) with a stable `code`.',
      },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'A session token (from /v1/auth/login) or a root key' },
        },
      },
      security: [{ bearer: [] }],
      tags: [
        { name: 'verify', description: 'The hot path: verify a key on every request you serve' },
        { name: 'keys', description: 'Create, list, change, roll and revoke keys' },
        { name: 'apps', description: 'Containers of keys with defaults' },
        { name: 'workspaces', description: 'Tenants and their members' },
        { name: 'root keys', description: 'Workspace credentials for automation' },
        { name: 'audit', description: 'Who did what' },
        { name: 'vault', description: 'Encrypted secrets per app' },
        { name: 'webhooks', description: 'Signed event deliveries: key lifecycle, expiry, low usage' },
        { name: 'leaks', description: 'Secret-scanning reports of leaked keys' },
        { name: 'integrations', description: 'Chat slash commands' },
        { name: 'auth', description: 'Sessions' },
        { name: 'setup', description: 'First run' },
        { name: 'system', description: 'Health and metrics' },
      ],
    },
    refResolver: { buildLocalReference: (json, _base, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
}

/** The pages and files built from the spec: /docs, /openapi.json, /llms.txt. */
export async function registerDocsUi(app: FastifyInstance): Promise<void> {
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { persistAuthorization: true, deepLinking: true } });

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  let llms: string | undefined;
  app.get('/llms.txt', { schema: { hide: true } }, async (_req, reply) => {
    llms ??= renderLlmsTxt(app.swagger() as unknown as Parameters<typeof renderLlmsTxt>[0]);
    reply.type('text/plain; charset=utf-8');
    return llms;
  });
}
