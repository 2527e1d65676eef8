// What memory a node needs per 100k active keys: a real node (as `npm start` runs it) on an
// embedded store seeded with N full-check keys, its resident set size idle, then once every key
// has been verified (all cached), then again a few seconds later. A memory figure, not a timing
// one: it does not need a quiet machine.
//
//   node bench/memory-rss.mjs            (MEMORY_KEYS=100000,200000; MEMORY_CAP=KEYWARD_CACHE_MAX_KEYS)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sqlitePath } from '../dist/store/db.js';
import { bootstrap, seedKeys, startKeyward, verifyBodies } from './lib.mjs';

const SIZES = (process.env.MEMORY_KEYS ?? '100000,200000').split(',').map(Number);
const MAIN = path.resolve('dist/main.js');

/** Resident set size of a process, MB, from /proc. */
const rssMb = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024;

async function verifyAll(url, bodies) {
  let next = 0;
  await Promise.all(Array.from({ length: 50 }, async () => {
    while (next < bodies.length) {
      const res = await fetch(`${url}/v1/keys/verify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: bodies[next++] });
      const answer = await res.json();
      if (answer.code !== 'VALID') throw new Error(`verify got ${JSON.stringify(answer)}`);
    }
  }));
}

const rows = [];
for (const count of SIZES) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-rss-'));
  const env = { KEYWARD_DATA_DIR: dir, KEYWARD_CACHE_TTL_MS: '3600000', ...(process.env.MEMORY_CAP ? { KEYWARD_CACHE_MAX_KEYS: process.env.MEMORY_CAP } : {}) };
  const first = await startKeyward(MAIN, env);
  const world = await bootstrap(first.url);
  await first.stop();
  const sample = await seedKeys({ sqliteFile: sqlitePath(dir), world, count, sampleSize: count });
  const node = await startKeyward(MAIN, env);
  try {
    await new Promise((r) => setTimeout(r, 2000));
    const idle = rssMb(node.pid);
    await verifyAll(node.url, verifyBodies(sample, world.appId));
    const loaded = rssMb(node.pid);
    await new Promise((r) => setTimeout(r, 5000));
    const settled = rssMb(node.pid);
    const metrics = await (await fetch(`${node.url}/metrics`)).text();
    const cached = Number(/keyward_key_cache_entries\{kind="values"\} (\d+)/.exec(metrics)?.[1]);
    rows.push({ keys: count, cached, idleMb: Math.round(idle), afterVerifyMb: Math.round(loaded), settledMb: Math.round(settled) });
    console.log(JSON.stringify(rows.at(-1)));
  } finally {
    await node.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
if (rows.length > 1) {
  const [a, b] = [rows[0], rows.at(-1)];
  console.log(`per 100k cached keys (settled, from ${a.keys.toLocaleString('en')} to ${b.keys.toLocaleString('en')}): ${Math.round(((b.settledMb - b.idleMb) - (a.settledMb - a.idleMb)) / ((b.cached - a.cached) / 100_000))} MB`);
}
process.exit(0);
