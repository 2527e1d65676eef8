// Traefik and Envoy are not packaged here, so their configs cannot run: each is parsed, and what
// it makes Keyward see (the URL called and the headers sent, per Traefik's ForwardAuth and Envoy's
// ext_authz as their documentation and source describe them) is built from the parsed config for
// a set of attacking client requests, sent to a real Keyward, and the answer and the headers the
// API would receive are checked.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createKey, startServer, world, type TestServer, type World } from '../support/harness.js';

interface ClientRequest {
  method: string;
  /** The request target as the client sent it. */
  target: string;
  headers: Record<string, string>;
  /** The client's address as the gateway sees it. */
  peer: string;
}

interface AuthRequest {
  /** Path and query of the request to Keyward. */
  url: string;
  headers: Record<string, string>;
}

interface GatewayModel {
  authRequest(c: ClientRequest): AuthRequest;
  /** The headers the API receives after Keyward answered 200 with `answer`. */
  upstreamHeaders(c: ClientRequest, answer: Headers): Record<string, string>;
}

const lower = (h: Record<string, string>) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));

/** Go's url.URL.RequestURI(): the raw path when it is a valid encoding, else the path re-escaped. */
function goRequestUri(target: string): string {
  const q = target.indexOf('?');
  const rawPath = q === -1 ? target : target.slice(0, q);
  const query = q === -1 ? '' : target.slice(q);
  // Go's request parsing keeps `#` in the path; characters Go's shouldEscape flags make RawPath
  // invalid, and the decoded path is escaped again (`\` becomes %5C, `#` %23).
  const valid = /^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/.test(rawPath);
  if (valid) return rawPath + query;
  const decoded = decodeURIComponent(rawPath);
  return decoded.replace(/[^A-Za-z0-9\-._~!$&'()*+,;=:@/]/g, (c) => encodeURIComponent(c).replace(/[!'()*]/g, (x) => `%${x.charCodeAt(0).toString(16).toUpperCase()}`)) + query;
}

/** Traefik's ForwardAuth middleware (pkg/middlewares/auth/forward.go, writeHeader) and its headers middleware. */
function traefik(config: any, keyward: string, appId: string): GatewayModel {
  const middlewares = config.http.middlewares;
  const router = config.http.routers.api;
  const fa = middlewares.keyward.forwardAuth;
  const address = new URL(String(fa.address).replace('__KEYWARD__', keyward).replace('__APP_ID__', appId));
  const trust = fa.trustForwardHeader === true;
  const allowed: string[] | undefined = fa.authRequestHeaders?.map((h: string) => h.toLowerCase());
  const fromAuth: string[] = (fa.authResponseHeaders ?? []).map((h: string) => h.toLowerCase());
  const removedByHeaders = (name: string) => Object.entries(middlewares[name]?.headers?.customRequestHeaders ?? {}).filter(([, v]) => v === '').map(([k]) => k.toLowerCase());
  const strip = (router.middlewares as string[]).filter((m) => m !== 'keyward').flatMap(removedByHeaders);
  return {
    authRequest(c) {
      const client = lower(c.headers);
      // All client headers are copied, or only authRequestHeaders when set.
      const headers: Record<string, string> = allowed ? Object.fromEntries(Object.entries(client).filter(([k]) => allowed.includes(k))) : { ...client };
      const fwd = (name: string, own: string) => (trust && client[name] ? client[name]! : own);
      headers['x-forwarded-method'] = fwd('x-forwarded-method', c.method);
      headers['x-forwarded-uri'] = fwd('x-forwarded-uri', goRequestUri(c.target));
      headers['x-forwarded-host'] = fwd('x-forwarded-host', client.host ?? 'api.example.com');
      headers['x-forwarded-for'] = trust && client['x-forwarded-for'] ? `${client['x-forwarded-for']}, ${c.peer}` : c.peer;
      // The address is called as written: nothing of the client's request is added to it.
      return { url: address.pathname + address.search, headers };
    },
    upstreamHeaders(c, answer) {
      const headers = lower(c.headers);
      for (const name of strip) delete headers[name];
      for (const name of fromAuth) {
        delete headers[name];
        const v = answer.get(name);
        if (v !== null) headers[name] = v;
      }
      return headers;
    },
  };
}

