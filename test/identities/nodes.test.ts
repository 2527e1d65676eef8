// Named limits across nodes, on every store, with a real Redis: three nodes on one store share an
// identity's windows, the standalone limiter's, and hear of an override change within a second.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DIALECTS, createKey, createPgDatabase, startServer, verify, world, type TestServer, type World } from '../support/harness.js';
import { ManualClock } from '../../src/lib/clock.js';

const REDIS_URL = process.env.TEST_REDIS_URL;
if (process.env.CI && !REDIS_URL) throw new Error('CI must run the cross-node named-limit suite: set TEST_REDIS_URL');

const MINUTE = 60_000;

/**
 * Real time, moved further by `advance`: the three nodes' clocks agree and flow as real nodes' do. (A
 * frozen test clock per node would jump by whatever real time passed whenever a node samples Redis's
 * clock, putting nodes in different windows.)
 */
class FlowingClock extends ManualClock {
  private extra = 0;
  override now(): number {
    return Date.now() + this.extra;
  }
  override advance(ms: number): void {
    this.extra += ms;
  }
}

/** Starts a run of requests at least `margin` before the current window ends, so that it stays in one window. */
async function inOneWindow(durationMs: number, margin: number): Promise<void> {
  const left = durationMs - (Date.now() % durationMs);
  if (left < margin) await new Promise((resolve) => setTimeout(resolve, left + 50));
}

