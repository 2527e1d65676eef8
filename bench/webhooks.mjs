// Webhooks on PostgreSQL + Redis: how many events per second go through the outbox to 10 endpoints,
// and what delivering them costs verify's p99. Three phases against one Keyward node:
//   1. backlog: the endpoints disabled, WH_EVENTS key changes written (held), then all enabled at
//      once; the time until the sink has every delivery gives events/s and deliveries/s;
//   2. steady: WH_WRITERS clients change keys for WH_SECONDS with the endpoints enabled; events
//      written per second, deliveries per second, and how late they arrive (p50/p99);
//   3. verify p99 over WH_SECONDS with no webhook traffic, then while a backlog of WH_EVENTS
//      events is delivered (same keys, same load).
// The sink (bench/webhook-sink.mjs) runs in its own process and answers 200 at once.
//
//   npm run build && node bench/webhooks.mjs
//   env: WH_ENDPOINTS (10), WH_EVENTS (2000), WH_SECONDS (10), WH_WRITERS (16), WH_KEYS (1000 in
//   the store for verify), BENCH_PG_URL, BENCH_REDIS_URL
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { call, load, pin, seededStore, startKeyward, startNode, verifyBodies, warm } from './lib.mjs';

const ENDPOINTS = Number(process.env.WH_ENDPOINTS ?? 10);
const EVENTS = Number(process.env.WH_EVENTS ?? 2000);
const SECONDS = Number(process.env.WH_SECONDS ?? 10);
const WRITERS = Number(process.env.WH_WRITERS ?? 16);
const KEYS = Number(process.env.WH_KEYS ?? 1000);
/** Keys whose changes are the events: each is its own chain (events of one key go out one at a time per endpoint). */
const CHANGED_KEYS = 200;
const MAIN = path.resolve('dist/main.js');
const log = (...a) => process.stderr.write(`${a.join(' ')}\n`);

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-wh-bench-'));
const env = { KEYWARD_DATA_DIR: dir, KEYWARD_WEBHOOK_ALLOW_PRIVATE: '1', KEYWARD_CACHE_TTL_MS: '3600000', KEYWARD_REDIS_PREFIX: `kwwh:${Date.now()}:` };
log(`seeding ${KEYS} keys on PostgreSQL`);
const { world, sample, pgDb } = await seededStore({ main: MAIN, env, postgres: true, count: KEYS });
const sink = await startNode(path.resolve('bench/webhook-sink.mjs'));
const kw = await startKeyward(MAIN, env);
// Keyward on one core; the load generator and the sink on the other (PostgreSQL and Redis float).
pin(kw.pid, 0);
pin(sink.pid, 1);
pin(process.pid, 1);

const stats = async (reset = false) => (await fetch(`${sink.url}/${reset ? 'reset' : 'stats'}`)).json();
const api = (method, p, body) => call(kw.url, method, p, body, world.token);
const rows = [];

