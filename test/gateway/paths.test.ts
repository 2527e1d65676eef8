// How forwarded paths are read and matched, against where real routers send them. Fastify 5 and
// Express 5 are started here with the same three routes (/admin/*, /public/*, a catch-all) and
// sent each raw path over a socket; the handler that answered is recorded. Keyward must refuse a
// path (400 MALFORMED_PATH) or apply every rule whose handler a router picked: a rule skipped for
// a path a router sends to its handler is a way around the rule.
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileRules, permissionsFor } from '../../src/apps/gateway-rules.js';
import { canonicalPath } from '../../src/lib/request-path.js';

/** The upstream's routes and the gateway rules that protect them. */
const RULES = compileRules([
  { path: '/admin/*', permissions: ['admin'] },
  { path: '/public/*', permissions: ['public'] },
  { methods: ['GET'], path: '/reports/*', permissions: ['reports'] },
]);

type Handler = 'admin' | 'public' | 'reports' | 'catchall';
/** What Keyward does with a path: refuse it, or the rules that apply (none: `[]`). */
type Reading = 'refused' | Handler[];

/**
 * Raw request targets (as a client sends them and nginx or Caddy forward them), with Keyward's
 * reading. What the routers do is measured, not written here.
 */
const TABLE: [string, Reading][] = [
  // Plain spellings.
  ['/admin/x', ['admin']],
  ['/admin/x/y/z', ['admin']],
  ['/admin/', ['admin']],
  ['/admin/x/', ['admin']],
  ['/admin', []],
  ['/administrator/x', []],
  ['/adminx', []],
  ['/public/x', ['public']],
  ['/public/admin/x', ['public']],
  ['/other', []],
  ['/', []],
  ['/admin/x?y=1', ['admin']],
  ['/public/x?/admin/x', ['public']],
  ['/admin/x?a=%2F..%2F', ['admin']],
  // Case: Express ignores it, Fastify does not; rules ignore it.
  ['/ADMIN/x', ['admin']],
  ['/Admin/x', ['admin']],
  ['/aDmIn/x', ['admin']],
  ['/ADMIN/', ['admin']],
  ['/PUBLIC/x', ['public']],
  // Percent-encoded unreserved characters: Fastify decodes them before routing, Express does not.
  ['/%61dmin/x', ['admin']],
  ['/%41DMIN/x', ['admin']],
  ['/adm%69n/x', ['admin']],
  ['/%61%64%6d%69%6e/x', ['admin']],
  ['/admin/%78', ['admin']],
  ['/%7Eadmin/x', []],
  ['/admin%2D/x', []],
  ['/admin.json', []],
  ['/admin~/x', []],
  // Encodings that stay encoded: no router reads them as a letter.
  ['/%2561dmin/x', []],
  ['/admin%20/x', []],
  ['/admin%09/x', []],
  ['/%C3%A0dmin/x', []],
  ['/%EF%BC%A1dmin/x', []],
  ['/admin%E2%80%8B/x', []],
  ['/admin%23/x', []],
  ['/admin%3F/x', []],
  ['/admin%3Bv=1/x', []],
  // Dot segments, raw or encoded: refused, never resolved.
  ['/x/../admin/x', 'refused'],
  ['/public/../admin/x', 'refused'],
  ['/admin/../public/x', 'refused'],
  ['/./admin/x', 'refused'],
  ['/admin/./x', 'refused'],
  ['/admin/.', 'refused'],
  ['/public/x/..', 'refused'],
  ['/%2e/admin/x', 'refused'],
  ['/%2E%2E/admin/x', 'refused'],
  ['/public/%2e%2e/admin/x', 'refused'],
  ['/public/.%2e/admin/x', 'refused'],
  ['/admin/%2e%2e/public/x', 'refused'],
  ['/public/x/%2e', 'refused'],
  ['/admin/.hidden', ['admin']],
  ['/admin/..x', ['admin']],
  ['/.../x', []],
  ['/admin%2e/x', []],
  // Empty segments.
  ['//admin/x', 'refused'],
  ['/admin//x', 'refused'],
  ['/public//x', 'refused'],
  // Matrix parameters.
  ['/admin;v=1/x', 'refused'],
  ['/admin/x;jsessionid=1', 'refused'],
  ['/public;/../admin/x', 'refused'],
  // Encoded and raw separators.
  ['/admin%2Fx', 'refused'],
  ['/admin%2fx', 'refused'],
  ['/public%2F..%2Fadmin/x', 'refused'],
  ['/public/..%2fadmin', 'refused'],
  ['/admin%5Cx', 'refused'],
  ['/admin\\x', 'refused'],
  ['/admin\\..\\public\\x', 'refused'],
  ['/%2F/admin', 'refused'],
  // NUL and bad escapes.
  ['/admin%00/x', 'refused'],
  ['/admin/x%00', 'refused'],
  ['/adm%zzin/x', 'refused'],
  ['/admin/%/x', 'refused'],
  ['/admin/%2', 'refused'],
  ['/admin/x%', 'refused'],
  // Fragments (Node's routers cut there, others keep it), raw non-ASCII, forms that are no path.
  ['/admin/x#y', 'refused'],
  ['/public/x#/../admin/x', 'refused'],
  ['/adm\xc4\xb1n/x', 'refused'],
  ['*', 'refused'],
  ['http://h/admin/x', 'refused'],
];

