// The SQLite usage sink (../usage-sink.ts): a worker thread with its own connection, so the event
// loop that answers verify never waits on a disk.
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import type { UsageBatch, UsageSink } from '../usage-sink.js';

interface WorkerSetup {
  sqliteModule: string;
  file: string;
  sync: 'FULL' | 'NORMAL';
  nice: number;
  /** Rows per transaction, and the pause between two transactions of a batch (ms). */
  chunkRows: number;
  pauseMs: number;
}

/**
 * The worker's whole program. It is sent as source (`eval`), so it must not close over anything:
 * it gets the SQLite module's resolved path and the store file through workerData. That keeps
 * one code path for the built server and for tests that run the TypeScript sources.
 */
function usageWorker(): void {
  const { parentPort, workerData } = require('node:worker_threads') as typeof import('node:worker_threads');
  const setup = workerData as WorkerSetup;
  if (setup.nice > 0) {
    // Linux keeps a nice value per thread: setpriority on this thread's id lowers only this thread.
    try {
      const fs = require('node:fs') as typeof import('node:fs');
      const tid = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
      (require('node:os') as typeof import('node:os')).setPriority(tid, setup.nice);
    } catch {
      // Not Linux: the writer keeps the process's priority.
    }
  }
  const SQLite = require(setup.sqliteModule) as typeof import('better-sqlite3');
  const db = new SQLite(setup.file, { fileMustExist: true });
  db.pragma('journal_mode = WAL');
  db.pragma(`synchronous = ${setup.sync}`);
  db.pragma('busy_timeout = 5000');
  // This thread checkpoints the WAL for the whole process (the main connection does not, see
  // dialects/sqlite.ts): after its own commits past the threshold, and every few seconds for the
  // pages other connections wrote.
  db.pragma('wal_autocheckpoint = 1000');
  setInterval(() => {
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } catch {
      // Busy or closed: the next one will do.
    }
  }, 5000).unref();
  const count = db.prepare(`INSERT INTO usage (key_id, bucket, code, count) VALUES (?, ?, ?, ?)
    ON CONFLICT (key_id, bucket, code) DO UPDATE SET count = usage.count + excluded.count`);
  const touch = db.prepare('UPDATE keys SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)');
  // The write lock is held while a transaction runs, and the event loop's own writes (heartbeat,
  // webhook claims, the API's changes) wait for it on their thread, stalling verify. Last uses land
  // on scattered pages of the keys table, a minute's worth at once: at a million keys, reading those
  // pages inside the transaction held the lock for 200 ms. So they are read first, outside any
  // transaction (a read takes no lock in WAL mode), which brings the pages into this connection's
  // cache and leaves out rows already as new; the transaction then only writes. Last uses go
  // first, each write only moving last_used_at forward, so a retry after a failure rewrites them
  // harmlessly; the counts, which must be written exactly once, follow.
  //
  // Both go in transactions of `chunkRows` rows with a pause between two: where this thread shares
  // the event loop's core, the scheduler, once it picks the thread, lets it run until it sleeps or
  // a scheduler tick comes (milliseconds), so a batch written in one go stopped verify for that
  // long. A count row is written exactly once all the same: a failure reports how many rows the
  // committed transactions held, and only the rest are retried.
  db.pragma('cache_size = -65536');
  const lastUse = db.prepare('SELECT last_used_at FROM keys WHERE id = ?').pluck();
  const pause = new Int32Array(new SharedArrayBuffer(4));
  const counts = db.transaction((b: UsageBatch, from: number, to: number) => {
    for (let i = from; i < to; i++) count.run(b.keys[i], b.buckets[i], b.codes[i], b.counts[i]);
  });
  const touches = db.transaction((ids: string[], ats: number[], from: number, to: number) => {
    for (let i = from; i < to; i++) touch.run(ats[i], ids[i], ats[i]);
  });
  /** Runs `step` over [0, n) a chunk at a time, pausing between chunks; `done` hears of each chunk committed. */
  const chunked = (n: number, step: (from: number, to: number) => void, done: (rows: number) => void): void => {
    for (let from = 0; from < n; from += setup.chunkRows) {
      if (from > 0 && setup.pauseMs > 0) Atomics.wait(pause, 0, 0, setup.pauseMs);
      const to = Math.min(n, from + setup.chunkRows);
      step(from, to);
      done(to);
    }
  };
  const write = (id: number, b: UsageBatch) => {
    const ids: string[] = [];
    const ats: number[] = [];
    for (let i = 0; i < b.lastUsedKeys.length; i++) {
      const stored = lastUse.get(b.lastUsedKeys[i]) as number | bigint | null | undefined;
      if (stored !== undefined && (stored === null || Number(stored) < b.lastUsedAt[i]!)) {
        ids.push(b.lastUsedKeys[i]!);
        ats.push(b.lastUsedAt[i]!);
      }
    }
    // A failure here has written no count row yet (committed: 0, below).
    chunked(ids.length, (from, to) => touches(ids, ats, from, to), () => {});
    // The event loop learns of each committed chunk, so that even if this thread dies mid-batch,
    // the rows already written are not written again; a failure says how many were.
    let committed = 0;
    try {
      chunked(b.keys.length, (from, to) => counts(b, from, to), (rows) => {
        committed = rows;
        if (rows < b.keys.length) parentPort!.postMessage({ id, committed: rows });
      });
    } catch (err) {
      throw Object.assign(err as object, { committed });
    }
  };
  parentPort!.on('message', (msg: { id: number; batch?: UsageBatch; close?: true }) => {
    if (msg.close) {
      db.close();
      parentPort!.postMessage({ id: msg.id });
      return;
    }
    try {
      write(msg.id, msg.batch!);
      parentPort!.postMessage({ id: msg.id });
    } catch (err) {
      const e = err as { message?: string; code?: string; committed?: number };
      parentPort!.postMessage({ id: msg.id, error: { message: e.message ?? String(err), code: e.code, committed: e.committed ?? 0 } });
    }
  });
}

