// The shipped configs in deploy/, in front of an upstream API, with the real nginx and Caddy from
// Debian: what a client of the protected API sees, what the API receives, and that no attack on
// a gateway rule reaches the API. `keyward gateway check` is run against them too.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey, startServer, world, type TestServer, type World } from '../support/harness.js';
import { freePort } from '../support/redis-server.js';

const NGINX = '/usr/sbin/nginx';
const CADDY = '/usr/bin/caddy';
const CLI = path.resolve('dist/cli/main.js');
const have = (bin: string) => fs.existsSync(bin);
if (process.env.CI && !(have(NGINX) && have(CADDY))) throw new Error('CI must run the gateway suite: install nginx and caddy');

interface Gateway {
  url: string;
  stop(): Promise<void>;
}

interface Received {
  method: string;
  url: string;
  handler: string;
  headers: http.IncomingHttpHeaders;
}

/**
 * Where the most lenient router would send a path: percent-decoded, `\` read as `/`, `;params`
 * and fragments cut, slashes merged, dot segments resolved, case ignored. An attack that reaches
 * this upstream's `admin` handler would reach it on some real router.
 */
function leniently(target: string): string {
  let p = target.split('?')[0]!.split('#')[0]!;
  try {
    p = decodeURIComponent(p);
  } catch {
    // Left as it is.
  }
  const out: string[] = [];
  for (const seg of p.replaceAll('\\', '/').split('/')) {
    const s = seg.split(';')[0]!;
    if (s === '' || s === '.') continue;
    if (s === '..') out.pop();
    else out.push(s.toLowerCase());
  }
  const first = out[0] ?? '';
  return ['admin', 'reports', 'public', 'echo', 'keys'].includes(first) ? first : 'catchall';
}

/** The upstream API: records every request it receives, and answers with what it was told. */
async function startUpstream(): Promise<{ url: string; host: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const handler = leniently(req.url ?? '/');
    received.push({ method: req.method ?? '', url: req.url ?? '', handler, headers: req.headers });
    res.writeHead(200, { 'content-type': 'application/json' });
    const h = req.headers;
    res.end(JSON.stringify(handler === 'echo' ? { headers: h } : {
      reached: true, handler, path: req.url, keyId: h['x-keyward-key-id'] ?? null, ownerId: h['x-keyward-owner-id'] ?? null,
      environment: h['x-keyward-environment'] ?? null, code: h['x-keyward-code'] ?? null, rootKey: h['x-keyward-root-key'] ?? null,
    }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, received, close: () => new Promise((r) => server.close(() => r())) };
}

type Edit = (config: string) => string;

function fill(file: string, values: Record<string, string>, edit?: Edit): string {
  let text = fs.readFileSync(path.join('deploy', file), 'utf8');
  for (const [k, v] of Object.entries(values)) text = text.replaceAll(`__${k}__`, v);
  if (edit === undefined) return text;
  const edited = edit(text);
  if (edited === text) throw new Error(`the edit "${edit.name}" changed nothing in ${file}`);
  return edited;
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

type StartGateway = (keyward: string, appId: string, upstream: string, edit?: Edit) => Promise<Gateway>;

const startNginx: StartGateway = async (keyward, appId, upstream, edit) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-nginx-'));
  const port = await freePort();
  const conf = `daemon off;\nmaster_process off;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log warn;\nevents {}\nhttp {\n  access_log off;\n  client_body_temp_path ${dir}/body;\n  proxy_temp_path ${dir}/proxy;\n  fastcgi_temp_path ${dir}/fastcgi;\n  uwsgi_temp_path ${dir}/uwsgi;\n  scgi_temp_path ${dir}/scgi;\n${fill('nginx/keyward.conf', { LISTEN: `127.0.0.1:${port}`, KEYWARD: keyward, APP_ID: appId, UPSTREAM: upstream }, edit)}\n}\n`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), conf);
  const { child, log } = run(NGINX, ['-p', dir, '-c', path.join(dir, 'nginx.conf')]);
  const url = `http://127.0.0.1:${port}`;
  await waitForPort(url, child, () => log() + (fs.existsSync(`${dir}/error.log`) ? fs.readFileSync(`${dir}/error.log`, 'utf8') : ''));
  return { url, stop: async () => { await stop(child); fs.rmSync(dir, { recursive: true, force: true }); } };
};

