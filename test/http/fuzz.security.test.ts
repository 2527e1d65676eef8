// Property-based fuzzing of every route in the OpenAPI spec and of verify: random and malicious
// bodies, query strings, path ids and headers never produce a 500, and a refusal changes no row.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../src/errors.js';
import { VERIFY_CODES } from '../../src/verify/codes.js';
import { DIALECTS, createKey, snapshot, startServer, world, type TestServer, type World } from '../support/harness.js';

const NASTY = [
  '', ' ', '\u0000', 'null', 'undefined', '__proto__', 'constructor', 'prototype', "' OR 1=1 --", '"; DROP TABLE keys; --',
  '\ud800 lone', 'x\udc00', '../../etc/passwd', '%00', '%2e%2e%2f', '{"$gt":""}', '<script>alert(1)</script>', '\u202e\u0000\ud83d\ude00', 'ｆｕｌｌｗｉｄｔｈ',
  'a'.repeat(5000), '-1', '0', '1e309', 'NaN', 'true', '[]', '{}', 'key_AAAAAAAAAAAAAAAAAAAA', 'app_AAAAAAAAAAAAAAAAAAAA',
];

/** A URL carries UTF-8 only: a lone surrogate cannot be sent in one, so it goes as U+FFFD. */
const toUrlText = (v: string): string => v.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');
const nastyString = fc.oneof(fc.constantFrom(...NASTY), fc.string({ maxLength: 40 }), fc.string({ unit: 'grapheme', maxLength: 20 }));
const nastyKey = fc.oneof(fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'name', 'permissions', 'meta', 'value', 'workspaceId'), fc.string({ maxLength: 12 }));
const nastyValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small' },
    nastyString, fc.integer(), fc.double(), fc.boolean(), fc.constant(null),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(nastyKey, tie('value'), { maxKeys: 4 }),
  ),
})).value;

interface Op {
  method: string;
  path: string;
  params: string[];
  bodyProps: string[];
}

