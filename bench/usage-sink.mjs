// The node's own CPU per usage batch written to PostgreSQL: what a flush costs the event loop that
// also answers verify (PostgreSQL's side is not counted). Usage: node bench/usage-sink.mjs [dist dir]
// Each batch is 1,000 count rows and 100 last uses, as a busy node's flush of 1,000 keys.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createPgDatabase } from './lib.mjs';

const dist = path.resolve(process.argv[2] ?? 'dist');
const { openStore, migrate } = await import(pathToFileURL(path.join(dist, 'store/db.js')).href);
const db = await createPgDatabase(process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres');
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-sink-'));
try {
  const store = await openStore({ databaseUrl: db.url, dataDir });
  await migrate(store.db);
  const sink = store.usageSink();
  const ids = Array.from({ length: 1000 }, () => `key_${randomBytes(10).toString('hex')}`);
  const batch = (i) => {
    const due = ids.slice((i * 100) % 1000, (i * 100) % 1000 + 100);
    return { keys: ids, buckets: ids.map(() => 29_000_000 + i), codes: ids.map(() => 'VALID'), counts: ids.map(() => 12), lastUsedKeys: due, lastUsedAt: due.map(() => Date.now()) };
  };
  for (let i = 0; i < 20; i++) await sink.write(batch(i));
  const N = 200;
  const before = process.cpuUsage();
  const t0 = performance.now();
  for (let i = 0; i < N; i++) await sink.write(batch(20 + i));
  const cpu = process.cpuUsage(before);
  const wall = performance.now() - t0;
  console.log(`${dist}: ${((cpu.user + cpu.system) / 1000 / N).toFixed(2)} ms of node CPU per batch, ${(wall / N).toFixed(2)} ms wall`);
  await sink.close();
  await store.close();
} finally {
  fs.rmSync(dataDir, { recursive: true, force: true });
  await db.drop();
}
