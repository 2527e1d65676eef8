// Writes under faults (contract v3, "Writes are all-or-nothing" and "Revocation: late commits"):
// a proxy between one node and PostgreSQL holds a single statement of a single connection (an
// UPDATE inside the write, or its COMMIT) while everything else flows. Whatever it holds, and
// however the link heals afterwards, a write answered with success is all there, one answered
// with an error has left nothing, then or later, and one whose COMMIT answer was lost is answered
// as what happened, or OUTCOME_UNKNOWN, which a retry settles. A late commit reaches every node.
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { sql } from 'kysely';
import pg from 'pg';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKey, createPgDatabase, DIALECTS, startServer, verify, world, type Answer, type TestServer, type World } from '../support/harness.js';
import { startPgProxy, type PgProxy } from '../support/pg-proxy.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { generateKey } from '../../src/lib/key-format.js';
import { sha256Hex } from '../../src/lib/hash.js';

const enabled = DIALECTS.includes('postgres');
if (process.env.CI && !enabled) throw new Error('CI must run the writes chaos suite: set TEST_DIALECTS=sqlite,postgres');

const MASTER_KEY = Buffer.alloc(32, 9).toString('base64');
/** The leak reporter's signing key (a report is several writes, one transaction each). */
const REPORTER = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const LEAK_PUBLIC_KEYS = JSON.stringify([{ key_identifier: 'gh-1', key: REPORTER.publicKey.export({ type: 'spki', format: 'pem' }).toString() }]);
/**
 * The store bound of these nodes: statements get 3/4 of it, settling a lost COMMIT the rest. A roll
 * is some twenty statements through the proxy, on a machine the suite shares.
 */
const STORE_TIMEOUT_MS = 3000;

/** A state read straight from the store: every row the write makes, none of them, or which are there. */
type State = 'all' | 'none' | string;

function verdict(counts: Record<string, number>): State {
  const values = Object.values(counts);
  if (values.every((v) => v === 1)) return 'all';
  if (values.every((v) => v === 0)) return 'none';
  return JSON.stringify(counts);
}

interface Op {
  name: string;
  /** A statement inside the write's transaction (the one held, or the one its COMMIT comes after). */
  statement: RegExp;
  prepare(): Promise<Record<string, string>>;
  run(node: TestServer, ctx: Record<string, string>): Promise<Answer>;
  state(ctx: Record<string, string>): Promise<State>;
  /** What a retry answers once the write has happened. */
  settled(answer: Answer): boolean;
}

