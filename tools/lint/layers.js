// The layer rule: which folder of src/ may import which. Foundations sit at the bottom and never
// import a feature; a feature imports foundations, and of another feature only the files that
// feature offers to others (its public files below), never its internals. The composition roots
// (main, server, deps, app, metrics, the CLI, the SDK's types) wire everything and may import anything.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

/** Foundation folders, lowest first: each may import itself and those before it. */
const FOUNDATIONS = ['lib', 'errors.ts', 'config', 'store', 'shared', 'http', 'docs'];

/** What each feature offers to other features. Anything else of a feature is its own business. */
export const PUBLIC = {
  auth: ['guard', 'permissions', 'schemas', 'service', 'streams'],
  apps: ['model', 'schemas', 'service', 'gateway-rules', 'gateway-rules.schemas'],
  keys: ['model', 'schemas', 'service'],
  webhooks: ['outbox', 'events'],
  ratelimit: ['limiter', 'decide', 'schemas', 'buckets', 'overrides', 'service'],
  identities: ['service', 'schemas'],
  credits: ['slices'],
  verify: ['engine', 'verify', 'steps', 'routes', 'codes', 'cache', 'scope'],
};

const ROOTS = new Set(['main.ts', 'server.ts', 'deps.ts', 'app.ts', 'config.ts', 'metrics.ts', 'cli', 'api', 'sdk']);

function placeOf(file) {
  const rel = path.relative(SRC, file);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return null;
  const parts = rel.split(path.sep);
  const top = parts.length === 1 ? parts[0].replace(/\.js$/, '.ts') : parts[0];
  const name = parts.length > 1 ? parts.slice(1).join('/').replace(/\.(ts|js)$/, '') : '';
  return { top, name };
}

function problem(from, to) {
  if (from.top === to.top || ROOTS.has(from.top)) return null;
  const fromFoundation = FOUNDATIONS.indexOf(from.top);
  const toFoundation = FOUNDATIONS.indexOf(to.top);
  if (fromFoundation >= 0) {
    if (toFoundation >= 0 && toFoundation < fromFoundation) return null;
    return `${from.top} is a foundation: it may import only ${FOUNDATIONS.slice(0, fromFoundation).join(', ') || 'itself'}, not ${to.top}`;
  }
  if (toFoundation >= 0) return null;
  if (ROOTS.has(to.top)) return `a feature (${from.top}) must not import the composition root ${to.top}`;
  const offered = PUBLIC[to.top] ?? [];
  if (offered.includes(to.name)) return null;
  return `${to.top}/${to.name} is internal to ${to.top}: ${offered.length ? `it offers ${offered.join(', ')}` : 'it offers nothing to other features'} (tools/lint/layers.js)`;
}

export default {
  rules: {
    layers: {
      meta: { type: 'problem', schema: [] },
      create(context) {
        const file = context.filename;
        const from = placeOf(file);
        if (!from) return {};
        const check = (node, spec) => {
          if (typeof spec !== 'string' || !spec.startsWith('.')) return;
          const to = placeOf(path.resolve(path.dirname(file), spec));
          if (!to) return;
          const why = problem(from, to);
          if (why) context.report({ node, message: why });
        };
        return {
          ImportDeclaration: (node) => check(node, node.source.value),
          ExportNamedDeclaration: (node) => node.source && check(node, node.source.value),
          ExportAllDeclaration: (node) => check(node, node.source.value),
          ImportExpression: (node) => node.source.type === 'Literal' && check(node, node.source.value),
        };
      },
    },
  },
};
