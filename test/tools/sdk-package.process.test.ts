// The SDK as its own package: packed like a release, installed into a project outside this
// repository, it has no runtime dependency, type-checks in a consumer, and verifies a real key.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, startServer, world, type TestServer, type World } from '../support/harness.js';

const ROOT = path.resolve('.');

describe('@keyward/sdk package', () => {
  let project: string;
  let files: string[];
  let s: TestServer;
  let w: World;
  beforeAll(async () => {
    if (!fs.existsSync(path.join(ROOT, 'sdk/dist/sdk/index.js'))) throw new Error('sdk/dist is missing: run `npm run build` (npm test does)');
    project = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-sdk-consumer-'));
    const packed = JSON.parse(execFileSync('npm', ['pack', './sdk', '--pack-destination', project, '--json'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })) as { filename: string; files: { path: string }[] }[];
    files = packed[0]!.files.map((f) => f.path);
    const target = path.join(project, 'node_modules/@keyward/sdk');
    fs.mkdirSync(target, { recursive: true });
    execFileSync('tar', ['-xzf', path.join(project, packed[0]!.filename), '-C', target, '--strip-components=1']);
    // What a consumer's own install brings: the declared dependency (types) and its Node types.
    fs.mkdirSync(path.join(project, 'node_modules/@sinclair'), { recursive: true });
    fs.symlinkSync(path.join(ROOT, 'node_modules/@sinclair/typebox'), path.join(project, 'node_modules/@sinclair/typebox'));
    fs.mkdirSync(path.join(project, 'node_modules/@types'), { recursive: true });
    fs.symlinkSync(path.join(ROOT, 'node_modules/@types/node'), path.join(project, 'node_modules/@types/node'));
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module', private: true }));
    s = await startServer({ listen: true });
    w = await world(s);
  });
  afterAll(async () => {
    await s?.close();
    fs.rmSync(project, { recursive: true, force: true });
  });

  it('ships only its build, declares no server dependency, and imports nothing but itself and node:', () => {
    expect(files).toContain('dist/sdk/index.js');
    expect(files).toContain('dist/sdk/index.d.ts');
    expect(files.every((f) => f.startsWith('dist/') || f === 'package.json' || f === 'README.md')).toBe(true);
    const manifest = JSON.parse(fs.readFileSync(path.join(project, 'node_modules/@keyward/sdk/package.json'), 'utf8'));
    expect(Object.keys(manifest.dependencies ?? {})).toEqual(['@sinclair/typebox']);
    const root = path.join(project, 'node_modules/@keyward/sdk');
    const importsOf = (f: string) => [...fs.readFileSync(path.join(root, f), 'utf8').matchAll(/(?:from\s+|import\s*\(\s*|import\s+)['"]([^'"]+)['"]/g)].map((m) => m[1]!);
    // Every file imports only itself, node: and what the manifest declares.
    for (const f of files.filter((x) => x.endsWith('.js'))) {
      for (const spec of importsOf(f)) expect(spec.startsWith('.') || spec.startsWith('node:') || spec === '@sinclair/typebox', `${f} imports ${spec}`).toBe(true);
    }
    // What loading the SDK runs (its entry and everything it imports) needs nothing but node:.
    const seen = new Set<string>();
    const visit = (f: string) => {
      if (seen.has(f)) return;
      seen.add(f);
      for (const spec of importsOf(f)) {
        if (spec.startsWith('.')) visit(path.posix.join(path.posix.dirname(f), spec));
        else expect(spec.startsWith('node:'), `${f}, loaded by the SDK, imports ${spec}`).toBe(true);
      }
    };
    visit('dist/sdk/index.js');
    expect(seen.has('dist/sdk/client.js')).toBe(true);
    expect(seen.has('dist/webhooks/receiver.js')).toBe(true);
  });

  it('type-checks in a consumer project: real types, not any', () => {
    fs.writeFileSync(path.join(project, 'consumer.ts'), [
      "import { KeywardClient, verifyWebhookSignature, type Key, type VerifyResult } from '@keyward/sdk';",
      "const client = new KeywardClient({ baseUrl: 'http://127.0.0.1:1', appId: 'app_x' });",
      "export async function check(key: string): Promise<VerifyResult['code']> { return (await client.verify({ key })).code; }",
      "export const name = (k: Key): string => k.name;",
      "// @ts-expect-error: a key has no such field",
      "export const wrong = (k: Key): string => k.nope;",
      "export const ok: boolean = verifyWebhookSignature('whsec_x', { id: 'a', timestamp: '1', signature: 'v1,x' }, '{}');",
    ].join('\n'));
    fs.writeFileSync(path.join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', noEmit: true, skipLibCheck: true, types: ['node'] }, files: ['consumer.ts'] }));
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', project], { cwd: project, encoding: 'utf8' });
  });

  it('verifies a real key from the installed package', async () => {
    const k = await createKey(s, w, { name: 'from the package' });
    fs.writeFileSync(path.join(project, 'check.mjs'), [
      "import { KeywardClient } from '@keyward/sdk';",
      'const client = new KeywardClient({ baseUrl: process.argv[2], appId: process.argv[3] });',
      'const verdict = await client.verify({ key: process.argv[4] });',
      'console.log(JSON.stringify({ code: verdict.code, keyId: verdict.keyId }));',
    ].join('\n'));
    const out = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ['check.mjs', s.url, w.appId, k.key], { cwd: project }, (err, stdout, stderr) => (err ? reject(new Error(stderr)) : resolve(stdout)));
    });
    expect(JSON.parse(out)).toEqual({ code: 'VALID', keyId: k.id });
  });

  it('an Express-only project type-checks against the packed SDK without skipLibCheck; req.keyward is typed', () => {
    // A project of its own, installed the way a user installs: the packed SDK, express and its types, nothing else.
    const express = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-sdk-express-'));
    try {
      const tarball = path.join(project, fs.readdirSync(project).find((f) => f.endsWith('.tgz'))!);
      const rootManifest = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
      fs.writeFileSync(path.join(express, 'package.json'), JSON.stringify({ name: 'express-consumer', type: 'module', private: true }));
      execFileSync('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error', tarball,
        `express@${rootManifest.devDependencies.express}`, `@types/express@${rootManifest.devDependencies['@types/express']}`], { cwd: express, stdio: ['ignore', 'ignore', 'pipe'] });
      expect(fs.existsSync(path.join(express, 'node_modules/fastify'))).toBe(false);
      fs.writeFileSync(path.join(express, 'app.ts'), [
        "import express from 'express';",
        "import { keywardExpress, type Verdict } from '@keyward/sdk';",
        'const app = express();',
        "app.use('/api', keywardExpress({ baseUrl: 'http://127.0.0.1:8787', appId: 'app_x', header: 'x-api-key' }), (req, res) => {",
        '  const verdict: Verdict | undefined = req.keyward;',
        "  const code: 'VALID' | 'MISSING_KEY' | string | undefined = verdict?.code;",
        '  res.json({ owner: req.keyward?.ownerId ?? null, code });',
        '});',
        "// @ts-expect-error: the verdict has no such field",
        "app.get('/x', (req, res) => { res.json(req.keyward?.nope); });",
        'export default app;',
      ].join('\n'));
      fs.writeFileSync(path.join(express, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', noEmit: true, skipLibCheck: false }, files: ['app.ts'] }));
      try {
        execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', express], { cwd: express, encoding: 'utf8' });
      } catch (err) {
        throw new Error(`the Express project does not compile:\n${(err as { stdout?: string }).stdout ?? ''}`);
      }
    } finally {
      fs.rmSync(express, { recursive: true, force: true });
    }
  }, 120_000);
});