/** Envoy's HTTP ext_authz filter, with the header_mutation filter before it. */
function envoy(config: any, appId: string): GatewayModel {
  const hcm = config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  const filters: any[] = hcm.http_filters;
  const authIndex = filters.findIndex((f) => f.name === 'envoy.filters.http.ext_authz');
  const authz = filters[authIndex].typed_config;
  const removedBefore = filters.slice(0, authIndex).filter((f) => f.name === 'envoy.filters.http.header_mutation')
    .flatMap((f) => f.typed_config.mutations.request_mutations.filter((m: any) => m.remove).map((m: any) => String(m.remove).toLowerCase()));
  const service = authz.http_service;
  const prefix = String(service.path_prefix).replace('__APP_ID__', appId);
  const allowed: string[] = service.authorization_request.allowed_headers.patterns.map((p: any) => p.exact);
  const added: { key: string; value: string }[] = service.authorization_request.headers_to_add;
  const upstreamAllowed: string[] = service.authorization_response.allowed_upstream_headers.patterns.map((p: any) => p.exact);
  const substitute = (value: string, c: ClientRequest) => value
    .replace('%REQ(:METHOD)%', c.method).replace('%REQ(:PATH)%', c.target)
    .replace('%REQ(:AUTHORITY)%', lower(c.headers).host ?? 'api.example.com').replace('%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%', c.peer);
  return {
    authRequest(c) {
      const client = lower(c.headers);
      for (const name of removedBefore) delete client[name];
      const headers: Record<string, string> = Object.fromEntries(Object.entries(client).filter(([k]) => allowed.includes(k)));
      // headers_to_add overrides a client header of the same name.
      for (const { key, value } of added) headers[key.toLowerCase()] = substitute(value, c);
      // ext_authz calls path_prefix followed by the client's :path, query included.
      return { url: prefix + c.target, headers };
    },
    upstreamHeaders(c, answer) {
      const headers = lower(c.headers);
      for (const name of removedBefore) delete headers[name];
      for (const name of upstreamAllowed) {
        const v = answer.get(name);
        if (v !== null) headers[name] = v;
      }
      return headers;
    },
  };
}

const IDENTITY = ['x-keyward-key-id', 'x-keyward-owner-id', 'x-keyward-environment', 'x-keyward-code', 'x-keyward-root-key'];

