// Setup, login, sessions, root keys and tenant isolation through the API.
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { ScryptRun } from '../../src/lib/hash.js';
import { DIALECTS, addMember, createKey, startServer, world, type TestServer, type World } from '../support/harness.js';

// Setup itself: each test needs a server nobody has set up yet.
describe.each(DIALECTS)('setup (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  beforeEach(async () => {
    s = await startServer({ dialect });
  });
  afterEach(async () => s.close());

  it('setup runs once: 409 afterwards, and the first user can log in and out', async () => {
    expect((await s.request('GET', '/v1/setup')).body).toEqual({ needsSetup: true });
    w = await world(s);
    expect((await s.request('GET', '/v1/setup')).body).toEqual({ needsSetup: false });
    const again = await s.request('POST', '/v1/setup', { body: { email: 'x@example.com', password: 'another password', workspaceName: 'X' } });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('CONFLICT');
    const login = await s.request('POST', '/v1/auth/login', { body: { email: 'OWNER@example.com', password: 'correct horse battery' } });
    expect(login.status).toBe(200);
    expect(login.body.token).toMatch(/^kws_/);
    expect(login.body.workspaces).toEqual([{ id: w.workspaceId, name: 'Acme', role: 'owner' }]);
    const me = await s.request('GET', '/v1/auth/me', { token: login.body.token });
    expect(me.body.user.email).toBe('owner@example.com');
    expect((await s.request('POST', '/v1/auth/logout', { token: login.body.token })).status).toBe(204);
    const after = await s.request('GET', '/v1/auth/me', { token: login.body.token });
    expect(after.status).toBe(401);
    expect(after.headers.get('content-type')).toContain('application/problem+json');
  });

  it('concurrent setups: exactly one wins', async () => {
    const body = (i: number) => ({ email: `u${i}@example.com`, password: 'correct horse battery', workspaceName: `W${i}` });
    const answers = await Promise.all([0, 1, 2, 3].map((i) => s.request('POST', '/v1/setup', { body: body(i) })));
    expect(answers.map((a) => a.status).sort()).toEqual([201, 409, 409, 409]);
  });

});

