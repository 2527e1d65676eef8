// The shipped configs in deploy/, in front of a small upstream, with the real nginx and Caddy from
// Debian: what a client of the protected API sees, and what the API receives.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, startServer, world, type TestServer, type World } from './harness.js';
import { freePort } from './redis-server.js';

const NGINX = '/usr/sbin/nginx';
const CADDY = '/usr/bin/caddy';
const have = (bin: string) => fs.existsSync(bin);
if (process.env.CI && !(have(NGINX) && have(CADDY))) throw new Error('CI must run the gateway suite: install nginx and caddy');

interface Gateway {
  url: string;
  stop(): Promise<void>;
}

/** The upstream API: answers with the identity headers the gateway passed on. */
async function startUpstream(): Promise<{ url: string; host: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ reached: true, keyId: req.headers['x-keyward-key-id'] ?? null, ownerId: req.headers['x-keyward-owner-id'] ?? null, path: req.url }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

function fill(file: string, values: Record<string, string>): string {
  let text = fs.readFileSync(path.join('deploy', file), 'utf8');
  for (const [k, v] of Object.entries(values)) text = text.replaceAll(`__${k}__`, v);
  return text;
}

async function waitForPort(url: string, child: ChildProcess, log: () => string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) throw new Error(`gateway exited: ${log()}`);
    try {
      await fetch(url);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`gateway did not start: ${log()}`);
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): { child: ChildProcess; log: () => string } {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d));
  child.stderr!.on('data', (d: Buffer) => (out += d));
  return { child, log: () => out };
}

const stop = (child: ChildProcess) => new Promise<void>((resolve) => {
  if (child.exitCode !== null) return resolve();
  child.once('exit', () => resolve());
  child.kill('SIGTERM');
});

async function startNginx(keyward: string, appId: string, upstream: string): Promise<Gateway> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-nginx-'));
  const port = await freePort();
  const conf = `daemon off;\nmaster_process off;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log warn;\nevents {}\nhttp {\n  access_log off;\n  client_body_temp_path ${dir}/body;\n  proxy_temp_path ${dir}/proxy;\n  fastcgi_temp_path ${dir}/fastcgi;\n  uwsgi_temp_path ${dir}/uwsgi;\n  scgi_temp_path ${dir}/scgi;\n${fill('nginx/keyward.conf', { LISTEN: `127.0.0.1:${port}`, KEYWARD: keyward, APP_ID: appId, UPSTREAM: upstream })}\n}\n`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const { child, log } = run(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf')]);
  const url = `http://127.0.0.1:${port}`;
  await waitForPort(url, child, () => log() + (fs.existsSync(`${dir}/error.log`) ? fs.readFileSync(`${dir}/error.log`, 'utf8') : ''));
  return { url, stop: async () => { await stop(child); fs.rmSync(dir, { recursive: true, force: true }); } };
}

async function startCaddy(keyward: string, appId: string, upstream: string): Promise<Gateway> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-caddy-'));
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'Caddyfile'), fill('caddy/Caddyfile', { LISTEN: `http://127.0.0.1:${port}`, KEYWARD: keyward, APP_ID: appId, UPSTREAM: upstream }));
  const { child, log } = run(CADDY, ['run', '--config', path.join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir });
  const url = `http://127.0.0.1:${port}`;
  await waitForPort(url, child, log);
  return { url, stop: async () => { await stop(child); fs.rmSync(dir, { recursive: true, force: true }); } };
}

