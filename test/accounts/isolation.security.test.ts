// Tenant isolation matrix: every route of the spec, every kind of wrong credential → refused, and
// the refusal is the same whether the object exists or not.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS, addMember, createKey, snapshot, startServer, world, type TestServer, type World } from '../support/harness.js';

const PUBLIC = new Set(['GET /healthz', 'GET /readyz', 'GET /metrics', 'GET /v1/setup', 'POST /v1/setup', 'POST /v1/auth/login', 'POST /v1/keys/verify', 'POST /v1/leaks', 'POST /v1/integrations/slash', 'POST /v1/invitations/accept', 'POST /v1/invitations/inspect',
  ...['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'].flatMap((m) => ['/v1/forward-auth', '/v1/forward-auth/{appId}', '/v1/forward-auth/{appId}/{*}'].map((p) => `${m} ${p}`))]);
const MEMBER_MAY = new Set(['GET /v1/workspaces', 'GET /v1/workspaces/{id}', 'GET /v1/workspaces/{id}/members', 'GET /v1/apps', 'GET /v1/apps/{appId}', 'POST /v1/apps/{appId}/keys', 'GET /v1/apps/{appId}/keys', 'GET /v1/keys/{keyId}', 'PATCH /v1/keys/{keyId}', 'POST /v1/keys/{keyId}/roll', 'DELETE /v1/keys/{keyId}', 'GET /v1/keys/{keyId}/usage', 'GET /v1/keys/changes', 'GET /v1/auth/me', 'POST /v1/auth/logout', 'POST /v1/workspaces',
  'GET /v1/workspaces/{id}/webhooks', 'GET /v1/webhooks/{webhookId}', 'GET /v1/webhooks/{webhookId}/deliveries', 'GET /v1/webhooks/{webhookId}/deliveries/{deliveryId}',
  // Members work with identities and their overrides as with keys.
  'POST /v1/workspaces/{id}/identities', 'GET /v1/workspaces/{id}/identities', 'GET /v1/identities/{identityId}', 'PATCH /v1/identities/{identityId}', 'DELETE /v1/identities/{identityId}', 'GET /v1/identities/{identityId}/keys',
  'PUT /v1/workspaces/{id}/ratelimit-overrides', 'GET /v1/workspaces/{id}/ratelimit-overrides', 'DELETE /v1/workspaces/{id}/ratelimit-overrides']);

/** What a credential may rightly do, which the matrix skips; everything else must be refused. */
function allowed(op: { method: string; path: string }, cred: string): boolean {
  const route = `${op.method} ${op.path}`;
  const valid = cred === 'member' || cred === 'weakRoot' || cred === 'otherTenant' || cred === 'otherTenantRoot';
  const user = cred === 'member' || cred === 'otherTenant';
  if (valid && route === 'GET /v1/workspaces') return true; // lists only the caller's own
  if (user && ['POST /v1/workspaces', 'GET /v1/auth/me', 'POST /v1/auth/logout'].includes(route)) return true;
  if (valid && route === 'POST /v1/auth/logout') return true; // would end the session the matrix uses
  if (cred === 'member' && MEMBER_MAY.has(route)) return true;
  if (cred === 'weakRoot' && route === 'GET /v1/workspaces/{id}/audit') return true; // it holds audit:read
  if (cred === 'otherTenantRoot' && route === 'POST /v1/ratelimit') return true; // names no object: it limits in its own workspace
  return false;
}

