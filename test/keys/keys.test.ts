// Key management through the API: pagination, filters, reads, changes, audit trail.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DIALECTS, createKey, startServer, verify, world, type TestServer, type World } from '../support/harness.js';

function links(header: string | null): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(',')) {
    const m = /<([^>]+)>;\s*rel="(\w+)"/.exec(part.trim());
    if (m) out[m[2]!] = m[1]!;
  }
  return out;
}

describe.each(DIALECTS)('keys (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  beforeAll(async () => {
    s = await startServer({ dialect });
  });
  afterAll(async () => s.close());
  beforeEach(async () => {
    w = await world(s);
  });

  it('45 keys, limit 20 → pages 1–3 with total and Link rels', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 45; i++) {
      s.clock.advance(1);
      ids.push((await createKey(s, w, { name: `key ${i}` })).id);
    }
    const seen: string[] = [];
    const expected = [
      { page: 1, count: 20, rels: ['first', 'next', 'last'] },
      { page: 2, count: 20, rels: ['first', 'prev', 'next', 'last'] },
      { page: 3, count: 5, rels: ['first', 'prev', 'last'] },
    ];
    for (const e of expected) {
      const res = await s.request('GET', `/v1/apps/${w.appId}/keys?page=${e.page}&limit=20`, { token: w.token });
      expect(res.status).toBe(200);
      expect(res.body.total).toBe(45);
      expect(res.body.data).toHaveLength(e.count);
      const l = links(res.headers.get('link'));
      expect(Object.keys(l).sort()).toEqual([...e.rels].sort());
      expect(l.first).toContain('page=1');
      expect(l.last).toContain('page=3');
      if (l.next) expect(l.next).toContain(`page=${e.page + 1}`);
      if (l.prev) expect(l.prev).toContain(`page=${e.page - 1}`);
      seen.push(...res.body.data.map((k: { id: string }) => k.id));
    }
    expect(seen).toEqual([...ids].reverse());
    const beyond = await s.request('GET', `/v1/apps/${w.appId}/keys?page=4&limit=20`, { token: w.token });
    expect(beyond.body.data).toEqual([]);
    expect(beyond.body.total).toBe(45);
  });

  it('filters by owner, status, environment and search', async () => {
    await createKey(s, w, { name: 'alpha', ownerId: 'u1' });
    const b = await createKey(s, w, { name: 'beta', ownerId: 'u2', environment: 'test' });
    const c = await createKey(s, w, { name: 'gamma 100%', ownerId: 'u1' });
    await s.request('PATCH', `/v1/keys/${c.id}`, { token: w.token, body: { status: 'disabled' } });
    const q = async (query: string) => (await s.request('GET', `/v1/apps/${w.appId}/keys?${query}`, { token: w.token })).body.data.map((k: { name: string }) => k.name).sort();
    expect(await q('ownerId=u1')).toEqual(['alpha', 'gamma 100%']);
    expect(await q('status=disabled')).toEqual(['gamma 100%']);
    expect(await q('environment=test')).toEqual(['beta']);
    expect(b.key.startsWith(`${w.keyPrefix}_test_`)).toBe(true);
    expect(await q('q=ALPH')).toEqual(['alpha']);
    expect(await q('q=100%25')).toEqual(['gamma 100%']);
    expect(await q(`q=${b.body.start}`)).toEqual(['beta']);
  });

  it('sorts by name, creation, last use and expiry; missing last use and expiry come last either way', async () => {
    const DAY = 86_400_000;
    const made: Record<string, { id: string; key: string }> = {};
    for (const [name, days] of [['beta', 30], ['Alpha', null], ['gamma', 5]] as const) {
      s.clock.advance(1000);
      made[name] = await createKey(s, w, { name, ...(days ? { expiresAt: new Date(s.clock.now() + days * DAY).toISOString() } : {}) });
    }
    await verify(s, { key: made.gamma!.key });
    s.clock.advance(1000);
    await verify(s, { key: made.beta!.key });
    await s.deps.usage.flush();
    const order = async (sort: string) => (await s.request('GET', `/v1/apps/${w.appId}/keys?sort=${sort}`, { token: w.token })).body.data.map((k: any) => k.name);
    expect(await order('name')).toEqual(['Alpha', 'beta', 'gamma']);
    expect(await order('-name')).toEqual(['gamma', 'beta', 'Alpha']);
    expect(await order('createdAt')).toEqual(['beta', 'Alpha', 'gamma']);
    expect(await order('-createdAt')).toEqual(['gamma', 'Alpha', 'beta']);
    expect(await order('-lastUsedAt')).toEqual(['beta', 'gamma', 'Alpha']);
    expect(await order('lastUsedAt')).toEqual(['gamma', 'beta', 'Alpha']);
    expect(await order('expiresAt')).toEqual(['gamma', 'beta', 'Alpha']);
    expect(await order('-expiresAt')).toEqual(['beta', 'gamma', 'Alpha']);
    const bad = await s.request('GET', `/v1/apps/${w.appId}/keys?sort=hash`, { token: w.token });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].path).toBe('querystring/sort');
  });

  it('reads never show the value or hash; PATCH changes every field but the value', async () => {
    const k = await createKey(s, w, { ownerId: 'u1' });
    const read = await s.request('GET', `/v1/keys/${k.id}`, { token: w.token });
    expect(read.body.key).toBeUndefined();
    expect(read.text).not.toContain(k.key);
    expect(read.text).not.toMatch(/[0-9a-f]{64}/);
    expect(read.body.start).toBe(k.key.slice(0, `${w.keyPrefix}_live_`.length + 4));
    const patch = {
      name: 'renamed', ownerId: 'u2', environment: 'live', permissions: ['p'], resources: ['r.com'], ipAllowlist: ['::1'],
      expiresAt: new Date(s.clock.now() + 3_600_000).toISOString(), ratelimit: { limit: 5, durationMs: 1000 }, ownerRatelimit: null,
      remaining: 7, refill: { amount: 7, interval: 'daily' }, meta: { a: 1 }, status: 'disabled',
    };
    const res = await s.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: patch });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ...patch, id: k.id, start: k.body.start });
    const again = await s.request('GET', `/v1/keys/${k.id}`, { token: w.token });
    expect(again.body).toMatchObject(patch);
  });

  it('the environment is part of the value: PATCH refuses to change it, a roll moves the key', async () => {
    const k = await createKey(s, w);
    const refused = await s.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: { environment: 'test' } });
    expect(refused.status).toBe(400);
    expect(refused.body.errors[0].path).toBe('body/environment');
    const rolled = await s.request('POST', `/v1/keys/${k.id}/roll`, { token: w.token, body: { environment: 'test' } });
    expect(rolled.status).toBe(200);
    expect(rolled.body.key.startsWith(`${w.keyPrefix}_test_`)).toBe(true);
    expect(rolled.body.environment).toBe('test');
    expect((await verify(s, { key: rolled.body.key })).environment).toBe('test');
  });

  it('every change lands in the audit trail with actor, target, IP and time', async () => {
    const k = await createKey(s, w);
    await s.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: { name: 'x' } });
    await s.request('POST', `/v1/keys/${k.id}/roll`, { token: w.token, body: {} });
    await s.request('DELETE', `/v1/keys/${k.id}`, { token: w.token });
    const audit = await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit?targetId=${k.id}`, { token: w.token });
    expect(audit.status).toBe(200);
    expect(audit.body.data.map((a: { action: string }) => a.action).sort()).toEqual(['key.create', 'key.revoke', 'key.roll', 'key.update']);
    for (const a of audit.body.data) {
      expect(a.actor).toEqual({ type: 'user', id: w.userId, email: w.email });
      expect(a.target).toEqual({ type: 'key', id: k.id });
      expect(a.ip).toBe('127.0.0.1');
      expect(Date.parse(a.at)).toBeGreaterThan(0);
    }
    const all = await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit?action=app.create`, { token: w.token });
    expect(all.body.total).toBe(1);
    expect(audit.text).not.toContain(k.key);
  });

  it('a change records each changed field before and after, and nothing unchanged', async () => {
    const k = await createKey(s, w, { name: 'before', permissions: ['a'], ratelimit: { limit: 10, durationMs: 60_000 } });
    await s.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: { name: 'after', permissions: ['a'], ratelimit: { limit: 20, durationMs: 60_000 }, meta: { plan: 'pro' } } });
    await s.request('PATCH', `/v1/apps/${w.appId}`, { token: w.token, body: { name: 'Renamed API' } });
    const entry = (await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit?action=key.update&targetId=${k.id}`, { token: w.token })).body.data[0];
    expect(entry.meta.before).toEqual({ name: 'before', ratelimit: { limit: 10, durationMs: 60_000 }, meta: {} });
    expect(entry.meta.after).toEqual({ name: 'after', ratelimit: { limit: 20, durationMs: 60_000 }, meta: { plan: 'pro' } });
    const app = (await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit?action=app.update`, { token: w.token })).body.data[0];
    expect(app.meta).toMatchObject({ before: { name: 'Acme API' }, after: { name: 'Renamed API' } });
    expect(Object.keys(app.meta.after)).toEqual(['name']);
  });

  it('the audit log filters by an action\'s start and by a date range; a root key shows as itself', async () => {
    const k = await createKey(s, w);
    s.clock.advance(3_600_000);
    const middle = new Date(s.clock.now()).toISOString();
    await s.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: { name: 'later' } });
    const root = (await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'ci', permissions: ['*'] } })).body;
    await s.request('PUT', `/v1/apps/${w.appId}/vault/A`, { token: root.key, body: { value: 'x' } });
    const q = async (query: string) => (await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit?${query}`, { token: w.token })).body;
    expect((await q('action=key')).data.map((a: { action: string }) => a.action).sort()).toEqual(['key.create', 'key.update']);
    expect((await q('action=key.up')).total).toBe(1);
    expect((await q('action=k_y')).total).toBe(0);
    const vault = await q('action=vault');
    expect(vault.data[0].actor).toEqual({ type: 'root_key', id: root.id });
    expect((await q(`since=${encodeURIComponent(middle)}&action=key`)).data.map((a: { action: string }) => a.action)).toEqual(['key.update']);
    expect((await q(`until=${encodeURIComponent(middle)}&action=key`)).data.map((a: { action: string }) => a.action)).toEqual(['key.create']);
    expect((await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit?since=2026-06-30T23:59:60Z`, { token: w.token })).status).toBe(400);
  });
});
