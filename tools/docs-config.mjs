// Writes docs/configuration.md and README's configuration table from the environment schema
// (src/config/schema.ts, built into dist/ by `npm run docs:config`).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { renderConfigDoc, withReadmeTable } = await import(path.join(root, 'dist/config/doc.js'));

fs.mkdirSync(path.join(root, 'docs'), { recursive: true });
fs.writeFileSync(path.join(root, 'docs/configuration.md'), renderConfigDoc());
const readme = path.join(root, 'README.md');
fs.writeFileSync(readme, withReadmeTable(fs.readFileSync(readme, 'utf8')));
console.log('wrote docs/configuration.md and the table in README.md');
