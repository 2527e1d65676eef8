// Key import: keys issued elsewhere, by plaintext or SHA-256, verify in the app that accepts them;
// a repeat creates nothing; a value held anywhere else is refused like any other invalid entry;
// garbage and imported values sent to any other app stay MALFORMED without a store lookup.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DIALECTS, addMember, createKey, mailOf, prefixOf, snapshot, startServer, tagOf, verify, world, type TestServer, type World } from '../support/harness.js';
import { generateKey } from '../../src/lib/key-format.js';

const sha = (text: string) => createHash('sha256').update(text).digest();
describe.each(DIALECTS)('key import (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  let other: { workspaceId: string; appId: string };
  beforeAll(async () => {
    s = await startServer({ dialect });
  });
  afterAll(async () => s.close());
  /** A key issued elsewhere. Values are unique across the instance: each test's carry its world's tag. */
  const legacy = (n: number) => `sk_legacy_${String(n).padStart(4, '0')}${tagOf(w)}_Zq8w3Lx9Vb2Nc7Rt5Kd1`;
  beforeEach(async () => {
    w = await world(s);
    // Another tenant on the same instance, with its own import-enabled app.
    const ws = (await s.request('POST', '/v1/workspaces', { token: w.token, body: { name: 'Other tenant' } })).body.id;
    const app = (await s.request('POST', '/v1/apps', { token: w.token, body: { workspaceId: ws, name: 'Other API', keyPrefix: prefixOf(w, 'other'), importKeys: true } })).body.id;
    other = { workspaceId: ws, appId: app };
  });

  const enable = async (appId = w.appId, on = true) => {
    const res = await s.request('PATCH', `/v1/apps/${appId}`, { token: w.token, body: { importKeys: on } });
    expect(res.status).toBe(200);
    expect(res.body.importKeys).toBe(on);
  };
  const importKeys = (keys: unknown[], appId = w.appId, token = w.token) => s.request('POST', `/v1/apps/${appId}/keys/import`, { token, body: { keys } });
  /** Counts the store lookups verify makes from now on. */
  const countLoads = () => {
    const real = s.deps.verify.load;
    const counter = { n: 0, restore: () => void (s.deps.verify.load = real) };
    s.deps.verify.load = (hash) => {
      counter.n++;
      return real(hash);
    };
    return counter;
  };

  it('imports plaintext and hashed keys (hex, base64, base64url) with their fields, and each verifies', async () => {
    await enable();
    const own = generateKey(w.keyPrefix, 'test').plaintext;
    const res = await importKeys([
      { key: legacy(1), name: 'plain', ownerId: 'cust_1', permissions: ['docs.read'], remaining: 2, meta: { plan: 'pro' } },
      { hash: sha(legacy(2)).toString('hex').toUpperCase(), name: 'hex', ratelimit: { limit: 1, durationMs: 60_000 } },
      { hash: sha(legacy(3)).toString('base64'), name: 'base64', ipAllowlist: ['10.0.0.0/8'], start: 'sk_leg' },
      { hash: sha(legacy(4)).toString('base64url').replace(/=+$/, ''), name: 'base64url', expiresAt: new Date(s.clock.now() + 3_600_000).toISOString() },
      { key: own, name: 'from another Keyward' },
      { key: 'x'.repeat(256), name: 'longest', status: 'disabled' },
    ]);
    expect(res.status).toBe(201);
    expect(res.body.created).toBe(6);
    expect(res.body.data.map((d: any) => d.status)).toEqual(Array(6).fill('created'));
    const [plain, hex, b64, b64url, ownFormat, longest] = res.body.data.map((d: any) => d.id as string);

    const first = await verify(s, { key: legacy(1), permissions: ['docs.read'] });
    expect(first).toMatchObject({ valid: true, code: 'VALID', keyId: plain, ownerId: 'cust_1', remaining: 1, meta: { plan: 'pro' } });
    expect((await verify(s, { key: legacy(1) })).remaining).toBe(0);
    expect((await verify(s, { key: legacy(1) })).code).toBe('USAGE_EXCEEDED');
    expect(await verify(s, { key: legacy(2) })).toMatchObject({ code: 'VALID', keyId: hex, ratelimit: { limit: 1, remaining: 0 } });
    expect((await verify(s, { key: legacy(2) })).code).toBe('RATE_LIMITED');
    expect((await verify(s, { key: legacy(3), ip: '192.168.1.1' })).code).toBe('IP_NOT_ALLOWED');
    expect(await verify(s, { key: legacy(3), ip: '10.1.2.3' })).toMatchObject({ code: 'VALID', keyId: b64 });
    expect(await verify(s, { key: legacy(4) })).toMatchObject({ code: 'VALID', keyId: b64url });
    expect(await verify(s, { key: own })).toMatchObject({ code: 'VALID', keyId: ownFormat, environment: 'test' });
    expect((await verify(s, { key: 'x'.repeat(256) })).code).toBe('DISABLED');
    expect(longest).toMatch(/^key_/);
    // The same key through an Authorization header, on the socket path.
    expect((await verify(s, { authorization: `Bearer ${legacy(4)}` })).code).toBe('VALID');

    const view = await s.request('GET', `/v1/keys/${plain}`, { token: w.token });
    expect(view.body).toMatchObject({ imported: true, start: 'sk_l', name: 'plain', ownerId: 'cust_1' });
    expect(view.text).not.toContain(legacy(1));
    expect((await s.request('GET', `/v1/keys/${b64}`, { token: w.token })).body.start).toBe('sk_leg');
    expect((await s.request('GET', `/v1/keys/${ownFormat}`, { token: w.token })).body.start).toBe(own.slice(0, `${w.keyPrefix}_test_`.length + 4));
    const made = await createKey(s, w);
    expect((await s.request('GET', `/v1/keys/${made.id}`, { token: w.token })).body.imported).toBe(false);
    const audit = await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit?action=key.import&limit=100`, { token: w.token });
    expect(audit.body.total).toBe(6);
    expect(new Set(audit.body.data.map((a: any) => a.target.id))).toEqual(new Set([plain, hex, b64, b64url, ownFormat, longest]));
  });

  it('a repeat of an import, or a value twice in one call, creates nothing', async () => {
    await enable();
    const keys = [{ key: legacy(1) }, { hash: sha(legacy(2)).toString('hex') }, { key: legacy(1), name: 'again in the same call' }];
    const first = await importKeys(keys);
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ created: 2, existing: 1 });
    expect(first.body.data[2]).toEqual({ index: 2, id: first.body.data[0].id, status: 'existing' });
    const before = await snapshot(s);
    // The same values again, by the other form and with other fields: nothing changes.
    const again = await importKeys([{ hash: sha(legacy(1)).toString('base64') }, { key: legacy(2), name: 'renamed', remaining: 1 }]);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ created: 0, existing: 2, data: [{ index: 0, id: first.body.data[0].id, status: 'existing' }, { index: 1, id: first.body.data[1].id, status: 'existing' }] });
    expect(await snapshot(s)).toBe(before);
    expect((await s.request('GET', `/v1/apps/${w.appId}/keys`, { token: w.token })).body.total).toBe(2);
  });

  it('a value held anywhere else is refused like any other invalid entry, and nothing of the call is imported', async () => {
    await enable();
    const theirs = (await s.request('POST', `/v1/apps/${other.appId}/keys`, { token: w.token, body: { name: 'theirs' } })).body.key as string;
    expect((await importKeys([{ key: legacy(9) }], other.appId)).status).toBe(201);
    const root = (await s.request('POST', `/v1/workspaces/${other.workspaceId}/root-keys`, { token: w.token, body: { name: 'ci', permissions: ['*'] } })).body.key as string;
    const before = await snapshot(s);
    const res = await importKeys([
      { key: legacy(1), name: 'fine on its own' },
      { hash: sha(theirs).toString('hex') },
      { hash: sha(legacy(9)).toString('base64') },
      { hash: sha(root).toString('hex') },
    ]);
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('VALIDATION_FAILED');
    // One answer for each, whoever holds the value: nothing says where, or whether it is a key or a root key.
    expect(res.body.errors).toEqual([1, 2, 3].map((i) => ({ path: `body/keys/${i}`, message: 'cannot be imported' })));
    expect(res.text).not.toContain(other.appId);
    expect(res.text).not.toContain(other.workspaceId);
    expect(await snapshot(s)).toBe(before);
    expect((await verify(s, { key: legacy(1) })).code).toBe('MALFORMED');
  });

  it('refuses plaintext in Keyward\'s format under another prefix, and every malformed entry, changing nothing', async () => {
    await enable();
    const before = await snapshot(s);
    const theirs = generateKey(prefixOf(w, 'other'), 'live').plaintext;
    const nobodys = generateKey('nobody', 'live').plaintext;
    const res = await importKeys([
      { key: theirs },
      { key: nobodys },
      { key: `kwroot_live_${generateKey('kwroot', 'live').plaintext.slice(12)}` },
      { key: legacy(1), hash: sha(legacy(1)).toString('hex') },
      {},
      { hash: 'f'.repeat(63) },
      { hash: `${sha(legacy(2)).toString('base64').slice(0, 42)}B=` },
      { key: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl' },
      { key: legacy(3), expiresAt: new Date(s.clock.now() - 1000).toISOString() },
      { key: legacy(4), ipAllowlist: ['not an address'] },
      { key: legacy(5), createdAt: new Date(s.clock.now() + 86_400_000).toISOString() },
      { key: generateKey(w.keyPrefix, 'live').plaintext, environment: 'test' },
      { key: legacy(6), start: 'mine' },
      { key: legacy(7) },
    ]);
    expect(res.status).toBe(400);
    const paths = res.body.errors.map((e: any) => e.path);
    expect(paths).toEqual(['body/keys/0/key', 'body/keys/1/key', 'body/keys/2/key', 'body/keys/3', 'body/keys/4', 'body/keys/5/hash', 'body/keys/6/hash',
      'body/keys/7/key', 'body/keys/8/expiresAt', 'body/keys/9/ipAllowlist/0', 'body/keys/10/createdAt', 'body/keys/11/environment', 'body/keys/12/start']);
    expect(res.text).not.toContain(theirs);
    expect(res.text).not.toContain(legacy(1));
    expect(await snapshot(s)).toBe(before);

    // Shape errors are the schema's: too short, spaces, too many entries, unknown fields.
    for (const body of [{ keys: [{ key: 'short' }] }, { keys: [{ key: 'has a space in it, see' }] }, { keys: [] },
      { keys: Array.from({ length: 1001 }, (_, i) => ({ key: legacy(i) })) }, { keys: [{ key: legacy(1), kind: 'integration' }] }]) {
      const bad = await s.request('POST', `/v1/apps/${w.appId}/keys/import`, { token: w.token, body });
      expect(bad.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(bad.body.code).toBe('VALIDATION_FAILED');
    }
    expect(await snapshot(s)).toBe(before);
  });

  it('an app without importKeys refuses imports; keys:import is needed', async () => {
    const off = await importKeys([{ key: legacy(1) }]);
    expect(off.status).toBe(409);
    expect(off.body.code).toBe('IMPORT_NOT_ENABLED');
    await enable();
    const writer = (await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'writer', permissions: ['keys:write', 'keys:read'] } })).body.key as string;
    expect((await importKeys([{ key: legacy(1) }], w.appId, writer)).status).toBe(403);
    const member = await addMember(s, w, mailOf(w, 'member'), 'member', 'member password 123');
    expect((await importKeys([{ key: legacy(1) }], w.appId, member.token)).status).toBe(403);
    const importer = (await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'importer', permissions: ['keys:import'] } })).body.key as string;
    expect((await importKeys([{ key: legacy(1) }], w.appId, importer)).status).toBe(201);
    // Another tenant's app is not found, like a missing one.
    const stranger = await importKeys([{ key: legacy(2) }], other.appId, importer);
    expect(stranger.status).toBe(404);
  });

  it('garbage, and an imported value sent to another app, are MALFORMED without a store lookup', async () => {
    await enable();
    await importKeys([{ key: legacy(1) }, { key: 'y'.repeat(200) }]);
    const second = (await s.request('POST', '/v1/apps', { token: w.token, body: { workspaceId: w.workspaceId, name: 'Second', keyPrefix: prefixOf(w, 'second') } })).body.id as string;
    // Cached VALID in its own app first: a cached copy must not answer for another app either.
    expect((await verify(s, { key: legacy(1) })).code).toBe('VALID');
    expect((await verify(s, { key: 'y'.repeat(200) })).code).toBe('VALID');
    const loads = countLoads();
    try {
      for (const appId of [second, other.appId]) {
        expect(await verify(s, { key: legacy(1), appId })).toEqual({ valid: false, code: 'MALFORMED' });
        expect(await verify(s, { key: 'y'.repeat(200), appId })).toEqual({ valid: false, code: 'MALFORMED' });
      }
      for (const appId of [w.appId, second, other.appId]) {
        for (const garbage of ['not a key at all, just text', 'z'.repeat(64), 'z'.repeat(65), 'z'.repeat(256), 'z'.repeat(257), legacy(2)]) {
          expect(await verify(s, { key: garbage, appId })).toEqual({ valid: false, code: 'MALFORMED' });
        }
      }
      expect(loads.n).toBe(0);
    } finally {
      loads.restore();
    }
    // A verify root key of the other workspace: its scope does not reach this app's imported values.
    const theirRoot = (await s.request('POST', `/v1/workspaces/${other.workspaceId}/root-keys`, { token: w.token, body: { name: 'v', permissions: ['keys:verify'] } })).body.key as string;
    expect(await verify(s, { key: legacy(1), appId: undefined }, { headers: { authorization: `Bearer ${theirRoot}` } })).toEqual({ valid: false, code: 'MALFORMED' });
    const ourRoot = (await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'v', permissions: ['keys:verify'] } })).body.key as string;
    expect((await verify(s, { key: legacy(1), appId: undefined }, { headers: { authorization: `Bearer ${ourRoot}` } })).code).toBe('VALID');
  });

  it('importKeys off: imported values outside the format stop verifying at once; those in it keep working', async () => {
    await enable();
    const own = generateKey(w.keyPrefix, 'live').plaintext;
    await importKeys([{ key: legacy(1) }, { key: own }]);
    expect((await verify(s, { key: legacy(1) })).code).toBe('VALID');
    await enable(w.appId, false);
    expect((await verify(s, { key: legacy(1) })).code).toBe('MALFORMED');
    expect((await verify(s, { key: own })).code).toBe('VALID');
    await enable(w.appId, true);
    expect((await verify(s, { key: legacy(1) })).code).toBe('VALID');
  });

  it('another node on the same store learns of an import, and of importKeys switched off, from the change feed', async () => {
    await enable();
    const peer = await startServer({ dialect, dataDir: s.dataDir, ...(dialect === 'postgres' ? { databaseUrl: (s.deps.config.databaseUrl) } : {}), clock: s.clock });
    try {
      peer.appId = w.appId;
      expect((await verify(peer, { key: legacy(1) })).code).toBe('MALFORMED');
      await importKeys([{ key: legacy(1) }]);
      await peer.deps.feed.poll();
      await waitFor(async () => (await verify(peer, { key: legacy(1) })).code === 'VALID');
      await enable(w.appId, false);
      await peer.deps.feed.poll();
      await waitFor(async () => (await verify(peer, { key: legacy(1) })).code === 'MALFORMED');
    } finally {
      await peer.close();
    }
  });
});

/** Polls a condition the change feed makes true (the refresh it starts reads the store). */
async function waitFor(check: () => Promise<boolean>, tries = 200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error('condition not reached');
}
