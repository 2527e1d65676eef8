// GET /v1/keys/changes lives only as long as the right to read it. Logout, removal from the
// workspace and a revoked root key travel like key changes (a change row in the same transaction,
// applied by every node's change feed, sped up by Redis) and end the credential's open streams on
// every node; the periodic recheck is set to an hour here, so only those pushes can end a stream.
// One credential holds at most KEYWARD_STREAMS_PER_SESSION streams.
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { DIALECTS, addMember, createKey, createPgDatabase, startServer, world, type TestServer, type World } from '../support/harness.js';

const REDIS_URL = process.env.TEST_REDIS_URL;
const NO_RECHECK = { KEYWARD_STREAM_RECHECK_MS: '3600000' };

interface Stream {
  seen(): string;
  /** Whether the server ended the stream. */
  done(): boolean;
  ended: Promise<string>;
  close(): void;
}

/** Opens a stream on a node; `done()` turns true when the server ends it. */
async function open(s: TestServer, token: string, workspaceId: string): Promise<Stream> {
  const abort = new AbortController();
  const res = await fetch(`${s.url}/v1/keys/changes?workspaceId=${workspaceId}`, { headers: { authorization: `Bearer ${token}` }, signal: abort.signal });
  expect(res.status).toBe(200);
  let text = '';
  let finished = false;
  const reader = res.body!.getReader();
  const ended = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += new TextDecoder().decode(value);
      }
    } catch {
      // Closed by this side (close()).
    }
    finished = true;
    return text;
  })();
  // The first comment line: the server has subscribed to changes.
  await expect.poll(() => text).toContain('keyward key changes');
  return { seen: () => text, done: () => finished, ended, close: () => abort.abort() };
}

describe.each(DIALECTS)('key change streams (%s)', (dialect) => {
  const servers: TestServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });
  const start = async (env: Record<string, string> = {}) => {
    const s = await startServer({ dialect, listen: true, env: { ...NO_RECHECK, ...env } });
    servers.push(s);
    return s;
  };

  it('streams changes, then ends as soon as the session logs out', async () => {
    const s = await start();
    const w = await world(s);
    const stream = await open(s, w.token, w.workspaceId);
    const k = await createKey(s, w);
    await s.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: { status: 'disabled' } });
    await expect.poll(stream.seen).toContain(k.id);
    expect((await s.request('POST', '/v1/auth/logout', { token: w.token })).status).toBe(204);
    await expect.poll(stream.done).toBe(true);
    expect(await stream.ended).toContain('key.changed');
  });

  it('a removed member\'s stream ends at the removal: a key event sent after it never reaches them', async () => {
    const s = await start();
    const w = await world(s);
    const k = await createKey(s, w);
    const m = await addMember(s, w, 'm@example.com', 'member', 'member password');
    const memberStream = await open(s, m.token, w.workspaceId);
    const ownerStream = await open(s, w.token, w.workspaceId);
    expect((await s.request('DELETE', `/v1/workspaces/${w.workspaceId}/members/${m.userId}`, { token: w.token })).status).toBe(204);
    await s.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: { status: 'disabled' } });
    await expect.poll(ownerStream.seen).toContain(k.id);
    await expect.poll(memberStream.done).toBe(true);
    expect(await memberStream.ended).not.toContain(k.id);
    ownerStream.close();
  });

  it('a root key\'s stream ends when the key is revoked', async () => {
    const s = await start();
    const w = await world(s);
    const root = (await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'mw', permissions: ['keys:read'] } })).body;
    const rootStream = await open(s, root.key, w.workspaceId);
    expect((await s.request('DELETE', `/v1/root-keys/${root.id}`, { token: w.token })).status).toBe(204);
    await expect.poll(rootStream.done).toBe(true);
  });

  it('one session holds at most KEYWARD_STREAMS_PER_SESSION streams: 409 beyond, a closed one frees its place', async () => {
    const s = await start({ KEYWARD_STREAMS_PER_SESSION: '3', KEYWARD_STREAMS_PER_ROOT_KEY: '4' });
    const w = await world(s);
    const streams = [await open(s, w.token, w.workspaceId), await open(s, w.token, w.workspaceId), await open(s, w.token, w.workspaceId)];
    const beyond = await fetch(`${s.url}/v1/keys/changes?workspaceId=${w.workspaceId}`, { headers: { authorization: `Bearer ${w.token}` } });
    expect(beyond.status).toBe(409);
    expect(beyond.headers.get('content-type')).toContain('application/problem+json');
    expect(((await beyond.json()) as { code: string }).code).toBe('CONFLICT');
    // Another session of the same user has its own places.
    const second = (await s.request('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password: 'correct horse battery' } })).body.token as string;
    const other = await open(s, second, w.workspaceId);
    streams[0]!.close();
    await expect.poll(async () => {
      const res = await fetch(`${s.url}/v1/keys/changes?workspaceId=${w.workspaceId}`, { headers: { authorization: `Bearer ${w.token}` } });
      if (res.status === 200) await res.body!.cancel();
      return res.status;
    }).toBe(200);
    // A root key has its own bound.
    const root = (await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'mw', permissions: ['keys:read'] } })).body.key as string;
    const rootStreams = [];
    for (let i = 0; i < 4; i++) rootStreams.push(await open(s, root, w.workspaceId));
    const rootBeyond = await fetch(`${s.url}/v1/keys/changes`, { headers: { authorization: `Bearer ${root}` } });
    expect(rootBeyond.status).toBe(409);
    await rootBeyond.body?.cancel();
    for (const x of [...streams, other, ...rootStreams]) x.close();
  });

  it('a stream of an expired session ends at the recheck', async () => {
    const s = await start({ KEYWARD_STREAM_RECHECK_MS: '50' });
    const w = await world(s);
    const stream = await open(s, w.token, w.workspaceId);
    s.clock.advance(25 * 3_600_000);
    await expect.poll(stream.done).toBe(true);
  });
});