describe.runIf(enabled)('writes under faults (PostgreSQL)', () => {
  let db: Awaited<ReturnType<typeof createPgDatabase>>;
  let proxy: PgProxy;
  let a: TestServer;
  let b: TestServer;
  let w: World;
  let q: pg.Client;

  const count = async (sql: string, params: unknown[]): Promise<number> => Number((await q.query<{ n: string }>(sql, params)).rows[0]!.n);
  const atMostOne = (n: number) => Math.min(n, 1);

  beforeEach(async () => {
    db = await createPgDatabase();
    proxy = await startPgProxy('127.0.0.1', Number(new URL(db.url).port || 5432));
    const env = {
      KEYWARD_MASTER_KEY: MASTER_KEY, KEYWARD_STORE_TIMEOUT_MS: String(STORE_TIMEOUT_MS), KEYWARD_WEBHOOK_ALLOW_PRIVATE: '1',
      // Deliveries (to a closed port) are not what is tested: their retries stay out of the way.
      KEYWARD_WEBHOOK_RETRY_BASE_MS: '3600000', KEYWARD_WEBHOOK_POLL_MS: '60000', KEYWARD_WEBHOOK_SCAN_MS: '3600000',
      KEYWARD_LEAK_PUBLIC_KEYS: LEAK_PUBLIC_KEYS,
    };
    b = await startServer({ dialect: 'postgres', databaseUrl: db.url, env });
    a = await startServer({ dialect: 'postgres', databaseUrl: proxy.url(db.url), env });
    w = await world(b);
    a.appId = w.appId;
    const hook = await b.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body: { url: 'http://127.0.0.1:9/hook', events: ['key.created', 'key.updated', 'key.rolled', 'key.revoked'] } });
    expect(hook.status).toBe(201);
    q = new pg.Client({ connectionString: db.url });
    await q.connect();
  });
  afterEach(async () => {
    await q.end();
    await a.close();
    await b.close();
    await proxy.close();
    await db.drop();
  });

  const ops: Op[] = [
    {
      name: 'create',
      statement: /^insert into "keys"/,
      prepare: async () => ({ name: `create-${randomBytes(4).toString('hex')}` }),
      run: (node, ctx) => node.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, body: { name: ctx.name }, headers: { 'idempotency-key': ctx.name! } }),
      async state(ctx) {
        const ids = (await q.query<{ id: string }>('select id from keys where name = $1', [ctx.name])).rows.map((r) => r.id);
        return verdict({
          key: ids.length,
          value: await count('select count(*) as n from key_hashes where key_id = any($1)', [ids]),
          audit: await count("select count(*) as n from audit_log where action = 'key.create' and meta like $1", [`%${ctx.name}%`]),
          event: await count("select count(*) as n from webhook_events where type = 'key.created' and payload like $1", [`%${ctx.name}%`]),
          change: await count("select count(*) as n from changes where kind = 'value' and target in (select hash from key_hashes where key_id = any($1))", [ids]),
        });
      },
      settled: (r) => r.status === 409 && r.body.code === 'ALREADY_CREATED',
    },
    {
      name: 'revoke',
      statement: /^update "keys" set "status"/,
      prepare: async () => ({ id: (await createKey(b, w)).id }),
      run: (node, ctx) => node.request('DELETE', `/v1/keys/${ctx.id}`, { token: w.token }),
      async state(ctx) {
        return verdict({
          revoked: await count("select count(*) as n from keys where id = $1 and status = 'revoked'", [ctx.id]),
          audit: await count("select count(*) as n from audit_log where action = 'key.revoke' and target_id = $1", [ctx.id]),
          event: await count("select count(*) as n from webhook_events where type = 'key.revoked' and payload like $1", [`%${ctx.id}%`]),
          // A retry of a revoke tells every node again: at least one.
          change: atMostOne(await count("select count(*) as n from changes where kind = 'key' and target = $1", [ctx.id])),
        });
      },
      settled: (r) => r.status === 200 && r.body.status === 'revoked',
    },
    {
      name: 'roll',
      statement: /^update "keys" set "start"/,
      prepare: async () => ({ id: (await createKey(b, w)).id, retry: `roll-${randomBytes(4).toString('hex')}` }),
      run: (node, ctx) => node.request('POST', `/v1/keys/${ctx.id}/roll`, { token: w.token, body: {}, headers: { 'idempotency-key': ctx.retry! } }),
      async state(ctx) {
        return verdict({
          value: (await count('select count(*) as n from key_hashes where key_id = $1', [ctx.id])) - 1,
          audit: await count("select count(*) as n from audit_log where action = 'key.roll' and target_id = $1", [ctx.id]),
          event: await count("select count(*) as n from webhook_events where type = 'key.rolled' and payload like $1", [`%${ctx.id}%`]),
          change: await count("select count(*) as n from changes where kind = 'key' and target = $1", [ctx.id]),
        });
      },
      settled: (r) => r.status === 409 && r.body.code === 'ALREADY_CREATED',
    },
    {
      name: 'app delete',
      statement: /^update "apps" set "deleted_at"/,
      async prepare() {
        const app = await b.request('POST', '/v1/apps', { token: w.token, body: { workspaceId: w.workspaceId, name: 'Doomed', keyPrefix: `d${randomBytes(3).toString('hex')}` } });
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) ids.push((await createKey(b, { ...w, appId: app.body.id })).id);
        return { appId: app.body.id, keys: ids.join(',') };
      },
      run: (node, ctx) => node.request('DELETE', `/v1/apps/${ctx.appId}`, { token: w.token }),
      async state(ctx) {
        const keys = ctx.keys!.split(',');
        return verdict({
          app: await count('select count(*) as n from apps where id = $1 and deleted_at is not null', [ctx.appId]),
          keys: (await count("select count(*) as n from keys where id = any($1) and status = 'revoked'", [keys])) / keys.length,
          audit: await count("select count(*) as n from audit_log where action = 'app.delete' and target_id = $1", [ctx.appId]),
          events: (await count("select count(*) as n from webhook_events where type = 'key.revoked' and payload like $1", [`%${ctx.appId}%`])) / keys.length,
          change: atMostOne(await count("select count(*) as n from changes where kind = 'app' and target = $1", [ctx.appId])),
        });
      },
      // Gone already: the app is not found (it was deleted by the first request).
      settled: (r) => r.status === 404 || r.status === 204,
    },
  ];

  /** Five more writes through the node whose link healed: none of them may carry the failed one along. */
  async function fiveMore(): Promise<void> {
    for (let i = 0; i < 5; i++) expect((await a.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, body: { name: `after ${i}` } })).status).toBe(201);
  }

  const idleInTransaction = () => count("select count(*) as n from pg_stat_activity where datname = current_database() and state like 'idle in transaction%'", []);

  describe.each(ops)('$name', (op) => {
    it('a statement inside it held past the deadline: 503, and nothing of it, then or after the link heals and five more writes', async () => {
      const ctx = await op.prepare();
      const hold = proxy.hold({ statement: op.statement });
      const answer = op.run(a, ctx);
      const { connection } = await hold.caught;
      const res = await answer;
      expect(res.status, res.text).toBe(503);
      expect(res.body.code).toBe('SERVICE_UNAVAILABLE');
      expect(await op.state(ctx)).toBe('none');
      hold.release();
      await fiveMore();
      expect(await op.state(ctx)).toBe('none');
      // The connection that carried it sent nothing after it: it was destroyed, not pooled.
      expect(proxy.statements().filter((s) => s.connection === connection).at(-1)!.sql).toMatch(op.statement);
      await expect.poll(idleInTransaction).toBe(0);
    });

    it('its COMMIT held while the node still reaches the store: the node learns it aborted, 503, and nothing of it', async () => {
      const ctx = await op.prepare();
      const hold = proxy.hold({ statement: /^commit$/i, after: op.statement });
      const answer = op.run(a, ctx);
      await hold.caught;
      const res = await answer;
      expect(res.status, res.text).toBe(503);
      expect(res.body.code).toBe('SERVICE_UNAVAILABLE');
      expect(await op.state(ctx)).toBe('none');
      hold.release();
      await fiveMore();
      expect(await op.state(ctx)).toBe('none');
      await expect.poll(idleInTransaction).toBe(0);
    });

    it('its COMMIT held briefly: success, and all of it', async () => {
      const ctx = await op.prepare();
      const hold = proxy.hold({ statement: /^commit$/i, after: op.statement });
      const answer = op.run(a, ctx);
      await hold.caught;
      hold.release();
      const res = await answer;
      expect(res.status, res.text).toBeLessThan(300);
      expect(await op.state(ctx)).toBe('all');
    });

    it('its COMMIT held and the node cut off from the store: OUTCOME_UNKNOWN, never half of it, and the retry settles it', async () => {
      const ctx = await op.prepare();
      const hold = proxy.hold({ statement: /^commit$/i, after: op.statement });
      const answer = op.run(a, ctx);
      await hold.caught;
      proxy.refuseNew(true);
      const res = await answer;
      expect(res.status, res.text).toBe(503);
      expect(res.body.code).toBe('OUTCOME_UNKNOWN');
      expect(res.headers.get('retry-after')).toBe('1');
      expect(await op.state(ctx)).toBe('none');
      // The link heals before the server gives up on the transaction: the COMMIT lands, late.
      proxy.refuseNew(false);
      hold.release();
      await expect.poll(() => op.state(ctx)).toBe('all');
      const retry = await op.run(a, ctx);
      expect(op.settled(retry), retry.text).toBe(true);
      expect(await op.state(ctx)).toBe('all');
    });
  });

  it('one bound for the whole wait of a request: on a link where each statement takes 400 ms, a create of some fifteen statements fails at the bound, and leaves nothing', async () => {
    // 400 ms is well inside the bound (3 s) for any one statement or wait: only their sum is not.
    proxy.slow(400);
    const res = await a.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, body: { name: 'slow link' } });
    proxy.slow(0);
    expect(res.status, res.text).toBe(503);
    await expect.poll(idleInTransaction).toBe(0);
    expect(await count("select count(*) as n from keys where name = 'slow link'", [])).toBe(0);
  });

  it('every pooled connection has the server abort a transaction left idle past twice the bound', async () => {
    const { rows } = await sql<{ ms: number }>`select setting::int as ms from pg_settings where name = 'idle_in_transaction_session_timeout'`.execute(a.deps.store.db);
    expect(rows[0]!.ms).toBe(2 * STORE_TIMEOUT_MS);
  });

  // A write's answer comes from what its transaction returned: a read after the COMMIT that failed
  // (here held past the bound) would answer 503 for a change that is stored, and its retry would
  // conflict with it (a roll made twice, a PATCH answered 409 after a revoke that "failed").
  describe('nothing the answer needs is read after the COMMIT', () => {
    const capped = { remaining: 100, refill: { amount: 100, interval: 'daily' } };
    const afterCommit: { name: string; read: RegExp; run(id: string): Promise<Answer>; stored(id: string): Promise<boolean>; answered(res: Answer): boolean }[] = [
      {
        name: 'PATCH of a key with a usage cap with refill',
        read: /^select "remaining", "refill_amount"/,
        run: (id) => a.request('PATCH', `/v1/keys/${id}`, { token: w.token, body: { name: 'changed' } }),
        stored: async (id) => (await q.query('select name from keys where id = $1', [id])).rows[0].name === 'changed',
        answered: (res) => res.status === 200 && res.body.name === 'changed' && res.body.remaining === 100,
      },
      {
        name: 'roll of a key with a usage cap with refill',
        read: /^select "remaining", "refill_amount"/,
        run: (id) => a.request('POST', `/v1/keys/${id}/roll`, { token: w.token, body: {} }),
        stored: async (id) => (await count('select count(*) as n from key_hashes where key_id = $1', [id])) === 2,
        answered: (res) => res.status === 200 && typeof res.body.key === 'string' && res.body.remaining === 100,
      },
      {
        name: 'revoke of a key with a usage cap with refill',
        read: /^select "remaining", "refill_amount"/,
        run: (id) => a.request('DELETE', `/v1/keys/${id}`, { token: w.token }),
        stored: async (id) => (await q.query('select status from keys where id = $1', [id])).rows[0].status === 'revoked',
        answered: (res) => res.status === 200 && res.body.status === 'revoked' && res.body.remaining === 100,
      },
      {
        name: 'retry of a webhook delivery',
        read: /"webhook_attempts"/,
        async run(id) {
          const { rows } = await q.query<{ id: string; webhook_id: string }>('select d.id, d.webhook_id from webhook_deliveries d join webhook_events e on e.id = d.event_id where e.payload like $1', [`%${id}%`]);
          return a.request('POST', `/v1/webhooks/${rows[0]!.webhook_id}/deliveries/${rows[0]!.id}/retry`, { token: w.token });
        },
        stored: async () => (await count("select count(*) as n from audit_log where action = 'webhook.retry'", [])) === 1,
        // Its attempts are read inside the transaction: held there, the write fails whole.
        answered: (res) => (res.status === 202 && res.body.status === 'pending') || res.status === 503,
      },
      {
        name: 'accepting an invitation with a new account',
        read: /^select "id", "email", "name" from "users" where "id"/,
        async run() {
          const invite = await b.request('POST', `/v1/workspaces/${w.workspaceId}/invitations`, { token: w.token, body: { email: 'new@example.com', role: 'member' } });
          return a.request('POST', '/v1/invitations/accept', { body: { token: invite.body.token, password: 'correct horse battery' } });
        },
        // Its session is shown in this answer only: a 503 for it would leave an account nobody can log in to with that session.
        stored: async () => (await count("select count(*) as n from users where email = 'new@example.com'", [])) === 1,
        answered: (res) => (res.status === 200 && typeof res.body.session.token === 'string' && res.body.session.user.email === 'new@example.com') || res.status === 503,
      },
      {
        name: 'login',
        read: /^select "id", "email", "name" from "users" where "id"/,
        run: () => a.request('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password: 'correct horse battery' } }),
        stored: async () => (await count('select count(*) as n from sessions where user_id = $1', [w.userId])) === 2,
        answered: (res) => (res.status === 200 && typeof res.body.token === 'string') || res.status === 503,
      },
    ];

    it.each(afterCommit)('$name: the read after the COMMIT held past the bound, yet the answer is what was stored', async (op) => {
      const k = await createKey(b, w, capped);
      const hold = proxy.hold({ statement: op.read });
      try {
        const res = await op.run(k.id);
        const stored = await op.stored(k.id);
        // Never an error for a change that is stored.
        expect({ status: res.status, code: res.body?.code, stored }).toEqual({ status: res.status, code: res.body?.code, stored: res.status < 300 });
        expect(op.answered(res), res.text).toBe(true);
      } finally {
        hold.release();
      }
    });
  });

  it('a request that failed after one of its writes committed is OUTCOME_UNKNOWN, not a plain 503, and its retry settles it', async () => {
    // A leak report of a root key, then of a key: two writes, one transaction each. The second is
    // held past the bound after the first committed.
    const root = await b.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'ci', permissions: ['keys:read'] } });
    expect(root.status).toBe(201);
    const k = await createKey(b, w);
    const body = JSON.stringify([
      { token: root.body.key, type: 'keyward_root_key', url: 'https://example.com/a', source: 'content' },
      { token: k.key, type: 'keyward_api_key', url: 'https://example.com/b', source: 'content' },
    ]);
    const report = () => a.request('POST', '/v1/leaks', { raw: body, headers: { 'content-type': 'application/json', 'github-public-key-identifier': 'gh-1', 'github-public-key-signature': sign('sha256', Buffer.from(body), REPORTER.privateKey).toString('base64') } });
    const hold = proxy.hold({ statement: /^update "keys" set "status"/ });
    const res = await report();
    hold.release();
    expect((await q.query('select revoked_at from root_keys where id = $1', [root.body.id])).rows[0].revoked_at).not.toBeNull();
    expect(res.status, res.text).toBe(503);
    expect(res.body.code).toBe('OUTCOME_UNKNOWN');
    expect(res.headers.get('retry-after')).toBe('1');
    const retry = await report();
    expect(retry.status, retry.text).toBe(200);
    expect(retry.body.map((o: { action: string }) => o.action)).toEqual(['already_inactive', 'disabled']);
  });

  it('a PATCH of one key on each of two nodes, the second waiting for the first: the last key.updated carries what is stored', async () => {
    const k = await createKey(b, w);
    const waitingForLock = () => count("select count(*) as n from pg_stat_activity where datname = current_database() and wait_event_type = 'Lock'", []);
    for (let round = 0; round < 5; round++) {
      // A's change is written and its COMMIT held; B reads the key meanwhile and waits for its row.
      const hold = proxy.hold({ statement: /^commit$/i, after: /^update "keys" set/ });
      const first = a.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: { name: `a${round}` } });
      await hold.caught;
      const second = b.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: { meta: { round, by: 'b' } } });
      await expect.poll(waitingForLock).toBe(1);
      hold.release();
      expect([(await first).status, (await second).status]).toEqual([200, 200]);
      const stored = (await b.request('GET', `/v1/keys/${k.id}`, { token: w.token })).body;
      const { rows } = await q.query<{ payload: string }>("select e.payload from webhook_events e join webhook_deliveries d on d.event_id = e.id where e.type = 'key.updated' and e.payload like $1 order by d.seq desc limit 1", [`%${k.id}%`]);
      const data = JSON.parse(rows[0]!.payload).data;
      expect({ name: data.name, meta: data.meta, updatedAt: data.updatedAt }).toEqual({ name: stored.name, meta: stored.meta, updatedAt: stored.updatedAt });
    }
  }, 60_000);
});

