// OpenAPI, llms.txt, interactive docs and the operational endpoints, all served for real.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../support/harness.js';

describe('docs and operations', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer();
  });
  afterAll(async () => s.close());

  it('openapi.json is OpenAPI 3.1 covering every route, with the problem schema and examples', async () => {
    const res = await s.request('GET', '/openapi.json');
    expect(res.status).toBe(200);
    const spec = res.body;
    expect(spec.openapi).toBe('3.1.0');
    const ops = Object.entries(spec.paths as Record<string, Record<string, any>>).flatMap(([p, m]) => Object.keys(m).map((k) => `${k.toUpperCase()} ${p}`));
    const contract = [
      'GET /v1/setup', 'POST /v1/setup', 'POST /v1/auth/login', 'POST /v1/auth/logout',
      'GET /v1/workspaces', 'POST /v1/workspaces', 'GET /v1/workspaces/{id}',
      'GET /v1/workspaces/{id}/members', 'POST /v1/workspaces/{id}/members', 'DELETE /v1/workspaces/{id}/members/{userId}',
      'GET /v1/workspaces/{id}/root-keys', 'POST /v1/workspaces/{id}/root-keys', 'DELETE /v1/root-keys/{id}',
      'GET /v1/apps', 'POST /v1/apps', 'GET /v1/apps/{appId}', 'PATCH /v1/apps/{appId}', 'DELETE /v1/apps/{appId}',
      'POST /v1/apps/{appId}/keys', 'GET /v1/apps/{appId}/keys', 'GET /v1/keys/{keyId}', 'PATCH /v1/keys/{keyId}',
      'POST /v1/keys/{keyId}/roll', 'DELETE /v1/keys/{keyId}', 'GET /v1/keys/{keyId}/usage',
      'GET /v1/workspaces/{id}/audit', 'POST /v1/keys/verify', 'GET /healthz', 'GET /readyz', 'GET /metrics',
    ];
    for (const op of contract) expect(ops, op).toContain(op);
    expect(spec.components.schemas.Problem.properties.code).toBeDefined();
    const verifyOp = spec.paths['/v1/keys/verify'].post;
    expect(verifyOp.responses['4XX'] ?? verifyOp.responses['4xx']).toBeDefined();
    expect(JSON.stringify(verifyOp.responses['200'])).toContain('USAGE_EXCEEDED');
    expect(JSON.stringify(verifyOp)).toContain('example');
    for (const op of contract.filter((o) => o.startsWith('POST /v1/apps/{appId}/keys') || o.startsWith('PATCH'))) {
      const [m, p] = op.split(' ');
      expect(spec.paths[p!][m!.toLowerCase()].requestBody, op).toBeDefined();
    }
  });

  it('llms.txt is generated from the same spec', async () => {
    const res = await s.request('GET', '/llms.txt');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(res.text).toContain('### POST /v1/keys/verify (appId, or a root key with keys:verify)');
    expect(res.text).toContain('body `gracePeriodMs`');
    const spec = (await s.request('GET', '/openapi.json')).body;
    for (const p of Object.keys(spec.paths)) expect(res.text).toContain(` ${p}`);
  });

  it('/docs serves the console\'s reference page (built from /openapi.json), under the page CSP', async () => {
    for (const url of ['/docs', '/docs/']) {
      const res = await s.request('GET', url);
      expect(res.status).toBe(200);
      expect(res.text).toContain('<div id="root">');
      expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    }
  });

  it('health, readiness and metrics', async () => {
    expect((await s.request('GET', '/healthz')).body).toEqual({ status: 'ok' });
    const ready = await s.request('GET', '/readyz');
    expect(ready.body).toEqual({ status: 'ready', checks: { store: { ok: true, detail: 'sqlite' }, changeFeed: { ok: true } } });
    await s.request('POST', '/v1/keys/verify', { body: { key: 'junk', appId: 'app_AAAAAAAAAAAAAAAAAAAA' } });
    const metrics = await s.request('GET', '/metrics');
    expect(metrics.text).toMatch(/keyward_verify_total\{code="MALFORMED"\} 1/);
    expect(metrics.text).toContain('keyward_process_cpu_seconds_total');
    expect(metrics.text).toMatch(/keyward_change_feed_lag_seconds \d/);
  });

  it('console assets are sent compressed and cached for good; the page itself is revalidated', async () => {
    const page = await s.app.inject({ method: 'GET', url: '/', headers: { accept: 'text/html', 'accept-encoding': 'br, gzip' } });
    expect(page.headers['cache-control']).toBe('no-cache');
    const html = fs.readFileSync('web/dist/index.html', 'utf8');
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const plain = await s.app.inject({ method: 'GET', url: script });
    for (const [encoding, accept] of [['br', 'br, gzip'], ['gzip', 'gzip']] as const) {
      const res = await s.app.inject({ method: 'GET', url: script, headers: { 'accept-encoding': accept } });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-encoding']).toBe(encoding);
      expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      expect(res.rawPayload.length).toBeLessThan(plain.rawPayload.length / 2);
    }
  });
});
