// Quick A/B of verify builds or settings against the node:http floor, for trying a change before a
// full `npm run bench`. Every variant serves the same seeded store (1,000 full-check keys); each
// round runs the floor, then each variant, then the floor again, one target at a time (the others
// paused), and prints server CPU per request and req/s as ratios to the floor runs around it.
//
//   node bench/ab.mjs [variant ...]
//   variant: name=path/to/main.js[,ENV=value ...][,--node-flag ...][,+create]
//   default: keyward=dist/main.js. `+create` makes one app through the API (with an Idempotency-Key)
//   before the runs, as a node that has served the management API has.
//   env: AB_ROUNDS (4), AB_SECONDS (4), AB_PG=1 (every variant on one PostgreSQL database + Redis),
//   AB_KEYS (1000: keys in the store; 1,000 of them are verified), AB_SETTLE (1: seconds of
//   unrecorded load before each run, as every target was paused while the others ran),
//   AB_NODE (the Node binary every target runs on, floor included; default: this one). better-sqlite3
//   is native: run from a copy of the project installed for that Node, as .ci/run makes them
//   (~/.cache/keyward-node/<line>/project), e.g. for the shared-reads decision on Node 24:
//
//     cd ~/.cache/keyward-node/24/project && AB_ROUNDS=5 AB_NODE=../package/bin/node \
//       ../package/bin/node bench/ab.mjs shared=dist/main.js plain=dist/main.js,KEYWARD_VERIFY_SHARED_READS=0
//
//   Shared reads stay only if `shared` beats `plain` by 10% or more in CPU per request or p99 (the
//   medians over rounds; both are measured against the same floor runs).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { median, pin, seededStore, startKeyward, startNode, verifyBodies, warm } from './lib.mjs';
import { loadWrk } from './wrk.mjs';

const ROUNDS = Number(process.env.AB_ROUNDS ?? 4);
const SECONDS = Number(process.env.AB_SECONDS ?? 4);
const SETTLE = Number(process.env.AB_SETTLE ?? 1);
const specs = (process.argv.slice(2).length ? process.argv.slice(2) : ['keyward=dist/main.js']).map((arg) => {
  const [name, rest] = arg.split(/=(.*)/s);
  const [script, ...opts] = rest.split(',');
  return {
    name,
    script: path.resolve(script),
    env: Object.fromEntries(opts.filter((o) => o.includes('=') && !o.startsWith('--')).map((o) => o.split(/=(.*)/s).slice(0, 2))),
    args: opts.filter((o) => o.startsWith('--')),
    create: opts.includes('+create'),
  };
});

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-ab-'));
const env = { KEYWARD_DATA_DIR: path.join(dir, 'seed'), KEYWARD_CACHE_TTL_MS: '3600000' };
fs.mkdirSync(env.KEYWARD_DATA_DIR);
const { world, sample, pgDb } = await seededStore({ main: path.resolve('dist/main.js'), env, postgres: Boolean(process.env.AB_PG), count: Number(process.env.AB_KEYS ?? 1000) });
const bodies = verifyBodies(sample, world.appId);

const NODE = process.env.AB_NODE ? path.resolve(process.env.AB_NODE) : process.execPath;
console.log(`targets on ${NODE} (${execFileSync(NODE, ['--version']).toString().trim()})`);
const floor = await startNode(path.resolve('bench/raw.mjs'), {}, [], NODE);
const nodes = [];
// Each variant gets its own copy of the store: a paused node must not hold a lock another waits on.
for (const [i, s] of specs.entries()) {
  const own = path.join(dir, `v${i}`);
  fs.cpSync(env.KEYWARD_DATA_DIR, own, { recursive: true });
  const redisPrefix = pgDb ? { KEYWARD_REDIS_PREFIX: `kwab:${Date.now()}:${i}:` } : {};
  nodes.push({ ...s, node: await startKeyward(s.script, { ...env, ...redisPrefix, KEYWARD_DATA_DIR: own, ...s.env }, s.args, NODE) });
}
const all = [floor, ...nodes.map((n) => n.node)];
for (const n of all) pin(n.pid, 0);
pin(process.pid, 1);
for (const n of nodes) {
  if (n.create) {
    const res = await fetch(`${n.node.url}/v1/apps`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${world.token}`, 'idempotency-key': `ab-${n.name}` },
      body: JSON.stringify({ workspaceId: world.workspaceId, name: `made by ${n.name}` }),
    });
    if (res.status !== 201) throw new Error(`create on ${n.name}: ${res.status} ${await res.text()}`);
  }
  await warm(n.node.url, bodies);
}

async function run(node) {
  for (const other of all) if (other !== node) process.kill(other.pid, 'SIGSTOP');
  try {
    // Unrecorded load first: each target (the floor too) was paused while the others ran.
    if (SETTLE > 0) await loadWrk({ url: node.url, bodies, connections: 50, duration: SETTLE, pid: node.pid, cpu: 1 });
    return await loadWrk({ url: node.url, bodies, connections: 50, duration: SECONDS, pid: node.pid, cpu: 1 });
  } finally {
    for (const other of all) if (other !== node) process.kill(other.pid, 'SIGCONT');
  }
}

const ratios = new Map(specs.map((s) => [s.name, { eff: [], rps: [], p99: [], cpu: [] }]));
for (let round = 1; round <= ROUNDS; round++) {
  let before = await run(floor);
  for (const n of nodes) {
    const r = await run(n.node);
    const after = await run(floor);
    const floorCpu = (before.cpuPerReq + after.cpuPerReq) / 2;
    const floorRps = (before.rps + after.rps) / 2;
    const floorP99 = (before.p99 + after.p99) / 2;
    const x = ratios.get(n.name);
    x.eff.push(floorCpu / r.cpuPerReq);
    x.rps.push(r.rps / floorRps);
    x.p99.push(r.p99 / floorP99);
    x.cpu.push(r.cpuPerReq);
    console.log(`round ${round} ${n.name}: ${Math.round(r.rps)} req/s, p99 ${r.p99} ms (floor ${before.p99}, ${after.p99}; steal ms ${r.steal.join('/')}, floor ${before.steal.join('/')}, ${after.steal.join('/')}), ${r.cpuPerReq.toFixed(1)} µs CPU/req; floor ${floorCpu.toFixed(1)} µs, efficiency ${(floorCpu / r.cpuPerReq).toFixed(2)}, req/s ${(r.rps / floorRps).toFixed(2)}, p99 ${(r.p99 / floorP99).toFixed(2)}×`);
    before = after;
  }
}
console.log('\nmedians over rounds (ratios to the node:http floor):');
for (const [name, x] of ratios) {
  console.log(`${name.padEnd(20)} efficiency ${median(x.eff).toFixed(2)}  req/s ${median(x.rps).toFixed(2)}  p99 ${median(x.p99).toFixed(2)}×  ${median(x.cpu).toFixed(1)} µs/req`);
}
for (const n of all) await n.stop();
fs.rmSync(dir, { recursive: true, force: true });
await pgDb?.drop();
