// Crash durability: a writer SIGKILLed at random moments, again and again. Every acknowledged key
// must exist and verify after each restart, and the store must pass its integrity check.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, startProcess } from '../support/process.js';

describe('durability: a writer SIGKILLed at random moments, 20 times', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-kill-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('every acknowledged key exists and verifies after each restart; the store passes its integrity check', async () => {
    const env = { KEYWARD_DATA_DIR: dir };
    let node = await startProcess(env);
    const setup = await call(node.url, 'POST', '/v1/setup', { email: 'k@example.com', password: 'kill me softly 1', workspaceName: 'K' });
    const token = setup.body.token as string;
    const app = await call(node.url, 'POST', '/v1/apps', { workspaceId: setup.body.workspaces[0].id, name: 'Kill API', keyPrefix: 'kill' }, token);
    const acknowledged: { id: string; key: string }[] = [];
    let seed = 12345;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let round = 0; round < 20; round++) {
      let stop = false;
      const writers = Array.from({ length: 4 }, async () => {
        while (!stop) {
          try {
            const r = await call(node.url, 'POST', `/v1/apps/${app.body.id}/keys`, { name: `round ${round}` }, token);
            if (r.status === 201) acknowledged.push({ id: r.body.id, key: r.body.key });
          } catch {
            return; // the process died mid-request: that create was never acknowledged
          }
        }
      });
      await new Promise((r) => setTimeout(r, 50 + random() * 250));
      await node.kill('SIGKILL');
      stop = true;
      await Promise.all(writers);
      node = await startProcess(env);
      const listed = await call(node.url, 'GET', `/v1/apps/${app.body.id}/keys?limit=1`, undefined, token);
      expect(listed.body.total, `round ${round}`).toBeGreaterThanOrEqual(acknowledged.length);
      for (const k of acknowledged.slice(-25)) {
        expect((await call(node.url, 'POST', '/v1/keys/verify', { key: k.key, appId: app.body.id })).body.code, `round ${round}: ${k.id}`).toBe('VALID');
      }
    }
    for (const k of acknowledged) expect((await call(node.url, 'POST', '/v1/keys/verify', { key: k.key, appId: app.body.id })).body.code).toBe('VALID');
    expect(acknowledged.length).toBeGreaterThan(20);
    await node.kill('SIGTERM');
    const db = new SQLite(path.join(dir, 'keyward.db'), { readonly: true });
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    db.close();
  }, 120_000);
});
