// npm run bench:cluster: what KEYWARD_WORKERS=2 gives, under two CPU budgets set with taskset:
// Keyward on one core (CPU 0) and on both (CPU 0-1, shared with the load generator), against one
// worker under the same budget. wrk (one thread) on CPU 1; embedded SQLite store + Redis (workers
// share limits through it); 1,000 keys with every check; interleaved rounds, medians. Reports req/s,
// p99 and server CPU per request (primary and workers together); writes bench/cluster-results.md.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sqlitePath } from '../dist/store/db.js';
import { bootstrap, median, pin, seedKeys, startKeyward, verifyBodies, warm } from './lib.mjs';
import { loadWrk } from './wrk.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const OUT = process.env.BENCH_CLUSTER_OUT ?? 'bench/cluster-results.md';
const MAIN = path.resolve('dist/main.js');
const BUDGETS = [{ name: 'one core (CPU 0)', cpus: '0' }, { name: 'both cores (CPU 0-1, shared with wrk)', cpus: '0,1' }];

const children = (pid) => {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
};
const setCpus = (pid, cpus) => {
  for (const p of [pid, ...children(pid)]) execFileSync('taskset', ['-a', '-pc', cpus, String(p)], { stdio: 'ignore' });
};

pin(process.pid, 1);
const nodes = [];
const cleanups = [];
try {
  for (const workers of [1, 2]) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-cluster-'));
    const env = { KEYWARD_DATA_DIR: dir, REDIS_URL, KEYWARD_REDIS_PREFIX: `kwcb${workers}:${Date.now()}:`, KEYWARD_WORKERS: String(workers), KEYWARD_CACHE_TTL_MS: '3600000' };
    const first = await startKeyward(MAIN, env);
    const world = await bootstrap(first.url);
    await first.stop();
    const bodies = verifyBodies(await seedKeys({ sqliteFile: sqlitePath(dir), world, count: 1000 }), world.appId);
    const node = await startKeyward(MAIN, env);
    cleanups.push(async () => { await node.stop(); fs.rmSync(dir, { recursive: true, force: true }); });
    await warm(node.url, bodies);
    await warm(node.url, bodies);
    nodes.push({ workers, node, bodies });
  }
  const results = [];
  for (const budget of BUDGETS) {
    for (const n of nodes) setCpus(n.node.pid, budget.cpus);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const n of nodes) {
        const pids = [n.node.pid, ...children(n.node.pid)];
        const r = await loadWrk({ url: n.node.url, bodies: n.bodies, connections: 50, duration: SECONDS, pid: pids });
        results.push({ budget: budget.name, workers: n.workers, ...r });
        console.log(`${budget.name}, round ${round}, ${n.workers} worker(s): ${Math.round(r.rps)} req/s, p99 ${r.p99} ms, ${r.cpuPerReq.toFixed(1)} µs CPU/req${r.non2xx ? `, non-2xx ${r.non2xx}` : ''}`);
      }
    }
  }
  const cell = (budget, workers, f) => median(results.filter((r) => r.budget === budget && r.workers === workers).map((r) => r[f]));
  const lines = [
    '# Keyward cluster benchmark',
    '',
    `Run ${new Date().toISOString()} on ${os.cpus()[0]?.model} × ${os.cpus().length} cores, Node ${process.version}. Embedded SQLite store + Redis (workers share limits and invalidation through it),`,
    `1,000 keys with every check, wrk (one thread, 50 connections) pinned to CPU 1, ${SECONDS} s × ${ROUNDS} interleaved rounds per budget, medians. Server CPU counts the primary and its workers.`,
    '',
    '| CPU budget for Keyward | workers | req/s | p99 ms | server CPU µs/req | req/s × 1 worker |',
    '|---|---:|---:|---:|---:|---:|',
  ];
  for (const b of BUDGETS) {
    for (const w of [1, 2]) lines.push(`| ${b.name} | ${w} | ${Math.round(cell(b.name, w, 'rps')).toLocaleString('en')} | ${cell(b.name, w, 'p99')} | ${cell(b.name, w, 'cpuPerReq').toFixed(1)} | ${(cell(b.name, w, 'rps') / cell(b.name, 1, 'rps')).toFixed(2)} |`);
  }
  const one = cell(BUDGETS[0].name, 1, 'cpuPerReq');
  const two = cell(BUDGETS[0].name, 2, 'cpuPerReq');
  lines.push('', `On one core a second worker costs ${((two / one - 1) * 100).toFixed(0)}% more CPU per request (two processes taking turns, more Redis traffic) and cannot add throughput. ` +
    `Where each worker has a core of its own, throughput should grow with the workers at between ${(one / two).toFixed(2)}× (the per-request efficiency measured here, which includes taking turns on one core) and 1× a single worker's rate per worker, until Redis or the store is the limit; ` +
    'on this 2-core host the second core is also the load generator\'s, so the "both cores" row understates it.', '');
  fs.writeFileSync(OUT, lines.join('\n'));
  console.log(lines.join('\n'));
} finally {
  for (const c of cleanups.reverse()) await c().catch(() => {});
}
