import fs from 'node:fs';
import { loadConfig } from '../dist/config.js';
import { createDeps } from '../dist/deps.js';
import { buildApp } from '../dist/app.js';
import { verifyKey } from '../dist/verify/verify.js';
import { sqlitePath } from '../dist/store/db.js';
import { seedKeys } from './lib.mjs';
fs.rmSync('/tmp/kwm', { recursive: true, force: true });
const deps = await createDeps(loadConfig({ KEYWARD_DATA_DIR: '/tmp/kwm', LOG_LEVEL: 'silent' }));
const app = await buildApp(deps);
const setup = (await app.inject({ method: 'POST', url: '/v1/setup', payload: { email: 'a@b.co', password: 'correct horse', workspaceName: 'A' } })).json();
const ap = (await app.inject({ method: 'POST', url: '/v1/apps', headers: { authorization: `Bearer ${setup.token}` }, payload: { workspaceId: setup.workspaces[0].id, name: 'A API', keyPrefix: 'bench' } })).json();
const keys = await seedKeys({ sqliteFile: sqlitePath('/tmp/kwm'), world: { appId: ap.id, workspaceId: setup.workspaces[0].id }, count: 1000 });
const inputs = keys.map((key) => ({ key, permissions: ['docs.read'], resource: 'api.acme.dev', ip: '10.20.30.40' }));
for (const [label, pick] of [['1 key', () => inputs[0]], ['1000 keys', (i) => inputs[i % 1000]]]) {
  for (let i = 0; i < 20000; i++) { const r = await verifyKey(deps.verify, pick(i)); if (r.code !== 'VALID') throw new Error(r.code); }
  const n = 200000; const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await verifyKey(deps.verify, pick(i));
  console.log(label, (Number(process.hrtime.bigint() - t0) / n / 1000).toFixed(2), 'µs');
}
await deps.close();
process.exit(0);