describe('Traefik and Envoy configs: what they make Keyward see', () => {
  let s: TestServer;
  let w: World;
  let reader: { id: string; key: string };
  let capped: { id: string; key: string };
  const configs: [string, () => GatewayModel][] = [
    ['traefik', () => traefik(parse(fs.readFileSync('deploy/traefik/dynamic.yml', 'utf8')), s.url, w.appId)],
    ['envoy', () => envoy(parse(fs.readFileSync('deploy/envoy/envoy.yaml', 'utf8')), w.appId)],
  ];

  beforeAll(async () => {
    s = await startServer({ listen: true, env: { KEYWARD_TRUST_PROXY: '127.0.0.1' } });
    w = await world(s);
    await s.request('PATCH', `/v1/apps/${w.appId}`, { token: w.token, body: { gatewayRules: [
      { path: '/admin/*', permissions: ['admin'] },
      { methods: ['GET'], path: '/reports/*', permissions: ['reports'] },
      { methods: ['DELETE'], path: '/orders/*', permissions: ['orders.delete'] },
    ] } });
    reader = await createKey(s, w, { environment: 'test', ipAllowlist: ['198.51.100.0/24'] });
    capped = await createKey(s, w, { remaining: 100, ratelimit: null });
  });
  afterAll(async () => s.close());

  /** Through the model to the real Keyward: the answer, and what the API would receive. */
  const through = async (model: GatewayModel, c: ClientRequest) => {
    const auth = model.authRequest(c);
    const answer = await fetch(s.url + auth.url, { headers: auth.headers });
    return { auth, status: answer.status, code: answer.headers.get('x-keyward-code'), upstream: answer.status === 200 ? model.upstreamHeaders(c, answer.headers) : null };
  };
  const client = (method: string, target: string, headers: Record<string, string> = {}, key = reader.key): ClientRequest =>
    ({ method, target, headers: { host: 'api.example.com', authorization: `Bearer ${key}`, ...headers }, peer: '198.51.100.7' });

  it.each(configs)('%s: the original request is set by the gateway; the client\'s X-Forwarded-*/X-Original-* never count', async (_name, make) => {
    const model = make();
    const spoof = { 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/public', 'x-original-method': 'GET', 'x-original-uri': '/public', 'x-forwarded-for': '203.0.113.1', 'x-forwarded-host': 'evil.example' };
    const r = await through(model, client('DELETE', '/orders/1', spoof));
    expect(r.auth.headers['x-forwarded-method']).toBe('DELETE');
    expect(r.auth.headers['x-forwarded-uri']).toBe('/orders/1');
    expect(r.auth.headers['x-forwarded-for']).toBe('198.51.100.7');
    expect(r.auth.headers['x-forwarded-host']).toBe('api.example.com');
    for (const h of ['x-original-method', 'x-original-uri', 'x-keyward-root-key']) expect(r.auth.headers[h], h).toBeUndefined();
    expect([r.status, r.code]).toEqual([403, 'INSUFFICIENT_PERMISSIONS']);
    const admin = await through(model, client('GET', '/admin/x', spoof));
    expect([admin.status, admin.code]).toEqual([403, 'INSUFFICIENT_PERMISSIONS']);
    // The client's address is the peer's: the key's allowlist holds it.
    expect((await through(model, client('GET', '/orders/1', spoof))).status).toBe(200);
  });

  it.each(configs)('%s: encoded paths, dot segments and HEAD are refused', async (_name, make) => {
    const model = make();
    for (const target of ['/ADMIN/x', '/%61dmin/x', '/adm%69n/x']) expect((await through(model, client('GET', target))).code, target).toBe('INSUFFICIENT_PERMISSIONS');
    for (const target of ['/x/../admin/x', '/%2e/admin/x', '//admin/x', '/admin;v=1/x', '/admin%2Fx', '/admin\\x', '/public#/../admin/x', '/admin/x%00']) {
      const r = await through(model, client('GET', target));
      expect([r.status, r.code], target).toEqual([400, 'MALFORMED_PATH']);
    }
    expect((await through(model, client('HEAD', '/reports/q1'))).code).toBe('INSUFFICIENT_PERMISSIONS');
  });

  it.each(configs)('%s: the client\'s path and query never reach Keyward\'s query; a capped key is charged every time', async (_name, make) => {
    const model = make();
    const before = (await s.request('GET', `/v1/keys/${capped.id}`, { token: w.token })).body.remaining as number;
    for (const target of ['/public?x=1&cost=0', `/public?appId=${w.appId}&cost=0&permissions=`, '/public?&cost=0#']) {
      const r = await through(model, client('GET', target.replace('#', ''), { 'x-forwarded-for': '' }, capped.key));
      expect(r.status, target).toBe(200);
      // Either the app is named in the path (all after it is the client's, never read), or the
      // query is the config's alone.
      if (!r.auth.url.startsWith(`/v1/forward-auth/${w.appId}/`)) expect(r.auth.url, target).toBe(`/v1/forward-auth?appId=${w.appId}`);
    }
    expect((await s.request('GET', `/v1/keys/${capped.id}`, { token: w.token })).body.remaining).toBe(before - 3);
  });

  it.each(configs)('%s: the API receives only Keyward\'s X-Keyward-* headers, never the client\'s', async (_name, make) => {
    const model = make();
    const spoof = { 'x-keyward-key-id': 'key_spoofedspoofedspoof', 'x-keyward-owner-id': 'someone-else', 'x-keyward-environment': 'live', 'x-keyward-code': 'SPOOFED', 'x-keyward-root-key': 'kw_root_spoofed' };
    const r = await through(model, client('GET', '/orders/1', spoof));
    expect(r.status).toBe(200);
    const seen = r.upstream!;
    expect(seen['x-keyward-key-id']).toBe(reader.id);
    expect(seen['x-keyward-owner-id'] ?? '').toBe('');
    expect(seen['x-keyward-environment']).toBe('test');
    expect(seen['x-keyward-code']).toBeUndefined();
    expect(seen['x-keyward-root-key']).toBeUndefined();
    for (const h of IDENTITY) expect(Object.values(seen)).not.toContain(spoof[h as keyof typeof spoof]);
  });

  it('the parsed configs say so themselves', () => {
    const t = parse(fs.readFileSync('deploy/traefik/dynamic.yml', 'utf8'));
    const fa = t.http.middlewares.keyward.forwardAuth;
    expect(fa.trustForwardHeader).toBe(false);
    expect(fa.authRequestHeaders.map((h: string) => h.toLowerCase()).sort()).toEqual(['authorization', 'x-api-key']);
    expect(fa.authResponseHeaders.map((h: string) => h.toLowerCase()).sort()).toEqual(IDENTITY.slice(0, 3).sort());
    expect(t.http.routers.api.middlewares).toEqual(['keyward-strip', 'keyward']);
    expect(Object.keys(t.http.middlewares['keyward-strip'].headers.customRequestHeaders).map((h) => h.toLowerCase()).sort()).toEqual(['x-keyward-code', 'x-keyward-root-key']);
    expect(fa.address).toBe('__KEYWARD__/v1/forward-auth?appId=__APP_ID__');
    const e = parse(fs.readFileSync('deploy/envoy/envoy.yaml', 'utf8'));
    const filters = e.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.http_filters;
    expect(filters.map((f: any) => f.name)).toEqual(['envoy.filters.http.header_mutation', 'envoy.filters.http.ext_authz', 'envoy.filters.http.router']);
    const authz = filters[1].typed_config;
    expect(authz.http_service.path_prefix).toBe('/v1/forward-auth/__APP_ID__');
    expect(authz.failure_mode_allow).toBe(false);
    expect(filters[0].typed_config.mutations.request_mutations.map((m: any) => m.remove).sort()).toEqual([...IDENTITY].sort());
  });
});
