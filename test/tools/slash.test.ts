// The /api-keys chat command: valid, bad and replayed signatures; generate, list, help.
import { createHmac } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snapshot, startServer, verify, world, type TestServer, type World } from '../support/harness.js';

const SECRET = 'chat-signing-secret-for-tests';

describe('chat slash commands', () => {
  let s: TestServer;
  let w: World;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-slash-'));
    s = await startServer({ dataDir, env: { KEYWARD_SLASH_SIGNING_SECRET: SECRET } });
    w = await world(s);
    await s.close();
    // Restart with the app configured (its id is known only now).
    s = await startServer({ dataDir, env: { KEYWARD_SLASH_SIGNING_SECRET: SECRET, KEYWARD_SLASH_APP_ID: w.appId } });
  });
  afterAll(async () => {
    await s.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  function signed(text: string, opts: { ts?: number; secret?: string; user?: string } = {}) {
    const body = new URLSearchParams({ command: '/api-keys', text, user_id: opts.user ?? 'U123', team_id: 'T1', response_url: 'https://chat.example/r' }).toString();
    const ts = String(opts.ts ?? Math.floor(s.clock.now() / 1000));
    const sig = `v0=${createHmac('sha256', opts.secret ?? SECRET).update(`v0:${ts}:${body}`).digest('hex')}`;
    return { raw: body, headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': ts, 'x-slack-signature': sig } };
  }
  const send = (req: ReturnType<typeof signed>) => s.request('POST', '/v1/integrations/slash', req);

  it('generate creates a key for that chat user and replies ephemerally; list never shows values', async () => {
    const gen = await send(signed('generate laptop'));
    expect(gen.status).toBe(200);
    expect(gen.body.response_type).toBe('ephemeral');
    const key = /`(acme_live_\w+)`/.exec(gen.body.text)![1]!;
    expect(await verify(s, { key, appId: w.appId })).toMatchObject({ code: 'VALID', ownerId: 'chat:T1:U123', name: 'laptop' });
    const list = await send(signed('list'));
    expect(list.body.text).toContain('laptop');
    expect(list.body.text).not.toContain(key);
    const other = await send(signed('list', { user: 'U999' }));
    expect(other.body.text).toContain('no keys');
    const help = await send(signed('help'));
    expect(help.body.text).toContain('/api-keys generate');
    expect((await send(signed('frobnicate'))).body.text).toContain('Unknown command');
  });

  it('an app id that names no app is said plainly in chat, and nothing is created', async () => {
    const lost = await startServer({ dataDir, env: { KEYWARD_SLASH_SIGNING_SECRET: SECRET, KEYWARD_SLASH_APP_ID: 'app_AAAAAAAAAAAAAAAAAAAA' } });
    try {
      const before = await snapshot(lost);
      const body = new URLSearchParams({ command: '/api-keys', text: 'generate x', user_id: 'U1', team_id: 'T1' }).toString();
      const ts = String(Math.floor(lost.clock.now() / 1000));
      const sig = `v0=${createHmac('sha256', SECRET).update(`v0:${ts}:${body}`).digest('hex')}`;
      const res = await lost.request('POST', '/v1/integrations/slash', { raw: body, headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': ts, 'x-slack-signature': sig } });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ response_type: 'ephemeral' });
      expect(res.body.text).toContain('app that does not exist');
      expect(await snapshot(lost)).toBe(before);
    } finally {
      await lost.close();
    }
  });

  it('delete revokes only the caller\'s own key; list says how many more there are', async () => {
    const gen = await send(signed('generate phone'));
    const key = /`(acme_live_\w+)`/.exec(gen.body.text)![1]!;
    const start = key.slice(0, 'acme_live_'.length + 4);
    const notYours = await send(signed(`delete ${start}`, { user: 'U999' }));
    expect(notYours.body.text).toContain('No active key of yours');
    expect((await verify(s, { key, appId: w.appId })).code).toBe('VALID');
    const deleted = await send(signed(`delete ${start}…`));
    expect(deleted.body.text).toMatch(/Revoked \*phone\*/);
    expect((await verify(s, { key, appId: w.appId })).code).toBe('REVOKED');
    for (let i = 0; i < 22; i++) await send(signed(`generate many ${i}`, { user: 'U777' }));
    const list = await send(signed('list', { user: 'U777' }));
    expect(list.body.text).toContain('…and 2 more');
  });

  it('bad, stale and replayed signatures are refused and change nothing', async () => {
    const before = await snapshot(s);
    expect((await send(signed('generate x', { secret: 'wrong' }))).status).toBe(401);
    expect((await send(signed('generate x', { ts: Math.floor(s.clock.now() / 1000) - 301 }))).status).toBe(401);
    const noSig = signed('generate x');
    expect((await s.request('POST', '/v1/integrations/slash', { raw: noSig.raw, headers: { 'content-type': noSig.headers['content-type'] } })).status).toBe(401);
    const tampered = signed('list');
    expect((await send({ ...tampered, raw: tampered.raw.replace('list', 'generate') })).status).toBe(401);
    expect(await snapshot(s)).toBe(before);

    const once = signed('generate replayed');
    expect((await send(once)).status).toBe(200);
    const replay = await send(once);
    expect(replay.status).toBe(401);
    expect(replay.body.detail).toContain('replay');
  });
});
