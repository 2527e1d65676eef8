// The real keyward binary against a real server on 127.0.0.1.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, verify, world, type TestServer, type World } from '../support/harness.js';
import { startReceiver } from '../support/webhook-receiver.js';

const BIN = path.resolve('dist/cli/main.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function keyward(args: string[], env: Record<string, string> = {}, stdin?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
    if (stdin !== undefined) child.stdin!.end(stdin);
    else child.stdin!.end();
  });
}

describe('keyward CLI', () => {
  let s: TestServer;
  let w: World;
  let env: Record<string, string>;
  let configDir: string;
  beforeAll(async () => {
    if (!fs.existsSync(BIN)) throw new Error('dist/cli/main.js is missing: run `npm run build` (npm test does)');
    s = await startServer({ listen: true, env: { KEYWARD_WEBHOOK_ALLOW_PRIVATE: '1' } });
    w = await world(s);
    const root = await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'cli', permissions: ['*'] } });
    configDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-cli-'));
    env = { KEYWARD_URL: s.url, KEYWARD_ROOT_KEY: root.body.key, KEYWARD_CONFIG_DIR: configDir };
  });
  afterAll(async () => {
    await s.close();
    fs.rmSync(configDir, { recursive: true, force: true });
  });

  it('identities, named limits, overrides and the standalone limiter', async () => {
    const made = await keyward(['identities', 'create', 'cli_cust', '--meta', '{"plan":"pro"}', '--named', 'calls=2/1m:auto'], env);
    expect(made.code, made.stderr).toBe(0);
    const identityId = /\((idt_\w+)\)/.exec(made.stdout)![1]!;
    const gen = await keyward(['keys', 'generate', '--app', w.appId, '--owner', 'cli_cust', '--named', 'tokens=100/1m'], env);
    expect(gen.code, gen.stderr).toBe(0);
    const key = /key: (\S+)/.exec(gen.stdout)![1]!;
    const answer = await verify(s, { key, ratelimits: [{ name: 'tokens', cost: 30 }] });
    expect(answer.ratelimits.map((l: { name: string; remaining: number }) => [l.name, l.remaining])).toEqual([['tokens', 70], ['calls', 1]]);
    expect(answer.identity.meta).toEqual({ plan: 'pro' });
    const list = await keyward(['identities', 'list', '--search', 'cli_'], env);
    expect(list.stdout).toContain('calls=2/60s:auto');
    const set = await keyward(['overrides', 'set', '--name', 'calls', '--identifier', 'cli_*', '--limit', '5/1m'], env);
    expect(set.code, set.stderr).toBe(0);
    expect((await verify(s, { key, dryRun: true })).ratelimits[0]).toMatchObject({ name: 'calls', limit: 5 });
    expect((await keyward(['overrides', 'set', '--identifier', 'x', '--limit', '5/1m'], env)).code).toBe(2);
    expect((await keyward(['identities', 'delete', identityId], env)).code).toBe(1);
    expect((await keyward(['identities', 'delete', identityId, '--force'], env)).code).toBe(0);
    const first = await keyward(['ratelimit', 'login', 'user_1', '--limit', '1/1m'], env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^admitted: 0 of 1 left/);
    const second = await keyward(['--json', 'ratelimit', 'login', 'user_1', '--limit', '1/1m'], env);
    expect(second.code).toBe(1);
    expect(JSON.parse(second.stdout)).toMatchObject({ success: false, limit: 1, remaining: 0 });
  });

  it('keys generate → the printed key verifies; list shows it; roll and revoke work', async () => {
    const gen = await keyward(['keys', 'generate', '--app', w.appId, '--name', 'from cli', '--owner', 'u7', '--permissions', 'a,b', '--ratelimit', '50/1m'], env);
    expect(gen.code, gen.stderr).toBe(0);
    const key = /key: (\S+)/.exec(gen.stdout)![1]!;
    expect(await verify(s, { key, permissions: ['a'] })).toMatchObject({ code: 'VALID', ownerId: 'u7', ratelimit: { limit: 50 } });
    const id = /\((key_\w+)\)/.exec(gen.stdout)![1]!;

    const list = await keyward(['keys', 'list', '--app', w.appId], env);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/ID\s+NAME\s+START/);
    expect(list.stdout).toContain('from cli');
    expect(list.stdout).not.toContain(key);

    const json = await keyward(['--json', 'keys', 'list', '--app', w.appId, '--owner', 'u7'], env);
    expect(JSON.parse(json.stdout)).toMatchObject({ total: 1, data: [{ id, name: 'from cli' }] });

    const roll = await keyward(['--json', 'keys', 'roll', id, '--grace', '1m'], env);
    const rolled = JSON.parse(roll.stdout).key as string;
    expect((await verify(s, { key: rolled })).code).toBe('VALID');
    expect((await verify(s, { key })).code).toBe('VALID');

    const revoke = await keyward(['keys', 'revoke', id], env);
    expect(revoke.code).toBe(0);
    expect(revoke.stdout).toMatch(/^revoked from cli/);
    expect((await verify(s, { key: rolled })).code).toBe('REVOKED');
    const again = await keyward(['keys', 'revoke', id], env);
    expect(again.stdout).toMatch(/was already revoked on .*; nothing changed/);
    // Revoking twice is not a second success: its own exit code.
    expect(again.code).toBe(5);
  });

  it('keys show, update, disable and enable; root keys create, list and revoke', async () => {
    const gen = await keyward(['--json', 'keys', 'generate', '--app', w.appId, '--name', 'managed'], env);
    const { id, key } = JSON.parse(gen.stdout) as { id: string; key: string };
    const updated = await keyward(['keys', 'update', id, '--owner', 'u9', '--permissions', 'x,y', '--ratelimit', '10/1m', '--expires', '30d'], env);
    expect(updated.code, updated.stderr).toBe(0);
    const shown = await keyward(['--json', 'keys', 'show', id], env);
    expect(JSON.parse(shown.stdout)).toMatchObject({ id, ownerId: 'u9', permissions: ['x', 'y'], ratelimit: { limit: 10, durationMs: 60_000 } });
    expect(shown.stdout).not.toContain(key);
    expect((await keyward(['keys', 'show', id], env)).stdout).toMatch(/ownerId\s+u9/);
    expect((await keyward(['keys', 'disable', id], env)).stdout).toContain('is disabled');
    expect((await verify(s, { key })).code).toBe('DISABLED');
    expect((await keyward(['keys', 'enable', id], env)).stdout).toContain('is active');
    expect((await verify(s, { key })).code).toBe('VALID');
    expect((await keyward(['keys', 'update', id], env)).code).toBe(2);

    const created = await keyward(['--json', 'root-keys', 'create', 'verifier', '--permissions', 'keys:verify'], env);
    expect(created.code, created.stderr).toBe(0);
    const root = JSON.parse(created.stdout) as { id: string; key: string };
    expect((await verify(s, { key, appId: undefined }, { headers: { authorization: `Bearer ${root.key}` } })).code).toBe('VALID');
    const listed = await keyward(['root-keys', 'list'], env);
    expect(listed.stdout).toContain('verifier');
    expect(listed.stdout).not.toContain(root.key);
    expect((await keyward(['root-keys', 'revoke', root.id], env)).code).toBe(0);
    expect((await s.request('POST', '/v1/keys/verify', { body: { key }, headers: { authorization: `Bearer ${root.key}` } })).status).toBe(401);
  });

  it('webhooks create (secret once), list, deliveries, retry, disable, rotate-secret, delete', async () => {
    const rx = await startReceiver();
    try {
      const created = await keyward(['webhooks', 'create', rx.url, '--events', 'key.created,key.revoked', '--description', 'ops'], env);
      expect(created.code, created.stderr).toBe(0);
      const secret = /secret: (whsec_\S+)/.exec(created.stdout)![1]!;
      const id = /webhook (wh_\w+)/.exec(created.stdout)![1]!;
      const listed = await keyward(['webhooks', 'list'], env);
      expect(listed.stdout).toMatch(/ID\s+URL\s+EVENTS/);
      expect(listed.stdout).toContain('key.created,key.revoked');
      expect(listed.stdout).not.toContain(secret);

      expect((await keyward(['keys', 'generate', '--app', w.appId, '--name', 'hooked'], env)).code).toBe(0);
      await rx.waitFor(1);
      let deliveries = await keyward(['--json', 'webhooks', 'deliveries', id], env);
      for (let i = 0; i < 100 && JSON.parse(deliveries.stdout).data[0]?.status !== 'delivered'; i++) deliveries = await keyward(['--json', 'webhooks', 'deliveries', id], env);
      const [delivery] = JSON.parse(deliveries.stdout).data;
      expect(delivery).toMatchObject({ type: 'key.created', status: 'delivered', responseStatus: 200 });
      expect((await keyward(['webhooks', 'deliveries', id, '--status', 'delivered'], env)).stdout).toMatch(/key\.created\s+delivered\s+1\s+200/);
      expect((await keyward(['webhooks', 'deliveries', id, '--status', 'bogus'], env)).code).toBe(2);

      expect((await keyward(['webhooks', 'retry', id, delivery.id], env)).code).toBe(0);
      const again = await rx.waitFor(2);
      expect(again[1]!.headers['webhook-id']).toBe(again[0]!.headers['webhook-id']);

      expect((await keyward(['webhooks', 'disable', id], env)).stdout).toContain('disabled');
      expect((await keyward(['webhooks', 'show', id], env)).stdout).toMatch(/disabled/);
      expect((await keyward(['webhooks', 'enable', id], env)).code).toBe(0);
      const rotated = await keyward(['webhooks', 'rotate-secret', id], env);
      expect(rotated.stdout).toMatch(/secret: whsec_/);
      expect(rotated.stdout).not.toContain(secret);
      expect((await keyward(['webhooks', 'update', id], env)).code).toBe(2);
      const refused = await keyward(['webhooks', 'create', 'ftp://example.com/x', '--events', 'key.created'], env);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain('body/url');
      expect((await keyward(['webhooks', 'delete', id], env)).code).toBe(0);
      expect((await keyward(['webhooks', 'show', id], env)).code).toBe(4);
    } finally {
      await rx.close();
    }
  }, 30_000);

  it('apps list/create and vault set/get/list/rm', async () => {
    const created = await keyward(['--json', 'apps', 'create', 'CLI App', '--prefix', 'cliapp'], env);
    expect(created.code, created.stderr).toBe(0);
    const appId = JSON.parse(created.stdout).id as string;
    expect((await keyward(['apps', 'list'], env)).stdout).toContain('cliapp');
    // Every list prints the same envelope as keys list: { data, total }.
    const apps = JSON.parse((await keyward(['--json', 'apps', 'list'], env)).stdout) as { data: { id: string }[]; total: number };
    expect(apps.data.map((a) => a.id)).toContain(appId);
    expect(apps.total).toBe(apps.data.length);
    expect((await keyward(['vault', 'set', '--app', appId, 'API_TOKEN'], env, 'from-stdin-value\n')).code).toBe(0);
    expect((await keyward(['vault', 'get', '--app', appId, 'API_TOKEN'], env)).stdout).toBe('from-stdin-value\n');
    const names = await keyward(['vault', 'list', '--app', appId], env);
    expect(names.stdout).toContain('API_TOKEN');
    expect(names.stdout).not.toContain('from-stdin-value');
    expect((await keyward(['vault', 'rm', '--app', appId, 'API_TOKEN'], env)).code).toBe(0);
    expect((await keyward(['vault', 'get', '--app', appId, 'API_TOKEN'], env)).code).toBe(4);
  });

  it('login saves a 0600 profile that later commands use', async () => {
    const login = await keyward(['login', '--url', s.url], { KEYWARD_CONFIG_DIR: configDir }, `${env.KEYWARD_ROOT_KEY}\n`);
    expect(login.code, login.stderr).toBe(0);
    const file = path.join(configDir, 'profile.json');
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const list = await keyward(['apps', 'list'], { KEYWARD_CONFIG_DIR: configDir });
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(w.appId);
  });

  it('clear errors and exit codes: usage 2, auth 3, not found 4, unreachable 1', async () => {
    expect((await keyward(['keys', 'generate'], env)).code).toBe(2);
    expect((await keyward(['keys', 'generate', '--app', w.appId, '--ratelimit', 'lots'], env)).code).toBe(2);
    const bad = await keyward(['apps', 'list'], { ...env, KEYWARD_ROOT_KEY: 'kwroot_live_nope' });
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain('UNAUTHORIZED');
    expect((await keyward(['keys', 'revoke', 'key_AAAAAAAAAAAAAAAAAAAA'], env)).code).toBe(4);
    // A malformed id: said once, exit 2.
    const malformed = await keyward(['keys', 'show', 'not-a-key-id'], env);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr.match(/params\/keyId: must match pattern/g)).toHaveLength(1);
    const down = await keyward(['apps', 'list'], { ...env, KEYWARD_URL: 'http://127.0.0.1:9' });
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('cannot reach the server');
    const help = await keyward(['keys', 'help'], env);
    expect(help.stdout).toContain('generate');
  });
});
