// The cost of a capped verify beside an uncapped one, without HTTP: verifyKey in a loop over keys
// made through the API, awaiting only what is a promise (as the server does), on the embedded store
// or (CREDITS_PG=1) PostgreSQL + Redis. A relative figure for the design notes, not a benchmark:
// the wall time per call includes the store's writes (an fsync per commit on SQLite).
//
//   node bench/credits-loop.mjs [calls per row]      env: CREDITS_PG=1, BENCH_PG_URL, BENCH_REDIS_URL
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../dist/config.js';
import { createDeps } from '../dist/deps.js';
import { buildApp } from '../dist/app.js';
import { verifyKey } from '../dist/verify/verify.js';
import { createPgDatabase } from './lib.mjs';

const CALLS = Number(process.argv[2] ?? 20_000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-credits-'));
const pgDb = process.env.CREDITS_PG ? await createPgDatabase(process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres') : undefined;
const env = { KEYWARD_DATA_DIR: dir, LOG_LEVEL: 'silent', KEYWARD_PASSWORD_COST: '12' };
if (pgDb) Object.assign(env, { DATABASE_URL: pgDb.url, REDIS_URL: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379', KEYWARD_REDIS_PREFIX: `kwcl:${randomBytes(4).toString('hex')}:` });
const deps = await createDeps(loadConfig(env));
const app = await buildApp(deps.services);
const setup = (await app.inject({ method: 'POST', url: '/v1/setup', payload: { email: 'a@b.co', password: 'correct horse', workspaceName: 'A' } })).json();
const auth = { authorization: `Bearer ${setup.token}` };
const ap = (await app.inject({ method: 'POST', url: '/v1/apps', headers: auth, payload: { workspaceId: setup.workspaces[0].id, name: 'A API', keyPrefix: 'bench' } })).json();
const make = async (n, body) => {
  const out = [];
  for (let i = 0; i < n; i++) out.push((await app.inject({ method: 'POST', url: `/v1/apps/${ap.id}/keys`, headers: auth, payload: { name: `k${i}`, ownerRatelimit: null, ...body } })).json().key);
  return out;
};
const scope = { appId: ap.id };
const rows = [
  { name: 'uncapped, 1 key', keys: await make(1, {}) },
  { name: 'uncapped, 100 keys', keys: await make(100, {}) },
  { name: 'capped, 1 hot key', keys: await make(1, { remaining: 1_000_000_000 }) },
  { name: 'capped, 100 keys', keys: await make(100, { remaining: 1_000_000_000 }) },
  { name: 'capped, 100 keys, cost 3', keys: await make(100, { remaining: 1_000_000_000 }), cost: 3 },
  { name: 'capped with daily refill, 100 keys', keys: await make(100, { refill: { amount: 1_000_000_000, interval: 'daily' } }) },
];
for (const row of rows) {
  const inputs = row.keys.map((key) => ({ key, ...(row.cost ? { cost: row.cost } : {}) }));
  // Warm: every key loaded into the cache (and, capped, its first units in hand).
  for (const input of inputs) await verifyKey(deps.verify, input, scope);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let waited = 0;
  // 50 calls in flight at a time, as 50 connections would keep them.
  let next = 0;
  await Promise.all(Array.from({ length: 50 }, async () => {
    while (next < CALLS) {
      const r = verifyKey(deps.verify, inputs[next++ % inputs.length], scope);
      const v = r instanceof Promise ? (waited++, await r) : r;
      if (v.code !== 'VALID') throw new Error(`${row.name}: ${v.code}`);
      if (!(r instanceof Promise) && next % 64 === 0) await new Promise((res) => setImmediate(res));
    }
  }));
  const wall = Number(process.hrtime.bigint() - t0) / 1000 / CALLS;
  const cpu = process.cpuUsage(cpu0);
  console.log(`${row.name.padEnd(38)} ${wall.toFixed(2).padStart(8)} µs wall/call  ${((cpu.user + cpu.system) / CALLS).toFixed(2).padStart(8)} µs CPU/call  ${((waited / CALLS) * 100).toFixed(1).padStart(5)}% waited on a promise`);
}
await app.close();
await deps.close();
await pgDb?.drop();
fs.rmSync(dir, { recursive: true, force: true });
process.exit(0);