describe.each(DIALECTS)('isolation matrix (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  let real: Record<string, string>;
  const ghost: Record<string, string> = {
    id: 'ws_AAAAAAAAAAAAAAAAAAAA', appId: 'app_AAAAAAAAAAAAAAAAAAAA', keyId: 'key_AAAAAAAAAAAAAAAAAAAA',
    userId: 'usr_AAAAAAAAAAAAAAAAAAAA', name: 'NOPE', rootKeyId: 'rk_AAAAAAAAAAAAAAAAAAAA', invitationId: 'inv_AAAAAAAAAAAAAAAAAAAA',
    webhookId: 'wh_AAAAAAAAAAAAAAAAAAAA', deliveryId: 'whd_AAAAAAAAAAAAAAAAAAAA', identityId: 'idt_AAAAAAAAAAAAAAAAAAAA',
  };
  const creds: Record<string, string> = {};
  let ops: { method: string; path: string }[];

  beforeAll(async () => {
    s = await startServer({ dialect });
    w = await world(s);
    const k = await createKey(s, w, { ownerId: 'cust_victim' });
    const identity = (await s.request('GET', `/v1/workspaces/${w.workspaceId}/identities`, { token: w.token })).body.data[0];
    await s.request('PUT', `/v1/apps/${w.appId}/vault/SECRET`, { token: w.token, body: { value: 'v' } });
    // A webhook with one delivery (to a name that does not resolve here: it fails, and stays listed).
    const hook = await s.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body: { url: 'https://hooks.invalid/keyward', events: ['rootkey.created'] } });
    const root = await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'victim', permissions: ['*'] } });
    const delivery = (await s.request('GET', `/v1/webhooks/${hook.body.id}/deliveries`, { token: w.token })).body.data[0];
    // The rows are what this test needs; attempts in the background would change them under it.
    await s.deps.webhooks.close();
    real = { id: w.workspaceId, appId: w.appId, keyId: k.id, userId: w.userId, name: 'SECRET', rootKeyId: root.body.id, invitationId: '', webhookId: hook.body.id, deliveryId: delivery.id, identityId: identity.id };

    // Another tenant: a user who owns a workspace of their own.
    const eve = await addMember(s, w, 'eve@example.com', 'member', 'eve password 123');
    await s.request('DELETE', `/v1/workspaces/${w.workspaceId}/members/${eve.userId}`, { token: w.token });
    creds.otherTenant = eve.token;
    const eveWs = (await s.request('POST', '/v1/workspaces', { token: creds.otherTenant, body: { name: 'Eve' } })).body.id;
    creds.otherTenantRoot = (await s.request('POST', `/v1/workspaces/${eveWs}/root-keys`, { token: creds.otherTenant, body: { name: 'eve', permissions: ['*'] } })).body.key;

    // A member of this workspace, a root key lacking permissions, a revoked root key, an expired session.
    creds.member = (await addMember(s, w, 'mel@example.com', 'member', 'mel password 123')).token;
    const pending = await s.request('POST', `/v1/workspaces/${w.workspaceId}/invitations`, { token: w.token, body: { email: 'later@example.com', role: 'admin' } });
    creds.weakRoot = (await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'weak', permissions: ['audit:read'] } })).body.key;
    const revoked = await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'gone', permissions: ['*'] } });
    await s.request('DELETE', `/v1/root-keys/${revoked.body.id}`, { token: w.token });
    creds.revokedRoot = revoked.body.key;
    real.invitationId = pending.body.id;
    s.clock.advance(-25 * 3_600_000);
    creds.expired = (await s.request('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password: 'correct horse battery' } })).body.token;
    s.clock.advance(25 * 3_600_000);

    const spec = (await s.request('GET', '/openapi.json')).body as { paths: Record<string, Record<string, unknown>> };
    ops = Object.entries(spec.paths).flatMap(([path, m]) => Object.keys(m).map((method) => ({ method: method.toUpperCase(), path })))
      .filter((op) => !PUBLIC.has(`${op.method} ${op.path}`));
  });
  afterAll(async () => s.close());

  const fill = (path: string, ids: Record<string, string>) =>
    path.replace(/\{(\w+)\}/g, (_, n: string) => (path.startsWith('/v1/root-keys/') ? ids.rootKeyId! : ids[n] ?? 'x'));
  const bodyFor = (op: { method: string; path: string }, ids: Record<string, string>) => {
    if (op.method === 'GET' || op.method === 'DELETE') return undefined;
    if (op.path === '/v1/apps') return { workspaceId: ids.id, name: 'sneaky' };
    if (op.path.endsWith('/vault/{name}')) return { value: 'sneaky' };
    if (op.path.endsWith('/members') || op.path.endsWith('/invitations')) return { email: 'sneaky@example.com', role: 'owner' };
    if (op.path.endsWith('/members/{userId}')) return { role: 'owner' };
    if (op.path.endsWith('/root-keys')) return { name: 'sneaky', permissions: ['*'] };
    if (op.path === '/v1/workspaces') return { name: 'mine' };
    if (op.path.endsWith('/keys')) return { name: 'sneaky' };
    if (op.path.endsWith('/keys/import')) return { keys: [{ key: 'sneaky-imported-value' }] };
    if (op.path.endsWith('/roll')) return {};
    if (op.path.endsWith('/webhooks')) return { url: 'https://hooks.invalid/sneaky', events: ['key.created'] };
    if (op.path === '/v1/webhooks/{webhookId}') return { description: 'sneaky' };
    if (op.path.endsWith('/replay')) return { since: '2026-01-01T00:00:00.000Z' };
    if (op.path.startsWith('/v1/webhooks/')) return undefined;
    if (op.path.endsWith('/identities')) return { externalId: 'sneaky' };
    if (op.path === '/v1/identities/{identityId}') return { meta: { sneaky: true } };
    if (op.path.endsWith('/ratelimit-overrides')) return { identifier: 'cust_*', name: 'sneaky', limit: 1, durationMs: 60_000 };
    if (op.path.startsWith('/v1/ratelimit')) return { namespace: 'sneaky', identifier: 'x', limit: 1, durationMs: 60_000 };
    return { name: 'sneaky' };
  };
  const call = (op: { method: string; path: string }, token: string, ids: Record<string, string>) => {
    const qs = op.path === '/v1/apps' && op.method === 'GET' ? `?workspaceId=${ids.id}` : op.path === '/v1/keys/changes' ? `?workspaceId=${ids.id}`
      : op.path === '/v1/workspaces/{id}/ratelimit-overrides' && op.method === 'DELETE' ? '?name=sneaky&identifier=x'
        : op.path === '/v1/ratelimit/overrides' ? `?workspaceId=${ids.id}${op.method === 'DELETE' ? '&namespace=sneaky&identifier=x' : ''}` : '';
    return s.request(op.method, fill(op.path, ids) + qs, { token, body: bodyFor(op, ids) });
  };

  it('every route refuses every wrong credential, the same way for real and missing objects', async () => {
    const before = await snapshot(s);
    const table: string[] = [];
    for (const op of ops) {
      for (const [name, token] of Object.entries(creds)) {
        const label = `${op.method} ${op.path} as ${name}`;
        if (allowed(op, name)) continue;
        const onReal = await call(op, token, real);
        const onGhost = await call(op, token, ghost);
        table.push(`${label}: ${onReal.status}/${onGhost.status}`);
        expect(onReal.status, label).toBeGreaterThanOrEqual(400);
        expect(onReal.status, label).toBeLessThan(500);
        expect([401, 403, 404], label).toContain(onReal.status);
        expect(onReal.headers.get('content-type'), label).toContain('application/problem+json');
        if (op.path.includes('{')) {
          expect(`${onGhost.status} ${onGhost.body.code}`, `${label}: a refusal must not tell a real object from a missing one`).toBe(`${onReal.status} ${onReal.body.code}`);
        }
      }
    }
    expect(table.length).toBeGreaterThan(100);
    expect(await snapshot(s)).toBe(before);
  });
});
