// Identities and named limits on one node, on every store: identities made explicitly or by a key's
// owner, listed and searched, deleted only when forced while keys name them; named limits of keys
// and identities checked all-or-nothing (a refused verify charges none), overrides most specific
// first, and the standalone limiter with its namespace overrides.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DIALECTS, createKey, startServer, verify, world, type TestServer, type World } from '../support/harness.js';

const MINUTE = 60_000;

for (const dialect of DIALECTS) {
  describe(`identities and named limits (${dialect})`, () => {
    let s: TestServer;
    let w: World;
    let root: string;

    beforeAll(async () => {
      s = await startServer({ dialect });
      w = await world(s);
      const rk = await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'limiter', permissions: ['ratelimit:limit', 'identities:read', 'identities:write'] } });
      expect(rk.status).toBe(201);
      root = rk.body.key;
    });
    afterAll(() => s.close());

    const api = (method: string, path: string, body?: unknown, token = w.token) => s.request(method, path, { token, ...(body !== undefined ? { body } : {}) });

    it('creates, lists, searches, changes and deletes identities; a key with a new owner makes one', async () => {
      const made = await api('POST', `/v1/workspaces/${w.workspaceId}/identities`, { externalId: 'acct_1', meta: { plan: 'pro' }, ratelimits: [{ name: 'requests', limit: 5, durationMs: MINUTE }] });
      expect(made.status).toBe(201);
      expect(made.body).toMatchObject({ externalId: 'acct_1', meta: { plan: 'pro' }, ratelimits: [{ name: 'requests', limit: 5, durationMs: MINUTE, autoApply: false }] });
      expect((await api('POST', `/v1/workspaces/${w.workspaceId}/identities`, { externalId: 'acct_1' })).status).toBe(409);
      await createKey(s, w, { ownerId: 'acct_2' });
      const list = await api('GET', `/v1/workspaces/${w.workspaceId}/identities?q=ACCT_&limit=1`);
      expect(list.status).toBe(200);
      expect(list.body.total).toBe(2);
      expect(list.body.data.map((i: { externalId: string }) => i.externalId)).toEqual(['acct_1']);
      expect(list.headers.get('link')).toContain('rel="next"');
      const second = (await api('GET', `/v1/workspaces/${w.workspaceId}/identities?q=acct_2`)).body.data[0];
      expect(second).toMatchObject({ externalId: 'acct_2', meta: {}, ratelimits: [] });
      const patched = await api('PATCH', `/v1/identities/${second.id}`, { meta: { plan: 'team' } });
      expect(patched.body.meta).toEqual({ plan: 'team' });
      expect((await api('GET', `/v1/identities/${second.id}/keys`)).body.total).toBe(1);
      // Keys name it: refused unless forced.
      const refused = await api('DELETE', `/v1/identities/${second.id}`);
      expect(refused.status).toBe(409);
      expect(refused.body.code).toBe('CONFLICT');
      expect((await api('DELETE', `/v1/identities/${second.id}?force=true`)).status).toBe(204);
      expect((await api('GET', `/v1/identities/${second.id}`)).status).toBe(404);
      expect((await api('DELETE', `/v1/identities/${made.body.id}`)).status).toBe(204);
    });

    it('a create retried with its Idempotency-Key creates nothing and names the identity', async () => {
      const headers = { 'idempotency-key': 'identity-once' };
      const first = await s.request('POST', `/v1/workspaces/${w.workspaceId}/identities`, { token: w.token, headers, body: { externalId: 'idem_1' } });
      expect(first.status).toBe(201);
      const again = await s.request('POST', `/v1/workspaces/${w.workspaceId}/identities`, { token: w.token, headers, body: { externalId: 'idem_1' } });
      expect(again.status).toBe(409);
      expect(again.body).toMatchObject({ code: 'ALREADY_CREATED', id: first.body.id });
    });

    it('bad input changes nothing: repeated names, more than 10 limits, unknown fields', async () => {
      const limits = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `l${i}`, limit: 1, durationMs: MINUTE }));
      const before = (await api('GET', `/v1/workspaces/${w.workspaceId}/identities`)).body.total;
      for (const body of [
        { externalId: 'bad_1', ratelimits: [{ name: 'a', limit: 1, durationMs: MINUTE }, { name: 'a', limit: 2, durationMs: MINUTE }] },
        { externalId: 'bad_2', ratelimits: limits(11) },
        { externalId: 'bad_3', extra: true },
        { externalId: 'bad_4', ratelimits: [{ name: 'has space', limit: 1, durationMs: MINUTE }] },
      ]) {
        const res = await api('POST', `/v1/workspaces/${w.workspaceId}/identities`, body);
        expect(res.status).toBe(400);
        expect(res.body.code).toBe('VALIDATION_FAILED');
      }
      expect((await api('GET', `/v1/workspaces/${w.workspaceId}/identities`)).body.total).toBe(before);
      const res = await api('POST', `/v1/apps/${w.appId}/keys`, { name: 'k', ratelimits: [{ name: 'x', limit: 1, durationMs: MINUTE }, { name: 'x', limit: 1, durationMs: MINUTE }] });
      expect(res.status).toBe(400);
    });

    it('verify answers every limit it checked with the identity; the identity\'s windows are shared by its keys', async () => {
      await api('POST', `/v1/workspaces/${w.workspaceId}/identities`, { externalId: 'shared_1', meta: { tier: 'gold' }, ratelimits: [{ name: 'requests', limit: 3, durationMs: MINUTE, autoApply: true }] });
      const a = await createKey(s, w, { ownerId: 'shared_1', ratelimit: null, ownerRatelimit: null });
      const b = await createKey(s, w, { ownerId: 'shared_1', ratelimit: null, ownerRatelimit: null });
      const first = await verify(s, { key: a.key });
      expect(first).toMatchObject({ valid: true, code: 'VALID', identity: { externalId: 'shared_1', meta: { tier: 'gold' } } });
      expect(first.ratelimits).toEqual([{ name: 'requests', limit: 3, remaining: 2, resetAt: expect.any(String), exceeded: false }]);
      expect((await verify(s, { key: b.key })).valid).toBe(true);
      expect((await verify(s, { key: a.key })).valid).toBe(true);
      const limited = await verify(s, { key: b.key });
      expect(limited).toMatchObject({ valid: false, code: 'RATE_LIMITED' });
      expect(limited.ratelimits).toEqual([{ name: 'requests', limit: 3, remaining: 0, resetAt: expect.any(String), exceeded: true }]);
      // A dry run decides without counting.
      s.clock.advance(MINUTE * 2);
      expect((await verify(s, { key: a.key, dryRun: true })).ratelimits[0].remaining).toBe(3);
      expect((await verify(s, { key: a.key })).ratelimits[0].remaining).toBe(2);
    });

    it('two named limits where the second refuses charge neither; a refused usage cap hands both back', async () => {
      const k = await createKey(s, w, {
        ratelimit: null, ownerRatelimit: null,
        ratelimits: [{ name: 'requests', limit: 10, durationMs: MINUTE }, { name: 'tokens', limit: 100, durationMs: MINUTE }],
      });
      const ask = (tokens: number) => verify(s, { key: k.key, ratelimits: [{ name: 'requests' }, { name: 'tokens', cost: tokens }] });
      expect((await ask(60)).ratelimits.map((l: { remaining: number }) => l.remaining)).toEqual([9, 40]);
      const refused = await ask(50);
      expect(refused.code).toBe('RATE_LIMITED');
      expect(refused.ratelimits.map((l: { exceeded: boolean }) => l.exceeded)).toEqual([false, true]);
      // Neither was charged by the refused verify: requests still has 9, tokens still 40.
      const next = await ask(40);
      expect(next.valid).toBe(true);
      expect(next.ratelimits.map((l: { remaining: number }) => l.remaining)).toEqual([8, 0]);
      // Only the limits named (or autoApply) are checked.
      expect((await verify(s, { key: k.key })).ratelimits).toEqual([]);

      const capped = await createKey(s, w, { ratelimit: null, ownerRatelimit: null, remaining: 1, ratelimits: [{ name: 'requests', limit: 5, durationMs: MINUTE, autoApply: true }] });
      expect((await verify(s, { key: capped.key })).ratelimits[0].remaining).toBe(4);
      expect((await verify(s, { key: capped.key })).code).toBe('USAGE_EXCEEDED');
      expect((await verify(s, { key: capped.key })).code).toBe('USAGE_EXCEEDED');
      // The refused verifies handed their unit back.
      expect((await verify(s, { key: capped.key, dryRun: true })).ratelimits[0].remaining).toBe(4);
    });

    it('a verify refused by the usage cap charges neither the key\'s nor the owner\'s limit', async () => {
      const k = await createKey(s, w, { ownerId: 'capped_owner', remaining: 1, ratelimit: { limit: 3, durationMs: MINUTE }, ownerRatelimit: { limit: 4, durationMs: MINUTE } });
      const other = await createKey(s, w, { ownerId: 'capped_owner', ratelimit: null, ownerRatelimit: { limit: 4, durationMs: MINUTE } });
      expect((await verify(s, { key: k.key })).code).toBe('VALID');
      for (let i = 0; i < 5; i++) expect((await verify(s, { key: k.key })).code).toBe('USAGE_EXCEEDED');
      // The owner's other key still has 3 of 4; the capped key, once refilled, 2 of 3.
      expect((await verify(s, { key: other.key })).ratelimit).toMatchObject({ limit: 4, remaining: 2 });
      expect((await s.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: { remaining: 10 } })).status).toBe(200);
      expect((await verify(s, { key: k.key })).ratelimit).toMatchObject({ limit: 3, remaining: 1 });
    });

    it('an override for cust_* and one for cust_42 each apply to the right identities, and a change applies at once', async () => {
      for (const id of ['cust_41', 'cust_42', 'other_1']) {
        await api('POST', `/v1/workspaces/${w.workspaceId}/identities`, { externalId: id, ratelimits: [{ name: 'calls', limit: 1, durationMs: MINUTE, autoApply: true }] });
      }
      const keys = Object.fromEntries(await Promise.all(['cust_41', 'cust_42', 'other_1'].map(async (id) => [id, (await createKey(s, w, { ownerId: id, ratelimit: null, ownerRatelimit: null })).key] as const)));
      // Cached before the overrides exist: the change must still reach them.
      for (const key of Object.values(keys)) await verify(s, { key, dryRun: true });
      const put = await api('PUT', `/v1/workspaces/${w.workspaceId}/ratelimit-overrides`, { identifier: 'cust_*', name: 'calls', limit: 3, durationMs: MINUTE });
      expect(put.status).toBe(200);
      expect(put.body).toMatchObject({ kind: 'limit', name: 'calls', identifier: 'cust_*', limit: 3 });
      await api('PUT', `/v1/workspaces/${w.workspaceId}/ratelimit-overrides`, { identifier: 'cust_42', name: 'calls', limit: 7, durationMs: MINUTE });
      const limitOf = async (id: string) => (await verify(s, { key: keys[id], dryRun: true })).ratelimits[0].limit;
      expect(await limitOf('cust_41')).toBe(3);
      expect(await limitOf('cust_42')).toBe(7);
      expect(await limitOf('other_1')).toBe(1);
      const listed = await api('GET', `/v1/workspaces/${w.workspaceId}/ratelimit-overrides?name=calls`);
      expect(listed.body.data.map((o: { identifier: string }) => o.identifier)).toEqual(['cust_*', 'cust_42']);
      expect((await api('DELETE', `/v1/workspaces/${w.workspaceId}/ratelimit-overrides?name=calls&identifier=cust_42`)).status).toBe(204);
      expect(await limitOf('cust_42')).toBe(3);
      expect((await api('DELETE', `/v1/workspaces/${w.workspaceId}/ratelimit-overrides?name=calls&identifier=cust_42`)).status).toBe(404);
    });

    it('a forced delete leaves the keys verifying without identity limits until the identity is made again', async () => {
      const made = await api('POST', `/v1/workspaces/${w.workspaceId}/identities`, { externalId: 'gone_1', ratelimits: [{ name: 'r', limit: 1, durationMs: MINUTE, autoApply: true }] });
      const k = await createKey(s, w, { ownerId: 'gone_1', ratelimit: null, ownerRatelimit: null });
      expect((await verify(s, { key: k.key })).valid).toBe(true);
      expect((await verify(s, { key: k.key })).code).toBe('RATE_LIMITED');
      expect((await api('DELETE', `/v1/identities/${made.body.id}?force=true`)).status).toBe(204);
      const free = await verify(s, { key: k.key });
      expect(free.valid).toBe(true);
      expect(free.identity).toBeUndefined();
      await api('POST', `/v1/workspaces/${w.workspaceId}/identities`, { externalId: 'gone_1', ratelimits: [{ name: 'r', limit: 1, durationMs: MINUTE, autoApply: true }] });
      const again = await verify(s, { key: k.key });
      expect(again.identity.externalId).toBe('gone_1');
      expect(again.ratelimits[0]).toMatchObject({ name: 'r', limit: 1 });
    });

    it('forward auth applies autoApply limits and describes the one closest to exhaustion in RateLimit headers', async () => {
      const k = await createKey(s, w, { ratelimit: { limit: 100, durationMs: MINUTE }, ownerRatelimit: null, ratelimits: [{ name: 'burst', limit: 2, durationMs: MINUTE, autoApply: true }] });
      const ask = () => s.request('GET', `/v1/forward-auth?appId=${w.appId}`, { headers: { authorization: `Bearer ${k.key}`, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/orders' } });
      const first = await ask();
      expect(first.status).toBe(200);
      expect([first.headers.get('ratelimit-limit'), first.headers.get('ratelimit-remaining')]).toEqual(['2', '1']);
      expect((await ask()).status).toBe(200);
      const refused = await ask();
      expect(refused.status).toBe(429);
      expect(refused.headers.get('x-keyward-code')).toBe('RATE_LIMITED');
      expect([refused.headers.get('ratelimit-limit'), refused.headers.get('ratelimit-remaining')]).toEqual(['2', '0']);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    });

    it('a key without named limits reads nothing more at verify than before', async () => {
      const k = await createKey(s, w, { ownerId: 'plain_1' });
      // The key cached, and every change its creation wrote (its value, its new identity) applied:
      // one applied after the first verify drops the key once, which is not what is measured here.
      await s.deps.feed.poll();
      await expect.poll(async () => {
        const before = s.deps.storeGate.sent;
        await verify(s, { key: k.key });
        return s.deps.storeGate.sent === before;
      }, { timeout: 10_000 }).toBe(true);
      const sent = s.deps.storeGate.sent;
      for (let i = 0; i < 5; i++) expect((await verify(s, { key: k.key })).valid).toBe(true);
      expect(s.deps.storeGate.sent).toBe(sent);
    });

    it('the standalone limiter: exact per identifier, namespace overrides, root keys with ratelimit:limit only', async () => {
      const limit = (identifier: string, cost?: number) => api('POST', '/v1/ratelimit', { namespace: 'login', identifier, limit: 2, durationMs: MINUTE, ...(cost !== undefined ? { cost } : {}) }, root);
      const answers = [];
      for (let i = 0; i < 3; i++) answers.push((await limit('user_1')).body);
      expect(answers.map((a) => a.success)).toEqual([true, true, false]);
      expect(answers[0]).toMatchObject({ limit: 2, remaining: 1, reset: expect.any(Number) });
      const metrics = (await s.request('GET', '/metrics')).text;
      expect(metrics).toMatch(/keyward_ratelimit_requests_total\{result="admitted"\} 2/);
      expect(metrics).toMatch(/keyward_ratelimit_requests_total\{result="refused"\} 1/);
      expect((await limit('user_2')).body.success).toBe(true);
      const put = await api('PUT', '/v1/ratelimit/overrides', { namespace: 'login', identifier: 'vip_*', limit: 5, durationMs: MINUTE }, root);
      expect(put.status).toBe(200);
      const vip = await limit('vip_9', 5);
      expect(vip.body).toMatchObject({ success: true, limit: 5, remaining: 0 });
      const listed = await api('GET', '/v1/ratelimit/overrides?namespace=login', undefined, root);
      expect(listed.body.total).toBe(1);
      // A session, or a root key without the permission, is refused.
      expect((await limit('user_3').then(() => api('POST', '/v1/ratelimit', { namespace: 'login', identifier: 'x', limit: 1, durationMs: MINUTE }))).status).toBe(403);
      const other = await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'keys only', permissions: ['keys:read'] } });
      expect((await api('POST', '/v1/ratelimit', { namespace: 'login', identifier: 'x', limit: 1, durationMs: MINUTE }, other.body.key)).status).toBe(403);
      expect((await api('DELETE', '/v1/ratelimit/overrides?namespace=login&identifier=vip_*', undefined, root)).status).toBe(204);
      // The root key is read from the cache verify uses; revoking it refuses it at once.
      const short = await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'short-lived', permissions: ['ratelimit:limit'] } });
      const call = () => api('POST', '/v1/ratelimit', { namespace: 'jobs', identifier: 't', limit: 100, durationMs: MINUTE }, short.body.key);
      expect((await call()).status).toBe(200);
      expect((await s.request('DELETE', `/v1/root-keys/${short.body.id}`, { token: w.token })).status).toBeLessThan(300);
      expect((await call()).status).toBe(401);
      expect((await api('POST', '/v1/ratelimit', { namespace: 'jobs', identifier: 't', limit: 100, durationMs: MINUTE }, 'kwroot_nonsense')).status).toBe(401);
    });
  });
}
