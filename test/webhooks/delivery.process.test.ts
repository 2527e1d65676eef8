// At least once means nothing is dropped, and every attempt can be seen: a receiver down for ten
// minutes, endpoints disabled by hand and by Keyward and enabled again, the attempt history, the
// test event, replay, and the expiry timer. Time is a ManualClock moved by the test, with explicit
// dispatcher drains; signatures are checked with svix, not with Keyward's signer.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Webhook as SvixWebhook } from 'svix';
import { DIALECTS, createKey, snapshot, startServer, world, type TestServer, type World } from '../support/harness.js';
import { startReceiver, type Received, type Receiver } from '../support/webhook-receiver.js';
import { ManualClock } from '../../src/lib/clock.js';
import { loadConfig } from '../../src/config.js';
import { startProcess } from '../support/process.js';
import { retryDelay } from '../../src/webhooks/dispatcher.js';

const HOUR = 3_600_000;
/** The contract's longest wait between two attempts. */
const MAX_RETRY_DELAY_MS = HOUR;
const DAY = 24 * HOUR;
const KEY_EVENTS = ['key.created', 'key.updated', 'key.disabled', 'key.enabled', 'key.rolled', 'key.revoked', 'key.expiring', 'key.expired'];

/** svix's check as a receiver makes it when the request arrives (its clock at the delivery's timestamp). */
function svixVerify(secret: string, r: Received): any {
  const spy = vi.spyOn(Date, 'now').mockReturnValue(Number(r.headers['webhook-timestamp']) * 1000);
  try {
    return new SvixWebhook(secret).verify(r.body, {
      'webhook-id': r.headers['webhook-id'] as string,
      'webhook-timestamp': r.headers['webhook-timestamp'] as string,
      'webhook-signature': r.headers['webhook-signature'] as string,
    });
  } finally {
    spy.mockRestore();
  }
}

