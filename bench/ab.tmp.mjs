import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bootstrap, load, median, seedKeys, startNode, verifyBodies, warm } from './lib.mjs';
import { sqlitePath } from '../dist/store/db.js';
const variants = JSON.parse(process.argv[2]);
const nodes = [];
const bare = await startNode(path.resolve('bench/bare.mjs'));
nodes.push({ name: 'bare', url: bare.url, bodies: ['{}'], stop: bare.stop, r: [] });
for (const [name, env] of Object.entries(variants)) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kwab-'));
  const n = await startNode(path.resolve('dist/main.js'), { KEYWARD_DATA_DIR: dir, ...env });
  const w = await bootstrap(n.url);
  await n.stop();
  const bodies = verifyBodies(await seedKeys({ sqliteFile: sqlitePath(dir), world: w, count: 1000 }));
  const n2 = await startNode(path.resolve('dist/main.js'), { KEYWARD_DATA_DIR: dir, ...env });
  await warm(n2.url, bodies).catch(() => {});
  nodes.push({ name, url: n2.url, bodies, stop: n2.stop, r: [] });
}
for (let round = 0; round < Number(process.env.R ?? 5); round++) for (const n of nodes) n.r.push((await load({ url: n.url, bodies: n.bodies, duration: Number(process.env.S ?? 4) })).rps);
const b = median(nodes[0].r);
for (const n of nodes) console.log(n.name.padEnd(20), Math.round(median(n.r)), (median(n.r) / b).toFixed(2));
for (const n of nodes) await n.stop();
process.exit(0);
