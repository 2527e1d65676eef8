// Many stateless nodes on PostgreSQL + Redis behave as one service: exact shared limits and caps,
// revocation seen by every node within a second, verify unharmed by a Redis outage, and a
// PostgreSQL outage answered from cache (verify) or with 503 (writes) without half-writes.
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, createPgDatabase, DIALECTS, startServer, verify, world } from '../support/harness.js';
import { call, startProcess, type Proc } from '../support/process.js';
import { startOwnRedis } from '../support/redis-server.js';
import { startTcpProxy } from '../support/tcp-proxy.js';

const REDIS_URL = process.env.TEST_REDIS_URL;
/** Nodes of one deployment share the master key; each gets a scratch data dir. */
const MASTER_KEY = randomBytes(32).toString('base64');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-nodes-'));
const enabled = Boolean(REDIS_URL) && DIALECTS.includes('postgres');
if (process.env.CI && !enabled) throw new Error('CI must run the scale-out suite: set TEST_REDIS_URL and TEST_DIALECTS=sqlite,postgres');

afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

interface Cluster {
  nodes: Proc[];
  token: string;
  appId: string;
  workspaceId: string;
}

async function startCluster(n: number, databaseUrl: string, redisUrl: string, prefix: string): Promise<Proc[]> {
  const nodes: Proc[] = [];
  for (let i = 0; i < n; i++) {
    nodes.push(await startProcess({ DATABASE_URL: databaseUrl, REDIS_URL: redisUrl, KEYWARD_REDIS_PREFIX: prefix, KEYWARD_DATA_DIR: dataDir, KEYWARD_MASTER_KEY: MASTER_KEY }));
  }
  return nodes;
}

async function bootstrap(node: Proc): Promise<Omit<Cluster, 'nodes'>> {
  const setup = await call(node.url, 'POST', '/v1/setup', { email: 'ops@example.com', password: 'correct horse battery', workspaceName: 'Scale' });
  const token = setup.body.token as string;
  const workspaceId = setup.body.workspaces[0].id as string;
  const app = await call(node.url, 'POST', '/v1/apps', { workspaceId, name: 'Scale API', keyPrefix: 'scale' }, token);
  return { token, workspaceId, appId: app.body.id };
}

