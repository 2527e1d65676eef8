// Serves the built console (web/dist) at / and answers the console's own paths with its
// index.html, so deep links and reloads work. API paths keep their JSON 404s.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { CSP, pageHeaders } from './headers.js';

export const CONSOLE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../web/dist');

const NOT_BUILT = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Keyward</title></head>
<body style="font-family: system-ui; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>Keyward is running</h1><p>The web console has not been built: run <code>npm run build</code> and restart.
The API works already: see <a href="/openapi.json">/openapi.json</a>.</p></body></html>`;

/** Whether a request that matched no route is the browser asking for a console page. */
export function wantsConsole(req: FastifyRequest): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const url = req.url.split('?')[0]!;
  if (url.startsWith('/v1/') || url.startsWith('/docs') || url.includes('.')) return false;
  return (req.headers.accept ?? '').includes('text/html');
}

export async function registerConsole(app: FastifyInstance): Promise<(req: FastifyRequest, reply: FastifyReply) => unknown> {
  const built = fs.existsSync(path.join(CONSOLE_DIR, 'index.html'));
  if (!built) {
    const page = (reply: FastifyReply) => {
      pageHeaders(reply);
      return reply.header('x-content-type-options', 'nosniff').type('text/html; charset=utf-8').send(NOT_BUILT);
    };
    app.get('/', { schema: { hide: true } }, async (_req, reply) => page(reply));
    return (_req, reply) => page(reply);
  }
  await app.register(fastifyStatic, {
    root: CONSOLE_DIR,
    prefix: '/',
    wildcard: false,
    index: ['index.html'],
    // Brotli or gzip files written at build time (web/compress.mjs), chosen by Accept-Encoding.
    preCompressed: true,
    // Our own Cache-Control below, not the library's `max-age=0`.
    cacheControl: false,
    // Hashed assets never change; the page itself is always revalidated.
    setHeaders: (res, file) => {
      const page = /index\.html(\.br|\.gz)?$/.test(file);
      res.setHeader('cache-control', page ? 'no-cache' : 'public, max-age=31536000, immutable');
      res.setHeader('x-content-type-options', 'nosniff');
      res.setHeader('referrer-policy', 'no-referrer');
      if (page) {
        res.setHeader('content-security-policy', CSP);
        res.setHeader('x-frame-options', 'DENY');
        res.setHeader('cross-origin-opener-policy', 'same-origin');
      }
    },
  });
  return (_req, reply) => {
    pageHeaders(reply);
    return reply.header('cache-control', 'no-cache').sendFile('index.html');
  };
}
