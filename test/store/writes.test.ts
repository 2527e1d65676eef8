// Writes on every store: a revoke repeated (a retry after a lost answer) tells every node again and
// nothing else; an app deleted is one change for all its keys; and on the embedded store, a write
// never waits past its bound for the one connection or the file's write lock, and no failure leaves
// a transaction open behind it.
import SQLite from 'better-sqlite3';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createKey, DIALECTS, startServer, verify, world, type TestServer, type World } from '../support/harness.js';
import { sqlitePath } from '../../src/store/db.js';

describe.each(DIALECTS)('writes (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  beforeAll(async () => {
    s = await startServer({ dialect, env: { KEYWARD_WEBHOOK_ALLOW_PRIVATE: '1', KEYWARD_WEBHOOK_RETRY_BASE_MS: '3600000' } });
  });
  afterAll(async () => s.close());
  beforeEach(async () => {
    w = await world(s);
    const hook = await s.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body: { url: 'http://127.0.0.1:9/hook', events: ['key.revoked'] } });
    expect(hook.status).toBe(201);
  });

  const changesOf = async (target: string) => (await s.deps.store.db.selectFrom('changes').select('kind').where('target', '=', target).execute()).map((r) => r.kind);
  const eventsOf = async (keyId: string) => (await s.deps.store.db.selectFrom('webhook_events').select('type').where('payload', 'like', `%${keyId}%`).execute()).map((r) => r.type);

  it('a key revoked again answers as the first time, tells every node again, and sends no second key.revoked', async () => {
    const k = await createKey(s, w);
    const first = await s.request('DELETE', `/v1/keys/${k.id}`, { token: w.token });
    const second = await s.request('DELETE', `/v1/keys/${k.id}`, { token: w.token });
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.body).toEqual(first.body);
    expect(await changesOf(k.id)).toEqual(['key', 'key']);
    expect(await eventsOf(k.id)).toEqual(['key.revoked']);
    const audit = await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit?action=key.revoke&targetId=${k.id}`, { token: w.token });
    expect(audit.body.total).toBe(1);
    expect((await verify(s, { key: k.key })).code).toBe('REVOKED');
  });

  it('an app deleted is one change for all of its keys; each key\'s key.revoked carries it as revoked', async () => {
    const keys = [await createKey(s, w), await createKey(s, w), await createKey(s, w)];
    for (const k of keys) expect((await verify(s, { key: k.key })).code).toBe('VALID');
    expect((await s.request('DELETE', `/v1/apps/${w.appId}`, { token: w.token })).status).toBe(204);
    expect(await changesOf(w.appId)).toEqual(['app']);
    for (const k of keys) {
      expect(await changesOf(k.id)).toEqual([]);
      const [event] = await s.deps.store.db.selectFrom('webhook_events').select('payload').where('type', '=', 'key.revoked').where('payload', 'like', `%${k.id}%`).execute();
      expect(JSON.parse(event!.payload).data).toMatchObject({ id: k.id, status: 'revoked' });
      expect((await verify(s, { key: k.key })).code).not.toBe('VALID');
    }
  });

  it('an app deleted again (a retry after a lost answer) answers 204 again and tells every node again, with no second audit entry or event', async () => {
    const k = await createKey(s, w);
    expect((await s.request('DELETE', `/v1/apps/${w.appId}`, { token: w.token })).status).toBe(204);
    expect((await s.request('DELETE', `/v1/apps/${w.appId}`, { token: w.token })).status).toBe(204);
    expect(await changesOf(w.appId)).toEqual(['app', 'app']);
    expect(await eventsOf(k.id)).toEqual(['key.revoked']);
    const audit = await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit?action=app.delete&targetId=${w.appId}`, { token: w.token });
    expect(audit.body.total).toBe(1);
    // Still gone for everything else: reading it, or creating keys in it.
    expect((await s.request('GET', `/v1/apps/${w.appId}`, { token: w.token })).status).toBe(404);
    expect((await s.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, body: { name: 'late' } })).status).toBe(404);
  });
});

describe('the embedded store under a stuck writer', () => {
  let s: TestServer;
  let w: World;
  const TIMEOUT = 300;
  beforeAll(async () => {
    s = await startServer({ env: { KEYWARD_STORE_TIMEOUT_MS: String(TIMEOUT) } });
  });
  afterAll(async () => s.close());
  beforeEach(async () => {
    w = await world(s);
  });

  const keyNamed = async (name: string) => (await s.deps.store.db.selectFrom('keys').select('id').where('name', '=', name).execute()).length;

  it('a write waiting for the one connection past its bound answers 503, and writes nothing when the connection frees', async () => {
    let free!: () => void;
    const stuck = s.deps.store.transaction(() => new Promise<void>((resolve) => (free = resolve)));
    const res = await s.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, body: { name: 'behind a stuck transaction' } });
    expect(res.status).toBe(503);
    expect(res.body.code).toBe('SERVICE_UNAVAILABLE');
    free();
    await stuck;
    expect(await keyNamed('behind a stuck transaction')).toBe(0);
    expect((await s.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, body: { name: 'after' } })).status).toBe(201);
  });

  it('another writer holding the file\'s write lock: 503 within the bound (busy_timeout is the bound), nothing written', async () => {
    const other = new SQLite(sqlitePath(s.dataDir));
    try {
      other.exec('BEGIN IMMEDIATE');
      const res = await s.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, body: { name: 'behind another writer' } });
      expect(res.status).toBe(503);
      const { rows } = await sql<{ timeout: number }>`pragma busy_timeout`.execute(s.deps.store.db);
      expect(rows[0]!.timeout).toBeLessThanOrEqual(TIMEOUT);
      other.exec('ROLLBACK');
    } finally {
      other.close();
    }
    expect(await keyNamed('behind another writer')).toBe(0);
  });

  it('a full disk (SQLite rolls the transaction back itself): 503, not 500, and no transaction is left open', async () => {
    const db = s.deps.store.db;
    const { rows: [pages] } = await sql<{ page_count: number }>`pragma page_count`.execute(db);
    await sql.raw(`pragma max_page_count = ${pages!.page_count}`).execute(db);
    const res = await s.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, body: { name: 'on a full disk', meta: { pad: 'x'.repeat(15_000) } } });
    expect(res.status, res.text).toBe(503);
    expect(res.body.code).toBe('SERVICE_UNAVAILABLE');
    await sql.raw('pragma max_page_count = 1073741823').execute(db);
    expect(await keyNamed('on a full disk')).toBe(0);
    expect((await s.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, body: { name: 'room again' } })).status).toBe(201);
  });
});

describe('the key change stream', () => {
  let s: TestServer;
  let w: World;
  beforeEach(async () => {
    s = await startServer({ listen: true });
    w = await world(s);
  });
  afterEach(async () => s.close());

  it('an app deleted is one app.changed event naming the app, for middleware to drop all of its keys', async () => {
    const k = await createKey(s, w);
    const res = await fetch(`${s.url}/v1/keys/changes?workspaceId=${w.workspaceId}`, { headers: { authorization: `Bearer ${w.token}` } });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    let text = '';
    expect((await s.request('DELETE', `/v1/apps/${w.appId}`, { token: w.token })).status).toBe(204);
    while (!text.includes('app.changed')) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    expect(text).toContain(`event: app.changed\ndata: ${JSON.stringify({ appId: w.appId })}\n\n`);
    expect(text).not.toContain(k.id);
  });
});
