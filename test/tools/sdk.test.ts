// The SDK client and the Fastify and Express middleware against a real Keyward on 127.0.0.1.
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeywardClient, KeywardError, KeyGuard, keywardExpress } from '../../src/sdk/index.js';
import { keywardFastify } from '../../src/sdk/fastify.js';
import { startServer, world, type TestServer, type World } from '../support/harness.js';

describe('SDK and middleware', () => {
  let s: TestServer;
  let w: World;
  let rootKey: string;
  let api: KeywardClient;
  beforeAll(async () => {
    s = await startServer({ listen: true });
    w = await world(s);
    rootKey = (await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'sdk', permissions: ['*'] } })).body.key;
    api = new KeywardClient({ baseUrl: s.url, rootKey });
  });
  afterAll(async () => s.close());

  it('client covers management and verify, with typed errors', async () => {
    const [ws] = await api.workspaces.list();
    expect(ws!.id).toBe(w.workspaceId);
    const created = await api.keys.create(w.appId, { name: 'sdk key', ownerId: 'o1', permissions: ['x'] });
    expect(created.key).toMatch(/^acme_live_/);
    expect((await api.verify({ key: created.key!, permissions: ['x'] })).code).toBe('VALID');
    const page = await api.keys.list(w.appId, { ownerId: 'o1' });
    expect(page.total).toBe(1);
    const updated = await api.keys.update(created.id, { name: 'renamed' });
    expect(updated.name).toBe('renamed');
    await api.vault.set(w.appId, 'A', 'b');
    expect(await api.vault.get(w.appId, 'A')).toBe('b');
    const err = await api.keys.get('key_AAAAAAAAAAAAAAAAAAAA').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KeywardError);
    expect(err).toMatchObject({ status: 404, code: 'NOT_FOUND' });
    const bad = await api.keys.create(w.appId, { name: '' }).catch((e: unknown) => e as KeywardError);
    expect(bad).toMatchObject({ status: 400, code: 'VALIDATION_FAILED' });
    await api.keys.revoke(created.id);
    expect((await api.verify({ key: created.key! })).code).toBe('REVOKED');
  });

  it('client covers identities, named limits, overrides and the standalone limiter', async () => {
    const identity = await api.identities.create(w.workspaceId, { externalId: 'sdk_cust', ratelimits: [{ name: 'calls', limit: 2, durationMs: 60_000 }] });
    expect(identity.ratelimits[0]).toMatchObject({ name: 'calls', autoApply: false });
    const k = await api.keys.create(w.appId, { name: 'sdk named', ownerId: 'sdk_cust', ratelimit: null, ownerRatelimit: null });
    const verdict = await api.verify({ key: k.key!, appId: w.appId, ratelimits: [{ name: 'calls', cost: 2 }] });
    expect(verdict.ratelimits).toEqual([expect.objectContaining({ name: 'calls', remaining: 0, exceeded: false })]);
    expect(verdict.identity?.externalId).toBe('sdk_cust');
    await api.identities.overrides.set(w.workspaceId, { identifier: 'sdk_*', name: 'calls', limit: 10, durationMs: 60_000 });
    expect((await api.identities.overrides.list(w.workspaceId)).total).toBe(1);
    expect((await api.identities.list(w.workspaceId, { q: 'sdk' })).data.map((i) => i.id)).toEqual([identity.id]);
    expect((await api.identities.keys(identity.id)).total).toBe(1);
    expect(await api.identities.delete(identity.id).catch((e: unknown) => (e as KeywardError).code)).toBe('CONFLICT');
    await api.identities.delete(identity.id, { force: true });
    const first = await api.ratelimit.limit({ namespace: 'sdk', identifier: 'u1', limit: 1, durationMs: 60_000 });
    expect(first.success).toBe(true);
    expect((await api.ratelimit.limit({ namespace: 'sdk', identifier: 'u1', limit: 1, durationMs: 60_000 })).success).toBe(false);
    await api.ratelimit.overrides.set({ namespace: 'sdk', identifier: 'u1', limit: 5, durationMs: 60_000 });
    expect((await api.ratelimit.overrides.list({ namespace: 'sdk' })).total).toBe(1);
    expect((await api.ratelimit.limit({ namespace: 'sdk', identifier: 'u1', limit: 1, durationMs: 60_000 })).limit).toBe(5);
    await api.ratelimit.overrides.delete('sdk', 'u1');
  });

  it('Fastify middleware: attaches the verdict, refuses with 401/403/429, and its cache is invalidated by the server', async () => {
    const app = Fastify();
    await app.register(async (scope) => {
      await scope.register(keywardFastify, { baseUrl: s.url, rootKey, permissions: ['read'], cacheTtlMs: 60_000 });
      scope.get('/data', async (req) => ({ owner: req.keyward?.ownerId, keyId: req.keyward?.keyId }));
    });
    app.get('/public', async () => ({ ok: true }));
    const url = await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const good = await api.keys.create(w.appId, { name: 'mw', ownerId: 'cust', permissions: ['read'], ownerRatelimit: null });
      const noPerm = await api.keys.create(w.appId, { name: 'mw2', permissions: ['other'], ownerRatelimit: null });
      const limited = await api.keys.create(w.appId, { name: 'mw3', permissions: ['read'], ratelimit: { limit: 1, durationMs: 60_000 }, ownerRatelimit: null });
      const get = (key?: string) => fetch(`${url}/data`, { headers: key ? { authorization: `Bearer ${key}` } : {} });

      const ok = await get(good.key);
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ owner: 'cust', keyId: good.id });
      const missing = await get();
      expect(missing.status).toBe(401);
      // Named as forward auth names it, with the same challenge.
      expect(await missing.json()).toMatchObject({ status: 401, code: 'MISSING_KEY' });
      expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="keyward"');
      expect(await (await get('garbage')).json()).toMatchObject({ status: 401, code: 'MALFORMED' });
      const forbidden = await get(noPerm.key);
      expect(forbidden.status).toBe(403);
      expect(forbidden.headers.get('content-type')).toContain('application/problem+json');
      expect((await get(limited.key)).status).toBe(200);
      const tooMany = await get(limited.key);
      expect(tooMany.status).toBe(429);
      expect(Number(tooMany.headers.get('retry-after'))).toBeGreaterThan(0);
      // A key whose only limit is a named one is counted every time, never answered from the cache.
      const named = await api.keys.create(w.appId, { name: 'mw4', permissions: ['read'], ratelimit: null, ownerRatelimit: null, ratelimits: [{ name: 'burst', limit: 2, durationMs: 60_000, autoApply: true }] });
      expect((await get(named.key)).status).toBe(200);
      expect((await get(named.key)).status).toBe(200);
      const burst = await get(named.key);
      expect(burst.status).toBe(429);
      expect(Number(burst.headers.get('retry-after'))).toBeGreaterThan(0);
      // A guard can name limits with costs for every request it checks.
      const heavy = new KeyGuard({ baseUrl: s.url, rootKey, ratelimits: [{ name: 'uploads', cost: 3 }], cacheTtlMs: 0 });
      const uploads = await api.keys.create(w.appId, { name: 'mw5', ratelimit: null, ownerRatelimit: null, ratelimits: [{ name: 'uploads', limit: 7, durationMs: 60_000 }] });
      expect((await heavy.check(`Bearer ${uploads.key}`)).ratelimits).toEqual([expect.objectContaining({ name: 'uploads', remaining: 4 })]);
      expect((await heavy.check(`Bearer ${uploads.key}`)).valid).toBe(true);
      expect((await heavy.check(`Bearer ${uploads.key}`)).code).toBe('RATE_LIMITED');
      heavy.close();
      expect((await fetch(`${url}/public`)).status).toBe(200);

      // The verdict of `good` is cached (no limit, no cap); a revoke must still be enforced at once.
      expect((await get(good.key)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 200)); // the change stream is connected
      await api.keys.revoke(good.id);
      let status = 200;
      for (let i = 0; i < 50 && status === 200; i++) {
        status = (await get(good.key)).status;
        if (status === 200) await new Promise((r) => setTimeout(r, 20));
      }
      expect(status).toBe(401);
    } finally {
      await app.close();
    }
  });

  it('Express middleware with a custom header', async () => {
    const app = express();
    const guard = keywardExpress({ baseUrl: s.url, header: 'x-api-key', cacheTtlMs: 0, appId: w.appId });
    // Typed for Express as it is: no cast, and req.keyward is the verdict.
    app.use('/api', guard, (req, res) => {
      res.json({ keyId: req.keyward?.keyId });
    });
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const k = await api.keys.create(w.appId, { name: 'express', ownerRatelimit: null });
      const ok = await fetch(`${url}/api/thing`, { headers: { 'x-api-key': k.key! } });
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({ keyId: k.id });
      const missing = await fetch(`${url}/api/thing`, { headers: { authorization: `Bearer ${k.key}` } });
      expect(missing.status).toBe(401);
      expect(await missing.json()).toMatchObject({ code: 'MISSING_KEY', detail: 'Send the key in the "x-api-key" header' });
      await api.keys.update(k.id, { status: 'disabled' });
      expect((await fetch(`${url}/api/thing`, { headers: { 'x-api-key': k.key! } })).status).toBe(401);
    } finally {
      guard.guard.close();
      await new Promise((r) => server.close(r));
    }
  });
});
