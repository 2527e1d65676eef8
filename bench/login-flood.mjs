// Login flood: what 16 concurrent logins with made-up emails from one address do to the owner's
// login (from the address setup ran from) and to verify, against the same node unloaded.
// `npm run build && node bench/login-flood.mjs`; BENCH_LOGIN_FLOOD_SEC (default 5) per phase,
// BENCH_PASSWORD_COST (default 17, the server's default). Prints one JSON line.
import fs from 'node:fs';
import { call, median, startKeyward } from './lib.mjs';

const SECONDS = Number(process.env.BENCH_LOGIN_FLOOD_SEC ?? 5);
const COST = process.env.BENCH_PASSWORD_COST ?? '17';
const OWNER_IP = '198.51.100.7';
const ATTACKER_IP = '203.0.113.66';
const WORKERS = 16;

const dataDir = fs.mkdtempSync('/tmp/keyward-login-flood-');
const node = await startKeyward('dist/main.js', { KEYWARD_PASSWORD_COST: COST, KEYWARD_TRUST_PROXY: '127.0.0.1/32', KEYWARD_DATA_DIR: dataDir });
try {
  const login = (email, password, ip) => fetch(`${node.url}/v1/auth/login`, {
    method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': ip }, body: JSON.stringify({ email, password }),
  }).then(async (r) => { await r.arrayBuffer(); return r.status; });
  // Setup from the owner's address makes it known to the account.
  const world = await fetch(`${node.url}/v1/setup`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': OWNER_IP }, body: JSON.stringify({ email: 'bench@example.com', password: 'benchmark password', workspaceName: 'Bench' }) })
    .then(async (r) => { if (r.status !== 201) throw new Error(`setup ${r.status}`); return r.json(); })
    .then(async (setup) => {
      const app = await call(node.url, 'POST', '/v1/apps', { workspaceId: setup.workspaces[0].id, name: 'Bench API', keyPrefix: 'bench' }, setup.token);
      return { token: setup.token, appId: app.body.id };
    });
  const key = (await call(node.url, 'POST', `/v1/apps/${world.appId}/keys`, { name: 'flood' }, world.token)).body.key;
  const verifyBody = JSON.stringify({ appId: world.appId, key });

  /** For `SECONDS`: verify latencies (one at a time) and the owner's login times (one at a time). */
  async function measure() {
    const until = Date.now() + SECONDS * 1000;
    const verifyMs = [];
    const ownerMs = [];
    const ownerStatus = {};
    await Promise.all([
      (async () => {
        while (Date.now() < until) {
          const t = performance.now();
          const r = await fetch(`${node.url}/v1/keys/verify`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: verifyBody });
          await r.arrayBuffer();
          verifyMs.push(performance.now() - t);
        }
      })(),
      (async () => {
        while (Date.now() < until) {
          const t = performance.now();
          const status = await login('bench@example.com', 'benchmark password', OWNER_IP);
          ownerMs.push(performance.now() - t);
          ownerStatus[status] = (ownerStatus[status] ?? 0) + 1;
        }
      })(),
    ]);
    return { verifyMedianMs: +median(verifyMs).toFixed(2), verifyRequests: verifyMs.length, ownerLoginMedianMs: +median(ownerMs).toFixed(1), ownerLogins: ownerStatus };
  }

  const quiet = await measure();
  let stop = false;
  const attack = {};
  const flood = Array.from({ length: WORKERS }, async (_, w) => {
    for (let i = 0; !stop; i++) {
      const status = await login(`made${w}_${i}@example.net`, 'made up password', ATTACKER_IP);
      attack[status] = (attack[status] ?? 0) + 1;
    }
  });
  const flooded = await measure();
  stop = true;
  await Promise.all(flood);
  process.stdout.write(`${JSON.stringify({ passwordCost: Number(COST), seconds: SECONDS, quiet, flooded: { ...flooded, attackAnswers: attack } })}\n`);
} finally {
  await node.stop();
  fs.rmSync(dataDir, { recursive: true, force: true });
}