describe.runIf(enabled)('late commits reach every node (PostgreSQL, three nodes)', () => {
  let db: Awaited<ReturnType<typeof createPgDatabase>>;
  let proxy: PgProxy;
  let nodes: TestServer[];
  let a: TestServer;
  let b: TestServer;
  let w: World;
  let q: pg.Client;

  beforeEach(async () => {
    db = await createPgDatabase();
    proxy = await startPgProxy('127.0.0.1', Number(new URL(db.url).port || 5432));
    const env = { KEYWARD_MASTER_KEY: MASTER_KEY, KEYWARD_STORE_TIMEOUT_MS: String(STORE_TIMEOUT_MS), KEYWARD_WEBHOOK_ALLOW_PRIVATE: '1', KEYWARD_WEBHOOK_RETRY_BASE_MS: '3600000', KEYWARD_WEBHOOK_POLL_MS: '60000' };
    b = await startServer({ dialect: 'postgres', databaseUrl: db.url, env });
    a = await startServer({ dialect: 'postgres', databaseUrl: proxy.url(db.url), env });
    const c = await startServer({ dialect: 'postgres', databaseUrl: db.url, env });
    nodes = [a, b, c];
    w = await world(b);
    for (const n of nodes) n.appId = w.appId;
    const hook = await b.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body: { url: 'http://127.0.0.1:9/hook', events: ['key.revoked'] } });
    expect(hook.status).toBe(201);
    q = new pg.Client({ connectionString: db.url });
    await q.connect();
  });
  afterEach(async () => {
    await q.end();
    for (const n of nodes) await n.close();
    await proxy.close();
    await db.drop();
  });

  /** Verifies on every node until each refuses the key; answers how long each took from `since`. */
  const refusedAfter = (key: string, since: number) => Promise.all(nodes.map(async (n) => {
    for (;;) {
      const r = await verify(n, { key });
      if (r.code !== 'VALID') return performance.now() - since;
      if (performance.now() - since > 10_000) return Infinity;
      await new Promise((resolve) => setImmediate(resolve));
    }
  }));

  const revokedEvents = async (id: string) => Number((await q.query<{ n: string }>("select count(*) as n from webhook_events where type = 'key.revoked' and payload like $1", [`%${id}%`])).rows[0]!.n);

  /** Node A revokes with its COMMIT held and no way to ask what became of it, while B commits a later change. */
  async function revokeHeldWhileOthersCommit(k: { id: string; key: string }) {
    for (const n of nodes) expect((await verify(n, { key: k.key })).code).toBe('VALID');
    const other = await createKey(b, w);
    const hold = proxy.hold({ statement: /^commit$/i, after: /^update "keys" set "status"/ });
    const answer = a.request('DELETE', `/v1/keys/${k.id}`, { token: w.token });
    await hold.caught;
    proxy.refuseNew(true);
    // A change committed elsewhere after the held one took its sequence number.
    expect((await b.request('PATCH', `/v1/keys/${other.id}`, { token: w.token, body: { name: 'later' } })).status).toBe(200);
    const res = await answer;
    expect(res.status, res.text).toBe(503);
    expect(res.body.code).toBe('OUTCOME_UNKNOWN');
    return hold;
  }

  it('a COMMIT held shorter than the server\'s idle timeout lands late and is refused everywhere within 1 s of landing; the retry is acknowledged and changes nothing more', async () => {
    const k = await createKey(b, w);
    const hold = await revokeHeldWhileOthersCommit(k);
    proxy.refuseNew(false);
    hold.release();
    await expect.poll(async () => (await q.query("select status from keys where id = $1", [k.id])).rows[0].status, { interval: 5 }).toBe('revoked');
    const landed = performance.now();
    expect(Math.max(...(await refusedAfter(k.key, landed)))).toBeLessThan(1000);
    const retry = await a.request('DELETE', `/v1/keys/${k.id}`, { token: w.token });
    expect(retry.status).toBe(200);
    expect(retry.body.status).toBe('revoked');
    expect(await revokedEvents(k.id)).toBe(1);
  });

  it('a COMMIT held longer than the idle timeout never lands; the client\'s retry through another node is acknowledged once the server ended it, and is refused everywhere within 1 s', async () => {
    const k = await createKey(b, w);
    const hold = await revokeHeldWhileOthersCommit(k);
    // A reaches the store again; only its COMMIT stays held. The client retries through B until
    // acknowledged: B waits for the row A's transaction holds (503 within its bound) until the
    // server aborts that transaction by itself.
    proxy.refuseNew(false);
    let acknowledged: Answer | undefined;
    let refused = 0;
    while (!acknowledged) {
      const r = await b.request('DELETE', `/v1/keys/${k.id}`, { token: w.token });
      if (r.status === 200) acknowledged = r;
      else {
        expect(r.status, r.text).toBe(503);
        refused++;
      }
    }
    const at = performance.now();
    expect(refused).toBeGreaterThan(0);
    expect(Math.max(...(await refusedAfter(k.key, at)))).toBeLessThan(1000);
    // The COMMIT, delivered now, finds its session ended.
    hold.release();
    expect(await revokedEvents(k.id)).toBe(1);
    expect(acknowledged.body.status).toBe('revoked');
  });
});

