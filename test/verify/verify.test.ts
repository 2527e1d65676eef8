// Every verify verdict, each reached by setting up its condition for real through the API.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DIALECTS, createKey, startServer, verify, world, type TestServer, type World } from '../support/harness.js';
import { checksum } from '../../src/lib/key-format.js';

describe.each(DIALECTS)('verify (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  beforeAll(async () => {
    s = await startServer({ dialect, listen: true });
  });
  afterAll(async () => s.close());
  beforeEach(async () => {
    w = await world(s);
  });

  it('VALID with the key in `key`, `authorization: Bearer` and the key data', async () => {
    const k = await createKey(s, w, { ownerId: 'user_1', permissions: ['docs.read'], meta: { plan: 'pro' } });
    expect(k.key).toMatch(new RegExp(`^${w.keyPrefix}_live_[0-9A-Za-z]{38}$`));
    const a = await verify(s, { key: k.key });
    expect(a).toMatchObject({ valid: true, code: 'VALID', keyId: k.id, appId: w.appId, ownerId: 'user_1', environment: 'live', permissions: ['docs.read'], meta: { plan: 'pro' } });
    expect(a.ratelimit).toMatchObject({ limit: 1000, remaining: 999 });
    const b = await verify(s, { authorization: `Bearer ${k.key}` });
    expect(b.code).toBe('VALID');
  });

  it('MALFORMED for garbage, a bad checksum, a wrong scheme or nothing at all', async () => {
    const k = await createKey(s, w);
    const flipped = k.key.slice(0, -1) + (k.key.endsWith('a') ? 'b' : 'a');
    for (const body of [{ key: 'hello' }, { key: flipped }, { authorization: `Token ${k.key}` }, {}, { key: '' }]) {
      expect(await verify(s, body), JSON.stringify(body)).toEqual({ valid: false, code: 'MALFORMED' });
    }
  });

  it('NOT_FOUND for a well-formed key nobody issued, or one of another app', async () => {
    const body = `${w.keyPrefix}_live_` + 'A'.repeat(32);
    expect(await verify(s, { key: body + checksum(body) })).toEqual({ valid: false, code: 'NOT_FOUND' });
    const k = await createKey(s, w);
    const other = await s.request('POST', '/v1/apps', { token: w.token, body: { workspaceId: w.workspaceId, name: 'Other' } });
    expect((await verify(s, { key: k.key, appId: other.body.id })).code).toBe('NOT_FOUND');
    expect((await verify(s, { key: k.key, appId: w.appId })).code).toBe('VALID');
  });

  it('DISABLED, then VALID again when enabled; REVOKED on the very next call after DELETE', async () => {
    const k = await createKey(s, w);
    expect((await verify(s, { key: k.key })).code).toBe('VALID');
    expect((await s.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: { status: 'disabled' } })).status).toBe(200);
    expect((await verify(s, { key: k.key })).code).toBe('DISABLED');
    await s.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: { status: 'active' } });
    expect((await verify(s, { key: k.key })).code).toBe('VALID');
    const del = await s.request('DELETE', `/v1/keys/${k.id}`, { token: w.token });
    expect(del.status).toBe(200);
    expect(del.body.status).toBe('revoked');
    expect(await verify(s, { key: k.key })).toMatchObject({ valid: false, code: 'REVOKED', keyId: k.id });
    const patch = await s.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: { status: 'active' } });
    expect(patch.status).toBe(409);
    expect((await verify(s, { key: k.key })).code).toBe('REVOKED');
  });

  it('EXPIRED once expiresAt passes', async () => {
    const k = await createKey(s, w, { expiresAt: new Date(s.clock.now() + 60_000).toISOString() });
    expect((await verify(s, { key: k.key })).code).toBe('VALID');
    s.clock.advance(60_001);
    expect((await verify(s, { key: k.key })).code).toBe('EXPIRED');
  });

  it('IP_NOT_ALLOWED outside IPv4/IPv6 CIDRs, and when no address is given', async () => {
    const k = await createKey(s, w, { ipAllowlist: ['10.0.0.0/8', '203.0.113.7', '2001:db8::/32'] });
    for (const ip of ['10.1.2.3', '203.0.113.7', '2001:db8:1::5', '::ffff:10.9.9.9']) {
      expect((await verify(s, { key: k.key, ip })).code, ip).toBe('VALID');
    }
    for (const ip of ['11.0.0.1', '203.0.113.8', '2001:db9::1']) {
      expect((await verify(s, { key: k.key, ip })).code, ip).toBe('IP_NOT_ALLOWED');
    }
    expect((await verify(s, { key: k.key })).code).toBe('IP_NOT_ALLOWED');
    // Something that is not an address is the caller's bug, for any key: a 400, not a verdict.
    const open = await createKey(s, w);
    for (const ip of ['not-an-ip', '010.1.2.3', '<caller address>']) {
      for (const key of [k.key, open.key]) {
        const r = await s.request('POST', '/v1/keys/verify', { body: { key, appId: w.appId, ip } });
        expect(r.status, ip).toBe(400);
        expect(r.body.errors[0].path).toBe('body/ip');
      }
    }
  });

  it('RESOURCE_FORBIDDEN outside the domain scope; an empty scope allows all', async () => {
    const scoped = await createKey(s, w, { resources: ['acme.com', '*.acme.dev'] });
    expect((await verify(s, { key: scoped.key, resource: 'acme.com' })).code).toBe('VALID');
    expect((await verify(s, { key: scoped.key, resource: 'api.acme.dev' })).code).toBe('VALID');
    expect((await verify(s, { key: scoped.key, resource: 'evil.com' })).code).toBe('RESOURCE_FORBIDDEN');
    expect((await verify(s, { key: scoped.key, resource: 'acme.dev.evil.com' })).code).toBe('RESOURCE_FORBIDDEN');
    const open = await createKey(s, w);
    expect((await verify(s, { key: open.key, resource: 'anything.example' })).code).toBe('VALID');
  });

  it('INSUFFICIENT_PERMISSIONS unless every asked permission is granted (with wildcards)', async () => {
    const k = await createKey(s, w, { permissions: ['docs.*', 'billing.read'] });
    expect((await verify(s, { key: k.key, permissions: ['docs.write', 'billing.read'] })).code).toBe('VALID');
    expect((await verify(s, { key: k.key, permissions: ['billing.write'] })).code).toBe('INSUFFICIENT_PERMISSIONS');
    expect((await verify(s, { key: k.key, permissions: ['docs.read', 'admin'] })).code).toBe('INSUFFICIENT_PERMISSIONS');
  });

  it('RATE_LIMITED per key, with the window in the answer, and again allowed after the window', async () => {
    const k = await createKey(s, w, { ratelimit: { limit: 3, durationMs: 60_000 } });
    const codes = [];
    for (let i = 0; i < 5; i++) codes.push((await verify(s, { key: k.key })).code);
    expect(codes).toEqual(['VALID', 'VALID', 'VALID', 'RATE_LIMITED', 'RATE_LIMITED']);
    const limited = await verify(s, { key: k.key });
    expect(limited.ratelimit).toMatchObject({ limit: 3, remaining: 0 });
    s.clock.advance(120_000);
    expect((await verify(s, { key: k.key })).code).toBe('VALID');
  });

  it('RATE_LIMITED per owner across all of their keys', async () => {
    const a = await createKey(s, w, { ownerId: 'cust_9', ownerRatelimit: { limit: 4, durationMs: 60_000 } });
    const b = await createKey(s, w, { ownerId: 'cust_9', ownerRatelimit: { limit: 4, durationMs: 60_000 } });
    const other = await createKey(s, w, { ownerId: 'cust_10', ownerRatelimit: { limit: 4, durationMs: 60_000 } });
    const codes = [];
    for (let i = 0; i < 3; i++) {
      codes.push((await verify(s, { key: a.key })).code, (await verify(s, { key: b.key })).code);
    }
    expect(codes.filter((c) => c === 'VALID')).toHaveLength(4);
    expect(codes.filter((c) => c === 'RATE_LIMITED')).toHaveLength(2);
    expect((await verify(s, { key: other.key })).code).toBe('VALID');
  });

  it('default: 1000 requests per minute per owner', async () => {
    const a = await createKey(s, w, { ownerId: 'bulk' });
    const b = await createKey(s, w, { ownerId: 'bulk' });
    expect(a.body.ownerRatelimit).toEqual({ limit: 1000, durationMs: 60_000 });
    let valid = 0;
    const batch = async (key: string) => (await Promise.all(Array.from({ length: 100 }, () => verify(s, { key })))).filter((r) => r.code === 'VALID').length;
    for (let i = 0; i < 5; i++) valid += (await batch(a.key)) + (await batch(b.key));
    expect(valid).toBe(1000);
    const after = await verify(s, { key: a.key });
    expect(after.code).toBe('RATE_LIMITED');
    expect(after.ratelimit.limit).toBe(1000);
  });

  it('USAGE_EXCEEDED when the cap is spent; cost charges several; refusals charge nothing', async () => {
    const k = await createKey(s, w, { remaining: 5, permissions: ['x'] });
    expect(await verify(s, { key: k.key, cost: 3 })).toMatchObject({ code: 'VALID', remaining: 2 });
    expect((await verify(s, { key: k.key, permissions: ['y'] })).code).toBe('INSUFFICIENT_PERMISSIONS');
    expect(await verify(s, { key: k.key, cost: 3 })).toMatchObject({ code: 'USAGE_EXCEEDED', remaining: 2 });
    expect(await verify(s, { key: k.key, cost: 2 })).toMatchObject({ code: 'VALID', remaining: 0 });
    expect(await verify(s, { key: k.key })).toMatchObject({ code: 'USAGE_EXCEEDED', remaining: 0 });
    const read = await s.request('GET', `/v1/keys/${k.id}`, { token: w.token });
    expect(read.body.remaining).toBe(0);
  });

  it('daily refill restores the cap at the next UTC day', async () => {
    const k = await createKey(s, w, { refill: { amount: 2, interval: 'daily' } });
    expect(k.body.remaining).toBe(2);
    expect((await verify(s, { key: k.key })).code).toBe('VALID');
    expect((await verify(s, { key: k.key })).code).toBe('VALID');
    expect((await verify(s, { key: k.key })).code).toBe('USAGE_EXCEEDED');
    s.clock.advance(86_400_000);
    expect(await verify(s, { key: k.key })).toMatchObject({ code: 'VALID', remaining: 1 });
  });

  it('monthly refill restores the cap at the next UTC month', async () => {
    s.clock.set(Date.UTC(2026, 2, 31, 23, 0));
    const k = await createKey(s, w, { remaining: 1, refill: { amount: 10, interval: 'monthly' } });
    expect((await verify(s, { key: k.key })).code).toBe('VALID');
    expect((await verify(s, { key: k.key })).code).toBe('USAGE_EXCEEDED');
    s.clock.set(Date.UTC(2026, 3, 1, 0, 1));
    expect(await verify(s, { key: k.key })).toMatchObject({ code: 'VALID', remaining: 9 });
  });

  it('200 concurrent verifies on a key with remaining 50 → exactly 50 VALID', async () => {
    const k = await createKey(s, w, { remaining: 50, ownerRatelimit: null });
    const answers = await Promise.all(Array.from({ length: 200 }, () => verify(s, { key: k.key })));
    const valid = answers.filter((a) => a.code === 'VALID');
    expect(valid).toHaveLength(50);
    expect(answers.filter((a) => a.code === 'USAGE_EXCEEDED')).toHaveLength(150);
    expect(new Set(valid.map((a) => a.remaining)).size).toBe(50);
    expect((await s.request('GET', `/v1/keys/${k.id}`, { token: w.token })).body.remaining).toBe(0);
  });

  it('roll: the new value works, the old one until the grace period ends', async () => {
    const k = await createKey(s, w);
    const rolled = await s.request('POST', `/v1/keys/${k.id}/roll`, { token: w.token, body: { gracePeriodMs: 60_000 } });
    expect(rolled.status).toBe(200);
    expect(rolled.body.key).not.toBe(k.key);
    expect(rolled.body.id).toBe(k.id);
    expect((await verify(s, { key: rolled.body.key })).code).toBe('VALID');
    expect((await verify(s, { key: k.key })).code).toBe('VALID');
    s.clock.advance(60_001);
    expect((await verify(s, { key: k.key })).code).toBe('EXPIRED');
    expect((await verify(s, { key: rolled.body.key })).code).toBe('VALID');
    const again = await s.request('POST', `/v1/keys/${k.id}/roll`, { token: w.token, body: {} });
    expect((await verify(s, { key: rolled.body.key })).code).toBe('EXPIRED');
    expect((await verify(s, { key: again.body.key })).code).toBe('VALID');
  });

  it('a PATCH takes effect on the next verify (cache invalidated)', async () => {
    const k = await createKey(s, w, { permissions: ['a'] });
    expect((await verify(s, { key: k.key, permissions: ['a'] })).code).toBe('VALID');
    await s.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: { permissions: ['b'] } });
    expect((await verify(s, { key: k.key, permissions: ['a'] })).code).toBe('INSUFFICIENT_PERMISSIONS');
    await s.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: { ipAllowlist: ['192.0.2.1'] } });
    expect((await verify(s, { key: k.key, ip: '192.0.2.2' })).code).toBe('IP_NOT_ALLOWED');
  });

  it('deleting the app revokes its keys at once', async () => {
    const k = await createKey(s, w);
    expect((await verify(s, { key: k.key })).code).toBe('VALID');
    expect((await s.request('DELETE', `/v1/apps/${w.appId}`, { token: w.token })).status).toBe(204);
    expect((await verify(s, { key: k.key })).code).toBe('REVOKED');
    expect((await s.request('GET', `/v1/apps/${w.appId}`, { token: w.token })).status).toBe(404);
  });

  it('a verify answered at the first millisecond of a minute is in the default series (it runs through now)', async () => {
    s.clock.set(Math.ceil(s.clock.now() / 60_000) * 60_000 + 60_000);
    const k = await createKey(s, w);
    expect((await verify(s, { key: k.key })).code).toBe('VALID');
    const usage = await s.request('GET', `/v1/keys/${k.id}/usage?granularity=minute`, { token: w.token });
    expect(usage.status).toBe(200);
    const last = usage.body.data.at(-1);
    expect(last.at).toBe(new Date(s.clock.now()).toISOString());
    expect(last.counts).toEqual({ VALID: 1 });
  });

  it('usage is counted per key per bucket by outcome, and lastUsedAt is set', async () => {
    const k = await createKey(s, w, { permissions: ['a'] });
    for (let i = 0; i < 3; i++) await verify(s, { key: k.key });
    await verify(s, { key: k.key, permissions: ['b'] });
    const usage = await s.request('GET', `/v1/keys/${k.id}/usage?granularity=minute&since=${new Date(s.clock.now() - 5 * 60_000).toISOString()}`, { token: w.token });
    expect(usage.status).toBe(200);
    const totals: Record<string, number> = {};
    for (const b of usage.body.data) for (const [c, n] of Object.entries(b.counts)) totals[c] = (totals[c] ?? 0) + (n as number);
    expect(totals).toEqual({ VALID: 3, INSUFFICIENT_PERMISSIONS: 1 });
    expect(usage.body.data.length).toBeGreaterThanOrEqual(5);
    const read = await s.request('GET', `/v1/keys/${k.id}`, { token: w.token });
    expect(read.body.lastUsedAt).toBe(new Date(s.clock.now()).toISOString());
  });
});
