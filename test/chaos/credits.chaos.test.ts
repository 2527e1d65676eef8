// Usage caps under faults and across processes: exactly the cap over 3 nodes and 2 workers, the
// stored remaining = cap - VALIDs after a clean stop, never over the cap through a SIGKILL loop (on
// each store; what a kill strands is at most what the node held), a node cut off from its store
// spends only the units it holds, and a lease whose COMMIT answer the node gave up on is adopted or
// given back, never charged without a VALID.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import SQLite from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { createKey, createPgDatabase, DIALECTS, startServer, world } from '../support/harness.js';
import { startProcess, type Proc } from '../support/process.js';
import { startTcpProxy } from '../support/tcp-proxy.js';
import { sqlitePath } from '../../src/store/paths.js';

const REDIS_URL = process.env.TEST_REDIS_URL;
const MASTER_KEY = randomBytes(32).toString('base64');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-credits-'));
const postgres = DIALECTS.includes('postgres');
const cluster = postgres && Boolean(REDIS_URL);
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A management call on a connection of its own (see verifyOn). */
async function callFresh(url: string, method: string, urlPath: string, body: unknown, token?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url + urlPath, { method, headers: { 'content-type': 'application/json', connection: 'close', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

async function bootstrap(url: string): Promise<{ token: string; appId: string }> {
  const setup = await callFresh(url, 'POST', '/v1/setup', { email: 'ops@example.com', password: 'correct horse battery', workspaceName: 'Credits' });
  const app = await callFresh(url, 'POST', '/v1/apps', { workspaceId: setup.body.workspaces[0].id, name: 'Metered API', keyPrefix: 'meter' }, setup.body.token);
  return { token: setup.body.token, appId: app.body.id };
}

/**
 * One verify on a connection of its own (a kept-alive one can be closed by the server as idle just
 * as the client reuses it, and such a request is lost unanswered); a dropped connection is `LOST`.
 */
async function verifyOn(url: string, key: string, appId: string): Promise<string> {
  try {
    const res = await fetch(`${url}/v1/keys/verify`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify({ key, appId }) });
    const body = (await res.json()) as { code: string };
    return res.status === 200 ? body.code : `HTTP ${res.status}`;
  } catch (err) {
    return `LOST ${(err as Error).message} ${((err as Error).cause as Error | undefined)?.message ?? ''}`;
  }
}

/**
 * Asks a node until it refuses: the VALIDs it gave. A 503 (the store slower than its timeout, on a
 * busy machine) is no verdict and charges nothing: asked again.
 */
async function untilRefused(url: string, key: string, appId: string): Promise<number> {
  let valid = 0;
  for (;;) {
    const code = await verifyOn(url, key, appId);
    if (code === 'HTTP 503') {
      await sleep(100);
      continue;
    }
    if (code !== 'VALID') {
      expect(code).toBe('USAGE_EXCEEDED');
      return valid;
    }
    valid++;
  }
}

/** The store's view of a key's cap: remaining, and units reserved for nodes not reported spent. */
interface CapState {
  remaining: number;
  held: number;
}

async function pgState(url: string, keyId: string): Promise<CapState> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const key = (await client.query('SELECT remaining, credit_epoch FROM keys WHERE id = $1', [keyId])).rows[0];
    const held = (await client.query('SELECT COALESCE(SUM(leased - released - spent), 0) AS held FROM credit_slices WHERE key_id = $1 AND epoch = $2', [keyId, key.credit_epoch])).rows[0];
    return { remaining: Number(key.remaining), held: Number(held.held) };
  } finally {
    await client.end();
  }
}

function sqliteState(dir: string, keyId: string): CapState {
  const db = new SQLite(sqlitePath(dir), { readonly: true });
  try {
    const key = db.prepare('SELECT remaining, credit_epoch FROM keys WHERE id = ?').get(keyId) as { remaining: number; credit_epoch: number };
    const held = db.prepare('SELECT COALESCE(SUM(leased - released - spent), 0) AS held FROM credit_slices WHERE key_id = ? AND epoch = ?').get(keyId, key.credit_epoch) as { held: number };
    return { remaining: key.remaining, held: held.held };
  } finally {
    db.close();
  }
}

