// Integration keys over HTTP Basic and HS256 JWTs, the per-app vault, leak reports, and the
// master key: secrets never stored in clear.
import { generateKeyPairSync, sign } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SignJWT, UnsecuredJWT } from 'jose';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DIALECTS, addMember, createKey, snapshot, startServer, verify, world, type TestServer, type World } from '../support/harness.js';

const enc = new TextEncoder();
const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

async function jwt(secret: string, kid: string, now: number, opts: { alg?: string; exp?: number; nbf?: number; iat?: number | null; jti?: string } = {}) {
  const t = new SignJWT({ sub: 'client', ...(opts.jti ? { jti: opts.jti } : {}) }).setProtectedHeader({ alg: opts.alg ?? 'HS256', kid });
  if (opts.iat !== null) t.setIssuedAt(Math.floor((opts.iat ?? now) / 1000));
  if (opts.exp !== undefined) t.setExpirationTime(Math.floor(opts.exp / 1000));
  if (opts.nbf !== undefined) t.setNotBefore(Math.floor(opts.nbf / 1000));
  return t.sign(enc.encode(secret));
}

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? filesUnder(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

describe.each(DIALECTS)('integration keys (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  let id: string;
  let secret: string;
  beforeAll(async () => {
    s = await startServer({ dialect });
  });
  afterAll(async () => s.close());
  beforeEach(async () => {
    w = await world(s);
    const created = await createKey(s, w, { kind: 'integration', name: 'partner', ownerId: 'partner_1', permissions: ['sync'] });
    id = created.id;
    secret = created.body.secret;
  });

  it('create answers id + secret once; reads never show the secret', async () => {
    const res = await s.request('GET', `/v1/keys/${id}`, { token: w.token });
    expect(res.body.kind).toBe('integration');
    expect(secret.startsWith(`${w.keyPrefix}_live_`)).toBe(true);
    expect(res.text).not.toContain(secret);
    const list = await s.request('GET', `/v1/apps/${w.appId}/keys`, { token: w.token });
    expect(list.text).not.toContain(secret);
  });

  it('HTTP Basic: VALID with the right pair; wrong secret, wrong id, or the secret as a bearer key are refused', async () => {
    expect(await verify(s, { authorization: basic(id, secret), permissions: ['sync'] })).toMatchObject({ valid: true, code: 'VALID', keyId: id, ownerId: 'partner_1' });
    const other = await createKey(s, w, { kind: 'integration' });
    expect((await verify(s, { authorization: basic(id, other.body.secret) })).code).toBe('NOT_FOUND');
    expect((await verify(s, { authorization: basic(other.id, secret) })).code).toBe('NOT_FOUND');
    expect((await verify(s, { authorization: basic(id, 'not-a-secret') })).code).toBe('MALFORMED');
    expect((await verify(s, { authorization: `Bearer ${secret}` })).code).toBe('NOT_FOUND');
    expect((await verify(s, { key: secret })).code).toBe('NOT_FOUND');
    const bearer = await createKey(s, w);
    expect((await verify(s, { authorization: basic(bearer.id, bearer.key) })).code).toBe('NOT_FOUND');
  });

  it('JWT HS256 with kid: VALID, and every bad token gets its code', async () => {
    const now = s.clock.now();
    expect(await verify(s, { authorization: `Bearer ${await jwt(secret, id, now)}` })).toMatchObject({ code: 'VALID', keyId: id });
    // Wrong secret, tampered payload.
    const other = await createKey(s, w, { kind: 'integration' });
    expect((await verify(s, { authorization: `Bearer ${await jwt(other.body.secret, id, now)}` })).code).toBe('INVALID_SIGNATURE');
    const good = await jwt(secret, id, now);
    const [h, p, sig] = good.split('.');
    const tampered = [h, Buffer.from(JSON.stringify({ sub: 'admin', iat: Math.floor(now / 1000) })).toString('base64url'), sig].join('.');
    expect((await verify(s, { authorization: `Bearer ${tampered}` })).code).toBe('INVALID_SIGNATURE');
    void p;
    // Expired, not yet valid, too old, no iat.
    expect((await verify(s, { authorization: `Bearer ${await jwt(secret, id, now, { exp: now - 1000 })}` })).code).toBe('TOKEN_EXPIRED');
    expect((await verify(s, { authorization: `Bearer ${await jwt(secret, id, now, { nbf: now + 60_000 })}` })).code).toBe('TOKEN_EXPIRED');
    expect((await verify(s, { authorization: `Bearer ${await jwt(secret, id, now, { iat: now - 3_600_000 })}` })).code).toBe('TOKEN_EXPIRED');
    expect((await verify(s, { authorization: `Bearer ${await jwt(secret, id, now, { iat: null })}` })).code).toBe('TOKEN_EXPIRED');
    // alg none, and HS512 with the right secret.
    const none = new UnsecuredJWT({ sub: 'x' }).setIssuedAt().encode();
    const noneWithKid = [Buffer.from(JSON.stringify({ alg: 'none', kid: id })).toString('base64url'), none.split('.')[1], ''].join('.');
    expect((await verify(s, { authorization: `Bearer ${noneWithKid}` })).code).toBe('INVALID_SIGNATURE');
    expect((await verify(s, { authorization: `Bearer ${await jwt(secret.padEnd(64, 'x'), id, now, { alg: 'HS512' })}` })).code).toBe('INVALID_SIGNATURE');
    // Unknown kid, garbage.
    expect((await verify(s, { authorization: `Bearer ${await jwt(secret, 'key_AAAAAAAAAAAAAAAAAAAA', now)}` })).code).toBe('NOT_FOUND');
    expect((await verify(s, { authorization: 'Bearer a.b.c' })).code).toBe('MALFORMED');
    // A token that carries a jti is good once: a replay within its max age is refused.
    const once = `Bearer ${await jwt(secret, id, now, { jti: 'req-1' })}`;
    expect((await verify(s, { authorization: once, dryRun: true })).code).toBe('VALID');
    expect((await verify(s, { authorization: once })).code).toBe('VALID');
    expect((await verify(s, { authorization: once })).code).toBe('TOKEN_EXPIRED');
    expect((await verify(s, { authorization: `Bearer ${await jwt(secret, id, now, { jti: 'req-2' })}` })).code).toBe('VALID');
  });

  it('a JWT for a revoked or disabled key is refused; a rolled secret signs during the grace period only', async () => {
    const now = s.clock.now();
    const rolled = await s.request('POST', `/v1/keys/${id}/roll`, { token: w.token, body: { gracePeriodMs: 60_000 } });
    expect(rolled.body.secret).toBeDefined();
    expect(rolled.body.key).toBeUndefined();
    expect((await verify(s, { authorization: `Bearer ${await jwt(secret, id, now)}` })).code).toBe('VALID');
    expect((await verify(s, { authorization: `Bearer ${await jwt(rolled.body.secret, id, now)}` })).code).toBe('VALID');
    s.clock.advance(60_001);
    const later = s.clock.now();
    expect((await verify(s, { authorization: `Bearer ${await jwt(secret, id, later)}` })).code).toBe('INVALID_SIGNATURE');
    expect((await verify(s, { authorization: basic(id, secret) })).code).toBe('EXPIRED');
    expect((await verify(s, { authorization: `Bearer ${await jwt(rolled.body.secret, id, later)}` })).code).toBe('VALID');
    await s.request('PATCH', `/v1/keys/${id}`, { token: w.token, body: { status: 'disabled' } });
    expect((await verify(s, { authorization: `Bearer ${await jwt(rolled.body.secret, id, later)}` })).code).toBe('DISABLED');
    await s.request('DELETE', `/v1/keys/${id}`, { token: w.token });
    expect((await verify(s, { authorization: `Bearer ${await jwt(rolled.body.secret, id, later)}` })).code).toBe('REVOKED');
    expect((await verify(s, { authorization: basic(id, rolled.body.secret) })).code).toBe('REVOKED');
  });
});