describe('key change streams across nodes (postgres)', () => {
  /** Two nodes on one PostgreSQL store, each with its own stream of each credential. */
  async function twoNodes(env: Record<string, string>) {
    const pg = await createPgDatabase();
    const shared = { ...NO_RECHECK, KEYWARD_MASTER_KEY: Buffer.alloc(32, 7).toString('base64'), ...env };
    const a = await startServer({ dialect: 'postgres', databaseUrl: pg.url, listen: true, env: shared });
    const b = await startServer({ dialect: 'postgres', databaseUrl: pg.url, listen: true, env: shared });
    const w: World = await world(a);
    return {
      a, b, w,
      async close() {
        await a.close();
        await b.close();
        await pg.drop();
      },
    };
  }

  async function scenario(nodes: Awaited<ReturnType<typeof twoNodes>>, afterChange: () => Promise<void>) {
    const { a, b, w } = nodes;
    const m = await addMember(a, w, 'm@example.com', 'member', 'member password');
    const root = (await a.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'mw', permissions: ['keys:read'] } })).body;
    const onB = { owner: await open(b, w.token, w.workspaceId), member: await open(b, m.token, w.workspaceId), root: await open(b, root.key, w.workspaceId) };

    expect((await a.request('POST', '/v1/auth/logout', { token: w.token })).status).toBe(204);
    await afterChange();
    await expect.poll(onB.owner.done).toBe(true);
    expect(onB.member.done()).toBe(false);

    expect((await a.request('DELETE', `/v1/workspaces/${w.workspaceId}/members/${m.userId}`, { token: (await a.request('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password: 'correct horse battery' } })).body.token })).status).toBe(204);
    await afterChange();
    await expect.poll(onB.member.done).toBe(true);
    expect(onB.root.done()).toBe(false);

    const owner = (await a.request('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password: 'correct horse battery' } })).body.token;
    expect((await a.request('DELETE', `/v1/root-keys/${root.id}`, { token: owner })).status).toBe(204);
    await afterChange();
    await expect.poll(onB.root.done).toBe(true);
  }

  it.runIf(DIALECTS.includes('postgres'))('without Redis, the change feed ends them on the other node at its next read', async () => {
    // The feed is read once a second at most here; the test reads it itself right after each change.
    const nodes = await twoNodes({ KEYWARD_FEED_POLL_MS: '1000' });
    try {
      await scenario(nodes, () => nodes.b.deps.feed.poll());
    } finally {
      await nodes.close();
    }
  });

  it.runIf(DIALECTS.includes('postgres') && REDIS_URL)('with Redis, they end on the other node within a second, without waiting for its feed', async () => {
    const nodes = await twoNodes({ REDIS_URL: REDIS_URL!, KEYWARD_REDIS_PREFIX: `kwtest_${randomBytes(4).toString('hex')}:`, KEYWARD_FEED_POLL_MS: '1000' });
    try {
      // Node B's feed is stopped: only Redis can tell it, and expect.poll gives up after a second.
      await nodes.b.deps.feed.close();
      await scenario(nodes, async () => {});
    } finally {
      await nodes.close();
    }
  });

  it.runIf(DIALECTS.includes('postgres') && REDIS_URL)('with Redis, the bound on streams per session holds across nodes', async () => {
    const nodes = await twoNodes({ REDIS_URL: REDIS_URL!, KEYWARD_REDIS_PREFIX: `kwtest_${randomBytes(4).toString('hex')}:`, KEYWARD_STREAMS_PER_SESSION: '2' });
    try {
      const { a, b, w } = nodes;
      const first = await open(a, w.token, w.workspaceId);
      const second = await open(b, w.token, w.workspaceId);
      for (const node of [a, b]) {
        const res = await fetch(`${node.url}/v1/keys/changes?workspaceId=${w.workspaceId}`, { headers: { authorization: `Bearer ${w.token}` } });
        expect(res.status).toBe(409);
        await res.body?.cancel();
      }
      first.close();
      second.close();
    } finally {
      await nodes.close();
    }
  });
});