describe.runIf(cluster)('usage caps on 3 nodes (PostgreSQL + Redis)', () => {
  it('a 1,000-unit cap under 200 concurrent verifies across 3 nodes: exactly 1,000 VALID once every node is asked until refused; after a clean stop stored remaining = cap - VALIDs', async () => {
    const db = await createPgDatabase();
    const nodes: Proc[] = [];
    try {
      for (let i = 0; i < 3; i++) nodes.push(await startProcess({ DATABASE_URL: db.url, REDIS_URL: REDIS_URL!, KEYWARD_REDIS_PREFIX: `kwcr:${randomBytes(4).toString('hex')}:`, KEYWARD_DATA_DIR: dataDir, KEYWARD_MASTER_KEY: MASTER_KEY }));
      const w = await bootstrap(nodes[0]!.url);
      const full = (await callFresh(nodes[0]!.url, 'POST', `/v1/apps/${w.appId}/keys`, { name: 'full', remaining: 1000, ownerRatelimit: null }, w.token)).body;
      const part = (await callFresh(nodes[0]!.url, 'POST', `/v1/apps/${w.appId}/keys`, { name: 'part', remaining: 100_000, ownerRatelimit: null }, w.token)).body;

      const codes: string[] = [];
      let next = 0;
      await Promise.all(Array.from({ length: 200 }, async () => {
        while (next < 1500) {
          const i = next++;
          codes.push(await verifyOn(nodes[i % 3]!.url, full.key, w.appId));
        }
      }));
      let valid = codes.filter((c) => c === 'VALID').length;
      // A 503 is no verdict and charges nothing (a lease that timed out on a busy store).
      expect(codes.filter((c) => c !== 'VALID' && c !== 'USAGE_EXCEEDED' && c !== 'HTTP 503')).toEqual([]);
      expect(valid).toBeLessThanOrEqual(1000);
      for (const n of nodes) valid += await untilRefused(n.url, full.key, w.appId);
      expect(valid).toBe(1000);

      // A key part-spent on every node: its units go back on a clean stop.
      const partCodes = await Promise.all(Array.from({ length: 900 }, (_, i) => verifyOn(nodes[i % 3]!.url, part.key, w.appId)));
      expect(partCodes.filter((c) => c !== 'VALID' && c !== 'HTTP 503')).toEqual([]);
      const partValid = partCodes.filter((c) => c === 'VALID').length;
      expect((await pgState(db.url, part.id)).remaining).toBeLessThan(100_000 - partValid);
      for (const n of nodes) expect(await n.kill('SIGTERM')).toBe(0);
      expect(await pgState(db.url, part.id)).toEqual({ remaining: 100_000 - partValid, held: 0 });
      expect(await pgState(db.url, full.id)).toEqual({ remaining: 0, held: 0 });
    } finally {
      await Promise.all(nodes.map((n) => n.kill('SIGTERM')));
      await db.drop();
    }
  }, 120_000);

  it('2 workers (KEYWARD_WORKERS=2) never admit more than the cap, and the whole cap in the end', async () => {
    const db = await createPgDatabase();
    const node = await startProcess({ DATABASE_URL: db.url, REDIS_URL: REDIS_URL!, KEYWARD_REDIS_PREFIX: `kwcw:${randomBytes(4).toString('hex')}:`, KEYWARD_WORKERS: '2', KEYWARD_DATA_DIR: dataDir, KEYWARD_MASTER_KEY: MASTER_KEY, KEYWARD_CREDIT_LEASE_MS: '300' });
    let keyId = '';
    let valid = 0;
    try {
      const w = await bootstrap(node.url);
      const k = (await callFresh(node.url, 'POST', `/v1/apps/${w.appId}/keys`, { name: 'c', remaining: 300, ownerRatelimit: null }, w.token)).body;
      keyId = k.id;
      const once = async () => {
        const res = await fetch(`${node.url}/v1/keys/verify`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify({ key: k.key, appId: w.appId }) });
        return ((await res.json()) as { code: string }).code;
      };
      const codes = await Promise.all(Array.from({ length: 600 }, once));
      valid = codes.filter((c) => c === 'VALID').length;
      expect(valid).toBeLessThanOrEqual(300);
      expect(codes.filter((c) => c !== 'VALID' && c !== 'USAGE_EXCEEDED' && c !== 'SERVICE_UNAVAILABLE')).toEqual([]);
      // A worker may still hold units the other was refused for: they are spent by its next
      // requests or go back after 300 ms unused, so the whole cap is admitted in the end, never more.
      const seen: string[] = [];
      for (const until = Date.now() + 30_000; valid < 300 && Date.now() < until;) {
        const code = await once();
        if (code === 'VALID') valid++;
        else {
          seen.push(code);
          await sleep(50);
        }
      }
      expect(valid, `refused meanwhile: ${[...new Set(seen)].join(', ')}`).toBe(300);
      expect(new Set(await Promise.all(Array.from({ length: 20 }, once)))).toEqual(new Set(['USAGE_EXCEEDED']));
    } finally {
      expect(await node.kill('SIGTERM')).toBe(0);
      if (keyId && valid === 300) expect(await pgState(db.url, keyId)).toEqual({ remaining: 0, held: 0 });
      await db.drop();
    }
  }, 60_000);
});