// nginx's config appends the client's address to any X-Forwarded-For it sent; Caddy, which does not
// trust the client, replaces it with the address it sees.
describe.runIf(have(NGINX) && have(CADDY)).each([
  ['nginx', startNginx, true],
  ['caddy', startCaddy, false],
] as const)('%s in front of an API, with the shipped config', (_name, startGateway, keepsClientChain) => {
  let s: TestServer;
  let w: World;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let gw: Gateway;
  beforeAll(async () => {
    s = await startServer({ listen: true, env: { KEYWARD_TRUST_PROXY: '127.0.0.1' } });
    w = await world(s);
    upstream = await startUpstream();
    gw = await startGateway(new URL(s.url).host, w.appId, upstream.host);
  }, 30_000);
  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
    await s?.close();
  });

  const get = (p: string, headers: Record<string, string> = {}, method = 'GET') => fetch(gw.url + p, { method, headers });

  it('a valid key reaches the API, which learns the key and its owner', async () => {
    const k = await createKey(s, w, { ownerId: 'customer_9' });
    const r = await get('/orders/1?expand=items', { authorization: `Bearer ${k.key}` });
    expect(r.status).toBe(200);
    expect(await r.json()).toEqual({ reached: true, keyId: k.id, ownerId: 'customer_9', path: '/orders/1?expand=items' });
    expect((await get('/orders', { 'x-api-key': k.key })).status).toBe(200);
  });

  it('missing, unknown and revoked keys: 401 and the API is not reached', async () => {
    const k = await createKey(s, w);
    await s.request('DELETE', `/v1/keys/${k.id}`, { token: w.token });
    for (const headers of [{}, { authorization: 'Bearer nonsense' }, { authorization: `Bearer ${k.key}` }] as Record<string, string>[]) {
      const r = await get('/orders', headers);
      expect(r.status, JSON.stringify(headers)).toBe(401);
      expect(await r.text()).not.toContain('reached');
    }
  });

  it('a permission the gateway rules require: 403; rate limit and usage cap: 429 with Retry-After', async () => {
    await s.request('PATCH', `/v1/apps/${w.appId}`, { token: w.token, body: { gatewayRules: [{ methods: ['DELETE'], path: '/orders/*', permissions: ['orders.delete'] }] } });
    const reader = await createKey(s, w, { permissions: ['orders.read'] });
    expect((await get('/orders/1', { authorization: `Bearer ${reader.key}` }, 'GET')).status).toBe(200);
    expect((await get('/orders/1', { authorization: `Bearer ${reader.key}` }, 'DELETE')).status).toBe(403);
    const limited = await createKey(s, w, { ratelimit: { limit: 1, durationMs: 60_000 } });
    expect((await get('/orders', { authorization: `Bearer ${limited.key}` })).status).toBe(200);
    const refused = await get('/orders', { authorization: `Bearer ${limited.key}` });
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
    const capped = await createKey(s, w, { remaining: 1, ratelimit: null });
    expect((await get('/orders', { authorization: `Bearer ${capped.key}` })).status).toBe(200);
    expect((await get('/orders', { authorization: `Bearer ${capped.key}` })).status).toBe(429);
  });

  it('an IP allowlist sees the client address the gateway forwards', async () => {
    const k = await createKey(s, w, { ipAllowlist: ['203.0.113.0/24'] });
    const local = await createKey(s, w, { ipAllowlist: ['127.0.0.1'] });
    const claim = (key: string, from: string) => get('/orders', { authorization: `Bearer ${key}`, 'x-forwarded-for': from });
    if (keepsClientChain) {
      // The test client is itself on a trusted address, so the address it claims is the client's.
      expect((await claim(k.key, '203.0.113.4')).status).toBe(200);
      expect((await claim(k.key, '198.51.100.4')).status).toBe(403);
    } else {
      // The gateway drops what the client claimed: the client is 127.0.0.1, whatever it says.
      expect((await claim(k.key, '203.0.113.4')).status).toBe(403);
      expect((await claim(local.key, '203.0.113.4')).status).toBe(200);
    }
  });
});

describe('Traefik and Envoy configs (not packaged here: checked for structure)', () => {
  it('Traefik forwards to /v1/forward-auth and passes the identity headers upstream', () => {
    const text = fs.readFileSync('deploy/traefik/dynamic.yml', 'utf8');
    expect(text).toMatch(/forwardAuth:\s*\n\s*address: "__KEYWARD__\/v1\/forward-auth\?appId=__APP_ID__"/);
    for (const h of ['X-Keyward-Key-Id', 'X-Keyward-Owner-Id']) expect(text).toContain(`- ${h}`);
    expect(text).toContain('trustForwardHeader: true');
  });

  it('Envoy ext_authz calls /v1/forward-auth with the original method, path and host', () => {
    const text = fs.readFileSync('deploy/envoy/envoy.yaml', 'utf8');
    expect(text).toContain('envoy.filters.http.ext_authz');
    expect(text).toMatch(/path_prefix: "\/v1\/forward-auth\?appId=__APP_ID__/);
    for (const h of ['x-forwarded-method', 'x-forwarded-uri', 'x-forwarded-host']) expect(text).toContain(`key: ${h}`);
    for (const h of ['retry-after', 'www-authenticate']) expect(text).toContain(`exact: ${h}`);
  });
});