/** Methods: routers answer HEAD with the GET handler, so a GET rule covers HEAD. */
const METHODS: [string, string, Reading][] = [
  ['GET', '/reports/q1', ['reports']],
  ['HEAD', '/reports/q1', ['reports']],
  ['POST', '/reports/q1', []],
  ['HEAD', '/admin/x', ['admin']],
];

const HANDLERS: Handler[] = ['admin', 'public', 'reports'];

function keywardReading(method: string, raw: string): Reading {
  const read = canonicalPath(raw);
  if (!read.ok) return 'refused';
  const permissions = permissionsFor(RULES, method, read.path) ?? [];
  return HANDLERS.filter((h) => permissions.includes(h));
}

/** Sends raw bytes and returns the handler named in the answer's x-handler header, or the status. */
function send(port: number, method: string, target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('error', reject);
    socket.on('end', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const status = Number(text.slice(9, 12));
      const handler = /\r\nx-handler: (\w+)\r\n/i.exec(text.slice(0, text.indexOf('\r\n\r\n') + 2))?.[1];
      resolve(status === 200 && handler ? handler : `status ${status}`);
    });
    socket.end(Buffer.concat([Buffer.from(`${method} `), Buffer.from(target, 'latin1'), Buffer.from(' HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n')]));
  });
}

