// GET /v1/keys/changes lives only as long as the right to read it: logout, removal from the
// workspace and a revoked root key each end an open stream.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addMember, createKey, startServer, world, type TestServer, type World } from './harness.js';

describe('key change streams', () => {
  let s: TestServer;
  let w: World;
  beforeEach(async () => {
    s = await startServer({ listen: true });
    w = await world(s);
  });
  afterEach(async () => s.close());

  /** Opens the stream; resolves `ended` when the server closes it, collecting what it sent. */
  async function open(token: string) {
    const res = await fetch(`${s.url}/v1/keys/changes?workspaceId=${w.workspaceId}`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(200);
    let text = '';
    const reader = res.body!.getReader();
    const ended = (async () => {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) return text;
        text += new TextDecoder().decode(value);
      }
    })();
    return { ended, seen: () => text };
  }

  it('streams changes, then ends when the session logs out', async () => {
    const stream = await open(w.token);
    const k = await createKey(s, w);
    await s.request('PATCH', `/v1/keys/${k.id}`, { token: w.token, body: { status: 'disabled' } });
    await expect.poll(stream.seen).toContain(k.id);
    expect((await s.request('POST', '/v1/auth/logout', { token: w.token })).status).toBe(204);
    expect(await stream.ended).toContain('key.changed');
  });

  it('ends when the member is removed from the workspace, and when a root key is revoked', async () => {
    const m = await addMember(s, w, 'm@example.com', 'member', 'member password');
    const memberStream = await open(m.token);
    expect((await s.request('DELETE', `/v1/workspaces/${w.workspaceId}/members/${m.userId}`, { token: w.token })).status).toBe(204);
    await memberStream.ended;
    const root = (await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'mw', permissions: ['keys:read'] } })).body;
    const rootStream = await open(root.key);
    expect((await s.request('DELETE', `/v1/root-keys/${root.id}`, { token: w.token })).status).toBe(204);
    await rootStream.ended;
  });
});
