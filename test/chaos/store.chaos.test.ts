// The store under faults: a node started before PostgreSQL waits for it; nodes with another
// master key refuse to start on a shared store; capped keys never over-spend while the store is
// away; and creates that were acknowledged while PostgreSQL flapped all exist, with Idempotency-Key
// retries making each logical create exactly one key.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createKey, createPgDatabase, DIALECTS, startServer, verify, world, type TestServer, type World } from '../support/harness.js';
import { call, startProcess } from '../support/process.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';

const enabled = DIALECTS.includes('postgres');
if (process.env.CI && !enabled) throw new Error('CI must run the store chaos suite: set TEST_DIALECTS=sqlite,postgres');

describe.runIf(enabled)('PostgreSQL under faults', () => {
  let pg: Awaited<ReturnType<typeof createPgDatabase>>;
  let proxy: TcpProxy;
  let viaProxy: string;
  beforeEach(async () => {
    pg = await createPgDatabase();
    const u = new URL(pg.url);
    proxy = await startTcpProxy(u.hostname, Number(u.port || 5432));
    u.port = String(proxy.port);
    viaProxy = u.toString();
  });
  afterEach(async () => {
    await proxy.close();
    await pg.drop();
  });

  it('a node started while PostgreSQL is down waits for it, says so in one line, and starts when it is back', async () => {
    await proxy.down();
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-wait-'));
    let waiting!: () => void;
    const saidItWaits = new Promise<void>((resolve) => (waiting = resolve));
    const starting = startProcess({ DATABASE_URL: viaProxy, KEYWARD_DATA_DIR: dataDir, KEYWARD_STORE_WAIT_MS: '30000', KEYWARD_MASTER_KEY: Buffer.alloc(32, 8).toString('base64') }, (out) => {
      if (/store unavailable; waiting for it/.test(out)) waiting();
    });
    // The store comes up only once the node has said it waits for it.
    await saidItWaits;
    await proxy.up();
    const node = await starting;
    try {
      expect(node.output()).toMatch(/store unavailable; waiting for it/);
      expect(node.output()).not.toMatch(/\n\s+at /);
      expect((await call(node.url, 'GET', '/readyz')).status).toBe(200);
    } finally {
      await node.kill('SIGTERM');
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 40_000);

  it('a node with another master key refuses to start on a shared store', async () => {
    const a = await startServer({ dialect: 'postgres', databaseUrl: pg.url, env: { KEYWARD_MASTER_KEY: Buffer.alloc(32, 1).toString('base64') } });
    try {
      await expect(startServer({ dialect: 'postgres', databaseUrl: pg.url, env: { KEYWARD_MASTER_KEY: Buffer.alloc(32, 2).toString('base64') } })).rejects.toThrow(/master key/);
    } finally {
      await a.close();
    }
  });

  describe('with a node whose store link flaps', () => {
    let direct: TestServer;
    let flaky: TestServer;
    let w: World;
    beforeEach(async () => {
      const env = { KEYWARD_MASTER_KEY: Buffer.alloc(32, 6).toString('base64'), KEYWARD_STORE_TIMEOUT_MS: '500' };
      direct = await startServer({ dialect: 'postgres', databaseUrl: pg.url, env });
      flaky = await startServer({ dialect: 'postgres', databaseUrl: viaProxy, env });
      w = await world(direct);
      flaky.appId = w.appId;
    });
    afterEach(async () => {
      await flaky.close();
      await direct.close();
    });

    it('a capped key never answers VALID without a charge: 503 while the store is away, exact after', async () => {
      const k = await createKey(direct, w, { remaining: 5 });
      expect(await verify(flaky, { key: k.key })).toMatchObject({ code: 'VALID', remaining: 4 });
      await proxy.down();
      const during = await flaky.request('POST', '/v1/keys/verify', { body: { key: k.key, appId: w.appId } });
      expect(during.status).toBe(503);
      expect(during.headers.get('retry-after')).toBe('1');
      await proxy.up();
      // Until its backoff has passed, the node answers 503 at once rather than wait on the store again.
      const codes = await Promise.all(Array.from({ length: 10 }, async () => {
        for (;;) {
          const r = await flaky.request('POST', '/v1/keys/verify', { body: { key: k.key, appId: w.appId } });
          if (r.status === 200) return r.body.code as string;
          expect(r.status).toBe(503);
          await new Promise((res) => setTimeout(res, 50));
        }
      }));
      expect(codes.filter((c) => c === 'VALID')).toHaveLength(4);
      expect((await direct.request('GET', `/v1/keys/${k.id}`, { token: w.token })).body.remaining).toBe(0);
    });

    it('every create acknowledged while the link flaps exists, and retries with an Idempotency-Key make each one once', async () => {
      let flapping = true;
      const flap = (async () => {
        while (flapping) {
          await proxy.down();
          await new Promise((r) => setTimeout(r, 120));
          await proxy.up();
          await new Promise((r) => setTimeout(r, 180));
        }
      })();
      const acknowledged = new Set<string>();
      let refused = 0;
      for (let i = 0; i < 25; i++) {
        // Each logical create is retried with its own key until it is acknowledged or known.
        for (let attempt = 0; attempt < 50; attempt++) {
          const r = await flaky.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, body: { name: `flap ${i}` }, headers: { 'idempotency-key': `flap-${i}` } });
          if (r.status === 201 || (r.status === 409 && r.body.code === 'ALREADY_CREATED')) {
            acknowledged.add(r.body.id);
            break;
          }
          expect([503, 409], r.text).toContain(r.status);
          refused++;
          await new Promise((res) => setTimeout(res, 50));
        }
      }
      flapping = false;
      await flap; // it always stops with the link up
      expect(acknowledged.size).toBe(25);
      const listed = await direct.request('GET', `/v1/apps/${w.appId}/keys?limit=100`, { token: w.token });
      expect(listed.body.total).toBe(25);
      expect(new Set(listed.body.data.map((k: { id: string }) => k.id))).toEqual(acknowledged);
      expect(refused).toBeGreaterThan(0);
    }, 60_000);
  });
});
