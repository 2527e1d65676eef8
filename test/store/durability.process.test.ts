// The embedded store as a real process: SIGKILL and restart keep every acknowledged change, a
// revoked key stays revoked, a graceful stop drains, and the data dir never holds a credential.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, MAIN, startProcess } from '../support/process.js';
import { sqlitePath } from '../../src/store/paths.js';

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : [p];
  });
}

/** Every byte of every file in the data dir, searched for each secret (and its UTF-16 form). */
function findSecrets(dir: string, secrets: string[]): string[] {
  const hits: string[] = [];
  for (const file of filesUnder(dir)) {
    const bytes = fs.readFileSync(file);
    for (const secret of secrets) {
      for (const needle of [Buffer.from(secret, 'utf8'), Buffer.from(secret, 'utf16le')]) {
        if (bytes.includes(needle)) hits.push(`${path.basename(file)} holds ${secret.slice(0, 12)}…`);
      }
    }
  }
  return hits;
}

describe('embedded store as a real process', () => {
  let dir: string;
  beforeAll(() => {
    if (!fs.existsSync(MAIN)) throw new Error('dist/main.js is missing: run `npm run build` (npm test does)');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-proc-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('SIGKILL then restart: keys still verify, a revoked key stays revoked, no credential on disk', async () => {
    const env = { KEYWARD_DATA_DIR: dir };
    const p1 = await startProcess(env);
    const password = 'a long secret password 42';
    const setup = await call(p1.url, 'POST', '/v1/setup', { email: 'ops@example.com', password, workspaceName: 'Durable' });
    expect(setup.status).toBe(201);
    const token = setup.body.token as string;
    const ws = setup.body.workspaces[0].id as string;
    const app = await call(p1.url, 'POST', '/v1/apps', { workspaceId: ws, name: 'Durable API' }, token);
    const kept = await call(p1.url, 'POST', `/v1/apps/${app.body.id}/keys`, { name: 'kept', remaining: 10 }, token);
    const revoked = await call(p1.url, 'POST', `/v1/apps/${app.body.id}/keys`, { name: 'revoked' }, token);
    const root = await call(p1.url, 'POST', `/v1/workspaces/${ws}/root-keys`, { name: 'ci', permissions: ['*'] }, token);
    expect((await call(p1.url, 'DELETE', `/v1/keys/${revoked.body.id}`, undefined, token)).status).toBe(200);
    expect((await call(p1.url, 'POST', '/v1/keys/verify', { key: kept.body.key, appId: app.body.id })).body.code).toBe('VALID');
    const secrets = [kept.body.key, revoked.body.key, root.body.key, token, password];
    expect(findSecrets(dir, secrets)).toEqual([]);

    await p1.kill('SIGKILL');
    const p2 = await startProcess(env);
    try {
      const a = await call(p2.url, 'POST', '/v1/keys/verify', { key: kept.body.key, appId: app.body.id });
      // Units of the cap that the killed node held unspent stay reserved for it: at most those go
      // unused (docs/design/credits.md), never more than the cap is admitted.
      const db = new SQLite(sqlitePath(dir), { readonly: true });
      const { held } = db.prepare('SELECT COALESCE(SUM(leased - released - spent), 0) AS held FROM credit_slices WHERE key_id = ?').get(kept.body.id) as { held: number };
      db.close();
      expect(a.body.code).toBe('VALID');
      expect(a.body.remaining).toBeLessThanOrEqual(8);
      expect(a.body.remaining).toBeGreaterThanOrEqual(8 - held);
      expect((await call(p2.url, 'POST', '/v1/keys/verify', { key: revoked.body.key, appId: app.body.id })).body.code).toBe('REVOKED');
      expect((await call(p2.url, 'GET', `/v1/apps/${app.body.id}/keys`, undefined, root.body.key)).body.total).toBe(2);
      expect(findSecrets(dir, secrets)).toEqual([]);
    } finally {
      expect(await p2.kill('SIGTERM')).toBe(0);
    }
    const files = filesUnder(dir).map((f) => path.basename(f));
    expect(files).toContain('keyward.db');
  });
});
