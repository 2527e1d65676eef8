// At least once across a crash: a node SIGKILLed with deliveries pending and in flight; a new
// process on the same store delivers every acknowledged change's event, and records each attempt.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { call, startProcess } from '../support/process.js';
import { DIALECTS, createPgDatabase } from '../support/harness.js';
import { startReceiver } from '../support/webhook-receiver.js';

describe.each(DIALECTS)('webhooks: kill -9 with deliveries pending (%s)', (dialect) => {
  it('every acknowledged key has its key.created delivered after a restart', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-wh-kill-'));
    const pgDb = dialect === 'postgres' ? await createPgDatabase() : undefined;
    const rx = await startReceiver();
    const env = {
      KEYWARD_DATA_DIR: dir, ...(pgDb ? { DATABASE_URL: pgDb.url } : {}),
      KEYWARD_WEBHOOK_ALLOW_PRIVATE: '1', KEYWARD_WEBHOOK_TIMEOUT_MS: '1000', KEYWARD_WEBHOOK_RETRY_BASE_MS: '50', KEYWARD_WEBHOOK_POLL_MS: '50',
    };
    let node = await startProcess(env);
    try {
      const setup = await call(node.url, 'POST', '/v1/setup', { email: 'w@example.com', password: 'deliver me please', workspaceName: 'W' });
      const token = setup.body.token as string;
      const workspaceId = setup.body.workspaces[0].id as string;
      const app = await call(node.url, 'POST', '/v1/apps', { workspaceId, name: 'Hooks API', keyPrefix: 'hooks' }, token);
      const hook = await call(node.url, 'POST', `/v1/workspaces/${workspaceId}/webhooks`, { url: rx.url, events: ['key.created'] }, token);
      expect(hook.status).toBe(201);

      // The receiver holds its answers: the first deliveries are in flight, the rest pending, when the node dies.
      rx.holdMs = 30_000;
      const acknowledged: string[] = [];
      for (let i = 0; i < 30; i++) {
        const r = await call(node.url, 'POST', `/v1/apps/${app.body.id}/keys`, { name: `k${i}` }, token);
        expect(r.status).toBe(201);
        acknowledged.push(r.body.id);
      }
      const deadline = Date.now() + 10_000;
      while (rx.pending() === 0) {
        if (Date.now() > deadline) throw new Error('no delivery reached the receiver');
        await new Promise((r) => setTimeout(r, 10));
      }
      await node.kill('SIGKILL');
      const beforeRestart = rx.received.length;
      expect(beforeRestart).toBeLessThan(30);

      rx.holdMs = 0;
      node = await startProcess(env);
      const ids = new Set<string>();
      const until = Date.now() + 20_000;
      while (acknowledged.some((id) => !ids.has(id))) {
        if (Date.now() > until) throw new Error(`delivered ${ids.size} of ${acknowledged.length}`);
        for (const r of rx.received) if (r.json?.type === 'key.created') ids.add(r.json.data.id);
        await new Promise((r) => setTimeout(r, 20));
      }
      // At least once: an attempt cut off by the crash may arrive twice, with the same webhook-id.
      const byEvent = new Map<string, string>();
      for (const r of rx.received) {
        const id = r.headers['webhook-id'] as string;
        expect(byEvent.get(id) ?? r.json.data.id).toBe(r.json.data.id);
        byEvent.set(id, r.json.data.id);
      }
      expect(byEvent.size).toBe(30);
      let list = await call(node.url, 'GET', `/v1/webhooks/${hook.body.id}/deliveries?limit=100`, undefined, token);
      expect(list.body.total).toBe(30);
      // Each delivery's attempts survived the crash: the last one recorded is its delivery.
      const settledBy = Date.now() + 20_000;
      while (list.body.data.some((d: any) => d.status !== 'delivered')) {
        if (Date.now() > settledBy) throw new Error(`deliveries not all settled: ${JSON.stringify(list.body.data.filter((d: any) => d.status !== 'delivered'))}`);
        await new Promise((r) => setTimeout(r, 20));
        list = await call(node.url, 'GET', `/v1/webhooks/${hook.body.id}/deliveries?limit=100`, undefined, token);
      }
      for (const d of list.body.data) expect(d.attemptLog[0]).toMatchObject({ outcome: 'delivered', responseStatus: 200 });
    } finally {
      await node.kill('SIGKILL');
      await rx.close();
      await pgDb?.drop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
