// Test harness: a real Keyward over a real store (a temp SQLite file, or a fresh PostgreSQL
// database), a clock tests can move, and small helpers that speak the public API. Requests go
// through app.inject() unless the test asks for a real listener (`listen: true`): the verify fast
// path, server-sent events, the SDK, the CLI and the browser need a socket; the rest does not.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { expect } from 'vitest';
import { buildApp, type App } from '../../src/app.js';
import { loadConfig } from '../../src/config.js';
import { createDeps, type Deps } from '../../src/deps.js';
import { ManualClock } from '../../src/lib/clock.js';

export type TestDialect = 'sqlite' | 'postgres';

/** `TEST_DIALECTS=sqlite,postgres` runs every store-backed suite against both. */
export const DIALECTS: TestDialect[] = (process.env.TEST_DIALECTS ?? 'sqlite')
  .split(',').map((s) => s.trim()).filter((s): s is TestDialect => s === 'sqlite' || s === 'postgres');

export const PG_ADMIN_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export async function createPgDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `keyward_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: PG_ADMIN_URL });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
    },
  };
}

export interface Answer<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface RequestOptions {
  body?: unknown;
  raw?: string;
  token?: string;
  headers?: Record<string, string>;
}

export interface TestServer {
  url: string;
  dialect: TestDialect;
  dataDir: string;
  clock: ManualClock;
  deps: Deps;
  app: App;
  /** The app of the last world() made on this server: verify() scopes to it unless told otherwise. */
  appId?: string;
  request<T = any>(method: string, path: string, opts?: RequestOptions): Promise<Answer<T>>;
  close(): Promise<void>;
}

export interface StartOptions {
  dialect?: TestDialect;
  env?: Record<string, string>;
  clock?: ManualClock;
  /** Reuse a data dir / database (restart scenarios). */
  dataDir?: string;
  databaseUrl?: string;
  /** Capture the log stream (tests that search logs for secrets). */
  logger?: import('pino').Logger;
  /** Serve on 127.0.0.1 (the verify fast path, streams, SDK, CLI, browser); else inject. */
  listen?: boolean;
  /** Name resolution for webhook deliveries (names with answers of the test's choosing). */
  resolve?: import('../../src/webhooks/sender.js').Resolve;
  /** Node's HTTP server settings set before it listens (timeouts, connectionsCheckingInterval). */
  server?: { headersTimeout?: number; requestTimeout?: number; keepAliveTimeout?: number; connectionsCheckingInterval?: number };
}

/**
 * `KEYWARD_TEST_SERVER_LOG=<file>` appends one line per server started (the test file's path):
 * for counting how many servers a run boots.
 */
function logServerStart(): void {
  const file = process.env.KEYWARD_TEST_SERVER_LOG;
  if (!file) return;
  fs.appendFileSync(file, `${path.relative(process.cwd(), expect.getState().testPath ?? 'unknown')}\n`);
}

export async function startServer(opts: StartOptions = {}): Promise<TestServer> {
  logServerStart();
  const dialect = opts.dialect ?? 'sqlite';
  const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-test-'));
  const pgDb = dialect === 'postgres' && !opts.databaseUrl ? await createPgDatabase() : undefined;
  const databaseUrl = opts.databaseUrl ?? pgDb?.url;
  const config = loadConfig({
    KEYWARD_DATA_DIR: dataDir,
    LOG_LEVEL: 'silent',
    KEYWARD_USAGE_FLUSH_MS: '50',
    // Password hashing at production cost (2^17) would dominate the suite's time; the rehash test raises it.
    KEYWARD_PASSWORD_COST: '12',
    KEYWARD_STREAM_RECHECK_MS: '50',
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    ...opts.env,
  });
  const clock = opts.clock ?? new ManualClock(Date.now());
  const deps = await createDeps(config, { clock, ...(opts.logger ? { logger: opts.logger } : {}), ...(opts.resolve ? { resolve: opts.resolve } : {}) });
  const app = await buildApp(deps.services);
  if (opts.server) Object.assign(app.server, opts.server);
  const address = opts.listen ? await app.listen({ port: 0, host: '127.0.0.1' }) : '';
  if (!opts.listen) await app.ready();

  async function send(method: string, urlPath: string, headers: Record<string, string>, body: string | undefined): Promise<{ status: number; headers: Headers; text: string }> {
    if (opts.listen) {
      const res = await fetch(address + urlPath, { method, headers, body });
      return { status: res.status, headers: res.headers, text: await res.text() };
    }
    const res = await app.inject({ method: method as 'GET', url: urlPath, headers, ...(body !== undefined ? { payload: body } : {}) });
    const h = new Headers();
    for (const [name, value] of Object.entries(res.headers)) {
      if (value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) h.append(name, String(v));
    }
    return { status: res.statusCode, headers: h, text: res.body };
  }

  async function request<T>(method: string, urlPath: string, o: RequestOptions = {}): Promise<Answer<T>> {
    const headers: Record<string, string> = { ...o.headers };
    let body: string | undefined;
    if (o.raw !== undefined) body = o.raw;
    else if (o.body !== undefined) {
      body = JSON.stringify(o.body);
      headers['content-type'] ??= 'application/json';
    }
    if (o.token) headers.authorization = `Bearer ${o.token}`;
    const res = await send(method, urlPath, headers, body);
    let parsed: any = res.text;
    if ((res.headers.get('content-type') ?? '').includes('json') && res.text.length > 0) parsed = JSON.parse(res.text);
    return { status: res.status, headers: res.headers, body: parsed as T, text: res.text };
  }

  return {
    url: address, dialect, dataDir, clock, deps, app, request,
    async close() {
      await app.close();
      await deps.close();
      if (pgDb) await pgDb.drop();
      if (!opts.dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface World {
  token: string;
  userId: string;
  workspaceId: string;
  appId: string;
  /** The user's email: owner@example.com for a server's first world, owner.w<n>@example.com after. */
  email: string;
  /** The app's key prefix: prefixes are unique across the instance, so later worlds tag theirs (acmew2, acmew3 …). */
  keyPrefix: string;
}

/** The password of every world's user. */
export const WORLD_PASSWORD = 'correct horse battery';
const FIRST_EMAIL = 'owner@example.com';

interface Worlds {
  made: number;
  /** A session of the setup user, who lets each later world's user in through the lobby. */
  admin?: string;
  /** A workspace of the setup user's, made at the second world: later users join it to get an account, then leave. */
  lobby?: string;
}
const worldsOf = new WeakMap<TestServer, Worlds>();

function expectStatus(res: Answer, status: number, what: string): Answer {
  if (res.status !== status) throw new Error(`world: ${what} answered ${res.status}: ${res.text}`);
  return res;
}

/** A live session of the setup user: the kept one, or a new login when a test ended it or moved the clock past its expiry. */
async function adminSession(s: TestServer, st: Worlds): Promise<string> {
  if (st.admin && (await s.request('GET', '/v1/auth/me', { token: st.admin })).status === 200) return st.admin;
  const login = expectStatus(await s.request('POST', '/v1/auth/login', { body: { email: FIRST_EMAIL, password: WORLD_PASSWORD } }), 200, 'login of the setup user');
  st.admin = login.body.token as string;
  return st.admin;
}

/**
 * A user with a workspace of their own and no other, on a server that already has one: the setup
 * user invites a new email into a lobby workspace, the invitee accepts (a new account and its
 * session), makes their workspace and is removed from the lobby.
 */
async function laterUser(s: TestServer, st: Worlds, n: number): Promise<Omit<World, 'appId' | 'keyPrefix'>> {
  const admin = await adminSession(s, st);
  if (!st.lobby) st.lobby = (expectStatus(await s.request('POST', '/v1/workspaces', { token: admin, body: { name: 'Harness lobby' } }), 201, 'lobby create')).body.id as string;
  const email = `owner.w${n}@example.com`;
  const invite = expectStatus(await s.request('POST', `/v1/workspaces/${st.lobby}/invitations`, { token: admin, body: { email, role: 'member' } }), 201, 'invite');
  const accepted = expectStatus(await s.request('POST', '/v1/invitations/accept', { body: { token: invite.body.token, password: WORLD_PASSWORD, name: 'owner' } }), 200, 'accept');
  const token = accepted.body.session.token as string;
  const userId = accepted.body.session.user.id as string;
  const ws = expectStatus(await s.request('POST', '/v1/workspaces', { token, body: { name: 'Acme' } }), 201, 'workspace create');
  expectStatus(await s.request('DELETE', `/v1/workspaces/${st.lobby}/members/${userId}`, { token: admin }), 204, 'leaving the lobby');
  return { token, userId, workspaceId: ws.body.id as string, email };
}

/**
 * A fresh world: a user, their workspace and one app; the starting point of most tests. The first
 * on a server runs setup; each later one is a new user with a workspace of their own, a member of
 * no other world's workspace, so tests can share a server and still not see each other's data.
 */
export async function world(s: TestServer, appBody: Record<string, unknown> = {}): Promise<World> {
  let st = worldsOf.get(s);
  if (!st) worldsOf.set(s, (st = { made: 0 }));
  const n = st.made + 1;
  let user: Omit<World, 'appId' | 'keyPrefix'>;
  if (n === 1) {
    const setup = await s.request('POST', '/v1/setup', { body: { email: FIRST_EMAIL, password: WORLD_PASSWORD, workspaceName: 'Acme' } });
    if (setup.status !== 201) throw new Error(`setup failed: ${setup.text}`);
    st.admin = setup.body.token as string;
    user = { token: setup.body.token, userId: setup.body.user.id, workspaceId: setup.body.workspaces[0].id, email: FIRST_EMAIL };
  } else {
    user = await laterUser(s, st, n);
  }
  const prefix = typeof appBody.keyPrefix === 'string' ? appBody.keyPrefix : 'acme';
  const keyPrefix = n === 1 ? prefix : `${prefix}w${n}`;
  const app = await s.request('POST', '/v1/apps', { token: user.token, body: { workspaceId: user.workspaceId, name: 'Acme API', ...appBody, keyPrefix } });
  if (app.status !== 201) throw new Error(`app create failed: ${app.text}`);
  st.made = n;
  s.appId = app.body.id;
  return { ...user, appId: app.body.id, keyPrefix };
}

/** '' in a server's first world, 'w<n>' in its n-th: for what must be unique across a server. */
export function tagOf(w: World): string {
  return /^owner\.(w\d+)@/.exec(w.email)?.[1] ?? '';
}

/**
 * An email of the test's own, for accounts a test makes besides the world's user: `local@example.com`
 * in a server's first world, `local.w<n>@example.com` in its n-th (accounts are per server, not
 * per world, so two tests on one server must not both make `admin@example.com`).
 */
export function mailOf(w: World, local: string): string {
  const tag = tagOf(w);
  return `${local}${tag ? `.${tag}` : ''}@example.com`;
}

/** A key prefix of the test's own (prefixes are unique across the instance): `base`, or `base` + 'w<n>' in a server's n-th world. */
export function prefixOf(w: World, base: string): string {
  return `${base}${tagOf(w)}`;
}

/** Invites an email into the world's workspace and accepts as a new account: its session and user id. */
export async function addMember(s: TestServer, w: World, email: string, role: 'owner' | 'admin' | 'member', password: string): Promise<{ token: string; userId: string }> {
  const invite = await s.request('POST', `/v1/workspaces/${w.workspaceId}/invitations`, { token: w.token, body: { email, role } });
  if (invite.status !== 201) throw new Error(`invite failed: ${invite.status} ${invite.text}`);
  const accepted = await s.request('POST', '/v1/invitations/accept', { body: { token: invite.body.token, password } });
  if (accepted.status !== 200) throw new Error(`accept failed: ${accepted.status} ${accepted.text}`);
  return { token: accepted.body.session.token, userId: accepted.body.session.user.id };
}

export async function createKey(s: TestServer, w: World, body: Record<string, unknown> = {}): Promise<{ id: string; key: string; body: any }> {
  const res = await s.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, body: { name: 'test key', ...body } });
  if (res.status !== 201) throw new Error(`key create failed: ${res.status} ${res.text}`);
  return { id: res.body.id, key: res.body.key, body: res.body };
}

/** Verify through the API, scoped to the world's app unless the body names one (or `appId: undefined`). */
export async function verify(s: TestServer, body: Record<string, unknown>, opts: RequestOptions = {}): Promise<any> {
  const scoped = 'appId' in body ? body : { appId: s.appId, ...body };
  const res = await s.request('POST', '/v1/keys/verify', { ...opts, body: JSON.parse(JSON.stringify(scoped)) });
  if (res.status !== 200) throw new Error(`verify answered ${res.status}: ${res.text}`);
  return res.body;
}

/**
 * Every row of every table, for "nothing changed" assertions. Last-use times are left out: they
 * are written in the background for earlier, accepted requests, whenever the flush runs.
 */
export async function snapshot(s: TestServer): Promise<string> {
  const tables = ['users', 'workspaces', 'members', 'apps', 'keys', 'key_hashes', 'root_keys', 'audit_log', 'settings', 'vault_secrets', 'invitations', 'webhooks', 'webhook_events', 'webhook_deliveries', 'webhook_attempts', 'identities', 'ratelimit_overrides'] as const;
  const out: Record<string, unknown[]> = {};
  for (const t of tables) {
    const rows = (await s.deps.store.db.selectFrom(t).selectAll().execute()) as Record<string, unknown>[];
    out[t] = rows.map(({ last_used_at: _ignored, ...rest }) => rest).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  }
  return JSON.stringify(out);
}
