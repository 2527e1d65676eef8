// 1,000 capped keys spending units in process on the embedded store (no HTTP): leases, waits and
// the event loop's delay while slices are leased. Where the lease COMMIT's fsync runs:
//   SECS=4 strace -f -qq -e trace=fsync,fdatasync -o /tmp/fsync.txt node bench/credits-spend.mjs
// then count the lines per thread id (the first column); the process's own pid is its event loop.
import fs from 'node:fs'; import os from 'node:os'; import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import SQLite from 'better-sqlite3';
import { startKeyward, bootstrap, seedKeys } from './lib.mjs';
import { sqlitePath } from '../dist/store/paths.js';
const { loadConfig } = await import('../dist/config.js');
const { createDeps } = await import('../dist/deps.js');
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kwld-'));
const first = await startKeyward('dist/main.js', { KEYWARD_DATA_DIR: dir });
const world = await bootstrap(first.url);
await first.stop();
await seedKeys({ sqliteFile: sqlitePath(dir), world, count: 1000, sampleSize: 1000, cap: { remaining: 1_000_000_000 } });
const ids = new SQLite(sqlitePath(dir)).prepare('select id from keys').all().map((r) => r.id);
const deps = await createDeps(loadConfig({ KEYWARD_DATA_DIR: dir, LOG_LEVEL: 'silent', }));
const h = monitorEventLoopDelay({ resolution: 1 });
let spent = 0, waited = 0;
const end = Date.now() + Number(process.env.SECS ?? 6) * 1000;
let started = false;
// Lease transactions per 100 ms over the measured seconds: waves show as a high maximum and spread.
const perTick = [];
let lastWrites = 0;
const ticker = setInterval(() => {
  if (!started) return;
  const w = deps.credits.stats().writes;
  perTick.push(w - lastWrites);
  lastWrites = w;
}, 100);
await new Promise((resolve) => {
  const tick = () => {
    if (Date.now() > end) return resolve();
    if (!started && Date.now() > end - 5000) { started = true; h.enable(); lastWrites = deps.credits.stats().writes; }
    // ~40 spends per turn, spread over the keys: about 40k/s at a turn per ms
    for (let i = 0; i < 40; i++) {
      const id = ids[(spent + i) % ids.length];
      const r = deps.credits.spend(id, 1, Date.now());
      if (r instanceof Promise) waited++;
    }
    spent += 40;
    setTimeout(tick, 1);
  };
  tick();
});
h.disable();
clearInterval(ticker);
const mean = perTick.reduce((a, b) => a + b, 0) / perTick.length;
const sd = Math.sqrt(perTick.reduce((a, b) => a + (b - mean) ** 2, 0) / perTick.length);
const idleTicks = perTick.filter((n) => n === 0).length;
const st = deps.credits.stats();
console.log(JSON.stringify({ spent, waited, writes: st.writes, leases: st.leases, leaseTxPer100ms: { mean: +mean.toFixed(2), sd: +sd.toFixed(2), max: Math.max(...perTick), ticksWithNone: `${idleTicks}/${perTick.length}` }, loopDelayMs: { p50: h.percentile(50) / 1e6, p99: h.percentile(99) / 1e6, p999: h.percentile(99.9) / 1e6, max: h.max / 1e6 } }));
await deps.close();
fs.rmSync(dir, { recursive: true, force: true });
