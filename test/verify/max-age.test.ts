// KEYWARD_MAX_KEY_AGE_DAYS: a node-wide policy that no key lives longer than so many days, whatever
// its own expiry says. A key older than that answers EXPIRED on every transport and in forward auth.
import { afterEach, describe, expect, it } from 'vitest';
import { createKey, DIALECTS, startServer, verify, world, type TestServer } from '../support/harness.js';

const DAY = 86_400_000;

describe.each(DIALECTS)('maximum key age (%s)', (dialect) => {
  let s: TestServer | undefined;
  afterEach(async () => {
    await s?.close();
    s = undefined;
  });

  it('a key older than KEYWARD_MAX_KEY_AGE_DAYS answers EXPIRED; a younger one is VALID', async () => {
    s = await startServer({ dialect, env: { KEYWARD_MAX_KEY_AGE_DAYS: '30' } });
    const w = await world(s);
    // Sessions end long before 30 days; a root key makes the younger key later.
    const root = await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'ci', permissions: ['keys:write'] } });
    const old = await createKey(s, w, { name: 'old' });
    expect((await verify(s, { key: old.key })).code).toBe('VALID');
    s.clock.advance(30 * DAY - 1);
    expect((await verify(s, { key: old.key })).code).toBe('VALID');
    const young = await createKey(s, { ...w, token: root.body.key }, { name: 'young' });
    s.clock.advance(1);
    expect((await verify(s, { key: old.key })).code).toBe('EXPIRED');
    expect((await verify(s, { key: young.key })).code).toBe('VALID');
    // The same through the Fastify route with another media type (the fast path passes it on).
    const viaRoute = await s.request('POST', '/v1/keys/verify', { raw: JSON.stringify({ appId: w.appId, key: old.key }), headers: { 'content-type': 'application/json; charset=utf-8' } });
    expect(viaRoute.body.code).toBe('EXPIRED');
  });

  it('without the setting, age alone never expires a key', async () => {
    s = await startServer({ dialect });
    const w = await world(s);
    const k = await createKey(s, w);
    s.clock.advance(3650 * DAY);
    expect((await verify(s, { key: k.key })).code).toBe('VALID');
  });

  it('a value that is not a whole number of days from 0 to 36500 stops the node at start', async () => {
    await expect(startServer({ dialect, env: { KEYWARD_MAX_KEY_AGE_DAYS: 'soon' } })).rejects.toThrow(/KEYWARD_MAX_KEY_AGE_DAYS/);
  });
});