describe.runIf(enabled)('scale-out: 3 nodes on PostgreSQL + Redis', () => {
  let db: Awaited<ReturnType<typeof createPgDatabase>>;
  let c: Cluster;
  beforeAll(async () => {
    db = await createPgDatabase();
    const nodes = await startCluster(3, db.url, REDIS_URL!, `kwtest:${randomBytes(4).toString('hex')}:`);
    c = { nodes, ...(await bootstrap(nodes[0]!)) };
  }, 60_000);
  afterAll(async () => {
    await Promise.all(c?.nodes.map((n) => n.kill('SIGTERM')) ?? []);
    await db?.drop();
  });

  const newKey = async (body: Record<string, unknown>) => (await call(c.nodes[0]!.url, 'POST', `/v1/apps/${c.appId}/keys`, { name: 'k', ...body }, c.token)).body;

  /** `total` verifies, round-robin over the nodes, `parallel` at a time. */
  async function hammer(key: string, total: number, parallel = 30): Promise<string[]> {
    const codes: string[] = [];
    let next = 0;
    await Promise.all(Array.from({ length: parallel }, async () => {
      while (next < total) {
        const i = next++;
        const res = await call(c.nodes[i % c.nodes.length]!.url, 'POST', '/v1/keys/verify', { key, appId: c.appId });
        expect(res.status).toBe(200);
        codes.push(res.body.code);
      }
    }));
    return codes;
  }

  it('a key limited to 100 per window, hammered through all 3 nodes → exactly 100 VALID', async () => {
    const k = await newKey({ ratelimit: { limit: 100, durationMs: 3_600_000 }, ownerRatelimit: null });
    const codes = await hammer(k.key, 300);
    expect(codes.filter((x) => x === 'VALID')).toHaveLength(100);
    expect(codes.filter((x) => x === 'RATE_LIMITED')).toHaveLength(200);
  });

  it('an owner limit is shared across nodes and keys', async () => {
    const a = await newKey({ ownerId: 'o1', ownerRatelimit: { limit: 60, durationMs: 3_600_000 } });
    const b = await newKey({ ownerId: 'o1', ownerRatelimit: { limit: 60, durationMs: 3_600_000 } });
    const [ca, cb] = await Promise.all([hammer(a.key, 60, 15), hammer(b.key, 60, 15)]);
    expect([...ca, ...cb].filter((x) => x === 'VALID')).toHaveLength(60);
  });

  it('a key with remaining 100, hammered through all 3 nodes → exactly 100 VALID', async () => {
    const k = await newKey({ remaining: 100, ownerRatelimit: null });
    const codes = await hammer(k.key, 250);
    expect(codes.filter((x) => x === 'VALID')).toHaveLength(100);
    expect(codes.filter((x) => x === 'USAGE_EXCEEDED')).toHaveLength(150);
  });

  it('revoke on node A is refused by every node well within 1 s (p99 printed)', async () => {
    const samples: number[] = [];
    for (let round = 0; round < 15; round++) {
      const k = await newKey({ ownerRatelimit: null });
      for (const n of c.nodes) expect((await call(n.url, 'POST', '/v1/keys/verify', { key: k.key, appId: c.appId })).body.code).toBe('VALID');
      const t0 = performance.now();
      const del = await call(c.nodes[0]!.url, 'DELETE', `/v1/keys/${k.id}`, undefined, c.token);
      expect(del.status).toBe(200);
      await Promise.all(c.nodes.slice(1).map(async (n) => {
        for (;;) {
          const r = await call(n.url, 'POST', '/v1/keys/verify', { key: k.key, appId: c.appId });
          if (r.body.code === 'REVOKED') break;
          expect(r.body.code).toBe('VALID');
          expect(performance.now() - t0).toBeLessThan(1000);
        }
        samples.push(performance.now() - t0);
      }));
    }
    const p50 = percentile(samples, 50);
    const p99 = percentile(samples, 99);
    console.log(`revocation propagation over ${samples.length} samples: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
    expect(p99).toBeLessThan(1000);
  });

  it('/readyz reports the store and Redis', async () => {
    const r = await call(c.nodes[1]!.url, 'GET', '/readyz');
    expect(r.body).toEqual({ status: 'ready', checks: { store: { ok: true, detail: 'postgres' }, redis: { ok: true }, changeFeed: { ok: true } } });
  });
});

describe.runIf(enabled)('scale-out: Redis stopped mid-load', () => {
  it('verify never errors while Redis is down, and shared limits resume when it is back', async () => {
    const db = await createPgDatabase();
    const redis = await startOwnRedis();
    const nodes = await startCluster(2, db.url, redis.url, 'kwdown:');
    try {
      const w = await bootstrap(nodes[0]!);
      const k = (await call(nodes[0]!.url, 'POST', `/v1/apps/${w.appId}/keys`, { name: 'busy', ratelimit: { limit: 1_000_000, durationMs: 60_000 }, ownerRatelimit: null }, w.token)).body;
      let stopAt = Date.now() + 3000;
      const failures: string[] = [];
      let sent = 0;
      let stopped = false;
      const load = Promise.all(Array.from({ length: 10 }, async (_, worker) => {
        while (Date.now() < stopAt) {
          const res = await call(nodes[(sent++ + worker) % 2]!.url, 'POST', '/v1/keys/verify', { key: k.key, appId: w.appId }).catch((e: Error) => ({ status: 0, body: { code: e.message } }));
          if (res.status !== 200 || res.body.code !== 'VALID') failures.push(`${res.status} ${res.body.code}`);
        }
      }));
      await new Promise((r) => setTimeout(r, 1000));
      await redis.stop();
      stopped = true;
      stopAt = Date.now() + 2000;
      await load;
      expect(stopped).toBe(true);
      expect(failures).toEqual([]);
      expect(sent).toBeGreaterThan(100);
      const degraded = await call(nodes[1]!.url, 'GET', '/readyz');
      expect(degraded.body.checks.redis.ok).toBe(false);
      expect(degraded.status).toBe(200);
      // Decisions taken locally while Redis was away are counted (summed over the nodes).
      let fallbacks = 0;
      for (const n of nodes) {
        const metrics = await fetch(`${n.url}/metrics`).then((r) => r.text());
        fallbacks += Number(/keyward_ratelimit_fallback_total (\d+)/.exec(metrics)?.[1] ?? 0);
      }
      expect(fallbacks).toBeGreaterThan(0);

      await redis.start();
      for (let i = 0; i < 100; i++) {
        const ready = await Promise.all(nodes.map((n) => call(n.url, 'GET', '/readyz')));
        if (ready.every((r) => r.body.status === 'ready')) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const limited = (await call(nodes[0]!.url, 'POST', `/v1/apps/${w.appId}/keys`, { name: 'limited', ratelimit: { limit: 20, durationMs: 3_600_000 }, ownerRatelimit: null }, w.token)).body;
      const codes = await Promise.all(Array.from({ length: 60 }, (_, i) => call(nodes[i % 2]!.url, 'POST', '/v1/keys/verify', { key: limited.key, appId: w.appId }).then((r) => r.body.code)));
      expect(codes.filter((x) => x === 'VALID')).toHaveLength(20);
    } finally {
      await Promise.all(nodes.map((n) => n.kill('SIGTERM')));
      await redis.stop();
      await db.drop();
    }
  }, 60_000);
});

describe.runIf(DIALECTS.includes('postgres'))('PostgreSQL unreachable', () => {
  it('verify answers from cache for keys it has seen; writes answer 503 and change nothing', async () => {
    const db = await createPgDatabase();
    const proxy = await startTcpProxy('127.0.0.1', Number(new URL(db.url).port || 5432));
    const viaProxy = new URL(db.url);
    viaProxy.port = String(proxy.port);
    viaProxy.hostname = '127.0.0.1';
    const s = await startServer({ dialect: 'postgres', databaseUrl: viaProxy.toString(), listen: true });
    try {
      const w = await world(s);
      const seen = await createKey(s, w);
      const unseen = await createKey(s, w);
      expect((await verify(s, { key: seen.key })).code).toBe('VALID');
      const before = await s.request('GET', `/v1/apps/${w.appId}/keys`, { token: w.token });

      await proxy.down();
      s.clock.advance(60_000); // past the cache TTL: the entry must be served stale
      expect((await verify(s, { key: seen.key })).code).toBe('VALID');
      const miss = await s.request('POST', '/v1/keys/verify', { body: { key: unseen.key, appId: w.appId } });
      expect(miss.status).toBe(503);
      expect(miss.body.code).toBe('SERVICE_UNAVAILABLE');
      const create = await s.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, body: { name: 'during outage' } });
      expect(create.status).toBe(503);
      expect(create.body.code).toBe('SERVICE_UNAVAILABLE');
      expect(create.headers.get('retry-after')).toBe('1');
      const ready = await s.request('GET', '/readyz');
      expect(ready.status).toBe(503);

      await proxy.up();
      let after;
      for (let i = 0; i < 50; i++) {
        after = await s.request('GET', `/v1/apps/${w.appId}/keys`, { token: w.token });
        if (after.status === 200) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(after!.status).toBe(200);
      expect(after!.body.total).toBe(before.body.total);
      // Verify asks the store again once its next probe is due (KEYWARD_PROBE_MS) and finds it back.
      s.clock.advance(1000);
      expect((await verify(s, { key: unseen.key })).code).toBe('VALID');
    } finally {
      await s.close();
      await proxy.close();
      await db.drop();
    }
  }, 60_000);
});

describe.runIf(enabled)('cluster mode (KEYWARD_WORKERS=2)', () => {
  it('a worker killed under load costs its clients a reset, never a hang; the primary replaces it', async () => {
    const db = await createPgDatabase();
    const node = await startProcess({ DATABASE_URL: db.url, REDIS_URL: REDIS_URL!, KEYWARD_REDIS_PREFIX: `kwcl:${randomBytes(4).toString('hex')}:`, KEYWARD_WORKERS: '2', KEYWARD_DATA_DIR: dataDir, KEYWARD_MASTER_KEY: MASTER_KEY });
    try {
      const w = await bootstrap(node);
      const k = (await call(node.url, 'POST', `/v1/apps/${w.appId}/keys`, { name: 'busy', ratelimit: null, ownerRatelimit: null }, w.token)).body;
      const workers = () => execFileSync('pgrep', ['-P', String(node.child.pid)]).toString().trim().split('\n').map(Number);
      const [victim] = workers();
      let hung = 0;
      let ok = 0;
      const stopAt = Date.now() + 3000;
      const load = Promise.all(Array.from({ length: 8 }, async () => {
        while (Date.now() < stopAt) {
          try {
            const res = await fetch(`${node.url}/v1/keys/verify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: k.key, appId: w.appId }), signal: AbortSignal.timeout(5000) });
            if ((await res.json() as { code: string }).code === 'VALID') ok++;
          } catch (err) {
            // A reset (the killed worker's connections) is allowed; waiting forever is not.
            if ((err as Error).name === 'TimeoutError') hung++;
          }
        }
      }));
      await new Promise((r) => setTimeout(r, 500));
      process.kill(victim!, 'SIGKILL');
      await load;
      expect(hung).toBe(0);
      expect(ok).toBeGreaterThan(50);
      // The primary starts a replacement: two workers again, the victim not among them.
      await expect.poll(() => workers().filter((p) => p !== victim).length, { timeout: 10_000 }).toBe(2);
    } finally {
      await node.kill('SIGTERM');
      await db.drop();
    }
  }, 60_000);

  it('workers share one port and one state: never over the limit and all of it in the end, revocation seen by both', async () => {
    const db = await createPgDatabase();
    // Unspent lease tokens go back after 300 ms without a request (KEYWARD_RATELIMIT_LEASE_MS).
    const node = await startProcess({ DATABASE_URL: db.url, REDIS_URL: REDIS_URL!, KEYWARD_REDIS_PREFIX: `kwcl:${randomBytes(4).toString('hex')}:`, KEYWARD_WORKERS: '2', KEYWARD_DATA_DIR: dataDir, KEYWARD_MASTER_KEY: MASTER_KEY, KEYWARD_RATELIMIT_LEASE_MS: '300' });
    try {
      expect(node.output()).toContain('(2 workers)');
      const w = await bootstrap(node);
      const k = (await call(node.url, 'POST', `/v1/apps/${w.appId}/keys`, { name: 'c', ratelimit: { limit: 50, durationMs: 3_600_000 }, ownerRatelimit: null }, w.token)).body;
      const once = async () => {
        const res = await fetch(`${node.url}/v1/keys/verify`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: JSON.stringify({ key: k.key, appId: w.appId }) });
        return ((await res.json()) as { code: string }).code;
      };
      const codes = await Promise.all(Array.from({ length: 150 }, once));
      // Never over the limit across workers. At the end of a burst one worker may still hold a
      // token the other was refused for (docs/design/rate-limits.md, "Shared limits are spent from leases"): it is
      // spent by that worker's next request or goes back, so the whole limit is admitted in the end.
      let valid = codes.filter((x) => x === 'VALID').length;
      expect(valid).toBeLessThanOrEqual(50);
      expect(codes.filter((x) => x !== 'VALID' && x !== 'RATE_LIMITED')).toEqual([]);
      for (const until = Date.now() + 10_000; valid < 50 && Date.now() < until;) if ((await once()) === 'VALID') valid++;
      expect(valid).toBe(50);
      expect(new Set(await Promise.all(Array.from({ length: 10 }, once)))).toEqual(new Set(['RATE_LIMITED']));
      // Workers accept their own connections (the OS chooses, not always evenly): both are up and
      // serving this port; whichever answered, the limit above held across them.
      expect(execFileSync('pgrep', ['-P', String(node.child.pid)]).toString().trim().split('\n')).toHaveLength(2);
      await call(node.url, 'DELETE', `/v1/keys/${k.id}`, undefined, w.token);
      const after = await Promise.all(Array.from({ length: 20 }, () => call(node.url, 'POST', '/v1/keys/verify', { key: k.key, appId: w.appId }).then((r) => r.body.code)));
      expect(new Set(after)).toEqual(new Set(['REVOKED']));
    } finally {
      expect(await node.kill('SIGTERM')).toBe(0);
      await db.drop();
    }
  }, 60_000);
});