const startCaddy: StartGateway = async (keyward, appId, upstream, edit) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-caddy-'));
  const port = await freePort();
  fs.writeFileSync(path.join(dir, 'Caddyfile'), fill('caddy/Caddyfile', { LISTEN: `http://127.0.0.1:${port}`, KEYWARD: keyward, APP_ID: appId, UPSTREAM: upstream }, edit));
  const { child, log } = run(CADDY, ['run', '--config', path.join(dir, 'Caddyfile'), '--adapter', 'caddyfile'], { ...process.env, HOME: dir, XDG_DATA_HOME: dir, XDG_CONFIG_HOME: dir });
  const url = `http://127.0.0.1:${port}`;
  await waitForPort(url, child, log);
  return { url, stop: async () => { await stop(child); fs.rmSync(dir, { recursive: true, force: true }); } };
};

/** The CLI as a child process (asynchronously: the Keyward it asks runs in this process). */
function keyward(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  if (!fs.existsSync(CLI)) throw new Error('dist/cli/main.js is missing: run `npm run build`');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** A request with its target sent byte for byte (fetch would resolve `..` and drop `#`). */
function raw(base: string, method: string, target: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path: target, headers: { ...headers, connection: 'close' } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Config edits that take out what the shipped configs must do, to show that Keyward fails closed. */
const withoutForwardedRequest: Record<string, Edit> = {
  nginx: function dropForwardedLines(t) {
    return t.replace(/^\s*proxy_set_header X-Forwarded-(Method|Uri) .*\n/gm, '');
  },
  caddy: function dropForwardedHeaders(t) {
    return t.replace(/header_up X-Forwarded-Method \{method\}/, 'header_up -X-Forwarded-Method').replace(/header_up X-Forwarded-Uri \{uri\}/, 'header_up -X-Forwarded-Uri');
  },
};

describe.runIf(have(NGINX) && have(CADDY)).each([
  ['nginx', startNginx],
  ['caddy', startCaddy],
] as const)('%s in front of an API, with the shipped config', (name, startGateway) => {
  let s: TestServer;
  let w: World;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let gw: Gateway;
  let reader: { id: string; key: string };
  let admin: { id: string; key: string };
  beforeAll(async () => {
    s = await startServer({ listen: true, env: { KEYWARD_TRUST_PROXY: '127.0.0.1' } });
    w = await world(s);
    upstream = await startUpstream();
    gw = await startGateway(new URL(s.url).host, w.appId, upstream.host);
    await s.request('PATCH', `/v1/apps/${w.appId}`, { token: w.token, body: { gatewayRules: [
      { path: '/admin/*', permissions: ['admin'] },
      { methods: ['GET'], path: '/reports/*', permissions: ['reports.read'] },
      { methods: ['DELETE'], path: '/orders/*', permissions: ['orders.delete'] },
      { path: '/keys', permissions: ['keys.admin'] },
    ] } });
    reader = await createKey(s, w, { permissions: ['orders.read'], environment: 'test' });
    admin = await createKey(s, w, { permissions: ['admin', 'reports.read'], ownerId: 'ops' });
  }, 30_000);
  afterAll(async () => {
    await gw?.stop();
    await upstream?.close();
    await s?.close();
  });

  const get = (p: string, headers: Record<string, string> = {}, method = 'GET') => fetch(gw.url + p, { method, headers });
  /** Runs an attack and returns its answer; the API must not have received anything. */
  const attack = async (method: string, target: string, headers: Record<string, string>) => {
    const before = upstream.received.length;
    const answer = await raw(gw.url, method, target, headers);
    expect(upstream.received.slice(before).map((r) => `${r.method} ${r.url}`), `${method} ${target} reached the API`).toEqual([]);
    return answer;
  };

  it('a valid key reaches the API, which learns the key, its owner and environment', async () => {
    const k = await createKey(s, w, { ownerId: 'customer_9' });
    const r = await get('/orders/1?expand=items', { authorization: `Bearer ${k.key}` });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ reached: true, keyId: k.id, ownerId: 'customer_9', environment: 'live', path: '/orders/1?expand=items' });
    expect((await get('/orders', { 'x-api-key': k.key })).status).toBe(200);
    // The rules let the right key through, in any spelling Keyward accepts.
    for (const p of ['/admin/x', '/ADMIN/x', '/%61dmin/x']) expect((await get(p, { authorization: `Bearer ${admin.key}` })).status, p).toBe(200);
  });

  it('missing, unknown and revoked keys: 401 and the API is not reached', async () => {
    const k = await createKey(s, w);
    await s.request('DELETE', `/v1/keys/${k.id}`, { token: w.token });
    for (const headers of [{}, { authorization: 'Bearer nonsense' }, { authorization: `Bearer ${k.key}` }] as Record<string, string>[]) {
      const r = await attack('GET', '/orders', headers);
      expect(r.status, JSON.stringify(headers)).toBe(401);
    }
  });

  it('spoofed X-Forwarded-* and X-Original-* headers cannot choose the method or path the rules see', async () => {
    const auth = { authorization: `Bearer ${reader.key}` };
    for (const headers of [
      { 'x-forwarded-uri': '/public' },
      { 'x-forwarded-method': 'GET' },
      { 'x-forwarded-uri': '/public', 'x-forwarded-method': 'GET' },
      { 'x-original-uri': '/public', 'x-original-method': 'GET' },
    ] as Record<string, string>[]) {
      expect((await attack('DELETE', '/orders/1', { ...auth, ...headers })).status, JSON.stringify(headers)).toBe(403);
      expect((await attack('GET', '/admin/secret', { ...auth, ...headers })).status, JSON.stringify(headers)).toBe(403);
    }
  });

  it('encoded paths, case and dot segments: refused (403 or 400), never reaching the API', async () => {
    const auth = { authorization: `Bearer ${reader.key}` };
    const forbidden = ['/ADMIN/x', '/Admin/x', '/%61dmin/x', '/%41DMIN/x', '/adm%69n/x'];
    const malformed = ['/x/../admin/x', '/public/../admin/x', '/%2e/admin/x', '/public/%2e%2e/admin/x', '//admin/x', '/admin;v=1/x',
      '/admin%2Fx', '/admin%5Cx', '/admin\\x', '/public#/../admin/x', '/admin/x%00', '/adm%zzin/x'];
    for (const target of forbidden) {
      const r = await attack('GET', target, auth);
      expect(r.status, target).toBe(403);
      expect(r.headers['x-keyward-code'], target).toBe('INSUFFICIENT_PERMISSIONS');
    }
    for (const target of malformed) {
      const r = await attack('GET', target, auth);
      expect(r.status, target).toBe(400);
    }
    // The malformed forms Keyward saw itself were refused as such (nginx refuses a few on its own).
    const own = await attack('GET', '/x/../admin/x', auth);
    expect(own.headers['x-keyward-code']).toBe('MALFORMED_PATH');
  });

  it('an exact rule covers its trailing-slash form, and no Unicode case folding reaches it', async () => {
    const auth = { authorization: `Bearer ${reader.key}` };
    for (const target of ['/keys', '/keys/', '/KEYS/', '/Keys/?x=1']) {
      const r = await attack('GET', target, auth);
      expect(r.status, target).toBe(403);
      expect(r.headers['x-keyward-code'], target).toBe('INSUFFICIENT_PERMISSIONS');
    }
    // U+212A (Kelvin sign) lower-cases to "k", U+017F (long s) upper-cases to "S": this API ignores case.
    for (const target of ['/%E2%84%AAeys', '/%E2%84%AAEYS/', '/key%C5%BF']) {
      const r = await attack('GET', target, auth);
      expect(r.status, target).toBe(400);
      expect(r.headers['x-keyward-code'], target).toBe('MALFORMED_PATH');
    }
    const keyAdmin = await createKey(s, w, { permissions: ['keys.admin'] });
    expect((await get('/keys/', { authorization: `Bearer ${keyAdmin.key}` })).status).toBe(200);
  });

  it('HEAD is checked like GET: a GET rule covers it', async () => {
    const r = await attack('HEAD', '/reports/q1', { authorization: `Bearer ${reader.key}` });
    expect(r.status).toBe(403);
    expect((await get('/reports/q1', { authorization: `Bearer ${admin.key}` }, 'HEAD')).status).toBe(200);
  });

  it('client-sent X-Keyward-* headers never reach the API: it sees only what Keyward answered', async () => {
    const spoof = { 'x-keyward-key-id': 'key_spoofedspoofedspoof', 'x-keyward-owner-id': 'someone-else', 'x-keyward-environment': 'live', 'x-keyward-code': 'VALID', 'x-keyward-root-key': 'kw_root_spoofed' };
    // A test key without an owner: the API must see test, and no owner.
    const r = await raw(gw.url, 'GET', '/orders/7', { authorization: `Bearer ${reader.key}`, ...spoof });
    expect(r.status).toBe(200);
    const seen = upstream.received.at(-1)!.headers;
    expect(seen['x-keyward-key-id']).toBe(reader.id);
    expect(seen['x-keyward-owner-id'] ?? '').toBe('');
    expect(seen['x-keyward-environment']).toBe('test');
    expect(seen['x-keyward-code']).toBeUndefined();
    expect(seen['x-keyward-root-key']).toBeUndefined();
    // Without a key they change nothing: 401, and the API is not reached.
    expect((await attack('GET', '/orders/7', spoof)).status).toBe(401);
  });

  it('the client\'s query never reaches Keyward\'s: a capped key is charged for each request', async () => {
    const capped = await createKey(s, w, { remaining: 10, ratelimit: null });
    for (const target of ['/orders?cost=0', `/orders?x=1&cost=0&appId=${w.appId}`, '/orders?permissions=', '/orders?&cost=0']) {
      expect((await raw(gw.url, 'GET', target, { authorization: `Bearer ${capped.key}` })).status, target).toBe(200);
    }
    expect((await s.request('GET', `/v1/keys/${capped.id}`, { token: w.token })).body.remaining).toBe(6);
  });

  it('the client address is the one the gateway sees, whatever X-Forwarded-For the client sends', async () => {
    const far = await createKey(s, w, { ipAllowlist: ['203.0.113.0/24'] });
    const local = await createKey(s, w, { ipAllowlist: ['127.0.0.1'] });
    const claim = (key: string, from: string) => get('/orders', { authorization: `Bearer ${key}`, 'x-forwarded-for': from });
    expect((await claim(far.key, '203.0.113.4')).status).toBe(403);
    expect((await claim(local.key, '203.0.113.4')).status).toBe(200);
  });

  it('a config that does not send the original method and URI fails closed: 400, the API never reached', async () => {
    const broken = await startGateway(new URL(s.url).host, w.appId, upstream.host, withoutForwardedRequest[name]);
    try {
      const before = upstream.received.length;
      for (const [method, target] of [['GET', '/orders/1'], ['DELETE', '/orders/1'], ['GET', '/admin/x']]) {
        const r = await raw(broken.url, method!, target!, { authorization: `Bearer ${admin.key}` });
        expect(r.status, `${method} ${target}`).toBe(400);
        expect(r.headers['x-keyward-code']).toBe('MISSING_FORWARDED_REQUEST');
      }
      expect(upstream.received.length).toBe(before);
    } finally {
      await broken.stop();
    }
  });

  it('a permission the gateway rules require: 403; rate limit and usage cap: 429 with Retry-After', async () => {
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

  it('a forwarded URI over 8 KB: 414, the API never reached', async () => {
    const r = await attack('GET', `/orders/${'a'.repeat(8300)}`, { authorization: `Bearer ${reader.key}` });
    expect(r.status).toBe(414);
  });

  it('`keyward gateway check` finds every attack refused', async () => {
    const check = await keyward(['--json', 'gateway', 'check', gw.url, '--key', reader.key, '--path', '/admin/x', '--public-path', '/orders', '--echo-path', '/echo']);
    expect(check.stderr).toBe('');
    const report = JSON.parse(check.stdout) as { results: { attack: string; outcome: string }[]; gotThrough: number };
    expect(report.results.filter((r) => r.outcome !== 'refused')).toEqual([]);
    expect(report.results.length).toBeGreaterThanOrEqual(15);
    expect(check.status).toBe(0);
  });
});

describe.runIf(have(NGINX))('`keyward gateway check` against nginx configs that let attacks through', () => {
  let s: TestServer;
  let w: World;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let reader: { key: string };
  beforeAll(async () => {
    s = await startServer({ listen: true, env: { KEYWARD_TRUST_PROXY: '127.0.0.1' } });
    w = await world(s);
    upstream = await startUpstream();
    await s.request('PATCH', `/v1/apps/${w.appId}`, { token: w.token, body: { gatewayRules: [{ path: '/admin/*', permissions: ['admin'] }] } });
    reader = await createKey(s, w);
  }, 30_000);
  afterAll(async () => {
    await upstream?.close();
    await s?.close();
  });

  const check = async (edit: Edit) => {
    const gw = await startNginx(new URL(s.url).host, w.appId, upstream.host, edit);
    try {
      const out = await keyward(['--json', 'gateway', 'check', gw.url, '--key', reader.key, '--path', '/admin/x', '--public-path', '/orders', '--echo-path', '/echo']);
      if (out.stdout === '') throw new Error(`gateway check printed nothing (exit ${out.status}): ${out.stderr}`);
      return { status: out.status, report: JSON.parse(out.stdout) as { results: { attack: string; outcome: string; detail?: string }[] } };
    } finally {
      await gw.stop();
    }
  };

  it('a config that passes the client\'s X-Forwarded-Method/-Uri on to Keyward: the spoofed-header attack is reported', async () => {
    const { status, report } = await check(withoutForwardedRequest.nginx!);
    expect(status).toBe(1);
    expect(report.results.find((r) => r.attack === 'spoofed X-Forwarded-Method/-Uri')?.outcome).toBe('got through');
  });

  it('a config that leaves the client\'s X-Keyward-Environment in place: the identity-header attack is reported', async () => {
    const { status, report } = await check(function keepClientEnvironment(t) {
      return t.replace(/^\s*proxy_set_header X-Keyward-Environment .*\n/m, '');
    });
    expect(status).toBe(1);
    const echo = report.results.find((r) => r.attack.startsWith('client-sent identity headers, with the key'));
    expect(echo?.outcome).toBe('got through');
    expect(echo?.detail).toContain('spoofed-env');
  });
});
