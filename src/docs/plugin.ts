// OpenAPI 3.1 built from the route schemas (/openapi.json), the reference page (/docs, the console's
// own page built from that document) and an llms.txt digest generated from the same spec, so none
// of them can drift from the code.
import swagger, { type SwaggerTransformObject } from '@fastify/swagger';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { renderLlmsTxt } from './llms.js';
import { completeOperations } from './operations.js';

export interface DocsOptions {
  /** Where clients reach this server (KEYWARD_PUBLIC_URL); the document is relative to itself otherwise. */
  publicUrl?: string | undefined;
}

/** The OpenAPI generator: registered first, at the root, so it sees every route. */
export async function registerDocs(app: FastifyInstance, options: DocsOptions = {}): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Keyward API',
        version: '1.0.0',
        description: 'Self-hosted API key management. Every error is application/problem+json (RFC 9457) with a stable `code`.',
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
      },
      // A relative URL resolves against wherever this document was fetched from: this server.
      servers: [{ url: options.publicUrl ?? '/', description: 'This Keyward server' }],
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
        { name: 'identities', description: 'The customers behind keys: shared meta, named limits and their overrides' },
        { name: 'ratelimit', description: 'The standalone limiter, for anything that is not a key' },
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
    // Every operation, also those of routes added later, gets its operationId and error answers here.
    transformObject: (doc) => completeOperations(('openapiObject' in doc ? doc.openapiObject : doc.swaggerObject) as Parameters<typeof completeOperations>[0]) as ReturnType<SwaggerTransformObject>,
  });
}

type PageHandler = (req: FastifyRequest, reply: FastifyReply) => unknown;

/** The pages and files built from the spec: /docs (the console's reference page), /openapi.json, /llms.txt. */
export async function registerDocsUi(app: FastifyInstance, page: PageHandler): Promise<void> {
  // The router ignores a trailing slash: this is /docs/ too.
  app.get('/docs', { schema: { hide: true } }, page);

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  let llms: string | undefined;
  app.get('/llms.txt', { schema: { hide: true } }, async (_req, reply) => {
    llms ??= renderLlmsTxt(app.swagger() as unknown as Parameters<typeof renderLlmsTxt>[0]);
    reply.type('text/plain; charset=utf-8');
    return llms;
  });
}