/**
 * SIGKILL a node in the middle of a burst, over and over: the VALIDs clients saw never exceed what
 * left the store's remaining, and what the kills cost is at most what the killed nodes held.
 */
async function killLoop(start: () => Promise<Proc>, state: (keyId: string) => Promise<CapState>, rounds: number): Promise<void> {
  let node = await start();
  const w = await bootstrap(node.url);
  const cap = 5000;
  const k = (await callFresh(node.url, 'POST', `/v1/apps/${w.appId}/keys`, { name: 'killed', remaining: cap, ownerRatelimit: null }, w.token)).body;
  let seen = 0;
  try {
    for (let round = 0; round < rounds; round++) {
      if (round > 0) node = await start();
      let stop = false;
      const burst = Promise.all(Array.from({ length: 20 }, async () => {
        while (!stop) {
          const code = await verifyOn(node.url, k.key, w.appId);
          if (code === 'VALID') seen++;
          else if (code.startsWith('LOST')) return;
          else expect(['USAGE_EXCEEDED', 'HTTP 503']).toContain(code);
        }
      }));
      // Killed once it has answered some from its slice (and holds more).
      const target = seen + 150;
      while (seen < target) await sleep(5);
      await node.kill('SIGKILL');
      stop = true;
      await burst;
      const after = await state(k.id);
      // Never over: every VALID a client saw came out of the stored remaining.
      expect(seen).toBeLessThanOrEqual(cap - after.remaining);
      // What the kills cost (units out of remaining, never answered VALID) is at most what the
      // killed nodes held, by their own last word.
      expect(cap - after.remaining - seen).toBeLessThanOrEqual(after.held);
    }
  } finally {
    await node.kill('SIGKILL');
  }
  const last = await start();
  try {
    // The rest of the cap is still there for a live node.
    const before = await state(k.id);
    const rest = await untilRefused(last.url, k.key, w.appId);
    expect(rest).toBe(before.remaining);
    expect(seen + rest).toBeLessThanOrEqual(cap);
  } finally {
    await last.kill('SIGTERM');
  }
}

