// Memory per cached key: fills the verify cache with N keys and measures the heap it grew by.
// Run with --expose-gc (bench/run.mjs does).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../dist/config.js';
import { createDeps } from '../dist/deps.js';
import { buildApp } from '../dist/app.js';
import { sqlitePath } from '../dist/store/db.js';
import { verifyKey } from '../dist/verify/verify.js';
import { seedKeys } from './lib.mjs';

const N = Number(process.env.BENCH_MEMORY_KEYS ?? 50_000);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-mem-'));
const deps = await createDeps(loadConfig({ KEYWARD_DATA_DIR: dir, LOG_LEVEL: 'silent', KEYWARD_PASSWORD_COST: '12', KEYWARD_CACHE_TTL_MS: '3600000' }));
const app = await buildApp(deps.services);
const setup = (await app.inject({ method: 'POST', url: '/v1/setup', payload: { email: 'm@example.com', password: 'memory benchmark', workspaceName: 'M' } })).json();
const created = (await app.inject({ method: 'POST', url: '/v1/apps', headers: { authorization: `Bearer ${setup.token}` }, payload: { workspaceId: setup.workspaces[0].id, name: 'M', keyPrefix: 'bench' } })).json();
const keys = await seedKeys({ sqliteFile: sqlitePath(dir), world: { appId: created.id, workspaceId: setup.workspaces[0].id }, count: N, sampleSize: N });

const heap = () => { global.gc(); global.gc(); return process.memoryUsage().heapUsed; };
const before = heap();
for (const key of keys) {
  const r = await verifyKey(deps.verify, { key, permissions: ['docs.read'], resource: 'acme.com', ip: '10.1.2.3' }, { appId: created.id });
  if (r.code !== 'VALID') throw new Error(r.code);
}
const after = heap();
const size = deps.cache.size;
process.stdout.write(JSON.stringify({ keys: N, cached: size.keys, bytesPerKey: Math.round((after - before) / N) }) + '\n');
await deps.close();
fs.rmSync(dir, { recursive: true, force: true });
process.exit(0);