/**
 * `nice` (Linux, 0–19) lowers the writer thread's priority below the event loop's. It shares the
 * event loop's core when the process has one (pinned, or a one-core container); at the same
 * priority the scheduler let the writer, woken by each batch, run ahead of the event loop for a few
 * milliseconds once a second (seen as a 3–4 ms hole in the event loop's CPU profile at every
 * flush). At 19 it runs in the event loop's idle moments or with a small share of a saturated
 * core, which is plenty for a batch a second; a batch waiting on it only grows the next one.
 */
export function sqliteWorkerSink(file: string, sync: 'FULL' | 'NORMAL', nice = 0, chunkRows = 64, pauseMs = 1): UsageSink {
  const setup: WorkerSetup = { sqliteModule: createRequire(import.meta.url).resolve('better-sqlite3'), file, sync, nice, chunkRows, pauseMs };
  const worker = new Worker(`(${usageWorker.toString()})()`, { eval: true, workerData: setup });
  // Idle, the worker must not keep the process alive; a pending write holds a ref until answered.
  worker.unref();
  /** Batches sent and not answered, each with the count rows its committed transactions held so far. */
  const pending = new Map<number, { resolve(): void; reject(err: Error): void; committed: number }>();
  let next = 0;
  let dead: Error | undefined;
  const failAll = (err: Error) => {
    dead = err;
    for (const p of pending.values()) p.reject(Object.assign(new Error(err.message), { committed: p.committed }));
    pending.clear();
  };
  worker.on('message', (msg: { id: number; committed?: number; error?: { message: string; code?: string; committed: number } }) => {
    const p = pending.get(msg.id);
    if (!p) return;
    if (msg.committed !== undefined && msg.error === undefined) {
      p.committed = msg.committed;
      return;
    }
    pending.delete(msg.id);
    if (pending.size === 0) worker.unref();
    if (msg.error) p.reject(Object.assign(new Error(msg.error.message), { code: msg.error.code, committed: msg.error.committed }));
    else p.resolve();
  });
  worker.on('error', failAll);
  worker.on('exit', (code) => failAll(new Error(`usage writer exited (${code})`)));
  const send = (msg: { batch?: UsageBatch; close?: true }) => new Promise<void>((resolve, reject) => {
    if (dead) return reject(dead);
    const id = next++;
    pending.set(id, { resolve, reject, committed: 0 });
    worker.ref();
    worker.postMessage({ id, ...msg });
  });
  return {
    write: (batch) => send({ batch }),
    async close() {
      if (!dead) await send({ close: true }).catch(() => {});
      await worker.terminate();
    },
  };
}
