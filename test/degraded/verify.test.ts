// Verify's memory budget and clock leeway, through the API: the key cache holds at most
// KEYWARD_CACHE_MAX_KEYS values and says so in /metrics (evicted keys verify again from the store),
// and an integration JWT whose `iat` is a little in the future (a client clock ahead) is accepted
// up to KEYWARD_JWT_LEEWAY_SEC, while age, `exp` and `nbf` get no leeway.
import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { createKey, startServer, verify, world, type TestServer } from '../support/harness.js';

const metric = (text: string, name: string) => Number(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\d+)`, 'm').exec(text)?.[1]);

describe('verify cache size', () => {
  let s: TestServer;
  afterEach(async () => s.close());

  it('holds at most KEYWARD_CACHE_MAX_KEYS key values, counts evictions, and evicted keys still verify', async () => {
    s = await startServer({ env: { KEYWARD_CACHE_MAX_KEYS: '100' } });
    const w = await world(s);
    const keys: string[] = [];
    for (let i = 0; i < 130; i++) keys.push((await createKey(s, w, { ownerRatelimit: null })).key);
    for (const key of keys) expect((await verify(s, { key })).code).toBe('VALID');
    let text = (await s.request('GET', '/metrics')).text;
    expect(metric(text, 'keyward_key_cache_entries{kind="keys"}')).toBe(100);
    expect(metric(text, 'keyward_key_cache_capacity')).toBe(100);
    expect(metric(text, 'keyward_key_cache_evictions_total')).toBe(30);
    expect((await verify(s, { key: keys[0]! })).code).toBe('VALID');
    text = (await s.request('GET', '/metrics')).text;
    expect(metric(text, 'keyward_key_cache_entries{kind="values"}')).toBe(100);
    expect(metric(text, 'keyward_key_cache_evictions_total')).toBe(31);
  });
});

describe('integration JWT clock leeway', () => {
  let s: TestServer;
  afterEach(async () => s.close());

  const token = (secret: string, kid: string, iatMs: number, exp?: number) => {
    const t = new SignJWT({ sub: 'client' }).setProtectedHeader({ alg: 'HS256', kid }).setIssuedAt(Math.floor(iatMs / 1000));
    if (exp !== undefined) t.setExpirationTime(Math.floor(exp / 1000));
    return t.sign(new TextEncoder().encode(secret));
  };

  it('an iat up to KEYWARD_JWT_LEEWAY_SEC (default 30) in the future is accepted; beyond, or a stale one, is not', async () => {
    s = await startServer();
    const w = await world(s);
    const k = await createKey(s, w, { kind: 'integration' });
    const now = s.clock.now();
    const code = async (jwt: string) => (await verify(s, { authorization: `Bearer ${jwt}` })).code as string;
    expect(await code(await token(k.body.secret, k.id, now + 30_000))).toBe('VALID');
    expect(await code(await token(k.body.secret, k.id, now + 32_000))).toBe('TOKEN_EXPIRED');
    // No leeway for age or expiry.
    expect(await code(await token(k.body.secret, k.id, now - 301_000))).toBe('TOKEN_EXPIRED');
    expect(await code(await token(k.body.secret, k.id, now + 10_000, now - 1000))).toBe('TOKEN_EXPIRED');
  });

  it('KEYWARD_JWT_LEEWAY_SEC=0 accepts no iat in the future', async () => {
    s = await startServer({ env: { KEYWARD_JWT_LEEWAY_SEC: '0' } });
    const w = await world(s);
    const k = await createKey(s, w, { kind: 'integration' });
    const now = s.clock.now();
    expect((await verify(s, { authorization: `Bearer ${await token(k.body.secret, k.id, now)}` })).code).toBe('VALID');
    expect((await verify(s, { authorization: `Bearer ${await token(k.body.secret, k.id, now + 2000)}` })).code).toBe('TOKEN_EXPIRED');
  });
});
