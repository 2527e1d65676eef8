// /v1/forward-auth, as gateways call it: the verdict as HTTP status and headers, gateway rules,
// client addresses believed only from trusted proxies, the same answer from the fast path and the route.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, DIALECTS, snapshot, startServer, world, type TestServer, type World } from '../support/harness.js';

/** What every shipped gateway config sends about the original request. */
const forwarded = (method = 'GET', uri = '/'): Record<string, string> => ({ 'x-forwarded-method': method, 'x-forwarded-uri': uri });

describe.each(DIALECTS)('gateway forward auth (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  beforeAll(async () => {
    s = await startServer({ dialect, listen: true, env: { KEYWARD_TRUST_PROXY: '127.0.0.1' } });
    w = await world(s);
  });
  afterAll(async () => s.close());

  const ask = (headers: Record<string, string>, query = `appId=${w.appId}`, method = 'GET') =>
    fetch(`${s.url}/v1/forward-auth?${query}`, { method, headers: { ...forwarded(), ...headers } });
  const setRules = (gatewayRules: unknown[]) => s.request('PATCH', `/v1/apps/${w.appId}`, { token: w.token, body: { gatewayRules } });

  it('a valid key: 200 with the identity and RateLimit headers, for any method the gateway uses', async () => {
    const k = await createKey(s, w, { ownerId: 'customer_7', ratelimit: { limit: 100, durationMs: 60_000 } });
    for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']) {
      const r = await ask({ authorization: `Bearer ${k.key}` }, `appId=${w.appId}`, method);
      expect(r.status, method).toBe(200);
      expect(r.headers.get('x-keyward-code')).toBe('VALID');
      expect(r.headers.get('x-keyward-key-id')).toBe(k.id);
      expect(r.headers.get('x-keyward-owner-id')).toBe('customer_7');
      expect(r.headers.get('x-keyward-environment')).toBe('live');
      expect(Number(r.headers.get('ratelimit-limit'))).toBe(100);
      expect(Number(r.headers.get('ratelimit-reset'))).toBeGreaterThan(0);
    }
    const viaApiKey = await ask({ 'x-api-key': k.key });
    expect(viaApiKey.status).toBe(200);
    const noOwner = await createKey(s, w);
    const r = await ask({ authorization: `Bearer ${noOwner.key}` });
    expect(r.headers.get('x-keyward-owner-id')).toBe('');
  });

  it('missing, malformed, unknown, revoked: 401 with WWW-Authenticate and the verdict as code', async () => {
    const k = await createKey(s, w);
    await s.request('DELETE', `/v1/keys/${k.id}`, { token: w.token });
    const cases: [Record<string, string>, string][] = [
      [{}, 'MISSING_KEY'],
      [{ authorization: 'Bearer not-a-key' }, 'MALFORMED'],
      [{ authorization: `Bearer acme_live_${'A'.repeat(38)}` }, 'MALFORMED'],
      [{ authorization: `Bearer ${k.key}` }, 'REVOKED'],
    ];
    for (const [headers, code] of cases) {
      const r = await ask(headers);
      expect(r.status, code).toBe(401);
      expect(r.headers.get('www-authenticate')).toContain('Bearer');
      expect(r.headers.get('x-keyward-code')).toBe(code);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      expect(((await r.json()) as { code: string }).code).toBe(code);
    }
  });

  it('permissions, domain scope and IP: 403; the client address only through a trusted proxy', async () => {
    const k = await createKey(s, w, { permissions: ['docs.read'], resources: ['api.acme.com'], ipAllowlist: ['203.0.113.0/24'] });
    const base = { authorization: `Bearer ${k.key}`, 'x-forwarded-for': '203.0.113.9', 'x-forwarded-host': 'api.acme.com:443' };
    expect((await ask(base)).status).toBe(200);
    expect((await ask(base, `appId=${w.appId}&permissions=docs.read`)).status).toBe(200);
    const perm = await ask(base, `appId=${w.appId}&permissions=docs.read,docs.write`);
    expect(perm.status).toBe(403);
    expect(perm.headers.get('x-keyward-code')).toBe('INSUFFICIENT_PERMISSIONS');
    expect((await ask({ ...base, 'x-forwarded-host': 'evil.com' })).headers.get('x-keyward-code')).toBe('RESOURCE_FORBIDDEN');
    // The host the gateway next to Keyward set is the last one: a client's host prepended to it is not read.
    expect((await ask({ ...base, 'x-forwarded-host': 'api.acme.com, evil.com' })).headers.get('x-keyward-code')).toBe('RESOURCE_FORBIDDEN');
    expect((await ask({ ...base, 'x-forwarded-for': '198.51.100.1' })).headers.get('x-keyward-code')).toBe('IP_NOT_ALLOWED');
    // The right-most address that is not a trusted proxy is the client.
    expect((await ask({ ...base, 'x-forwarded-for': '198.51.100.1, 203.0.113.9, 127.0.0.1' })).status).toBe(200);
    expect((await ask({ ...base, 'x-forwarded-for': '203.0.113.9, 198.51.100.1' })).status).toBe(403);
    // X-Real-IP is not read: only X-Forwarded-For names the client.
    const { 'x-forwarded-for': _xff, ...noXff } = base;
    expect((await ask({ ...noXff, 'x-real-ip': '203.0.113.9' })).headers.get('x-keyward-code')).toBe('IP_NOT_ALLOWED');
  });

  it('rate limits and usage caps: 429 with Retry-After', async () => {
    const limited = await createKey(s, w, { ratelimit: { limit: 2, durationMs: 60_000 } });
    const h = { authorization: `Bearer ${limited.key}` };
    expect((await ask(h)).status).toBe(200);
    expect((await ask(h)).status).toBe(200);
    const refused = await ask(h);
    expect(refused.status).toBe(429);
    expect(refused.headers.get('x-keyward-code')).toBe('RATE_LIMITED');
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const capped = await createKey(s, w, { remaining: 1, ratelimit: null });
    expect((await ask({ authorization: `Bearer ${capped.key}` })).status).toBe(200);
    const spent = await ask({ authorization: `Bearer ${capped.key}` });
    expect(spent.status).toBe(429);
    expect(spent.headers.get('x-keyward-code')).toBe('USAGE_EXCEEDED');
  });

  it('gateway rules add permissions by method and path; a change applies at once', async () => {
    const reader = await createKey(s, w, { permissions: ['docs.read'] });
    const h = (method: string, uri: string) => ({ authorization: `Bearer ${reader.key}`, ...forwarded(method, uri) });
    expect((await ask(h('POST', '/docs/1'))).status).toBe(200);
    const set = await setRules([
      { methods: ['POST', 'PUT', 'DELETE'], path: '/docs/*', permissions: ['docs.write'] },
      { path: '/docs/*', permissions: ['docs.read'] },
    ]);
    expect(set.status).toBe(200);
    expect(set.body.gatewayRules).toHaveLength(2);
    expect((await ask(h('GET', '/docs/1?x=/y'))).status).toBe(200);
    const write = await ask(h('POST', '/docs/1'));
    expect(write.status).toBe(403);
    expect(write.headers.get('x-keyward-code')).toBe('INSUFFICIENT_PERMISSIONS');
    expect((await ask(h('POST', '/other'))).status).toBe(200);
    await setRules([]);
    expect((await ask(h('POST', '/docs/1'))).status).toBe(200);
  });

  it('every matching rule applies, paths match case-insensitively after decoding, and a GET rule covers HEAD', async () => {
    await setRules([
      { path: '/admin/*', permissions: ['admin'] },
      { methods: ['DELETE'], path: '/admin/*/secrets*', permissions: ['secrets.delete'] },
      { methods: ['GET'], path: '/reports/*', permissions: ['reports.read'] },
    ]);
    const admin = await createKey(s, w, { permissions: ['admin'] });
    const both = await createKey(s, w, { permissions: ['admin', 'secrets.delete'] });
    const plain = await createKey(s, w);
    const code = async (key: string, method: string, uri: string) => (await ask({ authorization: `Bearer ${key}`, ...forwarded(method, uri) })).headers.get('x-keyward-code');
    // Both rules match DELETE /admin/x/secrets: the first rule alone (first match wins) let it through.
    expect(await code(admin.key, 'DELETE', '/admin/x/secrets')).toBe('INSUFFICIENT_PERMISSIONS');
    expect(await code(both.key, 'DELETE', '/admin/x/secrets')).toBe('VALID');
    expect(await code(admin.key, 'GET', '/admin/x/secrets')).toBe('VALID');
    // Spellings that Fastify or Express route to /admin/*.
    for (const uri of ['/ADMIN/x', '/Admin/x', '/%61dmin/x', '/%41DMIN/x', '/adm%69n/x?y=1']) {
      expect(await code(plain.key, 'GET', uri), uri).toBe('INSUFFICIENT_PERMISSIONS');
      expect(await code(admin.key, 'GET', uri), uri).toBe('VALID');
    }
    // Methods arrive in any case and are read upper-case; HEAD is what routers answer with GET handlers.
    expect(await code(plain.key, 'delete', '/admin/x/secrets')).toBe('INSUFFICIENT_PERMISSIONS');
    expect(await code(plain.key, 'HEAD', '/reports/q1')).toBe('INSUFFICIENT_PERMISSIONS');
    expect(await code(plain.key, 'GET', '/reports/q1')).toBe('INSUFFICIENT_PERMISSIONS');
    expect(await code(plain.key, 'POST', '/reports/q1')).toBe('VALID');
    await setRules([]);
  });

  it('the original request comes only from X-Forwarded-Method and X-Forwarded-Uri; without them, 400', async () => {
    await setRules([{ methods: ['DELETE'], path: '/admin/*', permissions: ['admin'] }]);
    const k = await createKey(s, w);
    const auth = { authorization: `Bearer ${k.key}` };
    // A client's X-Original-* (which nginx passes into its auth subrequest) cannot steer the rules.
    const spoofed = await ask({ ...auth, ...forwarded('DELETE', '/admin/secret'), 'x-original-method': 'GET', 'x-original-uri': '/public' });
    expect(spoofed.status).toBe(403);
    expect(spoofed.headers.get('x-keyward-code')).toBe('INSUFFICIENT_PERMISSIONS');
    const direct = (headers: Record<string, string>) => fetch(`${s.url}/v1/forward-auth?appId=${w.appId}`, { headers: { ...auth, ...headers } });
    for (const headers of [{}, { 'x-forwarded-method': 'DELETE' }, { 'x-forwarded-uri': '/admin/secret' }, { 'x-original-method': 'DELETE', 'x-original-uri': '/admin/secret' }] as Record<string, string>[]) {
      const r = await direct(headers);
      expect(r.status, JSON.stringify(headers)).toBe(400);
      expect(r.headers.get('x-keyward-code')).toBe('MISSING_FORWARDED_REQUEST');
      expect(r.headers.get('content-type')).toContain('application/problem+json');
    }
    // Two values (a gateway that appends instead of replacing) are not one request: refused.
    expect((await direct({ 'x-forwarded-method': 'GET, DELETE', 'x-forwarded-uri': '/admin/secret' })).status).toBe(400);
    await setRules([]);
  });

  it('forms routers disagree on are 400 MALFORMED_PATH, a URI over 8 KB is 414; neither charges the key or echoes the path', async () => {
    const capped = await createKey(s, w, { remaining: 5, ratelimit: null });
    const bad = ['/x/../admin/x', '/admin/./x', '//admin/x', '/admin//x', '/admin;v=1/x', '/%2e/admin/x', '/%2E%2E/admin/x', '/public/.%2e/admin',
      '/admin%2Fx', '/admin%2fx', '/admin%5Cx', '/admin\\x', '/admin%00/x', '/adm%zzin/x', '/admin/%', '/admin/%4', '/admin/x#y', 'admin/x', '*', '/é/x'];
    for (const uri of bad) {
      const r = await fetch(`${s.url}/v1/forward-auth?appId=${w.appId}`, { headers: { authorization: `Bearer ${capped.key}`, 'x-forwarded-method': 'GET', 'x-forwarded-uri': encodeURI(uri) === uri ? uri : Buffer.from(uri).toString('latin1') } });
      expect(r.status, uri).toBe(400);
      expect(r.headers.get('x-keyward-code'), uri).toBe('MALFORMED_PATH');
      const body = await r.text();
      expect(body).not.toContain('admin');
    }
    const long = await ask({ authorization: `Bearer ${capped.key}`, ...forwarded('GET', `/docs/${'a'.repeat(8200)}`) });
    expect(long.status).toBe(414);
    expect(long.headers.get('x-keyward-code')).toBe('URI_TOO_LONG');
    expect(long.headers.get('content-type')).toContain('application/problem+json');
    expect(await long.text()).not.toContain('aaaa');
    // Exactly 8 KB is read.
    expect((await ask({ authorization: `Bearer ${capped.key}`, ...forwarded('GET', `/docs/${'a'.repeat(8192 - 6)}`) })).status).toBe(200);
    const key = await s.request('GET', `/v1/keys/${capped.id}`, { token: w.token });
    expect(key.body.remaining).toBe(4);
  });

  it('the app in the path (/v1/forward-auth/{appId}/…): the client\'s appended path and query are never read', async () => {
    const capped = await createKey(s, w, { remaining: 3, ratelimit: null });
    const other = await s.request('POST', '/v1/apps', { token: w.token, body: { workspaceId: w.workspaceId, name: 'Other', keyPrefix: 'other' } });
    // What Envoy sends for a client request `/public?x=1&cost=0&appId=<other app>`.
    const url = `${s.url}/v1/forward-auth/${w.appId}/public?x=1&cost=0&appId=${other.body.id}&permissions=none`;
    const r = await fetch(url, { headers: { authorization: `Bearer ${capped.key}`, ...forwarded('GET', `/public?x=1&cost=0&appId=${other.body.id}`) } });
    expect(r.status).toBe(200);
    const key = await s.request('GET', `/v1/keys/${capped.id}`, { token: w.token });
    expect(key.body.remaining).toBe(2);
    expect((await fetch(`${s.url}/v1/forward-auth/${w.appId}`, { headers: { authorization: `Bearer ${capped.key}`, ...forwarded() } })).status).toBe(200);
    const badApp = await fetch(`${s.url}/v1/forward-auth/nope/public`, { headers: { authorization: `Bearer ${capped.key}`, ...forwarded() } });
    expect(badApp.status).toBe(400);
    // Another app's id in the path: the key is not one of its keys.
    expect((await fetch(`${s.url}/v1/forward-auth/${other.body.id}/x`, { headers: { authorization: `Bearer ${capped.key}`, ...forwarded() } })).headers.get('x-keyward-code')).toBe('NOT_FOUND');
    const routed = await s.app.inject({ method: 'GET', url: `/v1/forward-auth/${w.appId}/public?cost=0`, headers: { authorization: `Bearer ${capped.key}`, ...forwarded() } });
    expect(routed.statusCode).toBe(200);
    expect((await s.request('GET', `/v1/keys/${capped.id}`, { token: w.token })).body.remaining).toBe(0);
  });

  it('rules on PATCH: at most 8 wildcards and 100 rules, and no path that can never match; a refusal changes nothing', async () => {
    await setRules([{ path: '/keep/*', permissions: ['keep'] }]);
    const before = await snapshot(s);
    const cases: [unknown[], string][] = [
      [[{ path: `/${'*/'.repeat(9)}x`, permissions: ['p'] }], 'body/gatewayRules/0/path'],
      [Array.from({ length: 101 }, (_, i) => ({ path: `/r${i}/*`, permissions: ['p'] })), 'body/gatewayRules'],
      [[{ path: '/ok/*', permissions: ['p'] }, { path: '/a/../b/*', permissions: ['p'] }], 'body/gatewayRules/1/path'],
      [[{ path: '/a//b', permissions: ['p'] }], 'body/gatewayRules/0/path'],
      [[{ path: '/a;b/*', permissions: ['p'] }], 'body/gatewayRules/0/path'],
    ];
    for (const [rules, where] of cases) {
      const r = await setRules(rules);
      expect(r.status, where).toBe(400);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      expect(JSON.stringify(r.body), where).toContain(where.split('/').slice(0, 2).join('/'));
    }
    const created = await s.request('POST', '/v1/apps', { token: w.token, body: { workspaceId: w.workspaceId, name: 'Too many', gatewayRules: [{ path: `/${'*'.repeat(9)}`, permissions: ['p'] }] } });
    expect(created.status).toBe(400);
    expect(await snapshot(s)).toBe(before);
    expect((await setRules([{ path: `/${'*/'.repeat(8)}x`, permissions: ['p'] }])).status).toBe(200);
    expect((await setRules(Array.from({ length: 100 }, (_, i) => ({ path: `/r${i}/*`, permissions: ['p'] })))).status).toBe(200);
    await setRules([]);
  });

  it('rules stored before the limits keep working with the new matcher', async () => {
    // 150 rules, one with 20 wildcards and one that upper-cases: written as an older version stored them.
    const rules = [
      ...Array.from({ length: 148 }, (_, i) => ({ path: `/r${i}/*`, permissions: [`r${i}`] })),
      { path: `/deep${'/*'.repeat(20)}`, permissions: ['deep'] },
      { path: '/Legacy/*', permissions: ['legacy'] },
    ];
    await s.deps.store.db.updateTable('apps').set({ gateway_rules: JSON.stringify(rules) }).where('id', '=', w.appId).execute();
    s.deps.services.bus.appChanged(w.appId, w.workspaceId);
    const k = await createKey(s, w, { permissions: ['r147', 'deep'] });
    const code = async (uri: string) => (await ask({ authorization: `Bearer ${k.key}`, ...forwarded('GET', uri) })).headers.get('x-keyward-code');
    expect(await code('/r147/x')).toBe('VALID');
    expect(await code('/r3/x')).toBe('INSUFFICIENT_PERMISSIONS');
    expect(await code(`/deep${'/a'.repeat(20)}`)).toBe('VALID');
    expect(await code('/legacy/x')).toBe('INSUFFICIENT_PERMISSIONS');
    const app = await s.request('GET', `/v1/apps/${w.appId}`, { token: w.token });
    expect(app.status).toBe(200);
    expect(app.body.gatewayRules).toHaveLength(150);
    await setRules([]);
  });

  it('scope: appId, or a root key with keys:verify in X-Keyward-Root-Key; the route answers like the fast path', async () => {
    const k = await createKey(s, w);
    expect((await ask({ authorization: `Bearer ${k.key}` }, '')).status).toBe(400);
    const verifier = (await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'gw', permissions: ['keys:verify'] } })).body.key;
    const weak = (await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'weak', permissions: ['keys:read'] } })).body.key;
    expect((await ask({ authorization: `Bearer ${k.key}`, 'x-keyward-root-key': verifier }, '')).status).toBe(200);
    expect((await ask({ authorization: `Bearer ${k.key}`, 'x-keyward-root-key': weak }, '')).status).toBe(403);
    expect((await ask({ authorization: `Bearer ${k.key}` }, 'appId=nope')).status).toBe(400);
    const routed = await s.app.inject({ method: 'GET', url: `/v1/forward-auth?appId=${w.appId}`, headers: { authorization: `Bearer ${k.key}`, ...forwarded() } });
    expect(routed.statusCode).toBe(200);
    expect(routed.headers['x-keyward-key-id']).toBe(k.id);
    const malformed = await s.app.inject({ method: 'GET', url: `/v1/forward-auth?appId=${w.appId}`, headers: { authorization: `Bearer ${k.key}`, ...forwarded('GET', '/a/../b') } });
    expect(malformed.statusCode).toBe(400);
    expect(malformed.headers['x-keyward-code']).toBe('MALFORMED_PATH');
  });
});

describe('gateway forward auth without a trusted proxy', () => {
  it('X-Forwarded-For is ignored: a key with an allowlist is refused (fails closed)', async () => {
    const s = await startServer({ listen: true });
    try {
      const w = await world(s);
      const k = await createKey(s, w, { ipAllowlist: ['203.0.113.0/24'] });
      const r = await fetch(`${s.url}/v1/forward-auth?appId=${w.appId}`, { headers: { authorization: `Bearer ${k.key}`, ...forwarded(), 'x-forwarded-for': '203.0.113.9' } });
      expect(r.status).toBe(403);
      expect(r.headers.get('x-keyward-code')).toBe('IP_NOT_ALLOWED');
    } finally {
      await s.close();
    }
  });
});
