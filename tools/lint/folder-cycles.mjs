// Folder-level cycle check: the folders of src/ and the imports between them must form no circle
// (dpdm checks files; two folders importing each other through different files is a circle too).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');
const IMPORT = /(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g;
const edges = new Map();

function walk(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) walk(full);
    else if (entry.name.endsWith('.ts')) scan(full);
  }
}
function folderOf(file) {
  const rel = path.relative(SRC, file).split(path.sep);
  return rel.length === 1 ? rel[0].replace(/\.(ts|js)$/, '') : rel[0];
}
function scan(file) {
  const from = folderOf(file);
  for (const m of fs.readFileSync(file, 'utf8').matchAll(IMPORT)) {
    const to = folderOf(path.resolve(path.dirname(file), m[1]));
    if (to === from || to.startsWith('..')) continue;
    if (!edges.has(from)) edges.set(from, new Map());
    const e = edges.get(from);
    if (!e.has(to)) e.set(to, `${path.relative(SRC, file)} -> ${m[1]}`);
  }
}
walk(SRC);

const state = new Map();
const cycles = [];
function visit(node, trail) {
  state.set(node, 'open');
  for (const [next, where] of edges.get(node) ?? []) {
    if (state.get(next) === 'open') {
      const start = trail.findIndex((t) => t.node === next);
      cycles.push([...trail.slice(start), { node, where }].map((t) => `${t.node} (${t.where})`).join('\n  -> '));
    } else if (!state.has(next)) visit(next, [...trail, { node, where }]);
  }
  state.set(node, 'done');
}
for (const node of edges.keys()) if (!state.has(node)) visit(node, []);
if (cycles.length) {
  console.error(`Folder cycles in src/ (${cycles.length}):\n${cycles.map((c) => `  ${c}`).join('\n')}`);
  process.exit(1);
}
console.log(`No folder cycles among ${edges.size} folders of src/.`);
