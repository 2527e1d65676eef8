// Test harness: a real Keyward over a real store (a temp SQLite file, or a fresh PostgreSQL
// database), a clock tests can move, and small helpers that speak the public API. Requests go
// through app.inject() unless the test asks for a real listener (`listen: true`): the verify fast
// path, server-sent events, the SDK, the CLI and the browser need a socket; the rest does not.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
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

export async function startServer(opts: StartOptions = {}): Promise<TestServer> {
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
}

/** Setup, then one app: the starting point of most tests. */
export async function world(s: TestServer, appBody: Record<string, unknown> = {}): Promise<World> {
  const setup = await s.request('POST', '/v1/setup', { body: { email: 'owner@example.com', password: 'correct horse battery', workspaceName: 'Acme' } });
  if (setup.status !== 201) throw new Error(`setup failed: ${setup.text}`);
  const token = setup.body.token as string;
  const workspaceId = setup.body.workspaces[0].id as string;
  const app = await s.request('POST', '/v1/apps', { token, body: { workspaceId, name: 'Acme API', keyPrefix: 'acme', ...appBody } });
  if (app.status !== 201) throw new Error(`app create failed: ${app.text}`);
  s.appId = app.body.id;
  return { token, userId: setup.body.user.id, workspaceId, appId: app.body.id };
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