describe.runIf(enabled && Boolean(process.env.TEST_REDIS_URL))('an app with 20,000 keys deleted while Redis is down (PostgreSQL, three nodes)', () => {
  let db: Awaited<ReturnType<typeof createPgDatabase>>;
  let proxy: PgProxy;
  let redis: TcpProxy[];
  let nodes: TestServer[];
  let w: World;
  let q: pg.Client;

  beforeEach(async () => {
    db = await createPgDatabase();
    proxy = await startPgProxy('127.0.0.1', Number(new URL(db.url).port || 5432));
    const r = new URL(process.env.TEST_REDIS_URL!);
    redis = await Promise.all([0, 1, 2].map(() => startTcpProxy(r.hostname, Number(r.port || 6379))));
    const env = { KEYWARD_MASTER_KEY: MASTER_KEY, KEYWARD_REDIS_PREFIX: `kwtest_${randomBytes(4).toString('hex')}:` };
    nodes = [];
    for (let i = 0; i < 3; i++) {
      nodes.push(await startServer({ dialect: 'postgres', databaseUrl: i === 0 ? proxy.url(db.url) : db.url, env: { ...env, REDIS_URL: `redis://127.0.0.1:${redis[i]!.port}` } }));
    }
    w = await world(nodes[1]!);
    for (const n of nodes) n.appId = w.appId;
    q = new pg.Client({ connectionString: db.url });
    await q.connect();
  });
  afterEach(async () => {
    await q.end();
    for (const n of nodes) await n.close();
    for (const p of redis) await p.close();
    await proxy.close();
    await db.drop();
  });

  it('every key is refused by every node within 1 s of the answer, also with another change committed inside the delete', async () => {
    const N = 20_000;
    const template = await createKey(nodes[1]!, w);
    // The keys are written straight into the store (20,000 creates through the API would take minutes).
    const values = Array.from({ length: N }, () => generateKey('acme', 'live'));
    const ids = values.map(() => `key_${randomBytes(12).toString('hex')}`);
    const columns = (await q.query<{ column_name: string }>("select column_name from information_schema.columns where table_name = 'keys'")).rows.map((r) => r.column_name);
    const select = columns.map((c) => (c === 'id' ? 'v.id' : c === 'start' ? 'v.start' : `t.${c}`)).join(', ');
    await q.query(`insert into keys (${columns.join(', ')}) select ${select} from unnest($1::text[], $2::text[]) as v(id, start), keys t where t.id = $3`, [ids, values.map((v) => v.start), template.id]);
    await q.query('insert into key_hashes (hash, key_id, created_at) select h, k, $3 from unnest($1::text[], $2::text[]) as v(h, k)', [values.map((v) => sha256Hex(v.plaintext)), ids, Date.now()]);
    const sample = values.filter((_, i) => i % 100 === 0).map((v) => v.plaintext);
    for (const n of nodes) for (const key of sample) expect((await verify(n, { key })).code).toBe('VALID');
    for (const p of redis) await p.down();

    // A key of another app: the delete holds the row locks of its own app's keys until it commits.
    const elsewhere = await nodes[1]!.request('POST', '/v1/apps', { token: w.token, body: { workspaceId: w.workspaceId, name: 'Elsewhere', keyPrefix: 'elsewhere' } });
    const other = await createKey(nodes[1]!, { ...w, appId: elsewhere.body.id });
    const hold = proxy.hold({ statement: /^commit$/i, after: /^update "keys" set "status"/ });
    const answer = nodes[0]!.request('DELETE', `/v1/apps/${w.appId}`, { token: w.token });
    await hold.caught;
    // Committed while the delete is in flight, with a later sequence number than anything it wrote.
    expect((await nodes[1]!.request('PATCH', `/v1/keys/${other.id}`, { token: w.token, body: { name: 'meanwhile' } })).status).toBe(200);
    hold.release();
    const res = await answer;
    expect(res.status, res.text).toBe(204);
    const at = performance.now();
    // No node holds any key of the app as active any more (polled in-process: 600 verifies a round would
    // themselves take longer than the bound on a shared machine), and a few keys are verified
    // through the API meanwhile.
    const hashes = sample.map((key) => sha256Hex(key));
    const took = await Promise.all(nodes.map(async (n) => {
      for (;;) {
        const cached = hashes.filter((h) => n.deps.cache.peek(h, n.clock.now())?.key.status === 'active').length;
        const codes = await Promise.all(sample.slice(0, 3).map(async (key) => (await verify(n, { key })).code));
        if (cached === 0 && codes.every((c) => c !== 'VALID')) return performance.now() - at;
        if (performance.now() - at > 10_000) return Infinity;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }));
    expect(Math.max(...took)).toBeLessThan(1000);
    // And every sampled key, through the API, on every node.
    for (const n of nodes) for (const key of sample) expect((await verify(n, { key })).code).not.toBe('VALID');
    expect(Number((await q.query("select count(*) as n from keys where app_id = $1 and status = 'revoked'", [w.appId])).rows[0].n)).toBe(N + 1);
    expect(Number((await q.query("select count(*) as n from changes where kind = 'app' and target = $1", [w.appId])).rows[0].n)).toBe(1);
  }, 180_000);
});
