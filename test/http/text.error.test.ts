// Text the stores cannot keep faithfully (NUL, unpaired surrogates), absurd nesting and dates that
// name no instant: a 400 naming the field, never a 500, nothing stored, nothing echoed. On both stores.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS, createKey, snapshot, startServer, world, type TestServer, type World } from '../support/harness.js';

const NUL = 'bad\u0000name';
const LONE_HIGH = 'bad\uD800name';
const LONE_LOW = 'bad\uDC00name';

/** JSON nested `depth` objects deep, as text (JSON.stringify itself would overflow building it). */
const nested = (depth: number): string => `${'{"a":'.repeat(depth)}"leaf"${'}'.repeat(depth)}`;

describe.each(DIALECTS)('text and shape limits (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  let keyId: string;
  beforeAll(async () => {
    s = await startServer({ dialect });
    w = await world(s);
    keyId = (await createKey(s, w)).id;
  });
  afterAll(async () => s.close());

  const refused = async (method: string, path: string, body: unknown, field: string, token: string | undefined = w.token) => {
    const r = await s.request(method, path, { token, body });
    expect(r.status, `${method} ${path} ${field}`).toBe(400);
    expect(r.body.code).toBe('VALIDATION_FAILED');
    expect(r.body.errors[0].path, `${method} ${path}`).toBe(field);
    for (const bad of [NUL, LONE_HIGH, LONE_LOW]) expect(r.text).not.toContain(JSON.stringify(bad).slice(1, -1));
  };

  it('NUL and unpaired surrogates in any stored field, filter or login are a 400', async () => {
    const before = await snapshot(s);
    for (const bad of [NUL, LONE_HIGH, LONE_LOW]) {
      await refused('POST', '/v1/apps', { workspaceId: w.workspaceId, name: bad }, 'body/name');
      await refused('PATCH', `/v1/apps/${w.appId}`, { name: bad }, 'body/name');
      await refused('POST', `/v1/apps/${w.appId}/keys`, { name: bad }, 'body/name');
      await refused('POST', `/v1/apps/${w.appId}/keys`, { name: 'ok', ownerId: bad }, 'body/ownerId');
      await refused('POST', `/v1/apps/${w.appId}/keys`, { name: 'ok', meta: { [bad]: 1 } }, 'body/meta');
      await refused('POST', `/v1/apps/${w.appId}/keys`, { name: 'ok', meta: { note: bad } }, 'body/meta/note');
      await refused('PATCH', `/v1/keys/${keyId}`, { permissions: [bad] }, 'body/permissions/0');
      await refused('POST', '/v1/workspaces', { name: bad }, 'body/name');
      await refused('POST', '/v1/auth/login', { email: bad, password: 'whatever password' }, 'body/email', undefined);
      await refused('PUT', `/v1/apps/${w.appId}/vault/X`, { value: bad }, 'body/value');
    }
    // A query string can carry NUL (%00); surrogates cannot be percent-encoded as UTF-8 at all.
    const q = await s.request('GET', `/v1/apps/${w.appId}/keys?q=bad%00q`, { token: w.token });
    expect(q.status).toBe(400);
    expect(q.body.errors[0].path).toBe('query/q');
    const a = await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit?action=bad%00action`, { token: w.token });
    expect(a.status).toBe(400);
    expect(await snapshot(s)).toBe(before);
  });

  it('a valid surrogate pair (an emoji) is stored and read back exactly', async () => {
    const k = await createKey(s, w, { name: 'rocket 🚀', meta: { flag: '🇺🇦' } });
    const read = await s.request('GET', `/v1/keys/${k.id}`, { token: w.token });
    expect(read.body.name).toBe('rocket 🚀');
    expect(read.body.meta).toEqual({ flag: '🇺🇦' });
  });

  it('deeply nested meta (5,000 levels) is a 400 on create and PATCH, not a stack overflow', async () => {
    const before = await snapshot(s);
    const json = { 'content-type': 'application/json' };
    const create = await s.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, raw: `{"name":"deep","meta":${nested(5000)}}`, headers: json });
    expect(create.status).toBe(400);
    expect(create.body.detail).toMatch(/nested deeper/);
    const patch = await s.request('PATCH', `/v1/keys/${keyId}`, { token: w.token, raw: `{"meta":${nested(5000)}}`, headers: json });
    expect(patch.status).toBe(400);
    expect(await snapshot(s)).toBe(before);
    expect((await s.request('PATCH', `/v1/keys/${keyId}`, { token: w.token, raw: `{"meta":${nested(10)}}`, headers: json })).status).toBe(200);
  });

  it('a date-time that names no instant (a leap second) is a 400 for usage ranges', async () => {
    for (const name of ['since', 'until']) {
      const r = await s.request('GET', `/v1/keys/${keyId}/usage?${name}=2026-06-30T23:59:60Z`, { token: w.token });
      expect(r.status, name).toBe(400);
      expect(r.body.errors[0].path).toBe(`query/${name}`);
    }
    const bad = await s.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, body: { name: 'leap', expiresAt: '2099-06-30T23:59:60Z' } });
    expect(bad.status).toBe(400);
  });
});
