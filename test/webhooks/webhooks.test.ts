// Webhooks through the API with a real receiver: signatures, events of the whole key lifecycle
// in order, retries keeping the webhook-id, manual retry, secret rotation, time-driven notices, the
// SSRF guard, and the outbox's atomicity. What v3 added (nothing dropped, attempts, test, replay,
// disabling after hours of failure) is in webhooks.delivery.test.ts.
import { createHmac } from 'node:crypto';
import os from 'node:os';
import dns from 'node:dns/promises';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DIALECTS, addMember, createKey, mailOf, prefixOf, snapshot, startServer, verify, world, type TestServer, type World } from '../support/harness.js';
import { WebhookOutbox } from '../../src/webhooks/outbox.js';
import { keyView } from '../../src/keys/model.js';
import { startReceiver, type Receiver } from '../support/webhook-receiver.js';
import { Webhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';
import { verifySignature } from '../../src/webhooks/receiver.js';
import { WebhookSender } from '../../src/webhooks/sender.js';
import { refusedAddress } from '../../src/webhooks/ssrf.js';

const ALL_KEY_EVENTS = ['key.created', 'key.updated', 'key.disabled', 'key.enabled', 'key.rolled', 'key.revoked', 'key.expiring', 'key.expired', 'key.leaked', 'key.usage_low'];
const DAY = 86_400_000;

/** The Standard Webhooks signature, computed here from the spec, not with the server's code. */
function expectedSignature(secret: string, id: string, ts: string, body: string): string {
  return 'v1,' + createHmac('sha256', Buffer.from(secret.slice('whsec_'.length), 'base64')).update(`${id}.${ts}.${body}`).digest('base64');
}

async function deliveries(s: TestServer, w: World, hookId: string): Promise<any[]> {
  const res = await s.request('GET', `/v1/webhooks/${hookId}/deliveries?limit=100`, { token: w.token });
  expect(res.status).toBe(200);
  return res.body.data;
}

/** Polls the deliveries API until `check` holds (an attempt's outcome is recorded after the receiver answered). */
async function until(s: TestServer, w: World, hookId: string, check: (d: any[]) => boolean): Promise<any[]> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const list = await deliveries(s, w, hookId);
    if (check(list)) return list;
    if (Date.now() > deadline) throw new Error(`deliveries never matched: ${JSON.stringify(list)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe.each(DIALECTS)('webhooks (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  let rx: Receiver;
  beforeAll(async () => {
    s = await startServer({ dialect, env: { KEYWARD_WEBHOOK_ALLOW_PRIVATE: '1', KEYWARD_WEBHOOK_RETRY_BASE_MS: '1000', KEYWARD_WEBHOOK_TIMEOUT_MS: '2000', KEYWARD_SESSION_TTL_HOURS: '2160' } });
  });
  afterAll(async () => s.close());
  beforeEach(async () => {
    rx = await startReceiver();
    w = await world(s);
  });
  afterEach(async () => {
    // Deliveries due now go out while this test's receiver still answers: none is left to fail
    // (and be retried, counted and written) during a later test on the shared server.
    await s.deps.webhooks.drain();
    await s.deps.webhooks.idle();
    await rx.close();
  });

  const subscribe = async (events = ALL_KEY_EVENTS, extra: Record<string, unknown> = {}) => {
    const res = await s.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body: { url: rx.url, events, ...extra } });
    expect(res.status, res.text).toBe(201);
    return res.body as { id: string; secret: string };
  };

  it('signs each delivery per Standard Webhooks; the secret is shown once; the payload is the key view without its value', async () => {
    // The reference libraries below check the timestamp against the machine's clock (5 minutes'
    // tolerance): this test runs at the real time, whatever days other tests moved the shared clock by.
    s.clock.set(Date.now());
    const hook = await subscribe();
    expect(hook.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(hook.secret.slice(6), 'base64')).toHaveLength(32);
    const read = await s.request('GET', `/v1/webhooks/${hook.id}`, { token: w.token });
    expect(read.text).not.toContain(hook.secret);
    expect(read.body).not.toHaveProperty('secret');

    const key = await createKey(s, w, { name: 'signed', meta: { plan: 'pro' } });
    const [got] = await rx.waitFor(1);
    const h = got!.headers;
    expect(h['content-type']).toBe('application/json');
    expect(h['webhook-id']).toMatch(/^evt_/);
    expect(Number(h['webhook-timestamp'])).toBe(Math.floor(s.clock.now() / 1000));
    expect(h['webhook-signature']).toBe(expectedSignature(hook.secret, h['webhook-id'] as string, h['webhook-timestamp'] as string, got!.body));
    expect(verifySignature(hook.secret, { id: h['webhook-id'] as string, timestamp: h['webhook-timestamp'] as string, signature: h['webhook-signature'] as string }, got!.body, Math.floor(s.clock.now() / 1000))).toBe(true);
    expect(verifySignature(hook.secret, { id: h['webhook-id'] as string, timestamp: h['webhook-timestamp'] as string, signature: h['webhook-signature'] as string }, got!.body + ' ', Math.floor(s.clock.now() / 1000))).toBe(false);
    // The specification's reference library accepts it as a receiver would.
    expect(new Webhook(hook.secret).verify(got!.body, { 'webhook-id': h['webhook-id'] as string, 'webhook-timestamp': h['webhook-timestamp'] as string, 'webhook-signature': h['webhook-signature'] as string })).toMatchObject({ type: 'key.created' });
    // And svix, as many receivers check it (its own HMAC, not node:crypto's).
    const svixHeaders = { 'webhook-id': h['webhook-id'] as string, 'webhook-timestamp': h['webhook-timestamp'] as string, 'webhook-signature': h['webhook-signature'] as string };
    expect(new SvixWebhook(hook.secret).verify(got!.body, svixHeaders)).toMatchObject({ type: 'key.created', data: { id: key.id } });
    expect(() => new SvixWebhook(hook.secret).verify(got!.body.replace('signed', 'signeD'), svixHeaders)).toThrow();

    expect(got!.json).toMatchObject({ type: 'key.created', timestamp: new Date(s.clock.now()).toISOString(), data: { id: key.id, appId: w.appId, name: 'signed', start: key.body.start, meta: { plan: 'pro' }, status: 'active' } });
    expect(got!.body).not.toContain(key.key);
    expect(got!.body).not.toContain(key.key.slice(key.body.start.length));

    const list = await until(s, w, hook.id, (d) => d[0]?.status === 'delivered');
    expect(list[0]).toMatchObject({ type: 'key.created', eventId: h['webhook-id'], attempts: 1, responseStatus: 200, error: null });
    expect(list[0].latencyMs).toBeGreaterThanOrEqual(0);
    expect(list[0].attemptLog).toEqual([{ number: 1, attemptedAt: new Date(s.clock.now()).toISOString(), outcome: 'delivered', responseStatus: 200, responseBody: 'ok', error: null, latencyMs: list[0].latencyMs }]);
  });

  it('sends the whole lifecycle of a key in order, with data as it was at each event', async () => {
    const hook = await subscribe();
    const key = await createKey(s, w);
    const token = { token: w.token };
    expect((await s.request('PATCH', `/v1/keys/${key.id}`, { ...token, body: { name: 'renamed' } })).status).toBe(200);
    expect((await s.request('PATCH', `/v1/keys/${key.id}`, { ...token, body: { status: 'disabled' } })).status).toBe(200);
    expect((await s.request('PATCH', `/v1/keys/${key.id}`, { ...token, body: { status: 'active' } })).status).toBe(200);
    const rolled = await s.request('POST', `/v1/keys/${key.id}/roll`, { ...token, body: {} });
    expect(rolled.status).toBe(200);
    expect((await s.request('DELETE', `/v1/keys/${key.id}`, token)).status).toBeLessThan(300);
    const got = await rx.waitFor(6);
    expect(got.map((r) => r.json.type)).toEqual(['key.created', 'key.updated', 'key.disabled', 'key.enabled', 'key.rolled', 'key.revoked']);
    expect(got.map((r) => r.json.data.status)).toEqual(['active', 'active', 'disabled', 'active', 'active', 'revoked']);
    expect(got[1]!.json.data.name).toBe('renamed');
    expect(got[4]!.json.data.start).toBe(rolled.body.start);
    for (const r of got) {
      expect(r.body).not.toContain(key.key);
      expect(r.body).not.toContain(rolled.body.key);
    }
    expect(new Set(got.map((r) => r.headers['webhook-id'])).size).toBe(6);
    await until(s, w, hook.id, (d) => d.length === 6 && d.every((x) => x.status === 'delivered'));
  });

  it('sends only the events asked for, only of its app when scoped, and root-key events to workspace endpoints', async () => {
    await subscribe(['key.revoked', 'rootkey.created']);
    const other = await s.request('POST', '/v1/apps', { token: w.token, body: { workspaceId: w.workspaceId, name: 'Other', keyPrefix: prefixOf(w, 'other') } });
    const rx2 = await startReceiver();
    try {
      const scoped = await s.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body: { url: rx2.url, events: ['key.created', 'rootkey.created'], appId: other.body.id } });
      expect(scoped.status).toBe(201);
      const key = await createKey(s, w);
      await s.request('DELETE', `/v1/keys/${key.id}`, { token: w.token });
      const otherKey = await s.request('POST', `/v1/apps/${other.body.id}/keys`, { token: w.token, body: { name: 'o' } });
      const root = await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'ci', permissions: ['keys:read'] } });
      expect(root.status).toBe(201);
      const got = await rx.waitFor(2);
      const got2 = await rx2.waitFor(1);
      await s.deps.webhooks.drain();
      await s.deps.webhooks.idle();
      expect(got.map((r) => r.json.type).sort()).toEqual(['key.revoked', 'rootkey.created']);
      expect(got.find((r) => r.json.type === 'rootkey.created')!.json.data).toMatchObject({ id: root.body.id, name: 'ci', permissions: ['keys:read'] });
      expect(got.find((r) => r.json.type === 'rootkey.created')!.body).not.toContain(root.body.key);
      expect(got2.map((r) => [r.json.type, r.json.data.id])).toEqual([['key.created', otherKey.body.id]]);
    } finally {
      await rx2.close();
    }
  });

  it('retries after 503s with backoff and the same webhook-id; a later event of the key waits for it', async () => {
    // The attempt counters are the server's: this test's attempts are what they grew by.
    const attempts = async () => {
      const text = (await s.request('GET', '/metrics')).text;
      const of = (outcome: string) => Number(new RegExp(`^keyward_webhook_attempts_total\\{outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
      return { retry: of('retry'), delivered: of('delivered') };
    };
    const start = await attempts();
    const hook = await subscribe();
    rx.respond(503, 503);
    const key = await createKey(s, w);
    await rx.waitFor(1);
    let list = await until(s, w, hook.id, (d) => d[0]?.responseStatus === 503);
    expect(list[0]).toMatchObject({ status: 'pending', attempts: 1, error: 'answered 503' });
    const firstRetryAt = Date.parse(list[0].nextAttemptAt) - s.clock.now();
    // Base 1 s with equal jitter: between half and all of it.
    expect(firstRetryAt).toBeGreaterThanOrEqual(500);
    expect(firstRetryAt).toBeLessThanOrEqual(1000);

    // The key changes while its first event is being retried: that change waits.
    await s.request('PATCH', `/v1/keys/${key.id}`, { token: w.token, body: { name: 'later' } });
    await s.deps.webhooks.drain();
    await s.deps.webhooks.idle();
    expect(rx.received).toHaveLength(1);

    s.clock.advance(1000);
    await s.deps.webhooks.drain();
    list = await until(s, w, hook.id, (d) => d.find((x) => x.type === 'key.created')?.attempts === 2 && d.find((x) => x.type === 'key.created')?.responseStatus === 503);
    const second = Date.parse(list.find((x) => x.type === 'key.created').nextAttemptAt) - s.clock.now();
    expect(second).toBeGreaterThanOrEqual(1000);
    expect(second).toBeLessThanOrEqual(2000);
    expect(rx.received).toHaveLength(2);

    s.clock.advance(2000);
    await s.deps.webhooks.drain();
    const got = await rx.waitFor(4);
    expect(got.map((r) => r.json.type)).toEqual(['key.created', 'key.created', 'key.created', 'key.updated']);
    expect(new Set(got.slice(0, 3).map((r) => r.headers['webhook-id'])).size).toBe(1);
    for (const r of got.slice(0, 3)) expect(r.headers['webhook-signature']).toBe(expectedSignature(hook.secret, r.headers['webhook-id'] as string, r.headers['webhook-timestamp'] as string, r.body));
    list = await until(s, w, hook.id, (d) => d.every((x) => x.status === 'delivered'));
    expect(list.find((x) => x.type === 'key.created')).toMatchObject({ attempts: 3, responseStatus: 200 });
    const end = await attempts();
    expect(end.retry - start.retry).toBe(2);
    expect(end.delivered - start.delivered).toBe(2);
  });

  it('a manual retry sends a delivered delivery again, now, with the same webhook-id and body', async () => {
    const hook = await subscribe();
    await createKey(s, w);
    const [first] = await rx.waitFor(1);
    let [d] = await until(s, w, hook.id, (l) => l[0]?.status === 'delivered');
    s.clock.advance(1000);
    const retried = await s.request('POST', `/v1/webhooks/${hook.id}/deliveries/${d.id}/retry`, { token: w.token });
    expect(retried.status).toBe(202);
    expect(retried.body).toMatchObject({ id: d.id, status: 'pending', deliveredAt: null });
    const got = await rx.waitFor(2);
    expect(got[1]!.headers['webhook-id']).toBe(first!.headers['webhook-id']);
    expect(got[1]!.body).toBe(first!.body);
    [d] = await until(s, w, hook.id, (l) => l[0]?.status === 'delivered' && l[0]?.attempts === 2);
    expect(d.attemptLog.map((a: any) => [a.number, a.outcome])).toEqual([[2, 'delivered'], [1, 'delivered']]);
    const audit = await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit?action=webhook`, { token: w.token });
    expect(audit.body.data.map((e: any) => e.action)).toEqual(['webhook.retry', 'webhook.create']);
  });

  it('rotating the secret signs with both secrets for 24 hours, then with the new one only', async () => {
    const hook = await subscribe();
    const rotated = await s.request('POST', `/v1/webhooks/${hook.id}/rotate-secret`, { token: w.token });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(hook.secret);
    expect(Date.parse(rotated.body.previousValidUntil) - s.clock.now()).toBe(DAY);
    await createKey(s, w);
    const [first] = await rx.waitFor(1);
    const sigs = (first!.headers['webhook-signature'] as string).split(' ');
    expect(sigs).toEqual([
      expectedSignature(rotated.body.secret, first!.headers['webhook-id'] as string, first!.headers['webhook-timestamp'] as string, first!.body),
      expectedSignature(hook.secret, first!.headers['webhook-id'] as string, first!.headers['webhook-timestamp'] as string, first!.body),
    ]);
    s.clock.advance(DAY + 1);
    await createKey(s, w);
    const [, second] = await rx.waitFor(2);
    expect(second!.headers['webhook-signature']).toBe(expectedSignature(rotated.body.secret, second!.headers['webhook-id'] as string, second!.headers['webhook-timestamp'] as string, second!.body));
  });

  it('key.expiring once (at once inside the window, else by the scan), key.expired once, for every expiry date', async () => {
    await subscribe(['key.expiring', 'key.expired']);
    const soon = await createKey(s, w, { expiresAt: new Date(s.clock.now() + 2 * DAY).toISOString() });
    const [atOnce] = await rx.waitFor(1);
    expect(atOnce!.json).toMatchObject({ type: 'key.expiring', data: { id: soon.id } });
    const later = await createKey(s, w, { expiresAt: new Date(s.clock.now() + 30 * DAY).toISOString() });
    await s.deps.webhooks.scan();
    await s.deps.webhooks.drain();
    expect(rx.received).toHaveLength(1);

    s.clock.advance(3 * DAY);
    await s.deps.webhooks.scan();
    await rx.waitFor(2);
    expect(rx.received[1]!.json).toMatchObject({ type: 'key.expired', data: { id: soon.id } });

    s.clock.advance(21 * DAY);
    await s.deps.webhooks.scan();
    await s.deps.webhooks.scan();
    await rx.waitFor(3);
    expect(rx.received[2]!.json).toMatchObject({ type: 'key.expiring', data: { id: later.id } });

    // A new expiry date gets its own notices; the old one's are not sent again.
    await s.request('PATCH', `/v1/keys/${later.id}`, { token: w.token, body: { expiresAt: new Date(s.clock.now() + 60 * DAY).toISOString() } });
    s.clock.advance(10 * DAY);
    await s.deps.webhooks.scan();
    await s.deps.webhooks.drain();
    await s.deps.webhooks.idle();
    expect(rx.received.map((r) => r.json.type), JSON.stringify(rx.received.map((r) => r.json))).toHaveLength(3);
    s.clock.advance(45 * DAY);
    await s.deps.webhooks.scan();
    s.clock.advance(6 * DAY);
    await s.deps.webhooks.scan();
    await s.deps.webhooks.scan();
    const got = await rx.waitFor(5);
    await s.deps.webhooks.drain();
    await s.deps.webhooks.idle();
    expect(got.slice(3).map((r) => r.json.type)).toEqual(['key.expiring', 'key.expired']);
    expect(rx.received).toHaveLength(5);
  });

  it('key.usage_low once when remaining first falls to 10%, and again after a refill', async () => {
    await subscribe(['key.usage_low']);
    const key = await createKey(s, w, { remaining: 20 });
    for (let i = 0; i < 17; i++) expect((await verify(s, { key: key.key })).valid).toBe(true);
    await s.deps.webhooks.scan();
    await s.deps.webhooks.drain();
    expect(rx.received).toHaveLength(0);
    expect((await verify(s, { key: key.key })).remaining).toBe(2);
    await s.deps.webhooks.scan();
    const [low] = await rx.waitFor(1);
    expect(low!.json).toMatchObject({ type: 'key.usage_low', data: { id: key.id, remaining: 2 } });
    expect((await verify(s, { key: key.key })).remaining).toBe(1);
    await s.deps.webhooks.scan();
    await s.deps.webhooks.drain();
    await s.deps.webhooks.idle();
    expect(rx.received).toHaveLength(1);

    // A daily refill starts a new period.
    const refilled = await createKey(s, w, { refill: { amount: 10, interval: 'daily' } });
    for (let i = 0; i < 9; i++) await verify(s, { key: refilled.key });
    await s.deps.webhooks.scan();
    await rx.waitFor(2);
    s.clock.advance(DAY);
    for (let i = 0; i < 8; i++) await verify(s, { key: refilled.key });
    await s.deps.webhooks.scan();
    await s.deps.webhooks.drain();
    await s.deps.webhooks.idle();
    expect(rx.received).toHaveLength(2);
    await verify(s, { key: refilled.key });
    await s.deps.webhooks.scan();
    const got = await rx.waitFor(3);
    expect(got.slice(1).map((r) => [r.json.type, r.json.data.id])).toEqual([['key.usage_low', refilled.id], ['key.usage_low', refilled.id]]);
  });

  it('bad input is a 400 naming the field and changes nothing; members may read but not write; other tenants see 404', async () => {
    const before = await snapshot(s);
    const bad = [
      { url: 'not a url', events: ['key.created'] },
      { url: 'ftp://example.com/x', events: ['key.created'] },
      { url: 'https://example.com/x', events: [] },
      { url: 'https://example.com/x', events: ['key.exploded'] },
      { url: 'https://example.com/x', events: ['key.created', 'key.created'] },
      { url: 'https://example.com/x', events: ['key.created'], appId: 'app_00000000000000000000' },
      { url: 'https://user:pw@example.com/x', events: ['key.created'] },
      { url: 'https://example.com/x', events: ['key.created'], secret: 'mine' },
    ];
    for (const body of bad) {
      const res = await s.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      expect(res.body.code).toBe('VALIDATION_FAILED');
      if (body.url.includes('pw@')) expect(res.text).not.toContain('pw@');
    }
    expect(await snapshot(s)).toBe(before);
  });

  it('a create retried with the same Idempotency-Key makes one endpoint and never shows the secret twice', async () => {
    const body = { url: rx.url, events: ['key.created'] };
    const headers = { 'idempotency-key': 'hook-create-1' };
    const first = await s.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body, headers });
    expect(first.status).toBe(201);
    const again = await s.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body, headers });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: 'ALREADY_CREATED', id: first.body.id });
    expect(again.text).not.toContain(first.body.secret);
    const other = await s.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body: { ...body, events: ['key.revoked'] }, headers });
    expect(other.status).toBe(422);
    expect((await s.request('GET', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token })).body.data).toHaveLength(1);
  });

  it('members read endpoints but cannot change them; another workspace gets 404 as for a missing one', async () => {
    const hook = await subscribe();
    await createKey(s, w);
    const [delivery] = await until(s, w, hook.id, (d) => d[0]?.status === 'delivered');
    const member = await addMember(s, w, mailOf(w, 'member'), 'member', 'member password 1');
    expect((await s.request('GET', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: member.token })).body.data).toHaveLength(1);
    expect((await s.request('GET', `/v1/webhooks/${hook.id}/deliveries`, { token: member.token })).status).toBe(200);
    const before = await snapshot(s);
    expect((await s.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: member.token, body: { url: rx.url, events: ['key.created'] } })).status).toBe(403);
    expect((await s.request('PATCH', `/v1/webhooks/${hook.id}`, { token: member.token, body: { status: 'disabled' } })).status).toBe(403);
    expect((await s.request('POST', `/v1/webhooks/${hook.id}/rotate-secret`, { token: member.token })).status).toBe(403);
    expect((await s.request('DELETE', `/v1/webhooks/${hook.id}`, { token: member.token })).status).toBe(403);
    expect((await s.request('POST', `/v1/webhooks/${hook.id}/test`, { token: member.token })).status).toBe(403);
    expect((await s.request('POST', `/v1/webhooks/${hook.id}/replay`, { token: member.token, body: { since: new Date(0).toISOString() } })).status).toBe(403);

    const other = await s.request('POST', '/v1/workspaces', { token: member.token, body: { name: 'Elsewhere' } });
    expect(other.status).toBe(201);
    const stranger = await s.request('POST', '/v1/auth/login', { body: { email: mailOf(w, 'member'), password: 'member password 1' } });
    await s.request('DELETE', `/v1/workspaces/${w.workspaceId}/members/${member.userId}`, { token: w.token });
    const afterRemoval = await snapshot(s);
    for (const [method, path] of [['GET', `/v1/webhooks/${hook.id}`], ['PATCH', `/v1/webhooks/${hook.id}`], ['DELETE', `/v1/webhooks/${hook.id}`], ['GET', `/v1/webhooks/${hook.id}/deliveries`], ['POST', `/v1/webhooks/${hook.id}/rotate-secret`],
      ['POST', `/v1/webhooks/${hook.id}/test`], ['POST', `/v1/webhooks/${hook.id}/replay`], ['GET', `/v1/webhooks/${hook.id}/deliveries/${delivery.id}`], ['POST', `/v1/webhooks/${hook.id}/deliveries/${delivery.id}/retry`]] as const) {
      const body = method === 'PATCH' ? { description: 'x' } : path.endsWith('/replay') ? { since: new Date(0).toISOString() } : undefined;
      const res = await s.request(method, path, { token: stranger.body.token, ...(body ? { body } : {}) });
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.detail).toBe('Webhook not found');
    }
    expect(await snapshot(s)).toBe(afterRemoval);
    expect(before).not.toBe(afterRemoval);
  });

  it('an event is committed with its change or not at all', async () => {
    const hook = await subscribe(['key.created']);
    const outbox = new WebhookOutbox(0, keyView);
    const key = await s.deps.store.repos.keys.find((await createKey(s, w)).id);
    await rx.waitFor(1);
    // The deliveries of this test's endpoint (the server's other rows are other tests').
    const count = async () => (await s.deps.store.db.selectFrom('webhook_deliveries').select((eb) => eb.fn.countAll<number>().as('n')).where('webhook_id', '=', hook.id).executeTakeFirstOrThrow()).n;
    expect(Number(await count())).toBe(1);
    await expect(s.deps.store.transaction(async (r) => {
      await outbox.key(r, 'key.created', key!, s.clock.now());
      throw new Error('the change failed');
    })).rejects.toThrow('the change failed');
    expect(Number(await count())).toBe(1);
    await s.deps.store.transaction((r) => outbox.key(r, 'key.created', key!, s.clock.now()));
    expect(Number(await count())).toBe(2);
  });

  it('never carries a key value, an integration secret or a root key value', async () => {
    await subscribe([...ALL_KEY_EVENTS, 'rootkey.created', 'rootkey.revoked']);
    const secrets: string[] = [];
    const bearer = await createKey(s, w);
    secrets.push(bearer.key);
    const integration = await createKey(s, w, { kind: 'integration' });
    expect(integration.body.secret).toEqual(expect.any(String));
    secrets.push(integration.body.secret);
    const rolled = await s.request('POST', `/v1/keys/${bearer.id}/roll`, { token: w.token, body: {} });
    secrets.push(rolled.body.key);
    const root = await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'ci', permissions: ['keys:read'] } });
    secrets.push(root.body.key);
    expect((await s.request('DELETE', `/v1/root-keys/${root.body.id}`, { token: w.token })).status).toBeLessThan(300);
    await s.request('DELETE', `/v1/apps/${w.appId}`, { token: w.token });
    const got = await rx.waitFor(7);
    expect(got.map((r) => r.json.type).sort()).toEqual(['key.created', 'key.created', 'key.revoked', 'key.revoked', 'key.rolled', 'rootkey.created', 'rootkey.revoked']);
    const stored = JSON.stringify(await s.deps.store.db.selectFrom('webhook_events').selectAll().execute());
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(10);
      for (const r of got) expect(r.body).not.toContain(secret);
      expect(stored).not.toContain(secret);
    }
  });
});

describe.runIf(DIALECTS.includes('postgres'))('webhooks on two nodes (PostgreSQL)', () => {
  const dialect = 'postgres' as const;
  it('deliver each event once and emit each notice once, both nodes working the same outbox', async () => {
    const rx = await startReceiver();
    const env = { KEYWARD_WEBHOOK_ALLOW_PRIVATE: '1', KEYWARD_WEBHOOK_POLL_MS: '10', KEYWARD_SESSION_TTL_HOURS: '2160' };
    const a = await startServer({ dialect, env });
    const b = await startServer({ dialect, env, clock: a.clock, dataDir: a.dataDir, databaseUrl: a.deps.config.databaseUrl! });
    try {
      const w = await world(a);
      const hook = await a.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body: { url: rx.url, events: ['key.created', 'key.expiring'] } });
      expect(hook.status).toBe(201);
      const expiresAt = new Date(a.clock.now() + 30 * DAY).toISOString();
      // Keys made on both nodes at once; both dispatchers poll every 10 ms and are woken by their own commits.
      await Promise.all([a, b].map(async (node) => {
        for (let i = 0; i < 20; i++) {
          const res = await node.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, body: { name: `k${i}`, expiresAt } });
          expect(res.status).toBe(201);
        }
      }));
      await rx.waitFor(40);
      // Every delivery settled before the clock jumps: one answered but not yet recorded would
      // otherwise be past its lease at once, and the other node would send it again.
      await Promise.all([a.deps.webhooks.drain(), b.deps.webhooks.drain()]);
      await Promise.all([a.deps.webhooks.idle(), b.deps.webhooks.idle()]);
      a.clock.advance(25 * DAY);
      await Promise.all([a.deps.webhooks.scan(), b.deps.webhooks.scan(), a.deps.webhooks.scan(), b.deps.webhooks.scan()]);
      await rx.waitFor(80);
      await Promise.all([a.deps.webhooks.drain(), b.deps.webhooks.drain()]);
      await Promise.all([a.deps.webhooks.idle(), b.deps.webhooks.idle()]);
      const ids = rx.received.map((r) => r.headers['webhook-id']);
      expect(ids).toHaveLength(80);
      expect(new Set(ids).size).toBe(80);
      const types = rx.received.map((r) => r.json.type);
      expect(types.filter((t) => t === 'key.expiring')).toHaveLength(40);
      expect(new Set(rx.received.filter((r) => r.json.type === 'key.expiring').map((r) => r.json.data.id)).size).toBe(40);
    } finally {
      await b.close();
      await a.close();
      await rx.close();
    }
  });
});

describe.each(DIALECTS)('webhook targets (%s)', (dialect) => {
  let s: TestServer | undefined;
  let w: World;
  afterEach(async () => {
    await s?.close();
    s = undefined;
  });

  it('refuses loopback, private, link-local, metadata and unique-local targets at creation, never probing them', async () => {
    s = await startServer({ dialect });
    w = await world(s);
    const before = await snapshot(s);
    for (const url of ['http://127.0.0.1/h', 'http://10.0.0.1/h', 'http://169.254.169.254/latest/meta-data/', 'http://[::1]/h', 'http://[fd00:ec2::254]/h', 'http://192.168.1.1/h', 'http://[::ffff:127.0.0.1]/h', 'http://0.0.0.0/h', 'http://localhost:8080/h', 'http://api.localhost/h', 'http://2130706433/h']) {
      const res = await s.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body: { url, events: ['key.created'] } });
      expect(res.status, url).toBe(400);
      expect(res.body.errors[0].path).toBe('body/url');
      expect(res.body.detail).toContain('KEYWARD_WEBHOOK_ALLOW_PRIVATE');
    }
    expect(await snapshot(s)).toBe(before);
    // A public name is accepted without any request being made to it (there is no network here).
    const ok = await s.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body: { url: 'https://hooks.example.com/keyward', events: ['key.created'] } });
    expect(ok.status).toBe(201);
  });

  it('checks the resolved address at send time: a name resolving to loopback, and a target allowed when created, are refused', async () => {
    const rx = await startReceiver();
    try {
      const sender = new WebhookSender({ timeoutMs: 2000, allowPrivate: false, userAgent: 't' });
      const attempt = (url: string) => sender.send({ url, id: 'evt_x', timestampSec: 1, body: '{}', signature: 'v1,x' });
      const byName = await attempt(`http://localhost:${rx.port}/hooks`);
      expect(byName).toMatchObject({ ok: false, status: null });
      expect(byName.error).toBe('refused: private address');
      const host = os.hostname();
      const resolved = await dns.lookup(host, { all: true }).catch(() => []);
      // This machine's own name, where it resolves to its own (non-public) addresses.
      if (resolved.length > 0 && resolved.every((a) => refusedAddress(a.address) !== null)) {
        const viaHost = await attempt(`http://${host}:${rx.port}/hooks`);
        expect(viaHost.ok).toBe(false);
      }
      for (const url of [`http://127.0.0.1:${rx.port}/hooks`, `http://[::1]:${rx.port}/hooks`, 'http://169.254.169.254/', 'http://10.0.0.1/']) {
        const r = await attempt(url);
        expect(r.ok, url).toBe(false);
        expect(r.error, url).toMatch(/^refused: /);
      }
      expect(rx.received).toHaveLength(0);

      // Created while private targets were allowed; sent by a node that does not allow them.
      s = await startServer({ dialect, env: { KEYWARD_WEBHOOK_ALLOW_PRIVATE: '1' } });
      w = await world(s);
      const hook = await s.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body: { url: rx.url, events: ['key.created'] } });
      expect(hook.status).toBe(201);
      const strict = await startServer({ dialect, dataDir: s.dataDir, ...(dialect === 'postgres' ? { databaseUrl: (s.deps.config.databaseUrl as string) } : {}), clock: s.clock, env: { KEYWARD_WEBHOOK_ALLOW_PRIVATE: '0' } });
      try {
        // Only the strict node sends.
        await s.deps.webhooks.close();
        await createKey(s, w);
        await strict.deps.webhooks.drain();
        const list = await until(s, w, hook.body.id, (d) => d[0]?.attempts === 1 && d[0]?.error !== null);
        expect(list[0].error).toBe('refused: private address');
        expect(rx.received).toHaveLength(0);
      } finally {
        await strict.close();
      }
    } finally {
      await rx.close();
    }
  });

  it('does not follow redirects', async () => {
    const http = await import('node:http');
    const target = await startReceiver();
    const server = http.createServer((_req, res) => res.writeHead(302, { location: target.url }).end());
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as import('node:net').AddressInfo).port;
      const sender = new WebhookSender({ timeoutMs: 2000, allowPrivate: true, userAgent: 't' });
      const r = await sender.send({ url: `http://127.0.0.1:${port}/`, id: 'evt_x', timestampSec: 1, body: '{}', signature: 'v1,x' });
      expect(r).toMatchObject({ ok: false, status: 302, error: 'redirects are not followed; use the final URL' });
      expect(target.received).toHaveLength(0);
    } finally {
      server.close();
      await target.close();
    }
    s = await startServer({ dialect });
  });
});