// PRINT_ROUTER_TABLE=1 prints what each router did with each path.
describe('forwarded paths against Fastify 5 and Express 5, measured over a socket', () => {
  let fastify: FastifyInstance;
  let expressServer: Server;
  const ports: Record<string, number> = {};

  beforeAll(async () => {
    // Both with their default options, as most APIs run them.
    fastify = Fastify();
    fastify.all('/admin/*', async (_req, reply) => reply.header('x-handler', 'admin').send('admin'));
    fastify.all('/public/*', async (_req, reply) => reply.header('x-handler', 'public').send('public'));
    fastify.get('/reports/*', async (_req, reply) => reply.header('x-handler', 'reports').send('reports'));
    fastify.all('/*', async (_req, reply) => reply.header('x-handler', 'catchall').send('catchall'));
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    ports.fastify = (fastify.server.address() as AddressInfo).port;

    const app = express();
    app.all('/admin/*splat', (_req, res) => void res.set('x-handler', 'admin').send('admin'));
    app.all('/public/*splat', (_req, res) => void res.set('x-handler', 'public').send('public'));
    app.get('/reports/*splat', (_req, res) => void res.set('x-handler', 'reports').send('reports'));
    app.use((_req, res) => void res.set('x-handler', 'catchall').send('catchall'));
    expressServer = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => expressServer.once('listening', () => resolve()));
    ports.express = (expressServer.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await fastify?.close();
    await new Promise<void>((resolve) => (expressServer ? expressServer.close(() => resolve()) : resolve()));
  });

  it(`holds at least 60 raw paths`, () => {
    expect(TABLE.length).toBeGreaterThanOrEqual(60);
    expect(new Set(TABLE.map(([p]) => p)).size).toBe(TABLE.length);
  });

  it('Keyward refuses each path or applies every rule whose handler Fastify or Express picked', async () => {
    const measured: string[] = [];
    const problems: string[] = [];
    for (const [method, raw, expected] of [...TABLE.map(([p, r]) => ['GET', p, r] as const), ...METHODS]) {
      const routed = { fastify: await send(ports.fastify!, method, raw), express: await send(ports.express!, method, raw) };
      const reading = keywardReading(method, raw);
      measured.push(`${method} ${JSON.stringify(raw)}: fastify=${routed.fastify} express=${routed.express} keyward=${Array.isArray(reading) ? `[${reading.join(',')}]` : reading}`);
      if (JSON.stringify(reading) !== JSON.stringify(expected)) problems.push(`${method} ${raw}: Keyward reads ${JSON.stringify(reading)}, the table says ${JSON.stringify(expected)}`);
      if (reading === 'refused') continue;
      for (const [router, handler] of Object.entries(routed)) {
        if (HANDLERS.includes(handler as Handler) && !reading.includes(handler as Handler)) {
          problems.push(`${method} ${raw}: ${router} routes it to ${handler}, but Keyward does not apply that rule`);
        }
      }
    }
    if (process.env.PRINT_ROUTER_TABLE) console.log(measured.join('\n'));
    expect(problems, measured.join('\n')).toEqual([]);
  });

  it('the forms the issue names reach a protected handler on at least one router, or were refused by both', async () => {
    // Not assumed: the reason each of these is refused or matched is what a router does with it.
    const seen = async (raw: string) => [await send(ports.fastify!, 'GET', raw), await send(ports.express!, 'GET', raw)];
    expect(await seen('/%61dmin/x')).toEqual(['admin', 'catchall']);
    expect(await seen('/ADMIN/x')).toEqual(['catchall', 'admin']);
    expect(await seen('/admin/%2e%2e/public/x')).toEqual(['admin', 'admin']);
    expect(await seen('/admin/.')).toEqual(['admin', 'admin']);
    expect(await send(ports.fastify!, 'HEAD', '/reports/q1')).toBe('reports');
    expect(await send(ports.express!, 'HEAD', '/reports/q1')).toBe('reports');
  });
});

/**
 * Upstreams that are more lenient than their defaults: Fastify with `ignoreTrailingSlash` and
 * `caseSensitive: false` (it lower-cases the decoded path with toLowerCase), Express as it comes
 * (non-strict routing: `/admin/` reaches the `/admin` route; case ignored). Exact routes, exact rules.
 */
const EXACT_RULES = compileRules([
  { path: '/admin', permissions: ['admin'] },
  { path: '/keys', permissions: ['keys'] },
  { path: '/settings/', permissions: ['settings'] },
]);
type ExactHandler = 'admin' | 'keys' | 'settings';
const EXACT_HANDLERS: ExactHandler[] = ['admin', 'keys', 'settings'];

