// A node whose host clock is 10 s behind (its Date shifted by a preloaded module), beside a node
// with a good clock, on one PostgreSQL and one Redis. Where nodes must agree it uses the shared
// services' clocks: it admits nothing extra in a shared rate window, stamps heartbeats on the
// store's clock and holds webhook delivery leases that the other node respects (no duplicate
// delivery); it accepts fresh integration JWTs and refuses a key once it has expired.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { SignJWT } from 'jose';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { createPgDatabase, DIALECTS } from '../support/harness.js';
import { call, startProcess, type Proc } from '../support/process.js';
import { startReceiver, type Receiver } from '../support/webhook-receiver.js';

const REDIS_URL = process.env.TEST_REDIS_URL;
const enabled = Boolean(REDIS_URL) && DIALECTS.includes('postgres');
if (process.env.CI && !enabled) throw new Error('CI must run the clock chaos suite: set TEST_REDIS_URL and TEST_DIALECTS=sqlite,postgres');

const SHIFT_MS = -10_000;
const WINDOW_MS = 5000;
const SHIFTED = pathToFileURL(path.resolve('test/fixtures/clock-shift.mjs')).href;

describe.runIf(enabled)('a node whose clock is 10 s behind (PostgreSQL + Redis)', () => {
  let db: Awaited<ReturnType<typeof createPgDatabase>>;
  let dataDir: string;
  let procs: Proc[] = [];
  let admin: Redis;
  let rx: Receiver;
  afterEach(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGTERM')));
    admin.disconnect();
    await rx.close();
    await db.drop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('admits nothing extra in a shared window, accepts fresh JWTs, refuses an expired key, and agrees on heartbeats and webhook leases', async () => {
    db = await createPgDatabase();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-skew-'));
    admin = new Redis(REDIS_URL!);
    rx = await startReceiver();
    const env = {
      DATABASE_URL: db.url, REDIS_URL: REDIS_URL!, KEYWARD_REDIS_PREFIX: `kwskew_${randomBytes(4).toString('hex')}:`, KEYWARD_DATA_DIR: dataDir,
      KEYWARD_MASTER_KEY: Buffer.alloc(32, 11).toString('base64'), KEYWARD_WEBHOOK_ALLOW_PRIVATE: '1', KEYWARD_WEBHOOK_TIMEOUT_MS: '3000', KEYWARD_WEBHOOK_POLL_MS: '100',
    };
    const good = await startProcess(env);
    procs.push(good);
    const behind = await startProcess({ ...env, NODE_OPTIONS: `--import=${SHIFTED}`, TEST_CLOCK_SHIFT_MS: String(SHIFT_MS) });
    procs.push(behind);

    const setup = await call(good.url, 'POST', '/v1/setup', { email: 'skew@example.com', password: 'correct horse battery', workspaceName: 'Skew' });
    const token = setup.body.token as string;
    const workspaceId = setup.body.workspaces[0].id as string;
    const appId = (await call(good.url, 'POST', '/v1/apps', { workspaceId, name: 'Skew', keyPrefix: 'skew' }, token)).body.id as string;
    const key = (body: Record<string, unknown>) => call(good.url, 'POST', `/v1/apps/${appId}/keys`, { name: 'k', ...body }, token).then((r) => r.body);
    const verifyOn = async (node: Proc, body: Record<string, unknown>) => (await call(node.url, 'POST', '/v1/keys/verify', { appId, ...body })).body.code as string;

    // Heartbeats: every node's last beat is on the store's clock (beats come every 5 s).
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ seen_at: string; now: number }>('SELECT seen_at, (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now FROM nodes');
      expect(rows).toHaveLength(2);
      for (const r of rows) expect(r.now - Number(r.seen_at)).toBeLessThan(6000);
    } finally {
      await client.end();
    }

    // 20 per 5 s, asked of both nodes at once: the window is Redis's, whatever each node's clock says.
    const limited = await key({ ratelimit: { limit: 20, durationMs: WINDOW_MS }, ownerRatelimit: null });
    // Start early in a window (by Redis's clock), so the burst does not straddle two.
    await expect.poll(async () => {
      const [sec, usec] = await admin.time();
      return (Number(sec) * 1000 + Math.floor(Number(usec) / 1000)) % WINDOW_MS;
    }, { timeout: 10_000, interval: 20 }).toBeLessThan(1000);
    const codes = await Promise.all(Array.from({ length: 60 }, (_, i) => verifyOn(i % 2 === 0 ? good : behind, { key: limited.key })));
    expect(codes.filter((c) => c === 'VALID').length).toBeLessThanOrEqual(20);

    // A JWT signed now (by a client with a good clock) is fresh to the node behind.
    const partner = await key({ kind: 'integration', ownerRatelimit: null });
    const jwt = await new SignJWT({ sub: 'client' }).setProtectedHeader({ alg: 'HS256', kid: partner.id }).setIssuedAt(Math.floor(Date.now() / 1000)).sign(new TextEncoder().encode(partner.secret));
    expect(await verifyOn(behind, { authorization: `Bearer ${jwt}` })).toBe('VALID');

    // A key past its expiry is expired on the node behind too.
    const expiresAt = Date.now() + 1500;
    const brief = await key({ expiresAt: new Date(expiresAt).toISOString(), ownerRatelimit: null });
    expect(await verifyOn(behind, { key: brief.key })).toBe('VALID');
    await expect.poll(() => Date.now() > expiresAt + 100, { timeout: 5000, interval: 50 }).toBe(true);
    expect(await verifyOn(behind, { key: brief.key })).toBe('EXPIRED');

    // A delivery claimed by the node behind is not claimed again by the other while it is sent.
    rx.holdMs = 1500;
    const hook = (await call(good.url, 'POST', `/v1/workspaces/${workspaceId}/webhooks`, { url: `${rx.url}/hook`, events: ['key.created'] }, token)).body;
    const created = await call(behind.url, 'POST', `/v1/apps/${appId}/keys`, { name: 'announced' }, token);
    expect(created.status).toBe(201);
    await expect.poll(async () => (await call(good.url, 'GET', `/v1/webhooks/${hook.id}/deliveries`, undefined, token)).body.data[0]?.status, { timeout: 15_000, interval: 100 }).toBe('delivered');
    expect(rx.received.map((r) => r.headers['webhook-id'])).toHaveLength(1);
  }, 60_000);
});