/** First arrival of each webhook-id, in arrival order. */
function distinct(received: readonly Received[]): Received[] {
  const seen = new Set<string>();
  return received.filter((r) => {
    const id = r.headers['webhook-id'] as string;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** The types each key's events arrived in, by key id. */
function typesByKey(received: readonly Received[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const r of received) {
    const id = r.json.data.id as string;
    out.set(id, [...(out.get(id) ?? []), `${r.json.type}:${r.json.data.name}`]);
  }
  return out;
}

describe.each(DIALECTS)('webhook delivery (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  let rx: Receiver;
  // Only what the test drains is sent: the dispatcher's own poll is out of the way (its local wake-ups stay).
  const env = { KEYWARD_WEBHOOK_ALLOW_PRIVATE: '1', KEYWARD_WEBHOOK_POLL_MS: '60000', KEYWARD_SESSION_TTL_HOURS: '2160' };
  beforeEach(async () => {
    rx = await startReceiver();
    s = await startServer({ dialect, env });
    w = await world(s);
  });
  afterEach(async () => {
    await s.close();
    await rx.close();
  });

  const subscribe = async (url = rx.url, events = KEY_EVENTS) => {
    const res = await s.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body: { url, events } });
    expect(res.status, res.text).toBe(201);
    return res.body as { id: string; secret: string };
  };
  const hookOf = async (id: string) => (await s.request('GET', `/v1/webhooks/${id}`, { token: w.token })).body;
  const listOf = async (id: string, query = '') => {
    const res = await s.request('GET', `/v1/webhooks/${id}/deliveries?limit=100${query}`, { token: w.token });
    expect(res.status).toBe(200);
    return res.body as { data: any[]; total: number };
  };
  const drain = async () => {
    await s.deps.webhooks.idle();
    await s.deps.webhooks.drain();
  };
  /** Moves the clock in steps, draining after each, until `done` holds; answers the steps taken. */
  const stepUntil = async (stepMs: number, maxSteps: number, done: () => boolean | Promise<boolean>) => {
    for (let step = 1; step <= maxSteps; step++) {
      s.clock.advance(stepMs);
      await drain();
      if (await done()) return step;
    }
    throw new Error(`not done after ${maxSteps} steps of ${stepMs} ms`);
  };

  it('a receiver down for 10 minutes with the default settings loses nothing and gets every event, in order per key, after it recovers', async () => {
    const hook = await subscribe();
    await rx.down();
    // 150 events over the ten minutes: 10 keys, each created and renamed 14 times, while nothing answers.
    const keys: string[] = [];
    const written = new Map<string, string[]>();
    for (let step = 0; step < 120; step++) {
      if (step % 8 === 0 && keys.length < 10) {
        const key = await createKey(s, w, { name: 'v0' });
        keys.push(key.id);
        written.set(key.id, ['key.created:v0']);
      }
      for (const id of keys) {
        const names = written.get(id)!;
        if (names.length < 15 && (step + names.length) % 3 === 0) {
          const name = `v${names.length}`;
          expect((await s.request('PATCH', `/v1/keys/${id}`, { token: w.token, body: { name } })).status).toBe(200);
          names.push(`key.updated:${name}`);
        }
      }
      s.clock.advance(5000);
      await drain();
    }
    for (const id of keys) {
      for (let names = written.get(id)!; names.length < 15;) {
        const name = `v${names.length}`;
        expect((await s.request('PATCH', `/v1/keys/${id}`, { token: w.token, body: { name } })).status).toBe(200);
        names.push(`key.updated:${name}`);
      }
    }
    expect(rx.received).toHaveLength(0);
    const during = await listOf(hook.id);
    expect(during.total).toBe(150);
    expect(await hookOf(hook.id)).toMatchObject({ status: 'active', failingSince: expect.any(String) });

    await rx.up();
    // Every retry is at most an hour away: within an hour and a bit of simulated time all are in.
    const steps = await stepUntil(5000, 800, () => rx.received.length >= 150);
    expect(steps * 5000).toBeLessThanOrEqual(MAX_RETRY_DELAY_MS + 60_000);
    await drain();

    expect(rx.received).toHaveLength(150);
    expect(distinct(rx.received)).toHaveLength(150);
    expect(typesByKey(rx.received)).toEqual(written);
    for (const r of rx.received) expect(svixVerify(hook.secret, r)).toMatchObject({ type: r.json.type });
    expect((await listOf(hook.id, '&status=delivered')).total).toBe(150);
    expect(await hookOf(hook.id)).toMatchObject({ status: 'active', failingSince: null, consecutiveFailures: 0, disabledReason: null });

    // The first event's attempts: refused while down (backoff growing, never over an hour), then delivered.
    const first = (await listOf(hook.id, '&page=2')).data.at(-1);
    expect(first).toMatchObject({ type: 'key.created', eventId: distinct(rx.received).find((r) => r.json.data.id === keys[0])!.headers['webhook-id'] });
    const detail = (await s.request('GET', `/v1/webhooks/${hook.id}/deliveries/${first.id}`, { token: w.token })).body;
    const log = [...detail.attemptLog].reverse();
    expect(log.length).toBeGreaterThanOrEqual(5);
    expect(log.slice(0, -1).every((a: any) => a.outcome === 'failed' && a.error === 'connection refused' && a.responseStatus === null)).toBe(true);
    expect(log.at(-1)).toMatchObject({ outcome: 'delivered', responseStatus: 200, error: null });
    const gaps = log.slice(1).map((a: any, i: number) => Date.parse(a.attemptedAt) - Date.parse(log[i].attemptedAt));
    expect(Math.max(...gaps)).toBeLessThanOrEqual(MAX_RETRY_DELAY_MS + 5000);
    expect(gaps[3]!).toBeGreaterThan(gaps[0]!);
    expect(log.map((a: any) => a.number)).toEqual(log.map((_: unknown, i: number) => i + 1));
  }, 120_000);

  it('an endpoint disabled by hand keeps its events, held, and gets every one, in order, once enabled', async () => {
    const hook = await subscribe();
    const before = await createKey(s, w, { name: 'before' });
    await rx.waitFor(1);
    s.clock.advance(1000);
    expect((await s.request('PATCH', `/v1/webhooks/${hook.id}`, { token: w.token, body: { status: 'disabled' } })).status).toBe(200);

    const written = new Map<string, string[]>();
    for (let k = 0; k < 3; k++) {
      const key = await createKey(s, w, { name: `k${k}` });
      const names = [`key.created:k${k}`];
      for (const body of [{ name: `k${k}b` }, { status: 'disabled' }, { status: 'active' }]) {
        const res = await s.request('PATCH', `/v1/keys/${key.id}`, { token: w.token, body });
        expect(res.status).toBe(200);
        names.push(`${'status' in body ? (body.status === 'disabled' ? 'key.disabled' : 'key.enabled') : 'key.updated'}:${res.body.name}`);
      }
      written.set(key.id, names);
    }
    await s.request('PATCH', `/v1/keys/${before.id}`, { token: w.token, body: { name: 'before2' } });
    written.set(before.id, ['key.updated:before2']);
    s.clock.advance(DAY);
    await drain();
    expect(rx.received).toHaveLength(1);
    // Written while it was disabled: one delivered before, 13 waiting.
    expect((await listOf(hook.id)).total).toBe(14);
    const held = await listOf(hook.id, '&status=held');
    expect(held.total).toBe(13);
    expect(held.data.every((d) => d.nextAttemptAt === null && d.attempts === 0)).toBe(true);

    const enabled = await s.request('PATCH', `/v1/webhooks/${hook.id}`, { token: w.token, body: { status: 'active' } });
    expect(enabled.body).toMatchObject({ status: 'active' });
    await drain();
    const got = await rx.waitFor(14);
    expect(typesByKey(got.slice(1))).toEqual(written);
    expect((await listOf(hook.id, '&status=delivered')).total).toBe(14);
    const audit = await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit?action=webhook`, { token: w.token });
    expect(audit.body.data.map((e: any) => e.action)).toEqual(['webhook.enable', 'webhook.disable', 'webhook.create']);
  });

  it('an endpoint failing for KEYWARD_WEBHOOK_DISABLE_AFTER_HOURS (120) without a success is disabled, audited, announced to the others, and gets its events when enabled', async () => {
    const rx2 = await startReceiver();
    try {
      const failing = await subscribe(rx.url, ['key.created']);
      const other = await subscribe(rx2.url, ['key.revoked']);
      await rx.down();
      const first = await createKey(s, w, { name: 'first' });
      const start = s.clock.now();
      await drain();
      const names = ['first'];
      // An hour at a time (no retry waits longer), a key made now and then; checked after every step.
      for (let hour = 1; ; hour++) {
        s.clock.advance(HOUR);
        if (hour === 1 || hour === 60 || hour === 119) {
          names.push(`later${hour}`);
          await createKey(s, w, { name: `later${hour}` });
        }
        await drain();
        const pending = (await listOf(failing.id, '&status=pending')).data;
        for (const d of pending) expect(Date.parse(d.nextAttemptAt) - s.clock.now()).toBeLessThanOrEqual(MAX_RETRY_DELAY_MS);
        if ((await hookOf(failing.id)).status === 'disabled') break;
        expect(hour, 'disabled too late').toBeLessThan(121);
      }
      const disabledAt = s.clock.now();
      expect(disabledAt - start).toBeGreaterThanOrEqual(120 * HOUR);
      expect(disabledAt - start).toBeLessThanOrEqual(121 * HOUR);
      const hook = await hookOf(failing.id);
      expect(hook).toMatchObject({ status: 'disabled', failingSince: new Date(start).toISOString() });
      expect(hook.disabledReason).toMatch(/^failing for 120 hours without a success \(\d+ failed attempts since .+\); the last: connection refused$/);
      const audit = await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit?action=webhook.disable`, { token: w.token });
      expect(audit.body.data).toHaveLength(1);
      expect(audit.body.data[0]).toMatchObject({ actor: { type: 'system' }, target: { id: failing.id } });

      // The other endpoint hears of it (it subscribed to key.revoked only: this one comes whatever it chose).
      const [notice] = await rx2.waitFor(1);
      expect(notice!.json).toMatchObject({ type: 'webhook.disabled', data: { id: failing.id, url: rx.url, status: 'disabled', disabledReason: hook.disabledReason } });
      expect(svixVerify(other.secret, notice!)).toMatchObject({ type: 'webhook.disabled' });
      expect(notice!.body).not.toContain(failing.secret);

      // Events keep being written for it, held; enabled, it gets them all, in order.
      await createKey(s, w, { name: 'while-disabled' });
      names.push('while-disabled');
      s.clock.advance(HOUR);
      await drain();
      expect((await listOf(failing.id, '&status=held')).total).toBe(names.length);
      await rx.up();
      expect((await s.request('PATCH', `/v1/webhooks/${failing.id}`, { token: w.token, body: { status: 'active' } })).body).toMatchObject({ status: 'active', failingSince: null, consecutiveFailures: 0 });
      await drain();
      // One chain per key: they go out side by side, each once.
      const got = await rx.waitFor(names.length);
      expect(got.map((r) => r.json.data.name).sort()).toEqual([...names].sort());
      expect(got.find((r) => r.json.data.name === 'first')!.json.data.id).toBe(first.id);
      expect(rx2.received.map((r) => r.json.type)).toEqual(['webhook.disabled']);
    } finally {
      await rx2.close();
    }
  }, 120_000);

  it('a success resets the clock: 100 hours failing, one success, 100 hours failing again is not disabled', async () => {
    const hook = await subscribe(rx.url, ['key.created']);
    await rx.down();
    await createKey(s, w, { name: 'a' });
    await drain();
    const failFor = async (ms: number) => {
      const until = s.clock.now() + ms;
      while (s.clock.now() < until) {
        const pending = (await listOf(hook.id, '&status=pending')).data;
        expect(pending.length).toBeGreaterThan(0);
        const next = Math.min(...pending.map((d) => Date.parse(d.nextAttemptAt)));
        s.clock.set(Math.min(until, Math.max(s.clock.now() + 1, next)));
        await drain();
      }
    };
    await failFor(100 * HOUR);
    expect(await hookOf(hook.id)).toMatchObject({ status: 'active', failingSince: expect.any(String) });
    await rx.up();
    await createKey(s, w, { name: 'b' });
    await drain();
    // The success makes what waited on a backoff due at once.
    await drain();
    expect(distinct(rx.received).map((r) => r.json.data.name).sort()).toEqual(['a', 'b']);
    expect(await hookOf(hook.id)).toMatchObject({ failingSince: null, consecutiveFailures: 0 });
    await rx.down();
    await createKey(s, w, { name: 'c' });
    await drain();
    await failFor(100 * HOUR);
    expect(await hookOf(hook.id)).toMatchObject({ status: 'active' });
  }, 120_000);

  it('lists every attempt of a delivery: a 503, a timeout, then a 200; the first 1 KB of each answer, the secret masked', async () => {
    await s.close();
    s = await startServer({ dialect, env: { ...env, KEYWARD_WEBHOOK_TIMEOUT_MS: '300' } });
    w = await world(s);
    const hook = await subscribe(rx.url, ['key.created']);
    rx.answer({ status: 503, body: `busy; my secret is ${hook.secret}` }, { status: 200, holdMs: 3000 }, { status: 200, body: 'é'.repeat(1000) });
    const key = await createKey(s, w);
    const t0 = s.clock.now();
    await drain();
    s.clock.advance(10_000);
    await drain();
    s.clock.advance(20_000);
    await drain();
    const [d] = (await listOf(hook.id)).data;
    expect(d).toMatchObject({ status: 'delivered', attempts: 3, responseStatus: 200, error: null });
    const detail = await s.request('GET', `/v1/webhooks/${hook.id}/deliveries/${d.id}`, { token: w.token });
    expect(detail.status).toBe(200);
    const log = detail.body.attemptLog;
    expect(log.map((a: any) => [a.number, a.outcome, a.responseStatus, a.error])).toEqual([
      [3, 'delivered', 200, null],
      [2, 'failed', null, 'no answer within 300 ms'],
      [1, 'failed', 503, 'answered 503'],
    ]);
    expect(log.map((a: any) => a.attemptedAt)).toEqual([t0 + 30_000, t0 + 10_000, t0].map((t) => new Date(t).toISOString()));
    expect(log[2].responseBody).toBe('busy; my secret is [secret]');
    expect(detail.text).not.toContain(hook.secret);
    expect(detail.text).not.toContain(hook.secret.slice('whsec_'.length));
    expect(log[1].responseBody).toBeNull();
    expect(log[1].latencyMs).toBeGreaterThanOrEqual(300);
    // 'é' is two bytes: 1024 bytes are 512 of them.
    expect(log[0].responseBody).toBe('é'.repeat(512));
    for (const a of log) expect(Number.isInteger(a.latencyMs)).toBe(true);
    // The payload view: the exact body sent, which the signature covers.
    const sent = rx.received.at(-1)!;
    expect(detail.body.payload).toBe(sent.body);
    expect(JSON.parse(detail.body.payload)).toMatchObject({ type: 'key.created', data: { id: key.id } });
    expect(svixVerify(hook.secret, sent)).toMatchObject({ type: 'key.created' });
    // The list shows the latest attempts too.
    expect((await listOf(hook.id)).data[0].attemptLog).toEqual(log);
    const missing = await s.request('GET', `/v1/webhooks/${hook.id}/deliveries/whd_00000000000000000000`, { token: w.token });
    expect(missing.status).toBe(404);
  });

  it('POST /test sends a signed webhook.test to that endpoint only, whatever it subscribed to; held while it is disabled', async () => {
    const rx2 = await startReceiver();
    try {
      const hook = await subscribe(rx.url, ['key.revoked']);
      await subscribe(rx2.url, ['key.revoked']);
      const res = await s.request('POST', `/v1/webhooks/${hook.id}/test`, { token: w.token });
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({ type: 'webhook.test', webhookId: hook.id, status: 'pending', attempts: 0, attemptLog: [] });
      const [got] = await rx.waitFor(1);
      expect(got!.headers['webhook-id']).toBe(res.body.eventId);
      expect(svixVerify(hook.secret, got!)).toMatchObject({ type: 'webhook.test', data: { webhookId: hook.id } });
      await drain();
      expect(rx2.received).toHaveLength(0);
      const audit = await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit?action=webhook.test`, { token: w.token });
      expect(audit.body.data).toHaveLength(1);

      await s.request('PATCH', `/v1/webhooks/${hook.id}`, { token: w.token, body: { status: 'disabled' } });
      const held = await s.request('POST', `/v1/webhooks/${hook.id}/test`, { token: w.token });
      expect(held.body).toMatchObject({ status: 'held', nextAttemptAt: null });
      await drain();
      expect(rx.received).toHaveLength(1);
      await s.request('PATCH', `/v1/webhooks/${hook.id}`, { token: w.token, body: { status: 'active' } });
      await drain();
      expect((await rx.waitFor(2))[1]!.headers['webhook-id']).toBe(held.body.eventId);
    } finally {
      await rx2.close();
    }
  });

  it('replay sends the events since a time again, each with its own webhook-id (or new ones), in order, not doubling what is still pending', async () => {
    const hook = await subscribe();
    const a = await createKey(s, w, { name: 'a' });
    s.clock.advance(1000);
    const since = s.clock.now();
    const b = await createKey(s, w, { name: 'b' });
    await s.request('PATCH', `/v1/keys/${b.id}`, { token: w.token, body: { name: 'b2' } });
    s.clock.advance(1000);
    await createKey(s, w, { name: 'c' });
    await drain();
    const original = await rx.waitFor(4);
    const ids = new Map(original.map((r) => [`${r.json.type}:${r.json.data.name}`, r.headers['webhook-id']]));
    expect(ids.size).toBe(4);

    const before = await snapshot(s);
    for (const body of [{ since: 'yesterday' }, {}, { since: new Date(since).toISOString(), extra: 1 }, { since: new Date(since).toISOString(), newIds: 'yes' }]) {
      const bad = await s.request('POST', `/v1/webhooks/${hook.id}/replay`, { token: w.token, body });
      expect(bad.status, JSON.stringify(body)).toBe(400);
      expect(bad.body.code).toBe('VALIDATION_FAILED');
      expect(bad.text).not.toContain('yesterday');
    }
    expect(await snapshot(s)).toBe(before);

    // The receiver is slow: the replayed deliveries are still out when the replay is asked again.
    rx.holdMs = 1000;
    s.clock.advance(1000);
    const replay = await s.request('POST', `/v1/webhooks/${hook.id}/replay`, { token: w.token, body: { since: new Date(since).toISOString() } });
    expect(replay.status).toBe(202);
    expect(replay.body).toEqual({ replayed: 3, nextSince: null });
    s.clock.advance(1000);
    expect((await s.request('POST', `/v1/webhooks/${hook.id}/replay`, { token: w.token, body: { since: new Date(since).toISOString() } })).body.replayed).toBe(0);
    rx.holdMs = 0;
    await drain();
    const again = (await rx.waitFor(7)).slice(4);
    expect(typesByKey(again)).toEqual(new Map([[b.id, ['key.created:b', 'key.updated:b2']], [again.find((r) => r.json.data.name === 'c')!.json.data.id, ['key.created:c']]]));
    for (const r of again) {
      expect(r.headers['webhook-id']).toBe(ids.get(`${r.json.type}:${r.json.data.name}`));
      expect(r.body).toBe(original.find((o) => o.headers['webhook-id'] === r.headers['webhook-id'])!.body);
      expect(svixVerify(hook.secret, r)).toBeTruthy();
    }
    // A receiver that deduplicates on webhook-id has nothing new.
    expect(distinct(rx.received)).toHaveLength(4);

    s.clock.advance(1000);
    const fresh = await s.request('POST', `/v1/webhooks/${hook.id}/replay`, { token: w.token, body: { since: new Date(since).toISOString(), newIds: true } });
    expect(fresh.body).toEqual({ replayed: 3, nextSince: null });
    await drain();
    const renewed = (await rx.waitFor(10)).slice(7);
    expect(renewed.map((r) => r.body).sort()).toEqual(again.map((r) => r.body).sort());
    for (const r of renewed) expect([...ids.values()]).not.toContain(r.headers['webhook-id']);
    expect(typesByKey(renewed)).toEqual(typesByKey(again));
    expect(distinct(rx.received)).toHaveLength(7);
    expect(rx.received.filter((r) => r.json.data.id === a.id)).toHaveLength(1);

    s.clock.advance(1000);
    const none = await s.request('POST', `/v1/webhooks/${hook.id}/replay`, { token: w.token, body: { since: new Date(s.clock.now() + DAY).toISOString() } });
    expect(none.body).toEqual({ replayed: 0, nextSince: null });
    const audit = await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit?action=webhook.replay`, { token: w.token });
    expect(audit.body.data.map((e: any) => e.meta.replayed)).toEqual([0, 3, 0, 3]);
  });

  it('the scan fires key.expired at the due time, not at the next periodic scan', async () => {
    await s.close();
    // A clock that runs: the timer is set on this node's clock.
    const running = new (class extends ManualClock {
      override now(): number {
        return Date.now();
      }
    })();
    s = await startServer({ dialect, clock: running, env: { ...env, KEYWARD_WEBHOOK_SCAN_MS: '600000' } });
    w = await world(s);
    await subscribe(rx.url, ['key.expiring', 'key.expired']);
    const expiresAt = Date.now() + 1500;
    const key = await createKey(s, w, { expiresAt: new Date(expiresAt).toISOString() });
    // Inside the notice window: key.expiring at once; key.expired when it expires, ten minutes before the next scan.
    const got = await rx.waitFor(2, 8000);
    expect(got.map((r) => [r.json.type, r.json.data.id])).toEqual([['key.expiring', key.id], ['key.expired', key.id]]);
    expect(Date.parse(got[1]!.json.timestamp)).toBeGreaterThanOrEqual(expiresAt);

    // A key another node made: this node learns its due time at its next scan.
    const other = await startServer({ dialect, clock: running, dataDir: s.dataDir, ...(dialect === 'postgres' ? { databaseUrl: s.deps.config.databaseUrl! } : {}), env });
    try {
      await other.deps.webhooks.close();
      const later = Date.now() + 30 * DAY;
      const remote = await other.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, body: { name: 'remote', expiresAt: new Date(later).toISOString() } });
      expect(remote.status).toBe(201);
      await s.deps.webhooks.scan();
      const soon = Date.now() + 1500;
      await other.request('PATCH', `/v1/keys/${remote.body.id}`, { token: w.token, body: { expiresAt: new Date(soon).toISOString() } });
      expect(s.deps.webhooks.nextDue()).toBeNull();
      await s.deps.webhooks.scan();
      expect(s.deps.webhooks.nextDue()).toBe(soon);
      const all = await rx.waitFor(4, 8000);
      expect(all.slice(2).map((r) => [r.json.type, r.json.data.id])).toEqual([['key.expiring', remote.body.id], ['key.expired', remote.body.id]]);
    } finally {
      await other.close();
    }
  });
});

