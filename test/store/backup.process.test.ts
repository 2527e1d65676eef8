// Backup and restore of the embedded store: a backup taken while the server creates keys and answers
// verify restores to a store where every key acknowledged before it began verifies; restore refuses a
// data dir that holds a store, a backup that does not match its manifest, and a master key that cannot
// open its secrets; PostgreSQL is pointed to pg_dump.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { call, startProcess, type Proc } from '../support/process.js';

const CLI = path.resolve('dist/cli/main.js');

function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('exit', (code) => resolve({ code, out }));
  });
}

const listing = (dir: string) => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);

describe('backup and restore of the embedded store', () => {
  const dirs: string[] = [];
  const procs: Proc[] = [];
  const tmp = () => {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-backup-'));
    dirs.push(d);
    return d;
  };
  afterEach(async () => {
    for (const p of procs.splice(0)) await p.kill('SIGTERM');
    for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  });

  it('a backup taken under write load restores to a store where every acknowledged key verifies', async () => {
    const masterKey = randomBytes(32).toString('base64');
    const dataDir = tmp();
    const out = tmp();
    const server = await startProcess({ KEYWARD_DATA_DIR: dataDir, KEYWARD_MASTER_KEY: masterKey });
    procs.push(server);
    const setup = await call(server.url, 'POST', '/v1/setup', { email: 'owner@example.com', password: 'correct horse battery', workspaceName: 'Acme' });
    const token = setup.body.token as string;
    const app = (await call(server.url, 'POST', '/v1/apps', { workspaceId: setup.body.workspaces[0].id, name: 'Acme', keyPrefix: 'acme' }, token)).body.id as string;
    const vault = await call(server.url, 'PUT', `/v1/apps/${app}/vault/TOKEN`, { value: 'sealed under the master key' }, token);
    expect(vault.status).toBe(200);

    // Writers: keys created, and verified (usage written by the usage writer), four at a time, until told to stop.
    const acked: { key: string; at: number }[] = [];
    let stop = false;
    let seq = 0;
    const writer = async () => {
      while (!stop) {
        const created = await call(server.url, 'POST', `/v1/apps/${app}/keys`, { name: `k${seq++}`, remaining: 100 }, token);
        if (created.status !== 201) throw new Error(`create answered ${created.status}`);
        acked.push({ key: created.body.key, at: performance.now() });
        const verdict = await call(server.url, 'POST', '/v1/keys/verify', { key: created.body.key, appId: app });
        if (verdict.body.code !== 'VALID') throw new Error(`verify answered ${verdict.body.code}`);
      }
    };
    const writers = [writer(), writer(), writer(), writer()];
    while (acked.length < 40) await new Promise((r) => setImmediate(r));
    const startedAt = performance.now();
    const backup = await cli(['backup', path.join(out, 'keyward.backup')], { KEYWARD_DATA_DIR: dataDir });
    const createdDuring = acked.filter((a) => a.at > startedAt).length;
    stop = true;
    await Promise.all(writers);
    expect(backup.code, backup.out).toBe(0);
    expect(backup.out).toMatch(/master key is NOT in this backup/);
    // The writes went on while it ran: the backup did not stop the server.
    expect(createdDuring).toBeGreaterThan(0);
    const manifest = JSON.parse(fs.readFileSync(path.join(out, 'keyward.backup.json'), 'utf8'));
    expect(manifest).toMatchObject({ format: 'keyward-backup', version: 1, file: 'keyward.backup' });
    expect(manifest.masterKeyId).toMatch(/^[0-9a-f]{8}$/);
    expect(manifest.migrations).toContain('001_init');
    // Standalone: one file, no WAL beside it.
    expect(listing(out)).toEqual(['keyward.backup', 'keyward.backup.json']);
    expect(fs.readFileSync(path.join(out, 'keyward.backup')).subarray(0, 16).toString()).toBe('SQLite format 3\0');
    expect(fs.statSync(path.join(out, 'keyward.backup')).mode & 0o777).toBe(0o600);

    const restored = tmp();
    const back = await cli(['restore', path.join(out, 'keyward.backup')], { KEYWARD_DATA_DIR: restored, KEYWARD_MASTER_KEY: masterKey });
    expect(back.code, back.out).toBe(0);
    const node = await startProcess({ KEYWARD_DATA_DIR: restored, KEYWARD_MASTER_KEY: masterKey });
    procs.push(node);
    const before = acked.filter((a) => a.at < startedAt);
    expect(before.length).toBeGreaterThanOrEqual(40);
    for (const { key } of before) {
      const verdict = await call(node.url, 'POST', '/v1/keys/verify', { key, appId: app });
      expect(verdict.body.code, key).toBe('VALID');
    }
    // As many keys as the manifest counted, each with its one value; the sealed vault value opens.
    const list = await call(node.url, 'GET', `/v1/apps/${app}/keys?limit=1`, undefined, token);
    expect(list.body.total).toBe(manifest.tables.keys);
    expect(manifest.tables.key_hashes).toBe(manifest.tables.keys);
    expect(list.body.total).toBeGreaterThanOrEqual(before.length);
    expect((await call(node.url, 'GET', `/v1/apps/${app}/vault/TOKEN`, undefined, token)).body.value).toBe('sealed under the master key');
  }, 180_000);

  it('restore refuses a data dir with a store, a changed backup, and a master key that cannot open it; backup refuses PostgreSQL and an existing file', async () => {
    const masterKey = randomBytes(32).toString('base64');
    const dataDir = tmp();
    const server = await startProcess({ KEYWARD_DATA_DIR: dataDir, KEYWARD_MASTER_KEY: masterKey });
    procs.push(server);
    await call(server.url, 'POST', '/v1/setup', { email: 'owner@example.com', password: 'correct horse battery', workspaceName: 'Acme' });
    const out = tmp();
    const file = path.join(out, 'b.db');
    expect((await cli(['backup', file], { KEYWARD_DATA_DIR: dataDir })).code).toBe(0);
    const again = await cli(['backup', file], { KEYWARD_DATA_DIR: dataDir });
    expect(again.code).not.toBe(0);
    expect(again.out).toMatch(/exists already/);
    const pg = await cli(['backup', path.join(out, 'pg.db')], { KEYWARD_DATA_DIR: dataDir, DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' });
    expect(pg.code).toBe(2);
    expect(pg.out).toMatch(/pg_dump/);

    // No master key at all, or another one: refused, and the data dir is left as it was.
    const empty = tmp();
    const none = await cli(['restore', file], { KEYWARD_DATA_DIR: empty });
    expect(none.code).not.toBe(0);
    expect(none.out).toMatch(/sealed under master key [0-9a-f]{8}: set KEYWARD_MASTER_KEY/);
    const wrong = await cli(['restore', file], { KEYWARD_DATA_DIR: empty, KEYWARD_MASTER_KEY: randomBytes(32).toString('base64') });
    expect(wrong.code).not.toBe(0);
    expect(wrong.out).toMatch(/but this node has/);
    expect(listing(empty)).toEqual([]);
    // A data dir that holds a store: refused, the store untouched.
    const held = fs.readFileSync(path.join(dataDir, 'keyward.db'));
    const over = await cli(['restore', file], { KEYWARD_DATA_DIR: dataDir, KEYWARD_MASTER_KEY: masterKey });
    expect(over.code).not.toBe(0);
    expect(over.out).toMatch(/already holds a store/);
    expect(fs.readFileSync(path.join(dataDir, 'keyward.db')).equals(held)).toBe(true);
    // A backup changed after it was made: refused by its manifest's SHA-256.
    const bytes = fs.readFileSync(file);
    bytes[bytes.length - 1]! ^= 0xff;
    fs.writeFileSync(file, bytes);
    const changed = await cli(['restore', file], { KEYWARD_DATA_DIR: empty, KEYWARD_MASTER_KEY: masterKey });
    expect(changed.code).not.toBe(0);
    expect(changed.out).toMatch(/does not match its manifest/);
    expect(listing(empty)).toEqual([]);
    // The master key in the data dir (master.key) is the key restore checks when none is configured.
    bytes[bytes.length - 1]! ^= 0xff;
    fs.writeFileSync(file, bytes);
    fs.mkdirSync(empty, { recursive: true });
    fs.writeFileSync(path.join(empty, 'master.key'), masterKey + '\n', { mode: 0o600 });
    const ok = await cli(['restore', file], { KEYWARD_DATA_DIR: empty });
    expect(ok.code, ok.out).toBe(0);
    expect(listing(empty)).toEqual(['keyward.db', 'master.key']);
  }, 120_000);
});