describe.each(DIALECTS)('vault (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  beforeEach(async () => {
    s = await startServer({ dialect });
    w = await world(s);
  });
  afterEach(async () => s.close());

  it('lists names only, writes, reveals (audited), deletes; members cannot read it', async () => {
    const value = `sk_live_${'v'.repeat(30)}_vault_value`;
    const put = await s.request('PUT', `/v1/apps/${w.appId}/vault/STRIPE_KEY`, { token: w.token, body: { value } });
    expect(put.status).toBe(200);
    await s.request('PUT', `/v1/apps/${w.appId}/vault/STRIPE_KEY`, { token: w.token, body: { value: value + '2' } });
    const list = await s.request('GET', `/v1/apps/${w.appId}/vault`, { token: w.token });
    expect(list.body.data.map((x: { name: string }) => x.name)).toEqual(['STRIPE_KEY']);
    expect(list.text).not.toContain(value);
    const reveal = await s.request('GET', `/v1/apps/${w.appId}/vault/STRIPE_KEY`, { token: w.token });
    expect(reveal.body).toEqual({ name: 'STRIPE_KEY', value: value + '2' });
    const audit = await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit?targetId=${w.appId}/STRIPE_KEY`, { token: w.token });
    expect(audit.body.data.map((a: { action: string }) => a.action).sort()).toEqual(['vault.create', 'vault.reveal', 'vault.update']);
    expect(audit.text).not.toContain(value);

    const m = (await addMember(s, w, 'm@example.com', 'member', 'member password')).token;
    expect((await s.request('GET', `/v1/apps/${w.appId}/vault/STRIPE_KEY`, { token: m })).status).toBe(403);
    const root = (await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'reader', permissions: ['vault:read'] } })).body.key;
    expect((await s.request('GET', `/v1/apps/${w.appId}/vault/STRIPE_KEY`, { token: root })).body.value).toBe(value + '2');
    expect((await s.request('PUT', `/v1/apps/${w.appId}/vault/OTHER`, { token: root, body: { value: 'x' } })).status).toBe(403);

    expect((await s.request('DELETE', `/v1/apps/${w.appId}/vault/STRIPE_KEY`, { token: w.token })).status).toBe(204);
    expect((await s.request('GET', `/v1/apps/${w.appId}/vault/STRIPE_KEY`, { token: w.token })).status).toBe(404);
    expect((await s.request('PUT', `/v1/apps/${w.appId}/vault/bad%20name`, { token: w.token, body: { value: 'x' } })).status).toBe(400);
  });
});

describe('secrets at rest (sqlite)', () => {
  it('the data dir never holds an integration secret or a vault value, and the master key file is 0600', async () => {
    const s = await startServer({ dialect: 'sqlite' });
    try {
      const w = await world(s);
      const integration = await createKey(s, w, { kind: 'integration' });
      const rolled = await s.request('POST', `/v1/keys/${integration.id}/roll`, { token: w.token, body: { gracePeriodMs: 1000 } });
      const vaultValue = `vault-value-${'q'.repeat(24)}`;
      await s.request('PUT', `/v1/apps/${w.appId}/vault/DB_PASSWORD`, { token: w.token, body: { value: vaultValue } });
      await s.deps.usage.flush();
      const secrets = [integration.body.secret, rolled.body.secret, vaultValue];
      for (const file of filesUnder(s.dataDir)) {
        const bytes = fs.readFileSync(file);
        for (const secret of secrets) {
          expect(bytes.includes(Buffer.from(secret)), `${path.basename(file)} holds a secret`).toBe(false);
          expect(bytes.includes(Buffer.from(secret, 'utf16le'))).toBe(false);
        }
      }
      expect(fs.statSync(path.join(s.dataDir, 'master.key')).mode & 0o777).toBe(0o600);
    } finally {
      await s.close();
    }
  });

  it('a node with another master key refuses to start on the same store', async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-mk-'));
    try {
      const s = await startServer({ dialect: 'sqlite', dataDir, env: { KEYWARD_MASTER_KEY: Buffer.alloc(32, 1).toString('base64') } });
      await s.close();
      await expect(startServer({ dialect: 'sqlite', dataDir, env: { KEYWARD_MASTER_KEY: Buffer.alloc(32, 2).toString('base64') } })).rejects.toThrow(/master key/);
      const again = await startServer({ dialect: 'sqlite', dataDir, env: { KEYWARD_MASTER_KEY: Buffer.alloc(32, 1).toString('base64') } });
      await again.close();
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('master key rotation (sqlite)', () => {
  it('reencrypt under a new key keeps every secret usable, and the old key is then not needed', async () => {
    const oldKey = Buffer.alloc(32, 7).toString('base64');
    const newKey = Buffer.alloc(32, 9).toString('base64');
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-rot-'));
    try {
      let s = await startServer({ dialect: 'sqlite', dataDir, env: { KEYWARD_MASTER_KEY: oldKey } });
      const w = await world(s);
      const k = await createKey(s, w, { kind: 'integration' });
      await s.request('PUT', `/v1/apps/${w.appId}/vault/TOKEN`, { token: w.token, body: { value: 'the vault value' } });
      const hook = await s.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body: { url: 'https://hooks.invalid/k', events: ['key.created'] } });
      await s.request('POST', `/v1/webhooks/${hook.body.id}/rotate-secret`, { token: w.token });
      await s.close();

      s = await startServer({ dialect: 'sqlite', dataDir, env: { KEYWARD_MASTER_KEY: newKey, KEYWARD_MASTER_KEY_PREVIOUS: oldKey } });
      const { reencryptAll } = await import('../../src/cli/reencrypt.js');
      expect(await reencryptAll(s.deps.store, s.deps.box)).toEqual({ secrets: 1, vault: 1, webhooks: 1 });
      await s.close();

      s = await startServer({ dialect: 'sqlite', dataDir, env: { KEYWARD_MASTER_KEY: newKey } });
      try {
        const token = (await s.request('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password: 'correct horse battery' } })).body.token;
        expect((await s.request('GET', `/v1/apps/${w.appId}/vault/TOKEN`, { token })).body.value).toBe('the vault value');
        expect((await verify(s, { appId: w.appId, authorization: `Bearer ${await jwt(k.body.secret, k.id, s.clock.now())}` })).code).toBe('VALID');
        // The webhook's secrets (current and previous) open under the new key: a delivery is signed with both.
        const rx = await import('../support/webhook-receiver.js').then((m) => m.startReceiver());
        try {
          const hooks = await s.request('GET', `/v1/workspaces/${w.workspaceId}/webhooks`, { token });
          await s.deps.store.db.updateTable('webhooks').set({ url: rx.url }).where('id', '=', hooks.body.data[0].id).execute();
          await s.close();
          s = await startServer({ dialect: 'sqlite', dataDir, env: { KEYWARD_MASTER_KEY: newKey, KEYWARD_WEBHOOK_ALLOW_PRIVATE: '1' } });
          const again = (await s.request('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password: 'correct horse battery' } })).body.token;
          await s.request('POST', `/v1/apps/${w.appId}/keys`, { token: again, body: { name: 'after rotation' } });
          const [got] = await rx.waitFor(1);
          expect((got!.headers['webhook-signature'] as string).split(' ')).toHaveLength(2);
        } finally {
          await rx.close();
        }
      } finally {
        await s.close();
      }
      await expect(startServer({ dialect: 'sqlite', dataDir, env: { KEYWARD_MASTER_KEY: oldKey } })).rejects.toThrow(/master key/);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe.each(DIALECTS)('leak reports (%s)', (dialect) => {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const leakKeys = JSON.stringify([{ key_identifier: 'gh-1', key: pem }]);
  let s: TestServer;
  let w: World;
  beforeAll(async () => {
    s = await startServer({ dialect, env: { KEYWARD_LEAK_PUBLIC_KEYS: leakKeys } });
  });
  afterAll(async () => s.close());
  beforeEach(async () => {
    w = await world(s);
  });

  const post = (body: string, signature: string, keyId = 'gh-1', server = s) =>
    server.request('POST', '/v1/leaks', { raw: body, headers: { 'content-type': 'application/json', 'github-public-key-identifier': keyId, 'github-public-key-signature': signature } });

  it('a reported key is announced to webhooks: key.leaked, then key.disabled, in order', async () => {
    // A server of its own: webhooks to the local receiver need KEYWARD_WEBHOOK_ALLOW_PRIVATE, and
    // its deliveries stay out of the shared server's rows (the next test compares snapshots).
    const hooked = await startServer({ dialect, env: { KEYWARD_LEAK_PUBLIC_KEYS: leakKeys, KEYWARD_WEBHOOK_ALLOW_PRIVATE: '1' } });
    const hw = await world(hooked);
    const { startReceiver } = await import('../support/webhook-receiver.js');
    const rx = await startReceiver();
    try {
      await hooked.request('POST', `/v1/workspaces/${hw.workspaceId}/webhooks`, { token: hw.token, body: { url: rx.url, events: ['key.leaked', 'key.disabled'] } });
      const k = await createKey(hooked, hw);
      const body = JSON.stringify([{ token: k.key, type: 'keyward_api_key', url: 'https://example.com/leak', source: 'content' }]);
      expect((await post(body, sign('sha256', Buffer.from(body), privateKey).toString('base64'), 'gh-1', hooked)).status).toBe(200);
      const got = await rx.waitFor(2);
      expect(got.map((r) => [r.json.type, r.json.data.id, r.json.data.status])).toEqual([['key.leaked', k.id, 'disabled'], ['key.disabled', k.id, 'disabled']]);
      for (const r of got) expect(r.body).not.toContain(k.key);
    } finally {
      await rx.close();
      await hooked.close();
    }
  });

  it('a bad signature changes nothing; a good one disables the key, audits it and says so', async () => {
    const k = await createKey(s, w);
    const body = JSON.stringify([
      { token: k.key, type: 'keyward_api_key', url: 'https://example.com/leak', source: 'content' },
      { token: `${w.keyPrefix}_live_notarealkeyatall`, type: 'keyward_api_key', url: 'https://example.com/x', source: 'content' },
    ]);
    const good = sign('sha256', Buffer.from(body), privateKey).toString('base64');
    const before = await snapshot(s);
    const forged = sign('sha256', Buffer.from(body + ' '), privateKey).toString('base64');
    for (const [b, sig, kid] of [[body, forged, 'gh-1'], [body, good, 'gh-2'], [body, '', 'gh-1'], [body.replace('content', 'commit'), good, 'gh-1']] as const) {
      const r = await post(b, sig, kid);
      expect(r.status).toBe(401);
    }
    expect(await snapshot(s)).toBe(before);
    expect((await verify(s, { key: k.key })).code).toBe('VALID');

    const r = await post(body, good);
    expect(r.status).toBe(200);
    expect(r.body).toEqual([
      { token_hash: expect.stringMatching(/^[0-9a-f]{64}$/), token_type: 'keyward_api_key', label: 'true_positive', action: 'disabled' },
      { token_hash: expect.any(String), token_type: 'keyward_api_key', label: 'false_positive', action: 'none' },
    ]);
    expect((await verify(s, { key: k.key })).code).toBe('DISABLED');
    const audit = await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit?targetId=${k.id}&action=key.leak_disable`, { token: w.token });
    expect(audit.body.total).toBe(1);
    expect(audit.body.data[0].meta.url).toBe('https://example.com/leak');
    expect((await post(body, good)).body[0].action).toBe('already_inactive');
  });

  it('a leaked root key is revoked', async () => {
    const root = (await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'ci', permissions: ['*'] } })).body.key;
    const body = JSON.stringify([{ token: root, type: 'keyward_root_key', url: 'https://example.com/r', source: 'content' }]);
    const r = await post(body, sign('sha256', Buffer.from(body), privateKey).toString('base64'));
    expect(r.body[0]).toMatchObject({ label: 'true_positive', action: 'revoked' });
    expect((await s.request('GET', `/v1/workspaces/${w.workspaceId}`, { token: root })).status).toBe(401);
  });
});