describe.each(DIALECTS)('fuzzing every route (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  let ids: Record<string, string>;
  let ops: Op[];
  beforeAll(async () => {
    s = await startServer({ dialect, env: { KEYWARD_SLASH_SIGNING_SECRET: 'x', KEYWARD_LEAK_PUBLIC_KEYS: '[]' }, listen: true });
    w = await world(s);
    const k = await createKey(s, w, { permissions: ['a'] });
    await s.request('PUT', `/v1/apps/${w.appId}/vault/SECRET`, { token: w.token, body: { value: 'v' } });
    const root = await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'r', permissions: ['*'] } });
    ids = { id: w.workspaceId, appId: w.appId, keyId: k.id, userId: w.userId, name: 'SECRET', rootKeyId: root.body.id };
    const spec = (await s.request('GET', '/openapi.json')).body as { paths: Record<string, Record<string, { requestBody?: { content?: Record<string, { schema?: { properties?: Record<string, unknown> } }> } }>> };
    ops = Object.entries(spec.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({
      method: method.toUpperCase(),
      path,
      params: [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!),
      bodyProps: Object.keys(op.requestBody?.content?.['application/json']?.schema?.properties ?? {}),
    })))
      // Endless streams and the caller's own logout are not for a fuzzer.
      .filter((op) => !['/v1/keys/changes', '/v1/auth/logout'].includes(op.path));
  });
  afterAll(async () => s.close());

  it('covers the routes of the spec', () => {
    expect(ops.length).toBeGreaterThan(30);
  });

  it('no input to any route yields a 500, and every refusal is problem+json that changed nothing', async () => {
    let baseline = await snapshot(s);
    const seen = new Map<number, number>();
    for (const op of ops) {
      const realIds = op.method === 'DELETE' ? fc.constant(undefined) : fc.constant('real');
      await fc.assert(fc.asyncProperty(
        fc.record({
          ids: fc.array(fc.oneof(realIds, nastyString), { minLength: op.params.length, maxLength: op.params.length }),
          query: fc.dictionary(fc.oneof(fc.constantFrom('page', 'limit', 'workspaceId', 'q', 'status', 'since', 'granularity', 'ownerId', '__proto__'), nastyKey), nastyString, { maxKeys: 3 }),
          body: fc.oneof(
            nastyValue,
            fc.record(Object.fromEntries(op.bodyProps.map((p) => [p, nastyValue])), { requiredKeys: [] }),
            fc.constantFrom('{"__proto__":{"polluted":1}}', '{"a":', '[1,2', '\u0000', '{"constructor":{"prototype":{"x":1}}}'),
          ),
          contentType: fc.constantFrom('application/json', 'application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=utf-16'),
          auth: fc.constantFrom('owner', 'owner', 'none', 'garbage'),
        }),
        async (input) => {
          let path = op.path;
          op.params.forEach((name, i) => {
            const v = input.ids[i];
            path = path.replace(`{${name}}`, encodeURIComponent(toUrlText(v === 'real' ? ids[name] ?? 'x' : v === undefined ? `${name}_AAAAAAAAAAAAAAAAAAAA` : String(v))) || 'x');
          });
          const qs = new URLSearchParams(Object.fromEntries(Object.entries(input.query as Record<string, string>).map(([k, v]) => [toUrlText(k), toUrlText(String(v))]))).toString();
          const payload = typeof input.body === 'string' && input.body.startsWith('{') || input.body === '\u0000' || input.body === '[1,2' ? input.body as string : JSON.stringify(input.body);
          const headers: Record<string, string> = { 'content-type': input.contentType };
          if (input.auth === 'owner') headers.authorization = `Bearer ${w.token}`;
          if (input.auth === 'garbage') headers.authorization = 'Bearer \u0000garbage';
          const res = await s.app.inject({ method: op.method as 'GET', url: qs ? `${path}?${qs}` : path, headers, ...(op.method === 'GET' || op.method === 'DELETE' ? {} : { payload }) });
          seen.set(res.statusCode, (seen.get(res.statusCode) ?? 0) + 1);
          expect(res.statusCode, `${op.method} ${path} ${payload.slice(0, 200)} → ${res.body.slice(0, 300)}`).toBeLessThan(500);
          if (res.statusCode >= 400) {
            expect(res.headers['content-type']).toContain('application/problem+json');
            // Forward auth answers a refused key with the verdict itself as the code. A HEAD answer
            // carries the problem's headers but, by HTTP, no body.
            const known = op.path.startsWith('/v1/forward-auth') ? [...Object.keys(ERROR_CODES), ...VERIFY_CODES, 'MISSING_KEY'] : Object.keys(ERROR_CODES);
            if (op.method !== 'HEAD') expect(known).toContain(JSON.parse(res.body).code);
            const now = await snapshot(s);
            expect(now === baseline, `${op.method} ${path} was refused (${res.statusCode}) but changed stored data`).toBe(true);
          } else {
            baseline = await snapshot(s);
          }
        },
      ), { numRuns: Number(process.env.FUZZ_RUNS ?? 25), seed: Number(process.env.FUZZ_SEED ?? 42) });
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // The fuzzer reached past validation as well as being refused by it.
    for (const status of [200, 400, 401, 404]) expect(seen.get(status) ?? 0, `status ${status} seen`).toBeGreaterThan(0);
  }, 240_000);

  it('verify answers the same over a socket (fast path) and through the route, whatever the media type', async () => {
    const key = (await createKey(s, w)).key;
    const body = JSON.stringify({ key, appId: w.appId });
    for (const type of ['application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/json; charset=utf-16', 'text/plain', 'application/x-www-form-urlencoded', 'application/jsonp']) {
      const viaSocket = await s.request('POST', '/v1/keys/verify', { raw: body, headers: { 'content-type': type } });
      const viaRoute = await s.app.inject({ method: 'POST', url: '/v1/keys/verify', payload: body, headers: { 'content-type': type } });
      expect(viaSocket.status, type).toBe(viaRoute.statusCode);
      expect(viaSocket.status, type).toBeLessThan(500);
    }
    for (const url of ['/v1/keys/verify?x=1', '/v1/keys/verify/']) {
      expect((await s.request('POST', url, { body: { key, appId: w.appId } })).body.code).toBe('VALID');
    }
  });

  it('verify: any body is a verdict (200) or a 400 problem, never a 500', async () => {
    const key = (await createKey(s, w)).key;
    await fc.assert(fc.asyncProperty(
      fc.record({
        key: fc.oneof(nastyString, fc.constant(key), fc.constant(key.slice(0, -1) + 'x')),
        authorization: fc.oneof(nastyString, fc.constant(`Bearer ${key}`), fc.constant('Basic ' + Buffer.from('key_AAAAAAAAAAAAAAAAAAAA:x').toString('base64')), fc.constant('Bearer a.b.c'), fc.constant('Bearer eyJhbGciOiJub25lIn0.e30.')),
        permissions: fc.array(nastyString, { maxLength: 3 }),
        resource: nastyString, ip: fc.oneof(nastyString, fc.ipV4(), fc.ipV6()), cost: fc.oneof(fc.integer(), fc.double(), nastyString),
        appId: fc.oneof(nastyString, fc.constant(w.appId)), extra: nastyValue,
      }, { requiredKeys: [] }),
      async (body) => {
        // Over a real socket verify takes the fast path; through inject, the Fastify route. Both
        // must give the same answer to the same input.
        const viaSocket = await s.request('POST', '/v1/keys/verify', { raw: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
        const viaRoute = await s.app.inject({ method: 'POST', url: '/v1/keys/verify', payload: body as object });
        expect(viaSocket.status, viaSocket.text).not.toBeGreaterThanOrEqual(500);
        expect(viaSocket.status, `${JSON.stringify(body).slice(0, 200)}: ${viaSocket.text} vs ${viaRoute.body}`).toBe(viaRoute.statusCode);
        const answer = viaSocket.body;
        if (viaSocket.status === 200) {
          expect(VERIFY_CODES).toContain(answer.code);
          expect(answer.code).toBe(JSON.parse(viaRoute.body).code);
        } else {
          expect(['VALIDATION_FAILED', 'VERIFY_SCOPE_REQUIRED']).toContain(answer.code);
          expect(viaSocket.headers.get('content-type')).toContain('application/problem+json');
        }
      },
    ), { numRuns: Number(process.env.FUZZ_RUNS ?? 25) * 12, seed: 7 });
  }, 120_000);
});
