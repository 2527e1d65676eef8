// Verify is scoped to a tenant: `appId`, or a root key with keys:verify. A key of another app or
// workspace is NOT_FOUND exactly like a missing one; prefixes name one tenant; cost 0 and dryRun
// change nothing they promise not to.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DIALECTS, createKey, prefixOf, startServer, tagOf, verify, world, type TestServer, type World } from '../support/harness.js';

describe.each(DIALECTS)('verify scope (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  let other: { token: string; workspaceId: string; appId: string };
  beforeAll(async () => {
    s = await startServer({ dialect });
  });
  afterAll(async () => s.close());
  beforeEach(async () => {
    w = await world(s);
    // Another tenant on the same instance: its own workspace and app.
    const ws = (await s.request('POST', '/v1/workspaces', { token: w.token, body: { name: 'Other tenant' } })).body.id;
    const app = (await s.request('POST', '/v1/apps', { token: w.token, body: { workspaceId: ws, name: 'Other API', keyPrefix: prefixOf(w, 'other') } })).body.id;
    other = { token: w.token, workspaceId: ws, appId: app };
  });

  const rootKey = async (workspaceId: string, permissions: string[]) =>
    (await s.request('POST', `/v1/workspaces/${workspaceId}/root-keys`, { token: w.token, body: { name: 'verifier', permissions } })).body as { id: string; key: string };

  it('without appId or a verify root key the answer is 400 VERIFY_SCOPE_REQUIRED, on the fast path and the route', async () => {
    const k = await createKey(s, w, { permissions: ['*'] });
    const viaApi = await s.request('POST', '/v1/keys/verify', { body: { key: k.key } });
    expect(viaApi.status).toBe(400);
    expect(viaApi.body.code).toBe('VERIFY_SCOPE_REQUIRED');
    expect(viaApi.text).not.toContain(k.key);
    const viaRoute = await s.app.inject({ method: 'POST', url: '/v1/keys/verify', payload: { key: k.key } });
    expect(viaRoute.statusCode).toBe(400);
    expect(JSON.parse(viaRoute.body).code).toBe('VERIFY_SCOPE_REQUIRED');
  });

  it("another tenant's key is NOT_FOUND, exactly like a missing key, whatever its owner or permissions", async () => {
    const theirs = (await s.request('POST', `/v1/apps/${other.appId}/keys`, { token: other.token, body: { name: 'theirs', permissions: ['*'], ownerId: 'user_1' } })).body.key as string;
    expect(await verify(s, { key: theirs, appId: w.appId })).toEqual({ valid: false, code: 'NOT_FOUND' });
    const missing = `${w.keyPrefix}_live_${'A'.repeat(32)}`;
    const ours = await createKey(s, w);
    expect((await verify(s, { key: ours.key })).code).toBe('VALID');
    expect((await verify(s, { key: theirs, appId: other.appId })).code).toBe('VALID');
    expect((await verify(s, { key: missing.slice(0, -6) + missing.slice(-6) })).valid).toBe(false);
  });

  it('a root key with keys:verify accepts any key of its workspace and nothing else; appId narrows it', async () => {
    const verifier = await rootKey(w.workspaceId, ['keys:verify']);
    const second = (await s.request('POST', '/v1/apps', { token: w.token, body: { workspaceId: w.workspaceId, name: 'Second', keyPrefix: prefixOf(w, 'second') } })).body.id as string;
    const a = await createKey(s, w);
    const b = (await s.request('POST', `/v1/apps/${second}/keys`, { token: w.token, body: { name: 'b' } })).body.key as string;
    const theirs = (await s.request('POST', `/v1/apps/${other.appId}/keys`, { token: other.token, body: { name: 'theirs' } })).body.key as string;
    const auth = { headers: { authorization: `Bearer ${verifier.key}` } };
    expect((await verify(s, { key: a.key, appId: undefined }, auth)).code).toBe('VALID');
    expect((await verify(s, { key: b, appId: undefined }, auth)).code).toBe('VALID');
    expect((await verify(s, { key: theirs, appId: undefined }, auth)).code).toBe('NOT_FOUND');
    expect((await verify(s, { key: b, appId: w.appId }, auth)).code).toBe('NOT_FOUND');
    // The same root key through Fastify's route (inject) and the fast path (socket) agrees.
    const routed = await s.app.inject({ method: 'POST', url: '/v1/keys/verify', payload: { key: b }, headers: auth.headers });
    expect(JSON.parse(routed.body).code).toBe('VALID');
  });

  it('a root key without keys:verify is 403, a revoked or unknown one 401; revocation holds at once', async () => {
    const k = await createKey(s, w);
    const weak = await rootKey(w.workspaceId, ['keys:read']);
    const strong = await rootKey(w.workspaceId, ['*']);
    const ask = (token: string) => s.request('POST', '/v1/keys/verify', { body: { key: k.key }, headers: { authorization: `Bearer ${token}` } });
    expect((await ask(weak.key)).status).toBe(403);
    expect((await ask(strong.key)).body.code).toBe('VALID');
    expect((await s.request('DELETE', `/v1/root-keys/${strong.id}`, { token: w.token })).status).toBe(204);
    const revoked = await ask(strong.key);
    expect(revoked.status).toBe(401);
    expect(revoked.text).not.toContain(strong.key);
    expect((await ask(`kwroot_live_${'B'.repeat(38)}`)).status).toBe(401);
  });

  it('prefixes are unique across the instance: 409 PREFIX_TAKEN when asked for, numbered when derived', async () => {
    const taken = await s.request('POST', '/v1/apps', { token: w.token, body: { workspaceId: other.workspaceId, name: 'Copycat', keyPrefix: w.keyPrefix } });
    expect(taken.status).toBe(409);
    expect(taken.body.code).toBe('PREFIX_TAKEN');
    const renamed = await s.request('PATCH', `/v1/apps/${other.appId}`, { token: w.token, body: { keyPrefix: w.keyPrefix } });
    expect(renamed.body.code).toBe('PREFIX_TAKEN');
    // A name of this test's own (a derived prefix is the name's first 8 letters and digits): 'Billing', or 'Billw<n>' in a server's n-th world.
    const name = tagOf(w) ? prefixOf(w, 'Bill') : 'Billing';
    const base = name.toLowerCase();
    const first = (await s.request('POST', '/v1/apps', { token: w.token, body: { workspaceId: w.workspaceId, name } })).body;
    const second = (await s.request('POST', '/v1/apps', { token: w.token, body: { workspaceId: other.workspaceId, name } })).body;
    expect(first.keyPrefix).toBe(base);
    expect(second.keyPrefix).toBe(`${base}2`);
  });

  it('cost 0 checks without charging; dryRun also leaves rate limits, analytics and last use alone', async () => {
    const k = await createKey(s, w, { remaining: 2, ratelimit: { limit: 2, durationMs: 60_000 } });
    // Dry runs count nothing: the window still has both requests left.
    for (let i = 0; i < 5; i++) expect(await verify(s, { key: k.key, dryRun: true })).toMatchObject({ code: 'VALID', remaining: 2, ratelimit: { remaining: 2 } });
    expect(await verify(s, { key: k.key, cost: 0 })).toMatchObject({ code: 'VALID', remaining: 2, ratelimit: { remaining: 1 } });
    expect(await verify(s, { key: k.key })).toMatchObject({ code: 'VALID', remaining: 1, ratelimit: { remaining: 0 } });
    // The rate limit is now spent (cost 0 counts a request; a dry run does not).
    expect((await verify(s, { key: k.key, dryRun: true })).code).toBe('RATE_LIMITED');
    await s.deps.usage.flush();
    const usage = await s.request('GET', `/v1/keys/${k.id}/usage?granularity=day`, { token: w.token });
    const counted = usage.body.data.reduce((n: number, b: { total: number }) => n + b.total, 0);
    expect(counted).toBe(2);
    expect((await s.request('GET', `/v1/keys/${k.id}`, { token: w.token })).body.lastUsedAt).not.toBeNull();
    expect((await s.request('GET', `/v1/keys/${k.id}`, { token: w.token })).body.remaining).toBe(1);
  });

  it('a dry run predicts the usage cap: more than what is left is USAGE_EXCEEDED, and nothing is charged', async () => {
    const k = await createKey(s, w, { remaining: 3, ratelimit: null, ownerRatelimit: null });
    expect((await verify(s, { key: k.key, cost: 5, dryRun: true })).code).toBe('USAGE_EXCEEDED');
    expect((await verify(s, { key: k.key, cost: 3, dryRun: true })).code).toBe('VALID');
    expect((await s.request('GET', `/v1/keys/${k.id}`, { token: w.token })).body.remaining).toBe(3);
  });
});
