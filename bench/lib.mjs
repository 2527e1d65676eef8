// Benchmark helpers: run servers as child processes, bootstrap them over the API, seed keys
// straight into the store, and drive load with autocannon. Everything stays on 127.0.0.1.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import { randomBytes, createHash } from 'node:crypto';
import autocannon from 'autocannon';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import { generateKey } from '../dist/lib/key-format.js';
import { SERVER_NODE_FLAGS } from '../dist/lib/node-flags.js';
import { sqlitePath } from '../dist/store/paths.js';

/** Runs `script` on this Node, or on the Node binary `node` (its native modules must be built for it). */
export function startNode(script, env = {}, args = [], node = process.execPath) {
  const child = spawn(node, [...args, script], {
    env: { PATH: process.env.PATH, PORT: '0', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} did not start:\n${out}`)), 60_000);
    child.stdout.on('data', () => {
      const m = /running at (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1].replace('localhost', '127.0.0.1'), child, pid: child.pid, output: () => out, stop: () => stop(child) });
      }
    });
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${script} exited ${code}:\n${out}`)); });
  });
}

/**
 * A Keyward entry point, started as `npm start` starts it: with the server's Node flags
 * (src/lib/node-flags.ts). BENCH_NODE_FLAGS=0 starts it without them, to measure what they do.
 */
export function startKeyward(script, env = {}, args = [], node = process.execPath) {
  return startNode(script, env, [...(process.env.BENCH_NODE_FLAGS === '0' ? [] : SERVER_NODE_FLAGS), ...args], node);
}

