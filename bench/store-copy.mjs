// node bench/store-copy.mjs — how long `keyward store copy` takes to move an embedded store into
// PostgreSQL: a SQLite store seeded with COPY_KEYS keys (default 100,000; each a key and its value),
// copied into a fresh database by the CLI (--batch COPY_BATCH, default 1000). Prints the wall time,
// rows per second and the row the README's docs/scaling-out.md can quote. Needs `npm run build`.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bootstrap, createPgDatabase, seedKeys, startKeyward } from './lib.mjs';
import { sqlitePath } from '../dist/store/paths.js';

const keys = Number(process.env.COPY_KEYS ?? 100_000);
const batch = process.env.COPY_BATCH ?? '1000';
const adminUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-copy-bench-'));
const env = { KEYWARD_DATA_DIR: dataDir, KEYWARD_PASSWORD_COST: '12' };

const first = await startKeyward(path.resolve('dist/main.js'), env);
const world = await bootstrap(first.url);
await first.stop();
await seedKeys({ sqliteFile: sqlitePath(dataDir), world, count: keys, sampleSize: 1 });
const target = await createPgDatabase(adminUrl);
try {
  const started = performance.now();
  const out = await new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.resolve('dist/cli/main.js'), 'store', 'copy', '--to', target.url, '--batch', batch], {
      env: { PATH: process.env.PATH, KEYWARD_DATA_DIR: dataDir }, stdio: ['ignore', 'pipe', 'inherit'],
    });
    let text = '';
    child.stdout.on('data', (d) => (text += d));
    child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`store copy exited ${code}:\n${text}`))));
  });
  const seconds = (performance.now() - started) / 1000;
  const rows = Number(/copied \d+ tables \((\d+) rows\)/.exec(out)?.[1] ?? 0);
  console.log(`| store copy, embedded → PostgreSQL, ${keys} keys | ${rows} rows | ${seconds.toFixed(1)} s | ${Math.round(rows / seconds)} rows/s (copy and check) |`);
} finally {
  await target.drop();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
