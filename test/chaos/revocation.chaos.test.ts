// Revocation under faults (contract v2): a change is refused by every node that reaches the store,
// whatever Redis does, because every node follows the store's change feed; Redis only makes it
// sooner. Waits on a hung store are bounded. Two nodes in this process on one PostgreSQL database,
// each with its own path to Redis through a proxy the test can cut.
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKey, createPgDatabase, DIALECTS, startServer, verify, world, type TestServer, type World } from '../support/harness.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const REDIS_URL = process.env.TEST_REDIS_URL;
const enabled = Boolean(REDIS_URL) && DIALECTS.includes('postgres');
if (process.env.CI && !enabled) throw new Error('CI must run the revocation chaos suite: set TEST_REDIS_URL and TEST_DIALECTS=sqlite,postgres');

describe.runIf(enabled)('revocation under faults (PostgreSQL + Redis)', () => {
  let pg: Awaited<ReturnType<typeof createPgDatabase>>;
  let redisA: TcpProxy;
  let redisB: TcpProxy;
  let pgB: TcpProxy;
  let a: TestServer;
  let b: TestServer;
  let w: World;

  beforeEach(async () => {
    pg = await createPgDatabase();
    const redis = new URL(REDIS_URL!);
    redisA = await startTcpProxy(redis.hostname, Number(redis.port || 6379));
    redisB = await startTcpProxy(redis.hostname, Number(redis.port || 6379));
    const db = new URL(pg.url);
    pgB = await startTcpProxy(db.hostname, Number(db.port || 5432));
    const bUrl = new URL(pg.url);
    bUrl.port = String(pgB.port);
    const shared = { KEYWARD_MASTER_KEY: Buffer.alloc(32, 3).toString('base64'), KEYWARD_REDIS_PREFIX: `kwtest_${randomBytes(4).toString('hex')}:`, KEYWARD_STORE_TIMEOUT_MS: '1500', KEYWARD_FEED_POLL_MS: '1000' };
    a = await startServer({ dialect: 'postgres', databaseUrl: pg.url, env: { ...shared, REDIS_URL: `redis://127.0.0.1:${redisA.port}` } });
    b = await startServer({ dialect: 'postgres', databaseUrl: bUrl.toString(), env: { ...shared, REDIS_URL: `redis://127.0.0.1:${redisB.port}` } });
    w = await world(a);
    b.appId = w.appId;
  });
  afterEach(async () => {
    await a.close();
    await b.close();
    await redisA.close();
    await redisB.close();
    await pgB.close();
    await pg.drop();
  });

  it('a revoke on a node cut off from Redis is refused by the other node as soon as it reads the feed', async () => {
    const k = await createKey(a, w);
    expect((await verify(b, { key: k.key })).code).toBe('VALID');
    await redisA.down();
    expect((await a.request('DELETE', `/v1/keys/${k.id}`, { token: w.token })).status).toBe(200);
    expect((await verify(a, { key: k.key })).code).toBe('REVOKED');
    // Nothing reached B through Redis; B still has the key cached as valid until it reads the feed.
    await b.deps.feed.poll();
    expect((await verify(b, { key: k.key })).code).toBe('REVOKED');
  });

  it('a revoke during a Redis outage, and right after Redis returns, reaches every node through the feed', async () => {
    const during = await createKey(a, w);
    const after = await createKey(a, w);
    for (const k of [during, after]) expect((await verify(b, { key: k.key })).code).toBe('VALID');
    await redisA.down();
    await redisB.down();
    const disabled = await a.request('PATCH', `/v1/keys/${during.id}`, { token: w.token, body: { status: 'disabled' } });
    expect(disabled.status, disabled.text).toBe(200);
    await b.deps.feed.poll();
    expect((await verify(b, { key: during.key })).code).toBe('DISABLED');
    await redisA.up();
    await redisB.up();
    const revoked = await a.request('DELETE', `/v1/keys/${after.id}`, { token: w.token });
    expect(revoked.status, revoked.text).toBe(200);
    await b.deps.feed.poll();
    expect((await verify(b, { key: after.key })).code).toBe('REVOKED');
  });

  it('a Redis reconnect keeps the cache: a Redis blip and then a store outage still answer from it', async () => {
    const k = await createKey(a, w);
    await b.deps.feed.poll();
    expect((await verify(b, { key: k.key })).code).toBe('VALID');
    await redisB.down();
    await redisB.up();
    await b.deps.feed.poll();
    await pgB.down();
    expect((await verify(b, { key: k.key })).code).toBe('VALID');
    const unseen = await createKey(a, w);
    const miss = await b.request('POST', '/v1/keys/verify', { body: { key: unseen.key, appId: w.appId } });
    expect(miss.status).toBe(503);
    expect(miss.headers.get('retry-after')).toBe('1');
    await pgB.up();
  });

  it('a hung store (connections open, no answers) gives a 503 within the configured bound, never a hang', async () => {
    const k = await createKey(a, w);
    await b.deps.feed.poll();
    expect((await verify(b, { key: k.key })).code).toBe('VALID');
    pgB.blackhole();
    const unseen = await createKey(a, w);
    const [miss, create, cached] = await Promise.all([
      b.request('POST', '/v1/keys/verify', { body: { key: unseen.key, appId: w.appId } }),
      b.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, body: { name: 'during a hang' } }),
      b.request('POST', '/v1/keys/verify', { body: { key: k.key, appId: w.appId } }),
    ]);
    expect(miss.status).toBe(503);
    expect(create.status).toBe(503);
    expect(create.body.code).toBe('SERVICE_UNAVAILABLE');
    expect(cached.body.code).toBe('VALID');
    const stored = await a.request('GET', `/v1/apps/${w.appId}/keys?q=${encodeURIComponent('during a hang')}`, { token: w.token });
    expect(stored.body.total).toBe(0);
  });
});
