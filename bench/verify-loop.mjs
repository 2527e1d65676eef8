// npm run bench:verify — the cost of verifyKey alone (no HTTP), over 1,000 keys with every
// check on: median of 5 rounds of 200,000 calls (awaiting only what is a promise, as the server does). Repeatable where the HTTP benchmark is noisy.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../dist/config.js';
import { createDeps } from '../dist/deps.js';
import { buildApp } from '../dist/app.js';
import { verifyKey } from '../dist/verify/verify.js';
import { sqlitePath } from '../dist/store/db.js';
import { seedKeys } from './lib.mjs';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-loop-'));
const deps = await createDeps(loadConfig({ KEYWARD_DATA_DIR: dir, LOG_LEVEL: 'silent', KEYWARD_PASSWORD_COST: '12' }));
const app = await buildApp(deps.services);
const setup = (await app.inject({ method: 'POST', url: '/v1/setup', payload: { email: 'a@b.co', password: 'correct horse', workspaceName: 'A' } })).json();
const ap = (await app.inject({ method: 'POST', url: '/v1/apps', headers: { authorization: `Bearer ${setup.token}` }, payload: { workspaceId: setup.workspaces[0].id, name: 'A API', keyPrefix: 'bench' } })).json();
const keys = await seedKeys({ sqliteFile: sqlitePath(dir), world: { appId: ap.id, workspaceId: setup.workspaces[0].id }, count: 1000 });
const scope = { appId: ap.id };
const inputs = keys.map((key) => ({ key, permissions: ['docs.read'], resource: 'api.acme.dev', ip: '10.20.30.40' }));
for (let i = 0; i < 50000; i++) { const r = await verifyKey(deps.verify, inputs[i % 1000], scope); if (r.code !== 'VALID') throw new Error(r.code); }
const res = [];
for (let round = 0; round < 5; round++) {
  const n = 200000; const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const r = verifyKey(deps.verify, inputs[i % 1000], scope);
    if (r instanceof Promise) await r;
  }
  res.push(Number(process.hrtime.bigint() - t0) / n / 1000);
}
res.sort((a, b) => a - b);
console.log('verifyKey, 1000 keys, median', res[2].toFixed(2), 'µs');
await deps.close();
fs.rmSync(dir, { recursive: true, force: true });
process.exit(0);
