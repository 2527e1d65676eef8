// Bad input: wrong types, unknown fields, bad JSON, huge bodies, bad ids, bad CIDRs → 4xx
// problem+json, never a 500, and nothing stored.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS, createKey, snapshot, startServer, world, type TestServer, type World } from '../support/harness.js';

describe.each(DIALECTS)('bad input (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  let keyId: string;
  beforeAll(async () => {
    s = await startServer({ dialect });
    w = await world(s);
    keyId = (await createKey(s, w)).id;
  });
  afterAll(async () => s.close());

  const expectProblem = (r: { status: number; headers: Headers; body: any }, status: number, code: string) => {
    expect(r.status).toBe(status);
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect(r.body).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String), detail: expect.any(String), requestId: expect.stringMatching(/^req_/) });
  };

  it('key create: every malformed body is a 400 naming the field, and nothing is stored', async () => {
    const before = await snapshot(s);
    const cases: [unknown, string][] = [
      [{}, 'body/name'],
      [{ name: 123 }, 'body/name'],
      [{ name: '' }, 'body/name'],
      [{ name: 'x', bogus: true }, 'body/bogus'],
      [{ name: 'x', environment: 'prod' }, 'body/environment'],
      [{ name: 'x', kind: 'root' }, 'body/kind'],
      [{ name: 'x', permissions: 'read' }, 'body/permissions'],
      [{ name: 'x', permissions: [1] }, 'body/permissions/0'],
      [{ name: 'x', ipAllowlist: ['10.0.0.0/33'] }, 'body/ipAllowlist/0'],
      [{ name: 'x', ipAllowlist: ['10.0.0.1', '300.1.1.1'] }, 'body/ipAllowlist/1'],
      [{ name: 'x', ipAllowlist: ['2001:db8::/129'] }, 'body/ipAllowlist/0'],
      [{ name: 'x', ipAllowlist: ['0x7f.1'] }, 'body/ipAllowlist/0'],
      [{ name: 'x', expiresAt: 'tomorrow' }, 'body/expiresAt'],
      [{ name: 'x', expiresAt: '2001-01-01T00:00:00Z' }, 'body/expiresAt'],
      [{ name: 'x', ratelimit: { limit: 0, durationMs: 1000 } }, 'body/ratelimit'],
      [{ name: 'x', ratelimit: { limit: 10 } }, 'body/ratelimit'],
      [{ name: 'x', remaining: -1 }, 'body/remaining'],
      [{ name: 'x', remaining: 1.5 }, 'body/remaining'],
      [{ name: 'x', remaining: '5' }, 'body/remaining'],
      [{ name: 'x', refill: { amount: 5, interval: 'weekly' } }, 'body/refill'],
      [{ name: 'x', meta: 'text' }, 'body/meta'],
      [{ name: 'x', meta: { big: 'x'.repeat(20_000) } }, 'body/meta'],
      [{ name: 'x', status: 'revoked' }, 'body/status'],
      [{ name: 'x'.repeat(201) }, 'body/name'],
      [[], 'body'],
      ['just a string', 'body'],
    ];
    for (const [body, path] of cases) {
      const r = await s.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, body });
      expectProblem(r, 400, 'VALIDATION_FAILED');
      expect(r.body.errors?.map((e: { path: string }) => e.path).some((p: string) => p.startsWith(path)), `${JSON.stringify(body).slice(0, 80)} → ${JSON.stringify(r.body.errors)}`).toBe(true);
    }
    expect(await snapshot(s)).toBe(before);
  });

  it('bad JSON, wrong media type, huge bodies, prototype pollution', async () => {
    const before = await snapshot(s);
    const path = `/v1/apps/${w.appId}/keys`;
    expectProblem(await s.request('POST', path, { token: w.token, raw: '{"name":', headers: { 'content-type': 'application/json' } }), 400, 'VALIDATION_FAILED');
    expectProblem(await s.request('POST', path, { token: w.token, raw: '', headers: { 'content-type': 'application/json' } }), 400, 'VALIDATION_FAILED');
    expectProblem(await s.request('POST', path, { token: w.token, raw: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expectProblem(await s.request('POST', path, { token: w.token, raw: JSON.stringify({ name: 'x', meta: { pad: 'y'.repeat(400_000) } }), headers: { 'content-type': 'application/json' } }), 413, 'PAYLOAD_TOO_LARGE');
    expectProblem(await s.request('POST', path, { token: w.token, raw: '{"name":"x","__proto__":{"admin":true}}', headers: { 'content-type': 'application/json' } }), 400, 'VALIDATION_FAILED');
    expectProblem(await s.request('POST', path, { token: w.token, raw: '{"name":"x","meta":{"constructor":{"prototype":{"a":1}}}}', headers: { 'content-type': 'application/json' } }), 400, 'VALIDATION_FAILED');
    expectProblem(await s.request('POST', '/v1/keys/verify', { raw: '{"key":', headers: { 'content-type': 'application/json' } }), 400, 'VALIDATION_FAILED');
    expectProblem(await s.request('POST', '/v1/keys/verify', { body: { key: 'x', cost: 'one' } }), 400, 'VALIDATION_FAILED');
    expectProblem(await s.request('POST', '/v1/keys/verify', { body: { key: 'x', extra: 1 } }), 400, 'VALIDATION_FAILED');
    expect(await snapshot(s)).toBe(before);
  });

  it('bad ids and unknown routes: 4xx, never 500', async () => {
    const before = await snapshot(s);
    const probes: [string, string, unknown?][] = [
      ['GET', '/v1/keys/not-a-key'],
      ['GET', `/v1/keys/${keyId}x`],
      ['GET', "/v1/keys/key_' OR 1=1 --"],
      ['PATCH', '/v1/keys/%00', { name: 'x' }],
      ['DELETE', `/v1/keys/${'k'.repeat(150)}`],
      ['GET', '/v1/apps/app_%E2%98%83'],
      ['GET', '/v1/apps?workspaceId=nope'],
      ['GET', `/v1/apps/${w.appId}/keys?limit=0`],
      ['GET', `/v1/apps/${w.appId}/keys?limit=101`],
      ['GET', `/v1/apps/${w.appId}/keys?page=-1`],
      ['GET', `/v1/apps/${w.appId}/keys?status=gone`],
      ['GET', `/v1/keys/${keyId}/usage?granularity=week`],
      ['GET', `/v1/keys/${keyId}/usage?since=yesterday`],
      ['GET', `/v1/keys/${keyId}/usage?granularity=minute&since=2020-01-01T00:00:00Z`],
      ['GET', '/v1/nope'],
      ['PUT', '/v1/keys/verify', {}],
      ['PATCH', `/v1/keys/${keyId}`, {}],
      ['POST', `/v1/keys/${keyId}/roll`, { gracePeriodMs: -5 }],
      ['POST', '/v1/apps', { workspaceId: w.workspaceId, name: 'x', keyPrefix: 'Bad_Prefix' }],
      ['POST', '/v1/apps', { workspaceId: w.workspaceId, name: 'x', keyPrefix: 'kwroot' }],
      ['POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { name: 'x', permissions: ['everything'] }],
    ];
    for (const [method, path, body] of probes) {
      const r = await s.request(method, path, { token: w.token, body });
      expect(r.status, `${method} ${path}: ${r.text}`).toBeGreaterThanOrEqual(400);
      expect(r.status, `${method} ${path}`).toBeLessThan(500);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
    }
    expect(await snapshot(s)).toBe(before);
  });
});
