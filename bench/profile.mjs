// Where verify's CPU goes: the embedded server with 1,000 full-check keys under wrk, run with
// --cpu-prof; prints self time by function (top entries) and by file. Usage: node bench/profile.mjs [seconds]
// PROF_PG=1: on PostgreSQL + Redis (BENCH_PG_URL, BENCH_REDIS_URL); PROF_FORWARD=1: forward auth;
// PROF_KEYS: keys in the store (1,000 of them are verified); PROF_SAVE=file keeps the .cpuprofile.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pin, seededStore, startKeyward, verifyBodies, warm } from './lib.mjs';
import { loadWrk } from './wrk.mjs';

const MAIN = path.resolve(process.env.PROF_MAIN ?? 'dist/main.js');
const SECONDS = Number(process.argv[2] ?? 10);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-prof-'));
const profDir = path.join(dir, 'prof');
const env = { KEYWARD_DATA_DIR: dir, KEYWARD_CACHE_TTL_MS: '3600000', KEYWARD_TRUST_PROXY: '127.0.0.1' };
if (process.env.PROF_PG) env.KEYWARD_REDIS_PREFIX = `kwprof:${Date.now()}:`;
const { world, sample, pgDb } = await seededStore({ main: MAIN, env, postgres: Boolean(process.env.PROF_PG), count: Number(process.env.PROF_KEYS ?? 1000) });
const node = await startKeyward(process.env.PROF_TARGET ? path.resolve(process.env.PROF_TARGET) : MAIN, env, ['--cpu-prof', `--cpu-prof-dir=${profDir}`, ...(process.env.PROF_ARGS ? process.env.PROF_ARGS.split(' ') : [])]);
pin(node.pid, 0);
pin(process.pid, 1);
const bodies = verifyBodies(sample, world.appId);
await warm(node.url, bodies);
const path_ = process.env.PROF_FORWARD ? `/v1/forward-auth?appId=${world.appId}&permissions=docs.read` : undefined;
const r = await loadWrk({ url: node.url, bodies: path_ ? undefined : bodies, ...(path_ ? { path: path_, method: 'GET', headerSets: sample.map((key) => ({ Authorization: `Bearer ${key}`, 'X-Forwarded-Host': 'api.acme.dev', 'X-Forwarded-For': '10.20.30.40', 'X-Forwarded-Method': 'GET', 'X-Forwarded-Uri': '/docs/1' })) } : {}), connections: 50, duration: SECONDS, pid: node.pid, cpu: 1 });
console.log(`${Math.round(r.rps)} req/s, p99 ${r.p99} ms, ${r.cpuPerReq.toFixed(1)} µs CPU/req`);
// How shared limits were decided (PostgreSQL + Redis): from leases, or waiting for Redis.
const shared = (await (await fetch(`${node.url}/metrics`)).text()).split('\n').filter((l) => /^keyward_ratelimit_(shared|redis|grants|leased)/.test(l));
if (shared.length > 0) console.log(shared.join('\n'));
await node.stop();
const file = fs.readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
if (process.env.PROF_SAVE) fs.copyFileSync(path.join(profDir, file), process.env.PROF_SAVE);
const prof = JSON.parse(fs.readFileSync(path.join(profDir, file), 'utf8'));
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const selfUs = new Map();
const dt = prof.timeDeltas;
for (let i = 0; i < prof.samples.length; i++) selfUs.set(prof.samples[i], (selfUs.get(prof.samples[i]) ?? 0) + (dt[i] ?? 0));
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);
const fn = new Map();
const files = new Map();
for (const [id, us] of selfUs) {
  const n = byId.get(id);
  const cf = n.callFrame;
  const where = cf.url ? cf.url.replace(/^file:\/\//, '').replace(process.cwd() + '/', '') : '(native)';
  const name = `${cf.functionName || '(anonymous)'} ${where}:${cf.lineNumber + 1}`;
  fn.set(name, (fn.get(name) ?? 0) + us);
  const f = where.startsWith('dist/') ? where : where.startsWith('node:') ? where : where.includes('node_modules') ? 'node_modules/' + where.split('node_modules/').pop().split('/')[0] : where;
  files.set(f, (files.get(f) ?? 0) + us);
}
const top = (m, n) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${((v / total) * 100).toFixed(1).padStart(5)}%  ${k}`).join('\n');
console.log('\nself time by function:\n' + top(fn, Number(process.env.PROF_TOP ?? 40)));
console.log('\nself time by file:\n' + top(files, 25));
fs.rmSync(dir, { recursive: true, force: true });
await pgDb?.drop();
