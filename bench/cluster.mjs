// npm run bench:cluster: verify throughput of one worker against two (KEYWARD_WORKERS), same store
// (embedded SQLite) and Redis, interleaved rounds, medians; writes bench/cluster-results.md.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sqlitePath } from '../dist/store/db.js';
import { bootstrap, load, median, seedKeys, startNode, verifyBodies, warm } from './lib.mjs';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const OUT = process.env.BENCH_CLUSTER_OUT ?? 'bench/cluster-results.md';
const MAIN = path.resolve('dist/main.js');

const runs = [];
const cleanups = [];
try {
  for (const workers of [1, 2]) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-cluster-'));
    const node = await startNode(MAIN, { KEYWARD_DATA_DIR: dir, REDIS_URL, KEYWARD_REDIS_PREFIX: `kwcb${workers}:${Date.now()}:`, KEYWARD_WORKERS: String(workers), KEYWARD_CACHE_TTL_MS: '3600000' });
    cleanups.push(async () => { await node.stop(); fs.rmSync(dir, { recursive: true, force: true }); });
    const world = await bootstrap(node.url);
    const bodies = verifyBodies(await seedKeys({ sqliteFile: sqlitePath(dir), world, count: 1000 }), world.appId);
    await warm(node.url, bodies);
    await warm(node.url, bodies);
    runs.push({ workers, url: node.url, bodies, results: [] });
  }
  for (let round = 1; round <= ROUNDS; round++) {
    for (const r of runs) {
      const res = await load({ url: r.url, bodies: r.bodies, connections: 50, duration: SECONDS });
      r.results.push(res);
      console.log(`round ${round} ${r.workers} worker(s): ${Math.round(res.rps)} req/s, p99 ${res.p99} ms${res.non2xx ? `, non-2xx ${res.non2xx}` : ''}`);
    }
  }
  const one = median(runs[0].results.map((r) => r.rps));
  const lines = [
    '# Keyward cluster benchmark',
    '',
    `Run ${new Date().toISOString()} on ${os.cpus()[0]?.model} × ${os.cpus().length} cores, Node ${process.version}. Embedded SQLite store + Redis (shared limits),`,
    `1,000 keys, every check on, autocannon with 50 connections on the same machine, ${SECONDS} s × ${ROUNDS} interleaved rounds, medians.`,
    '',
    '| workers | req/s | p50 ms | p99 ms | × 1 worker |',
    '|---:|---:|---:|---:|---:|',
    ...runs.map((r) => {
      const rps = median(r.results.map((x) => x.rps));
      return `| ${r.workers} | ${Math.round(rps).toLocaleString('en')} | ${median(r.results.map((x) => x.p50))} | ${median(r.results.map((x) => x.p99))} | ${(rps / one).toFixed(2)} |`;
    }),
    '',
    'Both workers, Redis and the load generator share this machine\'s cores, so the ratio says how the workers compete for them here; it is no forecast for a machine with idle cores.',
    '',
  ];
  fs.writeFileSync(OUT, lines.join('\n'));
  console.log(lines.join('\n'));
} finally {
  for (const c of cleanups.reverse()) await c().catch(() => {});
}
process.exit(0);