for (const dialect of DIALECTS) {
  describe.runIf(REDIS_URL)(`named limits on three nodes (${dialect}, Redis)`, () => {
    let nodes: TestServer[];
    let w: World;
    let dropPg: (() => Promise<void>) | undefined;
    let dataDir: string | undefined;

    beforeAll(async () => {
      const env = { REDIS_URL: REDIS_URL!, KEYWARD_REDIS_PREFIX: `kwidt_${randomBytes(4).toString('hex')}:`, KEYWARD_MASTER_KEY: Buffer.alloc(32, 7).toString('base64') };
      nodes = [];
      const clock = new FlowingClock();
      if (dialect === 'postgres') {
        const pg = await createPgDatabase();
        dropPg = () => pg.drop();
        for (let i = 0; i < 3; i++) nodes.push(await startServer({ dialect, databaseUrl: pg.url, env, clock }));
      } else {
        // Three nodes on one embedded store: one data directory (SQLite in WAL mode).
        dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-nodes-'));
        for (let i = 0; i < 3; i++) nodes.push(await startServer({ dialect, dataDir, env, clock }));
      }
      for (const n of nodes) await n.deps.nodes.beat();
    });
    beforeEach(async () => {
      w = await world(nodes[0]!);
      for (const n of nodes) n.appId = w.appId;
    });

    /** Decisions each node made without Redis (a Redis call timed out: the machine was starved). */
    const fallbacks = async () => (await Promise.all(nodes.map(async (n) => Number(/keyward_ratelimit_fallback_total (\d+)/.exec((await n.request('GET', '/metrics')).text)?.[1] ?? 0)))).join(',');

    afterAll(async () => {
      for (const n of nodes) await n.close();
      await dropPg?.();
      dropPg = undefined;
      if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
      dataDir = undefined;
    });

    /**
     * Runs `attempt` (with a fresh window each time) until one runs without any node deciding alone:
     * a Redis call that timed out (500 ms; a starved machine) moves a node to the outage rules, whose
     * bound is looser than exact. Exactness is asserted on a run that stayed on Redis.
     */
    async function onRedis<T>(attempt: (n: number) => Promise<T>): Promise<T> {
      for (let n = 0; ; n++) {
        const before = await fallbacks();
        const result = await attempt(n);
        if ((await fallbacks()) === before || n === 4) {
          expect(await fallbacks(), 'every run had a node decide without Redis').toBe(before);
          return result;
        }
        // Redis's circuit may have opened: its next probe is due within a second or two.
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    }

    it('a 100/min limit on an identity shared by 3 keys, verified across 3 nodes, admits exactly 100', async () => {
      const { valid, limited } = await onRedis(async (n) => {
        const owner = `cust_shared_${n}`;
        const made = await nodes[0]!.request('POST', `/v1/workspaces/${w.workspaceId}/identities`, { token: w.token, body: { externalId: owner, ratelimits: [{ name: 'requests', limit: 100, durationMs: MINUTE, autoApply: true }] } });
        expect(made.status).toBe(201);
        const keys: string[] = [];
        for (let i = 0; i < 3; i++) keys.push((await createKey(nodes[0]!, w, { ownerId: owner, ratelimit: null, ownerRatelimit: null })).key);
        let valid = 0;
        let limited = 0;
        await inOneWindow(MINUTE, 10_000);
        // Rounds of concurrent verifies: every node, every key, in each round.
        for (let round = 0; round < 15; round++) {
          const answers = await Promise.all(Array.from({ length: 9 }, (_, i) => verify(nodes[i % 3]!, { key: keys[Math.floor(i / 3)]! })));
          for (const a of answers) {
            if (a.valid) valid++;
            else {
              expect(a.code).toBe('RATE_LIMITED');
              limited++;
            }
          }
        }
        return { valid, limited };
      });
      expect(valid).toBe(100);
      expect(limited).toBe(135 - 100);
    }, 120_000);

    it('the standalone limiter is exact across nodes, and an override applies on every node within a second', async () => {
      const rk = await nodes[0]!.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'limiter', permissions: ['ratelimit:limit'] } });
      const root = rk.body.key as string;
      const limit = (n: TestServer, identifier: string) => n.request('POST', '/v1/ratelimit', { token: root, body: { namespace: 'jobs', identifier, limit: 50, durationMs: MINUTE } });
      const admitted = await onRedis(async (n) => {
        let admitted = 0;
        await inOneWindow(MINUTE, 10_000);
        for (let round = 0; round < 10; round++) {
          const answers = await Promise.all(Array.from({ length: 9 }, (_, i) => limit(nodes[i % 3]!, `tenant_1_${n}`)));
          for (const a of answers) {
            expect(a.status).toBe(200);
            if (a.body.success) admitted++;
          }
        }
        return admitted;
      });
      expect(admitted).toBe(50);
      // Every node has read the namespace's (empty) overrides; the override set on one reaches all.
      const put = await nodes[1]!.request('PUT', '/v1/ratelimit/overrides', { token: root, body: { namespace: 'jobs', identifier: 'tenant_*', limit: 500, durationMs: MINUTE } });
      expect(put.status).toBe(200);
      for (const n of nodes) {
        await expect.poll(async () => (await limit(n, 'tenant_2')).body.limit, { timeout: 1000, interval: 20 }).toBe(500);
      }
    }, 120_000);

    it('a verify refused by the usage cap hands its key and owner limit back (Redis leases)', async () => {
      const valid = await onRedis(async () => {
        const k = await createKey(nodes[0]!, w, { ownerId: 'cap_owner', remaining: 2, ratelimit: { limit: 4, durationMs: MINUTE }, ownerRatelimit: null });
        let valid = 0;
        await inOneWindow(MINUTE, 15_000);
        for (let i = 0; i < 12; i++) if ((await verify(nodes[i % 3]!, { key: k.key })).valid) valid++;
        expect(valid).toBe(2);
        expect((await nodes[0]!.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: { remaining: 100 } })).status).toBe(200);
        // Two of the key's four were spent by the two VALID answers; the ten refusals took none.
        for (let i = 0; i < 6; i++) if ((await verify(nodes[i % 3]!, { key: k.key })).valid) valid++;
        return valid;
      });
      expect(valid).toBe(4);
    }, 120_000);

    it('an identity change reaches the keys cached on every node within a second', async () => {
      const k = await createKey(nodes[0]!, w, { ownerId: 'cust_change', ratelimit: null, ownerRatelimit: null });
      for (const n of nodes) expect((await verify(n, { key: k.key })).ratelimits).toBeUndefined();
      const id = (await nodes[0]!.request('GET', `/v1/workspaces/${w.workspaceId}/identities?q=cust_change`, { token: w.token })).body.data[0].id;
      const patched = await nodes[2]!.request('PATCH', `/v1/identities/${id}`, { token: w.token, body: { ratelimits: [{ name: 'r', limit: 9, durationMs: MINUTE, autoApply: true }] } });
      expect(patched.status).toBe(200);
      for (const n of nodes) {
        await expect.poll(async () => (await verify(n, { key: k.key, dryRun: true })).ratelimits?.[0]?.limit, { timeout: 1000, interval: 20 }).toBe(9);
      }
    }, 60_000);
  });
}
