// The access log: one line per management request (method, route template, status, duration),
// none for verify and forward auth whichever way they are served, and never a secret; the same
// requests timed in /metrics.
import http from 'node:http';
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createKey, startServer, verify, world, type TestServer, type World } from '../support/harness.js';

interface Line { msg: string; level: number; requestId?: string; method?: string; route?: string | null; status?: number; durationMs?: number; ip?: string }

describe('access log', () => {
  let s: TestServer;
  let logged = '';
  const lines = (): Line[] => logged.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line);
  const accessLines = () => lines().filter((l) => l.msg === 'request');

  beforeAll(async () => {
    const sink = new Writable({ write(chunk, _enc, done) { logged += chunk.toString(); done(); } });
    // Trace: whatever any layer writes at any level is searched for secrets below.
    s = await startServer({ logger: pino({ level: 'trace' }, sink), listen: true });
  });
  afterAll(async () => s.close());

  /** A request on a keep-alive connection of its own: the first request decides how verify is read. */
  function onOneConnection(agent: http.Agent, method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<number> {
    return new Promise((resolve, reject) => {
      const url = new URL(path, s.url);
      const req = http.request({ agent, host: url.hostname, port: url.port, method, path: url.pathname + url.search, headers: { ...headers, ...(body ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } : {}) } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it('writes one line per management request and none for verify or forward auth, with no secret anywhere', async () => {
    const password = 'correct horse battery';
    const w: World = await world(s); // setup, app create
    const key = await createKey(s, w);
    const integration = await createKey(s, w, { kind: 'integration' });
    const root = await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'ops', permissions: ['*'] } });
    await s.request('PUT', `/v1/apps/${w.appId}/vault/STRIPE`, { token: w.token, body: { value: 'vault-value-never-logged' } });
    await s.request('GET', `/v1/apps/${w.appId}/vault/STRIPE`, { token: root.body.key });
    await s.request('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password: 'a wrong password!' } });
    await s.request('GET', `/v1/apps/${w.appId}/keys?ownerId=query-value-never-logged`, { token: w.token, headers: { cookie: 'sid=cookie-value-never-logged', 'x-session-token': 'header-value-never-logged', 'x-api-key': key.key } });
    await s.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, raw: `{"name": "${key.key}", "meta":`, headers: { 'content-type': 'application/json' } });
    await s.request('GET', `/v1/no-such-route/${key.key}`, { token: w.token });
    await s.request('GET', '/healthz');
    const management: [string, string | null, number][] = [
      ['POST', '/v1/setup', 201], ['POST', '/v1/apps', 201], ['POST', '/v1/apps/:appId/keys', 201], ['POST', '/v1/apps/:appId/keys', 201],
      ['POST', '/v1/workspaces/:id/root-keys', 201], ['PUT', '/v1/apps/:appId/vault/:name', 200], ['GET', '/v1/apps/:appId/vault/:name', 200],
      ['POST', '/v1/auth/login', 401], ['GET', '/v1/apps/:appId/keys', 200], ['POST', '/v1/apps/:appId/keys', 400], ['GET', null, 404], ['GET', '/healthz', 200],
    ];

    // Verify read from the socket (the connection starts with it), through node:http's fast path
    // (the connection started with another request) and through the Fastify route (inject).
    expect((await verify(s, { key: key.key })).valid).toBe(true);
    expect((await verify(s, { authorization: `Basic ${Buffer.from(`${integration.id}:${integration.body.secret}`).toString('base64')}` })).valid).toBe(true);
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      expect(await onOneConnection(agent, 'GET', '/readyz')).toBe(200);
      management.push(['GET', '/readyz', 200]);
      expect(await onOneConnection(agent, 'POST', '/v1/keys/verify', JSON.stringify({ appId: w.appId, key: key.key }))).toBe(200);
      expect(await onOneConnection(agent, 'GET', `/v1/forward-auth?appId=${w.appId}`, undefined, { authorization: `Bearer ${key.key}`, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/orders' })).toBe(200);
      expect(await onOneConnection(agent, 'GET', '/v1/forward-auth', undefined, { 'x-keyward-root-key': root.body.key, 'x-api-key': key.key, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/orders' })).toBe(200);
    } finally {
      agent.destroy();
    }
    const injected = [
      await s.app.inject({ method: 'POST', url: '/v1/keys/verify', payload: { appId: w.appId, key: key.key } }),
      await s.app.inject({ method: 'GET', url: `/v1/forward-auth?appId=${w.appId}`, headers: { authorization: `Bearer ${key.key}`, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/a' } }),
      await s.app.inject({ method: 'GET', url: `/v1/forward-auth/${w.appId}/orders/1?token=x`, headers: { authorization: `Bearer ${key.key}`, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/orders/1' } }),
      await s.app.inject({ method: 'GET', url: `/v1/forward-auth?appId=${w.appId}`, headers: { authorization: 'Bearer nope_live_x', 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/a' } }),
    ];
    expect(injected.map((r) => r.statusCode)).toEqual([200, 200, 200, 401]);

    // The same requests are timed in /metrics by route template; verify and forward auth are not.
    const metrics = await s.request('GET', '/metrics');
    management.push(['GET', '/metrics', 200]);
    expect(metrics.text).toContain('keyward_http_request_duration_seconds_count{method="POST",route="/v1/setup",status="201"} 1');
    expect(metrics.text).toContain('keyward_http_request_duration_seconds_count{method="POST",route="/v1/apps/:appId/keys",status="201"} 2');
    expect(metrics.text).toContain('keyward_http_request_duration_seconds_count{method="GET",route="none",status="404"} 1');
    expect(metrics.text).not.toMatch(/duration_seconds_count\{[^}]*route="\/v1\/(keys\/verify|forward-auth)/);

    // An answer is logged when it has been handed to the socket, which may come a turn after the
    // client read it: wait for the count, then check that nothing more came.
    await vi.waitFor(() => expect(accessLines().length).toBeGreaterThanOrEqual(management.length));
    await s.deps.usage.flush();
    const access = accessLines();
    expect(access.map((l) => [l.method, l.route, l.status])).toEqual(management);
    for (const line of access) {
      expect(line.level).toBe(30);
      expect(line.requestId).toMatch(/^req_/);
      expect(typeof line.durationMs).toBe('number');
      expect(line.durationMs).toBeGreaterThanOrEqual(0);
      expect(line.ip).toBe('127.0.0.1');
    }
    expect(lines().filter((l) => /verify|forward-auth/.test(JSON.stringify(l)))).toEqual([]);

    for (const secret of [password, key.key, integration.body.secret, root.body.key, w.token, 'vault-value-never-logged',
      'query-value-never-logged', 'cookie-value-never-logged', 'header-value-never-logged']) {
      expect(logged.includes(secret), `the log holds ${secret.slice(0, 12)}…`).toBe(false);
    }
  });

  it('writes no access line below info', async () => {
    let quiet = '';
    const sink = new Writable({ write(chunk, _enc, done) { quiet += chunk.toString(); done(); } });
    const warnOnly = await startServer({ logger: pino({ level: 'warn' }, sink) });
    try {
      await world(warnOnly);
      await warnOnly.request('GET', '/healthz');
      expect(quiet.split('\n').filter(Boolean).map((l) => (JSON.parse(l) as Line).msg)).not.toContain('request');
    } finally {
      await warnOnly.close();
    }
  });
});