// One server for the rest: each test has a world of its own (a user, their workspace and app).
describe.each(DIALECTS)('auth and isolation (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  beforeAll(async () => {
    s = await startServer({ dialect });
  });
  afterAll(async () => s.close());

  it('a finished setup is refused before any password hashing (no scrypt to make the node run)', async () => {
    w = await world(s);
    const runs: ScryptRun[] = [];
    s.deps.services.auth.passwords.observe((run) => runs.push(run));
    const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => s.request('POST', '/v1/setup', { body: { email: `x${i}@example.com`, password: 'another password', workspaceName: 'X' } })));
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(409));
    expect(runs).toEqual([]);
  });

  it('10 failed logins per email+IP in 15 minutes → 429 with Retry-After, even for the right password', async () => {
    w = await world(s);
    for (let i = 0; i < 10; i++) {
      const r = await s.request('POST', '/v1/auth/login', { body: { email: w.email, password: `wrong ${i}` } });
      expect(r.status).toBe(401);
      // Past the third failure each attempt waits longer (1 s, 2 s … a minute); wait it out here.
      s.clock.advance(60_000);
    }
    const blocked = await s.request('POST', '/v1/auth/login', { body: { email: w.email, password: 'correct horse battery' } });
    expect(blocked.status).toBe(429);
    expect(blocked.body.code).toBe('RATE_LIMITED');
    expect(Number(blocked.headers.get('retry-after'))).toBeGreaterThan(0);
    const unknown = await s.request('POST', '/v1/auth/login', { body: { email: 'nobody@example.com', password: 'whatever it is' } });
    expect(unknown.status).toBe(401);
  });

  it('a session of another workspace gets 404 for every object of this one', async () => {
    w = await world(s);
    const k = await createKey(s, w);
    const add = await addMember(s, w, 'eve@example.com', 'member', 'eve password 1');
    expect((await s.request('DELETE', `/v1/workspaces/${w.workspaceId}/members/${add.userId}`, { token: w.token })).status).toBe(204);
    const eve = add.token;
    const own = await s.request('POST', '/v1/workspaces', { token: eve, body: { name: 'Eve Corp' } });
    expect(own.status).toBe(201);
    const probes: [string, string, unknown?][] = [
      ['GET', `/v1/workspaces/${w.workspaceId}`],
      ['GET', `/v1/workspaces/${w.workspaceId}/members`],
      ['GET', `/v1/workspaces/${w.workspaceId}/root-keys`],
      ['GET', `/v1/workspaces/${w.workspaceId}/audit`],
      ['GET', `/v1/apps?workspaceId=${w.workspaceId}`],
      ['POST', '/v1/apps', { workspaceId: w.workspaceId, name: 'sneaky' }],
      ['GET', `/v1/apps/${w.appId}`],
      ['PATCH', `/v1/apps/${w.appId}`, { name: 'pwned' }],
      ['DELETE', `/v1/apps/${w.appId}`],
      ['GET', `/v1/apps/${w.appId}/keys`],
      ['POST', `/v1/apps/${w.appId}/keys`, { name: 'sneaky' }],
      ['GET', `/v1/keys/${k.id}`],
      ['PATCH', `/v1/keys/${k.id}`, { status: 'disabled' }],
      ['POST', `/v1/keys/${k.id}/roll`, {}],
      ['DELETE', `/v1/keys/${k.id}`],
      ['GET', `/v1/keys/${k.id}/usage`],
    ];
    for (const [method, path, body] of probes) {
      const r = await s.request(method, path, { token: eve, body });
      expect(r.status, `${method} ${path}`).toBe(404);
      expect(r.body.code).toBe('NOT_FOUND');
    }
    const key = await s.request('GET', `/v1/keys/${k.id}`, { token: w.token });
    expect(key.body.status).toBe('active');
    expect(key.body.name).toBe('test key');
  });

  it('members work with keys but not with root keys, members or audit', async () => {
    w = await world(s);
    const m = (await addMember(s, w, 'm@example.com', 'member', 'member password')).token;
    expect((await s.request('POST', `/v1/apps/${w.appId}/keys`, { token: m, body: { name: 'mine' } })).status).toBe(201);
    expect((await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit`, { token: m })).status).toBe(403);
    expect((await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: m, body: { name: 'x', permissions: ['*'] } })).status).toBe(403);
    expect((await s.request('POST', `/v1/workspaces/${w.workspaceId}/invitations`, { token: m, body: { email: 'z@example.com', role: 'owner' } })).status).toBe(403);
    expect((await s.request('POST', '/v1/apps', { token: m, body: { workspaceId: w.workspaceId, name: 'nope' } })).status).toBe(403);
  });

  it('root keys: shown once, permissions enforced, other workspaces invisible, revocation immediate', async () => {
    w = await world(s);
    const created = await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'ci', permissions: ['keys:read', 'keys:write'] } });
    expect(created.status).toBe(201);
    const root = created.body.key as string;
    expect(root).toMatch(/^kwroot_live_/);
    const list = await s.request('GET', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token });
    expect(list.text).not.toContain(root);
    expect(list.body.data[0].start).toBe(root.slice(0, 16));
    const k = await s.request('POST', `/v1/apps/${w.appId}/keys`, { token: root, body: { name: 'from ci' } });
    expect(k.status).toBe(201);
    expect(k.body.createdBy).toBe(created.body.id);
    expect((await s.request('PATCH', `/v1/apps/${w.appId}`, { token: root, body: { name: 'x' } })).status).toBe(403);
    expect((await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit`, { token: root })).status).toBe(403);
    const other = await s.request('POST', '/v1/workspaces', { token: w.token, body: { name: 'Other' } });
    // It lacks apps:read anywhere: refused before any lookup, so nothing about the other workspace leaks.
    expect((await s.request("GET", `/v1/workspaces/${other.body.id}`, { token: root })).status).toBe(403);
    expect((await s.request("GET", `/v1/apps/${w.appId}/keys`, { token: root })).status).toBe(200);
    expect((await s.request('POST', '/v1/workspaces', { token: root, body: { name: 'nope' } })).status).toBe(403);
    expect((await s.request('DELETE', `/v1/root-keys/${created.body.id}`, { token: w.token })).status).toBe(204);
    const after = await s.request('GET', `/v1/apps/${w.appId}/keys`, { token: root });
    expect(after.status).toBe(401);
  });

  it('no credential, a garbage one, or an expired session → 401 problem+json', async () => {
    w = await world(s);
    for (const token of [undefined, 'garbage', 'kws_nope', 'acme_live_xxx']) {
      const r = await s.request('GET', `/v1/apps/${w.appId}`, { token });
      expect(r.status).toBe(401);
      expect(r.body.code).toBe('UNAUTHORIZED');
    }
    s.clock.advance(25 * 3_600_000);
    expect((await s.request('GET', `/v1/apps/${w.appId}`, { token: w.token })).status).toBe(401);
  });

  it('a path parameter over 200 characters is a 414 problem+json with nosniff, echoing nothing', async () => {
    w = await world(s);
    const long = 'k'.repeat(250);
    for (const path of [`/v1/keys/${long}`, `/v1/apps/${long}/keys`, `/v1/workspaces/${long}`]) {
      const r = await s.request('GET', path, { token: w.token });
      expect(r.status, path).toBe(414);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      expect(r.headers.get('cache-control')).toBe('no-store');
      expect(r.body.code).toBe('URI_TOO_LONG');
      expect(r.body.status).toBe(414);
      expect(r.text).not.toContain(long);
    }
    // A malformed percent-encoding in a parameter: a 400 problem, the path not echoed either.
    const bad = await s.request('GET', '/v1/keys/%E0%A4%A', { token: w.token });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
    expect(bad.text).not.toContain('%E0');
  });

  it('every authenticated answer, success or refusal, carries Cache-Control: no-store', async () => {
    w = await world(s);
    const k = await createKey(s, w);
    const root = (await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'ci', permissions: ['*'] } })).body.key as string;
    const calls: [string, string, string | undefined, unknown?][] = [
      ['GET', '/v1/auth/me', w.token],
      ['GET', '/v1/workspaces', w.token],
      ['GET', `/v1/workspaces/${w.workspaceId}/members`, w.token],
      ['GET', `/v1/workspaces/${w.workspaceId}/root-keys`, root],
      ['GET', `/v1/apps/${w.appId}`, w.token],
      ['GET', `/v1/apps/${w.appId}/keys`, root],
      ['GET', `/v1/keys/${k.id}`, w.token],
      ['GET', `/v1/keys/${k.id}/usage`, w.token],
      ['GET', `/v1/workspaces/${w.workspaceId}/audit`, w.token],
      ['PATCH', `/v1/keys/${k.id}`, w.token, { name: 'renamed' }],
      ['GET', '/v1/keys/key_doesnotexist', w.token],
      ['GET', `/v1/apps/${w.appId}`, 'kws_not_a_session'],
      ['POST', '/v1/auth/login', undefined, { email: w.email, password: 'correct horse battery' }],
    ];
    for (const [method, path, token, body] of calls) {
      const r = await s.request(method, path, { ...(token ? { token } : {}), ...(body ? { body } : {}) });
      expect(r.headers.get('cache-control'), `${method} ${path} (${r.status})`).toBe('no-store');
    }
  });
});
