// KEYWARD_TRUST_PROXY: one reading for every route. Login throttling (Fastify's request.ip), the
// audit trail and forward auth believe X-Forwarded-For from the same proxies; a value that is no
// address, CIDR or range name stops the server with one line before the store is opened.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { createKey, startServer, world, type TestServer } from '../support/harness.js';
import { MAIN } from '../support/process.js';

describe('trusted proxies', () => {
  const servers: TestServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });

  it('parses addresses, CIDRs and the names loopback, linklocal, uniquelocal; anything else is a ConfigError', () => {
    expect(loadConfig({ KEYWARD_TRUST_PROXY: ' loopback , 10.1.2.3, 192.0.2.0/24,2001:db8::/32' }).trustProxy)
      .toEqual(['127.0.0.0/8', '::1/128', '10.1.2.3', '192.0.2.0/24', '2001:db8::/32']);
    expect(loadConfig({ KEYWARD_TRUST_PROXY: 'uniquelocal' }).trustProxy).toContain('172.16.0.0/12');
    expect(loadConfig({}).trustProxy).toEqual([]);
    for (const bad of ['bogus', '10.0.0.0/33', '127.0.0.1,nope', '010.0.0.1', 'true', '*']) {
      expect(() => loadConfig({ KEYWARD_TRUST_PROXY: bad }), bad).toThrow(ConfigError);
    }
  });

  it.each(['loopback', '127.0.0.1', '127.0.0.0/8'])('%s: login, the audit trail and forward auth see the same client', async (value) => {
    const s = await startServer({ listen: true, env: { KEYWARD_TRUST_PROXY: value } });
    servers.push(s);
    const w = await world(s);
    const client = '203.0.113.77';
    // Forward auth: a key allowed only from the client's address.
    const k = await createKey(s, w, { ipAllowlist: [`${client}/32`] });
    const fwd = await fetch(`${s.url}/v1/forward-auth?appId=${w.appId}`, {
      headers: { authorization: `Bearer ${k.key}`, 'x-forwarded-method': 'GET', 'x-forwarded-uri': '/', 'x-forwarded-for': client },
    });
    expect(fwd.status).toBe(200);
    // Login throttling counts per address: three failures from the client, then it must wait,
    // while another address is not slowed down.
    const login = (password: string, from: string) => fetch(`${s.url}/v1/auth/login`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': from }, body: JSON.stringify({ email: 'owner@example.com', password }),
    });
    for (let i = 0; i < 3; i++) expect((await login('wrong password!', client)).status).toBe(401);
    expect((await login('wrong password!', client)).status).toBe(429);
    expect((await login('wrong password!', '198.51.100.8')).status).toBe(401);
    // The audit trail records the client a change came from.
    await fetch(`${s.url}/v1/apps/${w.appId}`, { method: 'PATCH', headers: { authorization: `Bearer ${w.token}`, 'content-type': 'application/json', 'x-forwarded-for': client }, body: JSON.stringify({ name: 'Renamed' }) });
    const audit = await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit?action=app.update`, { token: w.token });
    expect(audit.body.data[0].ip).toBe(client);
  });

  it('an invalid value: one line on stderr, exit code 2, and the store was never opened', () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-trust-'));
    try {
      const run = spawnSync(process.execPath, [MAIN], { env: { ...process.env, KEYWARD_DATA_DIR: dataDir, KEYWARD_TRUST_PROXY: 'loopback,not-an-address', PORT: '0' }, encoding: 'utf8', timeout: 30_000 });
      expect(run.status).toBe(2);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stderr).toContain('KEYWARD_TRUST_PROXY');
      expect(run.stderr).toContain('"not-an-address"');
      expect(fs.readdirSync(dataDir)).toEqual([]);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