describe('usage caps through a SIGKILL loop', () => {
  it('embedded store: never over the cap; a kill strands at most what the node held', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-kill-'));
    try {
      await killLoop(() => startProcess({ KEYWARD_DATA_DIR: dir, KEYWARD_MASTER_KEY: MASTER_KEY }), async (id) => sqliteState(dir, id), 4);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);

  it.runIf(cluster)('PostgreSQL + Redis: never over the cap; a kill strands at most what the node held', async () => {
    const db = await createPgDatabase();
    const prefix = `kwck:${randomBytes(4).toString('hex')}:`;
    try {
      await killLoop(() => startProcess({ DATABASE_URL: db.url, REDIS_URL: REDIS_URL!, KEYWARD_REDIS_PREFIX: prefix, KEYWARD_DATA_DIR: dataDir, KEYWARD_MASTER_KEY: MASTER_KEY }), (id) => pgState(db.url, id), 4);
    } finally {
      await db.drop();
    }
  }, 120_000);
});

/**
 * A TCP proxy that, once armed, holds a client connection's bytes from the first chunk matching
 * `pattern` (`from: 'match'`), or from the chunk after it (`'after'`: the transaction's COMMIT),
 * until released.
 */
async function startHoldingProxy(port: number, pattern: RegExp, from: 'match' | 'after') {
  let armed = false;
  let held: { upstream: net.Socket; chunks: Buffer[] } | undefined;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, '127.0.0.1');
    sockets.add(client).add(upstream);
    let holding = false;
    const chunks: Buffer[] = [];
    client.on('data', (chunk: Buffer) => {
      if (holding) {
        chunks.push(chunk);
        return;
      }
      if (armed && pattern.test(chunk.toString('latin1'))) {
        armed = false;
        holding = true;
        held = { upstream, chunks };
        if (from === 'match') {
          chunks.push(chunk);
          return;
        }
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', () => {
      // A client that gave up still has its held bytes delivered: that is the late commit.
      if (!holding) upstream.end();
    });
    upstream.on('error', drop).on('close', drop);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    arm: () => void (armed = true),
    get holding() {
      return held !== undefined;
    },
    release() {
      if (!held) return;
      for (const c of held.chunks.splice(0)) held.upstream.write(c);
      held = undefined;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Ends sessions of the database left idle in a transaction for over a second (abandoned by their client). */
async function endAbandoned(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
      WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle in transaction' AND state_change < now() - interval '1 second'`);
  } finally {
    await client.end();
  }
}

describe.runIf(postgres)('usage caps while the store does not answer (PostgreSQL)', () => {
  it('cut off from its store, a node spends only the units it holds, then answers 503; exact once it is back', async () => {
    const db = await createPgDatabase();
    const u = new URL(db.url);
    const proxy = await startTcpProxy(u.hostname, Number(u.port || 5432));
    u.port = String(proxy.port);
    const s = await startServer({ dialect: 'postgres', databaseUrl: u.toString(), env: { KEYWARD_STORE_TIMEOUT_MS: '500' } });
    try {
      const w = await world(s);
      const k = await createKey(s, w, { remaining: 10_000, ownerRatelimit: null });
      const scoped = { key: k.key, appId: w.appId };
      let valid = 0;
      for (let i = 0; i < 200; i++) {
        expect((await s.request('POST', '/v1/keys/verify', { body: scoped })).body.code).toBe('VALID');
        valid++;
        await s.deps.credits.drain();
      }
      const held = s.deps.credits.stats().held;
      expect(held).toBeGreaterThan(0);
      await proxy.down();
      let during = 0;
      for (;;) {
        const r = await s.request('POST', '/v1/keys/verify', { body: scoped });
        if (r.status === 503) break;
        expect(r.body.code).toBe('VALID');
        during++;
      }
      // Exactly what it held, then a refusal that is not a verdict; and again at once (backoff).
      expect(during).toBe(held);
      valid += during;
      const again = await s.request('POST', '/v1/keys/verify', { body: scoped });
      expect(again.status).toBe(503);
      expect(again.body.code).toBe('SERVICE_UNAVAILABLE');
      await proxy.up();
      for (let i = 0; i < 100;) {
        const r = await s.request('POST', '/v1/keys/verify', { body: scoped });
        if (r.status === 503) {
          await sleep(50);
          continue;
        }
        expect(r.body.code).toBe('VALID');
        valid++;
        i++;
      }
      await s.deps.credits.close();
      expect(await pgState(db.url, k.id)).toEqual({ remaining: 10_000 - valid, held: 0 });
    } finally {
      await s.close();
      await proxy.close();
      await db.drop();
    }
  }, 60_000);

  // The statement that takes units held past the node's timeout and run later (before slices: the
  // charge itself, which then committed on its own); or the COMMIT of the lease held, so the lease
  // lands after the node answered 503.
  it.each([
    ['the statement that takes units', /UPDATE keys SET|update "keys" set "remaining"/, 'match'],
    ['the COMMIT of a lease', /insert into "credit_slices"/, 'after'],
  ] as const)('%s held past the timeout and landing later: no unit charged without a VALID, after a clean stop stored remaining = cap - VALIDs', async (_what, pattern, from) => {
    const db = await createPgDatabase();
    const u = new URL(db.url);
    const proxy = await startHoldingProxy(Number(u.port || 5432), pattern, from);
    const viaProxy = new URL(db.url);
    viaProxy.port = String(proxy.port);
    viaProxy.hostname = '127.0.0.1';
    const env = { KEYWARD_STORE_TIMEOUT_MS: '500', KEYWARD_MASTER_KEY: Buffer.alloc(32, 5).toString('base64') };
    const direct = await startServer({ dialect: 'postgres', databaseUrl: db.url, env });
    const s = await startServer({ dialect: 'postgres', databaseUrl: viaProxy.toString(), env });
    try {
      const w = await world(direct);
      const k = await createKey(direct, w, { remaining: 100, ownerRatelimit: null });
      const scoped = { key: k.key, appId: w.appId };
      // The key is cached first, so the held statement is the lease.
      expect((await s.request('POST', '/v1/keys/verify', { body: { ...scoped, dryRun: true } })).body.code).toBe('VALID');
      proxy.arm();
      const first = await s.request('POST', '/v1/keys/verify', { body: scoped });
      expect(proxy.holding).toBe(true);
      expect(first.status).toBe(503);
      // Now what was held reaches PostgreSQL, after the node answered 503.
      proxy.release();
      let valid = 0;
      for (let tries = 0; valid < 20 && tries < 200; tries++) {
        const r = await s.request('POST', '/v1/keys/verify', { body: scoped });
        if (r.status === 503) {
          // A transaction the node gave up on is aborted by PostgreSQL (idle_in_transaction_session_timeout,
          // with the store's own timeouts): here as soon as it has idled a second, not waiting for that.
          await endAbandoned(db.url);
          await sleep(50);
          continue;
        }
        expect(r.body.code).toBe('VALID');
        valid++;
      }
      expect(valid).toBe(20);
      await s.deps.credits.close();
      // Whatever the late COMMIT reserved was spent by VALIDs or given back: none charged for the 503.
      expect(await pgState(db.url, k.id)).toEqual({ remaining: 100 - valid, held: 0 });
    } finally {
      proxy.release();
      await s.close();
      await direct.close();
      await proxy.close();
      await db.drop();
    }
  }, 60_000);
});