const EXACT_TABLE: [string, 'refused' | ExactHandler[]][] = [
  ['/admin', ['admin']],
  ['/admin/', ['admin']],
  ['/ADMIN/', ['admin']],
  ['/admin/?x=1', ['admin']],
  ['/admin/x', []],
  ['/keys', ['keys']],
  ['/keys/', ['keys']],
  ['/settings/', ['settings']],
  ['/settings', ['settings']],
  ['/SETTINGS', ['settings']],
  // U+212A KELVIN SIGN lower-cases to "k"; U+017F LATIN SMALL LETTER LONG S upper-cases to "S";
  // U+0130 LATIN CAPITAL LETTER I WITH DOT ABOVE lower-cases to "i" and a combining dot; U+FB00
  // (ff ligature) upper-cases to "FF": refused, whatever a router folds them to.
  ['/%E2%84%AAeys', 'refused'],
  ['/%e2%84%aaEYS/', 'refused'],
  ['/%C5%BFettings', 'refused'],
  ['/adm%C4%B0n', 'refused'],
  ['/%EF%AC%80', 'refused'],
  // Non-ASCII that no case mapping turns into ASCII stays as it is, encoded.
  ['/%C3%A0dmin', []],
  ['/k%C3%A9ys', []],
];

describe('exact rules against lenient upstreams (trailing slash, case folding), measured over a socket', () => {
  let fastify: FastifyInstance;
  let expressServer: Server;
  const ports: Record<string, number> = {};

  beforeAll(async () => {
    fastify = Fastify({ ignoreTrailingSlash: true, caseSensitive: false });
    for (const h of EXACT_HANDLERS) fastify.all(`/${h}`, async (_req, reply) => reply.header('x-handler', h).send(h));
    fastify.all('/*', async (_req, reply) => reply.header('x-handler', 'catchall').send('catchall'));
    await fastify.listen({ port: 0, host: '127.0.0.1' });
    ports.fastify = (fastify.server.address() as AddressInfo).port;

    const app = express();
    for (const h of EXACT_HANDLERS) app.all(`/${h}`, (_req, res) => void res.set('x-handler', h).send(h));
    app.use((_req, res) => void res.set('x-handler', 'catchall').send('catchall'));
    expressServer = app.listen(0, '127.0.0.1');
    await new Promise<void>((resolve) => expressServer.once('listening', () => resolve()));
    ports.express = (expressServer.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await fastify?.close();
    await new Promise<void>((resolve) => (expressServer ? expressServer.close(() => resolve()) : resolve()));
  });

  it('Keyward refuses each path or applies every rule whose handler Fastify or Express picked', async () => {
    const measured: string[] = [];
    const problems: string[] = [];
    for (const [raw, expected] of EXACT_TABLE) {
      const routed = { fastify: await send(ports.fastify!, 'GET', raw), express: await send(ports.express!, 'GET', raw) };
      const read = canonicalPath(raw);
      const reading = read.ok ? EXACT_HANDLERS.filter((h) => (permissionsFor(EXACT_RULES, 'GET', read.path) ?? []).includes(h)) : 'refused';
      measured.push(`GET ${JSON.stringify(raw)}: fastify=${routed.fastify} express=${routed.express} keyward=${Array.isArray(reading) ? `[${reading.join(',')}]` : reading}`);
      if (JSON.stringify(reading) !== JSON.stringify(expected)) problems.push(`${raw}: Keyward reads ${JSON.stringify(reading)}, the table says ${JSON.stringify(expected)}`);
      if (reading === 'refused') continue;
      for (const [router, handler] of Object.entries(routed)) {
        if (EXACT_HANDLERS.includes(handler as ExactHandler) && !reading.includes(handler as ExactHandler)) {
          problems.push(`${raw}: ${router} routes it to ${handler}, but Keyward does not apply that rule`);
        }
      }
    }
    if (process.env.PRINT_ROUTER_TABLE) console.log(measured.join('\n'));
    expect(problems, measured.join('\n')).toEqual([]);
  });

  it('the forms the review names reach the protected handler on these routers', async () => {
    expect(await send(ports.fastify!, 'GET', '/admin/')).toBe('admin');
    expect(await send(ports.express!, 'GET', '/admin/')).toBe('admin');
    expect(await send(ports.fastify!, 'GET', '/%E2%84%AAeys')).toBe('keys');
  });
});