try {
  const hooks = [];
  for (let i = 0; i < ENDPOINTS; i++) {
    const r = await api('POST', `/v1/workspaces/${world.workspaceId}/webhooks`, { url: `${sink.url}/h${i}`, events: ['key.created', 'key.updated', 'key.revoked'] });
    if (r.status !== 201) throw new Error(`webhook: ${JSON.stringify(r.body)}`);
    hooks.push(r.body.id);
  }
  const keys = [];
  for (let i = 0; i < CHANGED_KEYS; i++) {
    const r = await api('POST', `/v1/apps/${world.appId}/keys`, { name: `changed ${i}` });
    if (r.status !== 201) throw new Error(`key: ${JSON.stringify(r.body)}`);
    keys.push(r.body.id);
  }
  const setStatus = async (status) => {
    for (const id of hooks) if ((await api('PATCH', `/v1/webhooks/${id}`, { status })).status !== 200) throw new Error(`PATCH webhook ${status}`);
  };
  let changes = 0;
  /** Key changes (one key.updated each) by WRITERS clients, `count` of them or until `until`. */
  const write = async ({ count = Infinity, until = Infinity }) => {
    let written = 0;
    await Promise.all(Array.from({ length: WRITERS }, async () => {
      while (written < count && performance.now() < until) {
        written++;
        const n = changes++;
        const r = await api('PATCH', `/v1/keys/${keys[n % keys.length]}`, { name: `change ${n}` });
        if (r.status !== 200) throw new Error(`PATCH key: ${r.status}`);
      }
    }));
    return written;
  };
  const delivered = async (want, withinMs = 600_000) => {
    const deadline = performance.now() + withinMs;
    for (;;) {
      const s = await stats();
      if (s.count >= want) return s;
      if (performance.now() > deadline) throw new Error(`sink got ${s.count} of ${want} deliveries`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  // Settle what creating the keys sent.
  await delivered(CHANGED_KEYS * ENDPOINTS);

  // 1. A backlog, released at once.
  log(`backlog: ${EVENTS} events held for ${ENDPOINTS} endpoints`);
  await setStatus('disabled');
  await write({ count: EVENTS });
  await stats(true);
  const t0 = performance.now();
  await setStatus('active');
  await delivered(EVENTS * ENDPOINTS);
  const drainS = (performance.now() - t0) / 1000;
  rows.push(['backlog released', `${(EVENTS / drainS).toFixed(0)} events/s`, `${((EVENTS * ENDPOINTS) / drainS).toFixed(0)} deliveries/s`, `${drainS.toFixed(2)} s for ${EVENTS} events`]);

  // 2. Steady writes.
  log(`steady: ${WRITERS} writers for ${SECONDS} s`);
  await stats(true);
  const s0 = performance.now();
  const written = await write({ until: s0 + SECONDS * 1000 });
  const writeS = (performance.now() - s0) / 1000;
  const steady = await delivered(written * ENDPOINTS);
  const allS = (performance.now() - s0) / 1000;
  rows.push(['steady writes', `${(written / writeS).toFixed(0)} events/s written`, `${((written * ENDPOINTS) / allS).toFixed(0)} deliveries/s`, `lag p50 ${steady.lagP50} ms, p99 ${steady.lagP99} ms; all in ${(allS - writeS).toFixed(2)} s after the writes`]);

  // 3. Verify p99, quiet, then while a backlog goes out.
  const bodies = verifyBodies(sample, world.appId);
  await warm(kw.url, bodies);
  const quiet = await load({ url: kw.url, bodies, connections: 50, duration: SECONDS, pid: kw.pid });
  await setStatus('disabled');
  await write({ count: EVENTS });
  await stats(true);
  await setStatus('active');
  const busy = await load({ url: kw.url, bodies, connections: 50, duration: SECONDS, pid: kw.pid });
  const during = (await stats()).count;
  await delivered(EVENTS * ENDPOINTS);
  rows.push(['verify, no webhook traffic', `${quiet.rps.toFixed(0)} req/s`, `p99 ${quiet.p99} ms`, `${quiet.cpuPerReq.toFixed(1)} µs CPU/req`]);
  rows.push(['verify while delivering', `${busy.rps.toFixed(0)} req/s`, `p99 ${busy.p99} ms (${(busy.p99 / Math.max(quiet.p99, 1)).toFixed(2)}×)`, `${during} deliveries during the run`]);
  if (quiet.non2xx || busy.non2xx || quiet.errors || busy.errors) rows.push(['verify errors', `${quiet.non2xx + quiet.errors}`, `${busy.non2xx + busy.errors}`, '']);

  process.stdout.write(`\nWebhooks on PostgreSQL + Redis, ${ENDPOINTS} endpoints, Keyward on one core\n\n| phase | events | deliveries / p99 | notes |\n|---|---|---|---|\n`);
  for (const r of rows) process.stdout.write(`| ${r.join(' | ')} |\n`);
} finally {
  await kw.stop();
  await sink.stop();
  await pgDb?.drop();
  fs.rmSync(dir, { recursive: true, force: true });
}
