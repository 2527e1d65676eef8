// The OpenAPI document as tools nobody here wrote read it: Redocly's recommended rules pass with no
// error, every operation has a unique operationId (routes added later included), a server, a
// license, and a 4xx answer.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerDocs } from '../../src/docs/plugin.js';
import { deriveOperationId } from '../../src/docs/operations.js';
import { startServer, type TestServer } from '../support/harness.js';

type Spec = { servers?: { url: string }[]; info: { license?: { name: string } }; paths: Record<string, Record<string, { operationId?: string; responses: Record<string, unknown> }>> };
const operations = (spec: Spec) => Object.entries(spec.paths).flatMap(([p, methods]) => Object.entries(methods).map(([m, op]) => ({ id: `${m.toUpperCase()} ${p}`, op })));

describe('OpenAPI document', () => {
  let s: TestServer;
  let spec: Spec;
  beforeAll(async () => {
    s = await startServer();
    spec = (await s.request('GET', '/openapi.json')).body;
  });
  afterAll(async () => s.close());

  it('every operation has a unique operationId, a 4xx answer; the document names a server and a license', () => {
    const ops = operations(spec);
    expect(ops.length).toBeGreaterThan(50);
    const ids = ops.map((o) => o.op.operationId);
    for (const o of ops) expect(o.op.operationId, o.id).toMatch(/^[a-z][A-Za-z0-9]+$/);
    expect(new Set(ids).size).toBe(ids.length);
    for (const o of ops) expect(Object.keys(o.op.responses).some((c) => c.startsWith('4')), `${o.id} has no 4xx`).toBe(true);
    expect(spec.servers?.length).toBeGreaterThan(0);
    expect(spec.info.license?.name).toBe('Apache-2.0');
    // Names a generated client gets for the main operations.
    const byPath = Object.fromEntries(ops.map((o) => [o.id, o.op.operationId]));
    expect(byPath['POST /v1/keys/verify']).toBe('verifyKey');
    expect(byPath['POST /v1/apps/{appId}/keys']).toBe('createAppKey');
    expect(byPath['GET /v1/apps/{appId}/keys']).toBe('listAppKeys');
    expect(byPath['POST /v1/keys/{keyId}/roll']).toBe('rollKey');
    expect(byPath['DELETE /v1/keys/{keyId}']).toBe('revokeKey');
  });

  it('Redocly lint (recommended rules) finds no error', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-openapi-'));
    try {
      const file = path.join(dir, 'openapi.json');
      fs.writeFileSync(file, JSON.stringify(spec));
      // Offline and quiet: no telemetry, no update check.
      const out = await new Promise<string>((resolve, reject) => {
        execFile(process.execPath, [path.resolve('node_modules/@redocly/cli/bin/cli.js'), 'lint', file, '--format=json'], {
          cwd: dir, env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' }, maxBuffer: 16 * 1024 * 1024,
        }, (err, stdout, stderr) => (stdout.includes('"totals"') ? resolve(stdout) : reject(new Error(`${err?.message}\n${stderr}`))));
      });
      const report = JSON.parse(out.slice(out.indexOf('{'))) as { totals: { errors: number; warnings: number }; problems: { ruleId: string; severity: string; message: string }[] };
      expect(report.problems.filter((p) => p.severity === 'error')).toEqual([]);
      expect(report.totals.errors).toBe(0);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it('a route added later gets an operationId and an error answer without doing anything', async () => {
    const app = Fastify();
    await registerDocs(app);
    app.get('/v1/widgets', { schema: { response: { 200: { type: 'object' } } } }, async () => ({}));
    app.post('/v1/widgets', { schema: { response: { 201: { type: 'object' } } } }, async () => ({}));
    app.post('/v1/widgets/:widgetId/polish', { schema: { response: { 200: { type: 'object' } } } }, async () => ({}));
    app.delete('/v1/widgets/:widgetId', async () => ({}));
    await app.ready();
    const ops = operations(app.swagger() as unknown as Spec);
    expect(Object.fromEntries(ops.map((o) => [o.id, o.op.operationId]))).toEqual({
      'GET /v1/widgets': 'listWidgets', 'POST /v1/widgets': 'createWidget', 'POST /v1/widgets/{widgetId}/polish': 'polishWidget', 'DELETE /v1/widgets/{widgetId}': 'deleteWidget',
    });
    for (const o of ops) expect(o.op.responses['4XX'] ?? o.op.responses['400'], o.id).toBeDefined();
    await app.close();
  });

  it('derives readable names', () => {
    expect(deriveOperationId('post', '/v1/workspaces/{id}/identities')).toBe('createWorkspaceIdentity');
    expect(deriveOperationId('get', '/v1/identities/{id}')).toBe('getIdentity');
    expect(deriveOperationId('patch', '/v1/identities/{id}')).toBe('updateIdentity');
    expect(deriveOperationId('post', '/v1/webhooks/{id}/rotate-secret')).toBe('rotateWebhookSecret');
    expect(deriveOperationId('put', '/v1/workspaces/{id}/ratelimit-overrides')).toBe('setWorkspaceRatelimitOverride');
  });
});