describe('webhook settings', () => {
  it('KEYWARD_WEBHOOK_DISABLE_AFTER_HOURS defaults to 120; the replaced settings are read once, with a warning, and ignored', () => {
    expect(loadConfig({}).webhooks.disableAfterMs).toBe(120 * HOUR);
    expect(loadConfig({}).warnings).toEqual([]);
    expect(loadConfig({ KEYWARD_WEBHOOK_DISABLE_AFTER_HOURS: '24' }).webhooks.disableAfterMs).toBe(24 * HOUR);
    expect(() => loadConfig({ KEYWARD_WEBHOOK_DISABLE_AFTER_HOURS: '0' })).toThrow(/KEYWARD_WEBHOOK_DISABLE_AFTER_HOURS/);
    const old = loadConfig({ KEYWARD_WEBHOOK_DISABLE_AFTER: '40', KEYWARD_WEBHOOK_MAX_ATTEMPTS: 'lots' });
    expect(old.webhooks.disableAfterMs).toBe(120 * HOUR);
    expect(old.warnings).toHaveLength(2);
    expect(old.warnings[0]).toMatch(/^KEYWARD_WEBHOOK_DISABLE_AFTER is replaced by KEYWARD_WEBHOOK_DISABLE_AFTER_HOURS/);
    expect(old.warnings[1]).toMatch(/^KEYWARD_WEBHOOK_MAX_ATTEMPTS is no longer read/);
  });

  it('a server started with the replaced settings says so once, at start', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-wh-settings-'));
    const node = await startProcess({ KEYWARD_DATA_DIR: dir, KEYWARD_WEBHOOK_DISABLE_AFTER: '40', KEYWARD_WEBHOOK_MAX_ATTEMPTS: '8' });
    try {
      const out = node.output();
      expect(out.match(/KEYWARD_WEBHOOK_DISABLE_AFTER is replaced by KEYWARD_WEBHOOK_DISABLE_AFTER_HOURS/g)).toHaveLength(1);
      expect(out.match(/KEYWARD_WEBHOOK_MAX_ATTEMPTS is no longer read/g)).toHaveLength(1);
    } finally {
      await node.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('backoff doubles from the base with jitter and never waits more than an hour', () => {
    expect(retryDelay(5000, 1, () => 0)).toBe(2500);
    expect(retryDelay(5000, 1, () => 1)).toBe(5000);
    expect(retryDelay(5000, 4, () => 1)).toBe(40_000);
    for (const attempt of [11, 12, 50, 1000, 1e9]) {
      expect(retryDelay(5000, attempt, () => 1)).toBe(MAX_RETRY_DELAY_MS);
      expect(retryDelay(5000, attempt, () => 0)).toBe(MAX_RETRY_DELAY_MS / 2);
    }
  });
});
