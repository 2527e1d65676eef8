// `keyward keys import file.ndjson`: the real binary against a real server. Lines become keys that
// verify; a run again creates nothing; a bad line is named by its line number and stops the run.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, verify, world, type TestServer, type World } from '../support/harness.js';

const BIN = path.resolve('dist/cli/main.js');

function keyward(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const value = (i: number) => `legacy_key_${String(i).padStart(5, '0')}_q8Zw3Lx9Vb2`;

describe('keyward keys import', () => {
  let s: TestServer;
  let w: World;
  let env: Record<string, string>;
  let dir: string;
  beforeAll(async () => {
    if (!fs.existsSync(BIN)) throw new Error('dist/cli/main.js is missing: run `npm run build` (npm test does)');
    s = await startServer({ listen: true });
    w = await world(s, { importKeys: true });
    const root = await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'importer', permissions: ['keys:import'] } });
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-import-'));
    env = { KEYWARD_URL: s.url, KEYWARD_ROOT_KEY: root.body.key, KEYWARD_CONFIG_DIR: dir };
  });
  afterAll(async () => {
    await s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('imports a file in calls of --batch lines; the keys verify; a second run creates nothing', async () => {
    const lines = Array.from({ length: 25 }, (_, i) => JSON.stringify(i % 2
      ? { hash: createHash('sha256').update(value(i)).digest('hex'), name: `hashed ${i}`, ownerId: `cust_${i}` }
      : { key: value(i), name: `plain ${i}`, permissions: ['docs.read'] }));
    const file = path.join(dir, 'keys.ndjson');
    fs.writeFileSync(file, `${lines.slice(0, 10).join('\n')}\n\n${lines.slice(10).join('\n')}\n`);
    const run = await keyward(['keys', 'import', file, '--app', w.appId, '--batch', '10'], env);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('imported 25 new key(s); 0 were there already');
    expect(run.stderr).toContain('25/25 line(s) done');
    for (let i = 0; i < 25; i++) expect((await verify(s, { key: value(i) })).code, value(i)).toBe('VALID');
    const again = await keyward(['--json', 'keys', 'import', file, '--app', w.appId], env);
    expect(again.code, again.stderr).toBe(0);
    const result = JSON.parse(again.stdout);
    expect(result).toMatchObject({ created: 0, existing: 25 });
    // Line numbers of the file, the blank line counted.
    expect(result.data.map((d: any) => d.line)).toEqual([...Array.from({ length: 10 }, (_, i) => i + 1), ...Array.from({ length: 15 }, (_, i) => i + 12)]);
    expect(result.data.every((d: any) => d.status === 'existing' && /^key_/.test(d.id))).toBe(true);
  });

  it('a refused call names the file\'s lines and exits 1; a line that is not JSON stops it before anything is sent', async () => {
    const file = path.join(dir, 'bad.ndjson');
    fs.writeFileSync(file, [{ key: value(100) }, { key: value(101) }, { key: value(102), expiresAt: '2001-01-01T00:00:00Z' }, { hash: `${'f'.repeat(63)}g` }].map((e) => JSON.stringify(e)).join('\n'));
    const run = await keyward(['keys', 'import', file, '--app', w.appId, '--batch', '2'], env);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('line 3: expiresAt: must be a date-time in the future');
    expect(run.stderr).toContain('line 4: hash: is not a SHA-256');
    expect(run.stderr).toContain('2 key(s) of earlier lines were');
    expect((await verify(s, { key: value(100) })).code).toBe('VALID');
    expect((await verify(s, { key: value(102) })).code).toBe('MALFORMED');

    const broken = path.join(dir, 'broken.ndjson');
    fs.writeFileSync(broken, `${JSON.stringify({ key: value(200) })}\n{not json\n`);
    const stopped = await keyward(['keys', 'import', broken, '--app', w.appId], env);
    expect(stopped.code).toBe(2);
    expect(stopped.stderr).toContain('line 2: not JSON');
    expect((await verify(s, { key: value(200) })).code).toBe('MALFORMED');
  });
});
