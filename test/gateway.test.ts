// /v1/forward-auth, as gateways call it: the verdict as HTTP status and headers, gateway rules,
// client addresses believed only from trusted proxies, the same answer from the fast path and the route.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, DIALECTS, startServer, world, type TestServer, type World } from './harness.js';

describe.each(DIALECTS)('gateway forward auth (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  beforeAll(async () => {
    s = await startServer({ dialect, listen: true, env: { KEYWARD_TRUST_PROXY: '127.0.0.1' } });
    w = await world(s);
  });
  afterAll(async () => s.close());

  const ask = (headers: Record<string, string>, query = `appId=${w.appId}`, method = 'GET') =>
    fetch(`${s.url}/v1/forward-auth?${query}`, { method, headers });

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
    expect((await ask({ ...base, 'x-forwarded-for': '198.51.100.1' })).headers.get('x-keyward-code')).toBe('IP_NOT_ALLOWED');
    // The right-most address that is not a trusted proxy is the client.
    expect((await ask({ ...base, 'x-forwarded-for': '198.51.100.1, 203.0.113.9, 127.0.0.1' })).status).toBe(200);
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
    const h = (method: string, uri: string) => ({ authorization: `Bearer ${reader.key}`, 'x-forwarded-method': method, 'x-forwarded-uri': uri });
    expect((await ask(h('POST', '/docs/1'))).status).toBe(200);
    const set = await s.request('PATCH', `/v1/apps/${w.appId}`, { token: w.token, body: { gatewayRules: [
      { methods: ['POST', 'PUT', 'DELETE'], path: '/docs/*', permissions: ['docs.write'] },
      { path: '/docs/*', permissions: ['docs.read'] },
    ] } });
    expect(set.status).toBe(200);
    expect(set.body.gatewayRules).toHaveLength(2);
    expect((await ask(h('GET', '/docs/1?x=/y'))).status).toBe(200);
    const write = await ask(h('POST', '/docs/1'));
    expect(write.status).toBe(403);
    expect(write.headers.get('x-keyward-code')).toBe('INSUFFICIENT_PERMISSIONS');
    expect((await ask(h('POST', '/other'))).status).toBe(200);
    await s.request('PATCH', `/v1/apps/${w.appId}`, { token: w.token, body: { gatewayRules: [] } });
    expect((await ask(h('POST', '/docs/1'))).status).toBe(200);
  });

  it('scope: appId, or a root key with keys:verify in X-Keyward-Root-Key; the route answers like the fast path', async () => {
    const k = await createKey(s, w);
    expect((await ask({ authorization: `Bearer ${k.key}` }, '')).status).toBe(400);
    const verifier = (await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'gw', permissions: ['keys:verify'] } })).body.key;
    const weak = (await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'weak', permissions: ['keys:read'] } })).body.key;
    expect((await ask({ authorization: `Bearer ${k.key}`, 'x-keyward-root-key': verifier }, '')).status).toBe(200);
    expect((await ask({ authorization: `Bearer ${k.key}`, 'x-keyward-root-key': weak }, '')).status).toBe(403);
    expect((await ask({ authorization: `Bearer ${k.key}` }, 'appId=nope')).status).toBe(400);
    const routed = await s.app.inject({ method: 'GET', url: `/v1/forward-auth?appId=${w.appId}`, headers: { authorization: `Bearer ${k.key}` } });
    expect(routed.statusCode).toBe(200);
    expect(routed.headers['x-keyward-key-id']).toBe(k.id);
  });
});

describe('gateway forward auth without a trusted proxy', () => {
  it('X-Forwarded-For is ignored: a key with an allowlist is refused (fails closed)', async () => {
    const s = await startServer({ listen: true });
    try {
      const w = await world(s);
      const k = await createKey(s, w, { ipAllowlist: ['203.0.113.0/24'] });
      const r = await fetch(`${s.url}/v1/forward-auth?appId=${w.appId}`, { headers: { authorization: `Bearer ${k.key}`, 'x-forwarded-for': '203.0.113.9', 'x-real-ip': '203.0.113.9' } });
      expect(r.status).toBe(403);
      expect(r.headers.get('x-keyward-code')).toBe('IP_NOT_ALLOWED');
    } finally {
      await s.close();
    }
  });
});
