// No secrets in logs, browser-facing headers, no existence oracles, and X-Forwarded-For believed
// only from trusted proxies. (Crash durability under repeated SIGKILL: test/chaos/kill.chaos.test.ts.)
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { passwordChecks } from '../../src/lib/hash.js';
import { checksum } from '../../src/lib/key-format.js';
import { createKey, startServer, verify, world, type TestServer } from '../support/harness.js';

describe('no secret reaches the logs', () => {
  it('keys, secrets, passwords and session tokens never appear in the log stream at any level', async () => {
    let logged = '';
    const sink = new Writable({ write(chunk, _enc, done) { logged += chunk.toString(); done(); } });
    const logger = pino({ level: 'trace' }, sink);
    const s = await startServer({ logger });
    try {
      const password = 'correct horse battery';
      const w = await world(s);
      const bearer = await createKey(s, w);
      const integration = await createKey(s, w, { kind: 'integration' });
      const root = (await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'r', permissions: ['*'] } })).body.key;
      await s.request('PUT', `/v1/apps/${w.appId}/vault/X`, { token: w.token, body: { value: 'vault-secret-value-42' } });
      await s.request('GET', `/v1/apps/${w.appId}/vault/X`, { token: root });
      await verify(s, { key: bearer.key });
      await verify(s, { authorization: `Basic ${Buffer.from(`${integration.id}:${integration.body.secret}`).toString('base64')}` });
      await s.request('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password: 'wrong password!' } });
      await s.request('POST', '/v1/keys/verify', { raw: `{"key":"${bearer.key}",`, headers: { 'content-type': 'application/json' } });
      await s.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, raw: `{"name":"${bearer.key}","meta":`, headers: { 'content-type': 'application/json' } });
      await s.request('GET', '/v1/apps/app_AAAAAAAAAAAAAAAAAAAA', { token: root });
      // Error answers do not echo what was sent either.
      for (const raw of [`{"key": ${bearer.key}}`, `{"key":"${bearer.key}","x":}`, `["${bearer.key}"`]) {
        const answer = await s.request('POST', '/v1/keys/verify', { raw, headers: { 'content-type': 'application/json' } });
        expect(answer.status).toBe(400);
        expect(answer.text).not.toContain(bearer.key.slice(0, 16));
      }
      await s.deps.usage.flush();
      expect(logged.length).toBeGreaterThan(0);
      for (const secret of [password, bearer.key, integration.body.secret, root, w.token, 'vault-secret-value-42']) {
        expect(logged.includes(secret), `the log holds ${secret.slice(0, 10)}…`).toBe(false);
      }
    } finally {
      await s.close();
    }
  });
});

describe('browser-facing defences', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer();
  });
  afterAll(async () => s.close());

  it('pages carry a CSP without inline script, frame-ancestors, nosniff and a referrer policy', async () => {
    const page = await s.request('GET', '/docs/');
    const csp = page.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);
    expect(csp).toContain("frame-ancestors 'none'");
    expect(page.headers.get('x-content-type-options')).toBe('nosniff');
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    expect(page.text).not.toMatch(/<script>(?!\s*<\/script>)/);
  });

  it('CORS is closed by default, and credentials travel only in headers (no cookies to forge requests with)', async () => {
    const w = await world(s);
    const preflight = await s.request('OPTIONS', '/v1/apps', { headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    const cross = await s.request('GET', `/v1/apps?workspaceId=${w.workspaceId}`, { token: w.token, headers: { origin: 'https://evil.example' } });
    expect(cross.headers.get('access-control-allow-origin')).toBeNull();
    const login = await s.request('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password: 'correct horse battery' } });
    expect(login.headers.get('set-cookie')).toBeNull();
    const viaCookie = await s.request('GET', `/v1/apps?workspaceId=${w.workspaceId}`, { headers: { cookie: `session=${login.body.token}; token=${login.body.token}` } });
    expect(viaCookie.status).toBe(401);
  });
});

describe('no existence oracles', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer();
  });
  afterAll(async () => s.close());

  it('verify of an unknown well-formed key and of a known key take the same path to the store', async () => {
    const w = await world(s);
    const known = (await createKey(s, w)).key;
    const body = 'acme_live_' + 'Z'.repeat(32);
    const unknown = body + checksum(body);
    const loads: string[] = [];
    const load = s.deps.verify.load;
    s.deps.verify.load = (hash) => {
      loads.push(hash);
      return load(hash);
    };
    try {
      for (const key of [known, unknown]) {
        loads.length = 0;
        await verify(s, { key });
        expect(loads, 'first sight: one store read').toHaveLength(1);
        loads.length = 0;
        await verify(s, { key });
        expect(loads, 'then: answered from memory').toHaveLength(0);
      }
      loads.length = 0;
      expect((await verify(s, { key: 'acme_live_garbage' })).code).toBe('MALFORMED');
      expect(loads).toHaveLength(0);
    } finally {
      s.deps.verify.load = load;
    }
  });

  it('a login with an unknown email runs the same password check as a wrong password', async () => {
    const before = passwordChecks.count;
    await s.request('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password: 'wrong wrong wrong' } });
    expect(passwordChecks.count - before).toBe(1);
    await s.request('POST', '/v1/auth/login', { body: { email: 'nobody-at-all@example.com', password: 'wrong wrong wrong' } });
    expect(passwordChecks.count - before).toBe(2);
  });
});

describe('trusted proxies', () => {
  it('X-Forwarded-For is ignored unless it comes from a configured proxy', async () => {
    const plain = await startServer();
    const proxied = await startServer({ env: { KEYWARD_TRUST_PROXY: '127.0.0.1/32' } });
    try {
      for (const [s, expected] of [[plain, '127.0.0.1'], [proxied, '203.0.113.9']] as const) {
        const w = await world(s);
        await s.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, body: { name: 'x' }, headers: { 'x-forwarded-for': '203.0.113.9' } });
        const audit = await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit?action=key.create`, { token: w.token });
        expect(audit.body.data[0].ip).toBe(expected);
      }
      // Rotating a forged X-Forwarded-For does not reset the login limiter.
      for (let i = 0; i < 10; i++) {
        await plain.request('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password: `nope ${i}` }, headers: { 'x-forwarded-for': `198.51.100.${i}` } });
      }
      const blocked = await plain.request('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password: 'correct horse battery' }, headers: { 'x-forwarded-for': '198.51.100.200' } });
      expect(blocked.status).toBe(429);
    } finally {
      await plain.close();
      await proxied.close();
    }
  });
});