export function stop(child, signal = 'SIGTERM') {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

export async function call(base, method, path, body, token) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Setup + one app; returns what the seeders and loaders need. */
export async function bootstrap(url) {
  const setup = await call(url, 'POST', '/v1/setup', { email: 'bench@example.com', password: 'benchmark password', workspaceName: 'Bench' });
  if (setup.status !== 201) throw new Error(`setup: ${JSON.stringify(setup.body)}`);
  const token = setup.body.token;
  const workspaceId = setup.body.workspaces[0].id;
  const app = await call(url, 'POST', '/v1/apps', { workspaceId, name: 'Bench API', keyPrefix: 'bench' }, token);
  return { token, workspaceId, appId: app.body.id };
}

const FULL_CHECKS = {
  permissions: JSON.stringify(['docs.read', 'docs.write']),
  resources: JSON.stringify(['acme.com', '*.acme.dev']),
  ip_allowlist: JSON.stringify(['10.0.0.0/8', '2001:db8::/32']),
  ratelimit: JSON.stringify({ limit: 1_000_000_000, durationMs: 60_000 }),
  owner_ratelimit: JSON.stringify({ limit: 1_000_000_000, durationMs: 60_000 }),
};

/**
 * Owners get consecutive keys, a thousand owners at every store size: the sampled keys (spread
 * evenly) then have a thousand distinct owners whatever the size, so only the store's size varies.
 */
function* keyRows(world, count, now, cap = null) {
  for (let i = 0; i < count; i++) {
    const { plaintext, start } = generateKey('bench', 'live');
    const id = `key_${randomBytes(15).toString('base64url').replace(/[-_]/g, 'x').slice(0, 20)}`;
    yield {
      plaintext,
      hash: createHash('sha256').update(plaintext).digest('hex'),
      row: {
        id, app_id: world.appId, workspace_id: world.workspaceId, kind: 'bearer', start, name: `bench ${i}`, owner_id: `owner_${Math.floor((i * 1000) / count)}`,
        environment: 'live', ...FULL_CHECKS, expires_at: null, remaining: cap?.remaining ?? null, refill_amount: cap?.refill?.amount ?? null, refill_interval: cap?.refill?.interval ?? null,
        last_refill_at: cap?.refill ? now : null, meta: '{"plan":"pro"}', status: 'active', created_at: now, updated_at: now, revoked_at: null,
        last_used_at: null, created_by: null,
      },
    };
  }
}

/**
 * Inserts `count` keys with every check configured; returns up to `sampleSize` of their values.
 * `cap` makes them usage-capped: `{ remaining, refill?: { amount, interval } }`.
 */
export async function seedKeys({ sqliteFile, databaseUrl, world, count, sampleSize = 10_000, cap = null }) {
  const sample = [];
  const now = Date.now();
  const every = Math.max(1, Math.floor(count / sampleSize));
  let i = 0;
  if (sqliteFile) {
    const db = new SQLite(sqliteFile);
    db.pragma('journal_mode = WAL');
    db.pragma('busy_timeout = 10000');
    // Bulk load: a large page cache and no fsync per batch (the benchmark store is disposable).
    db.pragma('cache_size = -1000000');
    db.pragma('synchronous = OFF');
    const cols = Object.keys([...keyRows(world, 1, now, cap)][0].row);
    const insKey = db.prepare(`INSERT INTO keys (${cols.join(',')}) VALUES (${cols.map((c) => '@' + c).join(',')})`);
    const insHash = db.prepare('INSERT INTO key_hashes (hash, key_id, created_at, expires_at) VALUES (?, ?, ?, NULL)');
    const batch = db.transaction((rows) => { for (const r of rows) { insKey.run(r.row); insHash.run(r.hash, r.row.id, now); } });
    let rows = [];
    for (const r of keyRows(world, count, now, cap)) {
      if (i++ % every === 0 && sample.length < sampleSize) sample.push(r.plaintext);
      rows.push(r);
      if (rows.length === 20_000) { batch(rows); rows = []; }
    }
    if (rows.length) batch(rows);
    db.close();
  } else {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    let rows = [];
    const flush = async () => {
      if (!rows.length) return;
      const cols = Object.keys(rows[0].row);
      const params = [];
      const values = rows.map((r) => `(${cols.map((c) => { params.push(r.row[c]); return `$${params.length}`; }).join(',')})`);
      await client.query(`INSERT INTO keys (${cols.join(',')}) VALUES ${values.join(',')}`, params);
      const hp = [];
      const hv = rows.map((r) => { hp.push(r.hash, r.row.id, now); return `($${hp.length - 2},$${hp.length - 1},$${hp.length},NULL)`; });
      await client.query(`INSERT INTO key_hashes (hash, key_id, created_at, expires_at) VALUES ${hv.join(',')}`, hp);
      rows = [];
    };
    for (const r of keyRows(world, count, now, cap)) {
      if (i++ % every === 0 && sample.length < sampleSize) sample.push(r.plaintext);
      rows.push(r);
      if (rows.length === 1000) await flush();
    }
    await flush();
    await client.end();
  }
  return sample;
}

/** Verify bodies with every check exercised (permissions, resource, IP), rotating over the sample; `cost` for capped keys. */
export function verifyBodies(sample, appId, cost) {
  return sample.map((key) => JSON.stringify({ key, appId, permissions: ['docs.read'], resource: 'api.acme.dev', ip: '10.20.30.40', ...(cost === undefined ? {} : { cost }) }));
}

/**
 * Pins every thread of a process (and the threads it starts later) to one CPU, or a list such as
 * "0,1", with taskset.
 * Answers false where that cannot be done (no taskset, one CPU).
 */
export function pin(pid, cpu) {
  try {
    execFileSync('taskset', ['-a', '-pc', String(cpu), String(pid)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const TICK_US = 1e6 / 100; // USER_HZ: /proc reports CPU time in 1/100 s on Linux

/** CPU time (µs, all threads, user + system) a process has used so far, from /proc. */
export function cpuMicros(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_US;
}

/**
 * One autocannon run; `bodies`/`headers` rotate per request. With `pid`, also the server's CPU
 * per request and how much of a core it used: on a 2-core host the load generator can be the
 * bottleneck, and then req/s says little about the server while CPU per request still does.
 */
export async function load({ url, path = '/v1/keys/verify', method = 'POST', bodies, headerSets, connections = 50, duration = 5, token, pid }) {
  let i = 0;
  const cpu0 = pid ? cpuMicros(pid) : 0;
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  const baseHeaders = { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) };
  const result = await autocannon({
    url: url + path,
    connections,
    duration,
    requests: [{
      method,
      setupRequest: (req) => {
        const n = i++;
        const headers = headerSets ? { ...baseHeaders, ...headerSets[n % headerSets.length] } : baseHeaders;
        return { ...req, method, path, headers, body: bodies ? bodies[n % bodies.length] : undefined };
      },
    }],
  });
  const wallUs = (performance.now() - t0) * 1000;
  const client = process.cpuUsage(client0);
  const serverUs = pid ? cpuMicros(pid) - cpu0 : NaN;
  const total = result.requests.total || 1;
  return {
    cpuPerReq: serverUs / total,
    serverCore: serverUs / wallUs,
    clientPerReq: (client.user + client.system) / total,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    total: result.requests.total,
  };
}

export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

export function percentile(xs, p) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

export async function createPgDatabase(adminUrl) {
  const name = `keyward_bench_${randomBytes(5).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  return {
    url: u.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

/** Sends every body once (50 at a time) so the measured rounds start with warm caches. */
export async function warm(url, bodies, path = '/v1/keys/verify') {
  let next = 0;
  await Promise.all(Array.from({ length: 50 }, async () => {
    while (next < bodies.length) {
      const body = bodies[next++];
      const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      const answer = await res.json();
      if (answer.code !== 'VALID') throw new Error(`warm-up got ${JSON.stringify(answer)}`);
    }
  }));
}

/**
 * A store seeded with `count` full-check keys for a quick run (bench/ab.mjs, bench/profile.mjs):
 * embedded in env.KEYWARD_DATA_DIR, or with `postgres` a fresh PostgreSQL database plus Redis (env gains
 * DATABASE_URL, REDIS_URL and a master key). Returns the world, a sample of 1,000 keys spread over the
 * store (as the full bench's rows use) and the database.
 */
export async function seededStore({ main, env, postgres = false, count = 1000 }) {
  const pgDb = postgres ? await createPgDatabase(process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres') : undefined;
  if (pgDb) Object.assign(env, { DATABASE_URL: pgDb.url, REDIS_URL: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379', KEYWARD_MASTER_KEY: randomBytes(32).toString('base64') });
  const first = await startKeyward(main, env);
  const world = await bootstrap(first.url);
  await first.stop();
  const sample = await seedKeys({ ...(pgDb ? { databaseUrl: pgDb.url } : { sqliteFile: sqlitePath(env.KEYWARD_DATA_DIR) }), world, count, sampleSize: 1000 });
  return { world, sample, pgDb };
}
