// Shared rate limits decide every request a node handles in one event-loop turn in one Redis call,
// and stay exact: a burst of concurrent verifies on one node gets exactly the limit, in fewer
// script calls than requests.
import { execFileSync, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, DIALECTS, startServer, world, type TestServer, type World } from '../support/harness.js';
import { startOwnRedis, type OwnRedis } from '../support/redis-server.js';

const enabled = Boolean(process.env.TEST_REDIS_URL) && DIALECTS.includes('postgres');

function scriptCalls(redis: OwnRedis): number {
  const info = execFileSync('redis-cli', ['-p', String(redis.port), 'INFO', 'commandstats'], { encoding: 'utf8' });
  return [...info.matchAll(/cmdstat_(?:evalsha|eval):calls=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
}

/**
 * `n` clients in another process, each on its own connection, send one verify at the same moment:
 * the connections are opened first, then this process holds its event loop while the child writes
 * every request, so they are all waiting when the server next looks (as under load from many clients).
 */
async function burst(url: string, n: number, body: string): Promise<{ code: string; ratelimit?: { remaining: number } }[]> {
  const { hostname, port } = new URL(url);
  const request = `POST /v1/keys/verify HTTP/1.1\r\nHost: ${hostname}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
  const script = `
const net = require('node:net');
const request = ${JSON.stringify(request)};
(async () => {
  const sockets = await Promise.all(Array.from({ length: ${n} }, () => new Promise((resolve) => { const s = net.connect(${Number(port)}, ${JSON.stringify(hostname)}, () => resolve(s)); })));
  const answers = sockets.map((s) => new Promise((resolve) => { let t = ''; s.setEncoding('utf8'); s.on('data', (d) => { t += d; }); s.on('end', () => resolve(t)); }));
  process.stdout.write('ready\\n');
  process.stdin.once('data', async () => {
    for (const s of sockets) s.write(request);
    const texts = await Promise.all(answers);
    process.stdout.write(JSON.stringify(texts.map((t) => t.slice(t.indexOf('\\r\\n\\r\\n') + 4))) + '\\n');
    process.exit(0);
  });
})();`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  const done = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out === 'ready\n') {
        child.stdin!.write('go\n');
        // Hold this event loop (and the server in it) while the child writes every request.
        const until = Date.now() + 600;
        while (Date.now() < until) { /* the requests arrive meanwhile */ }
      }
    });
    child.on('exit', (code) => (code === 0 ? resolve(out.slice('ready\n'.length)) : reject(new Error(`burst exited ${code}`))));
  });
  return (JSON.parse(await done) as string[]).map((b) => JSON.parse(b));
}

describe.runIf(enabled)('shared rate limits, batched per event-loop turn', () => {
  let redis: OwnRedis;
  let s: TestServer;
  let w: World;
  beforeAll(async () => {
    redis = await startOwnRedis();
    s = await startServer({ dialect: 'postgres', listen: true, env: { REDIS_URL: redis.url } });
    w = await world(s);
  }, 30_000);
  afterAll(async () => {
    await s?.close();
    await redis?.stop();
  });

  it('200 concurrent verifies of a key limited to 60 → exactly 60 VALID, in fewer Redis calls than requests', async () => {
    const k = await createKey(s, w, { ratelimit: { limit: 60, durationMs: 60_000 } });
    const body = JSON.stringify({ key: k.key, appId: w.appId });
    // Warm: the key is cached, so every decision below is a limit decision only.
    await fetch(`${s.url}/v1/keys/verify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ key: k.key, appId: w.appId, dryRun: true }) });
    const before = scriptCalls(redis);
    const answers = await burst(s.url, 200, body);
    const calls = scriptCalls(redis) - before;
    expect(answers.filter((a) => a.code === 'VALID')).toHaveLength(60);
    expect(answers.filter((a) => a.code === 'RATE_LIMITED')).toHaveLength(140);
    // Each remaining count is handed out once: the decisions were made one after another.
    const remaining = answers.filter((a) => a.code === 'VALID').map((a) => a.ratelimit!.remaining).sort((x, y) => x - y);
    expect(remaining).toEqual(Array.from({ length: 60 }, (_, i) => i));
    // Requests that were waiting together were decided together.
    expect(calls).toBeGreaterThan(0);
    // One call per request without batching; how many arrive together here depends on the host.
    expect(calls).toBeLessThan(200);
    // /metrics says how the decisions were made: from tokens in hand or after waiting for a grant.
    const metrics = await (await fetch(`${s.url}/metrics`)).text();
    const via = (how: string) => Number(new RegExp(`keyward_ratelimit_shared_decisions_total\\{via="${how}"\\} (\\d+)`).exec(metrics)?.[1]);
    expect(via('lease') + via('redis')).toBeGreaterThanOrEqual(200);
    expect(via('redis')).toBeGreaterThan(0);
    expect(Number(/keyward_ratelimit_redis_calls_total (\d+)/.exec(metrics)?.[1])).toBeLessThan(200);
  });
});
