// The SSRF guard against every IPv6 form that carries an IPv4 address (compatible, mapped,
// translated, NAT64, 6to4), at creation and at send time, and what a failed attempt may say: never
// an address a name resolved to, never the endpoint's secret.
import { afterEach, describe, expect, it } from 'vitest';
import { DIALECTS, snapshot, startServer, world, type TestServer } from '../support/harness.js';
import { startReceiver } from '../support/webhook-receiver.js';
import { refusedAddress } from '../../src/webhooks/ssrf.js';
import { WebhookSender, type Resolve } from '../../src/webhooks/sender.js';

/** IPv6 spellings of private, loopback and metadata IPv4 addresses, each refused as the IPv4 it carries. */
const PRIVATE_IN_IPV6 = [
  '::127.0.0.1', '::7f00:1', '::a00:1', '::a9fe:a9fe', '::c0a8:101', // compatible
  '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.1.2.3', '::ffff:a9fe:a9fe', // mapped
  '::ffff:0:7f00:1', '::ffff:0:a00:1', // translated (RFC 6145)
  '64:ff9b::127.0.0.1', '64:ff9b::7f00:1', '64:ff9b::a00:1', '64:ff9b::a9fe:a9fe', '64:ff9b::c0a8:101', // NAT64
  '64:ff9b:1::a00:1', '64:ff9b:1:7f00:1::', // NAT64 local-use: refused whatever it carries
  '2002:7f00:1::', '2002:a00:1::1', '2002:a9fe:a9fe::', '2002:c0a8:101:1::1', '2002:6440:1::', // 6to4 (the last: 100.64.0.1, carrier-grade NAT)
  '2001:0:4136:e378:8000:63bf:3fff:fdd2', // Teredo
  '::', '::1', 'fe80::1', 'fd00::1', 'ff02::1',
];
/** The same forms carrying a public address are as public as it is. */
const PUBLIC_IN_IPV6 = ['::ffff:8.8.8.8', '64:ff9b::808:808', '64:ff9b::1.1.1.1', '2002:808:808::1', '2606:4700:4700::1111'];

describe('webhook target addresses', () => {
  it('every IPv6 form carrying an IPv4 address is judged by the IPv4 address it carries, and the answer never names it', () => {
    for (const address of PRIVATE_IN_IPV6) expect(refusedAddress(address), address).toBe('private address');
    for (const address of PUBLIC_IN_IPV6) expect(refusedAddress(address), address).toBeNull();
    for (const address of ['127.0.0.1', '10.1.2.3', '169.254.169.254', '100.64.0.1', '192.0.2.1', '0.0.0.0', '255.255.255.255']) expect(refusedAddress(address), address).toBe('private address');
    expect(refusedAddress('8.8.8.8')).toBeNull();
  });

  it('at send time, a name resolving to any of them is refused as "refused: private address", without the address, before connecting', async () => {
    const rx = await startReceiver();
    try {
      const answers = new Map<string, string[]>([
        ['internal.example.test', ['10.1.2.3']],
        ['mixed.example.test', ['93.184.216.34', '10.1.2.3']],
        ...PRIVATE_IN_IPV6.map((a, i) => [`v6-${i}.example.test`, [a]] as [string, string[]]),
      ]);
      const asked: string[] = [];
      const resolve: Resolve = async (name) => {
        asked.push(name);
        return (answers.get(name) ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
      };
      const sender = new WebhookSender({ timeoutMs: 2000, allowPrivate: false, userAgent: 't', resolve });
      for (const name of answers.keys()) {
        const result = await sender.send({ url: `http://${name}:${rx.port}/hooks`, id: 'evt_x', timestampSec: 1, body: '{}', signature: 'v1,x' });
        expect(result, name).toMatchObject({ ok: false, status: null, error: 'refused: private address', body: null });
        for (const address of answers.get(name)!) expect(result.error).not.toContain(address);
      }
      expect(asked).toEqual([...answers.keys()]);
      // Literal addresses never reach the resolver and are refused the same way.
      for (const address of [...PRIVATE_IN_IPV6.filter((a) => a.includes(':')), '10.1.2.3']) {
        const host = address.includes(':') ? `[${address}]` : address;
        const result = await sender.send({ url: `http://${host}:${rx.port}/hooks`, id: 'evt_x', timestampSec: 1, body: '{}', signature: 'v1,x' });
        expect(result.error, address).toBe('refused: private address');
      }
      expect(rx.received).toHaveLength(0);
    } finally {
      await rx.close();
    }
  });

  it('a failed connection says what failed in words, not the address connected to', async () => {
    const rx = await startReceiver();
    const port = rx.port;
    await rx.close();
    const sender = new WebhookSender({ timeoutMs: 2000, allowPrivate: true, userAgent: 't', resolve: async () => [{ address: '127.0.0.1', family: 4 }] });
    const refused = await sender.send({ url: `http://hooks.internal.test:${port}/`, id: 'evt_x', timestampSec: 1, body: '{}', signature: 'v1,x' });
    expect(refused).toMatchObject({ ok: false, status: null, error: 'connection refused' });
    const unknown = new WebhookSender({ timeoutMs: 2000, allowPrivate: false, userAgent: 't', resolve: async () => { throw Object.assign(new Error('getaddrinfo ENOTFOUND nowhere.test'), { code: 'ENOTFOUND' }); } });
    expect((await unknown.send({ url: 'https://nowhere.test/', id: 'evt_x', timestampSec: 1, body: '{}', signature: 'v1,x' })).error).toBe('the name does not resolve');
  });
});

describe.each(DIALECTS)('webhook targets, IPv6 forms (%s)', (dialect) => {
  let s: TestServer | undefined;
  afterEach(async () => {
    await s?.close();
    s = undefined;
  });

  it('refuses every IPv6 spelling of a private address at creation and on PATCH, naming no address; accepts those carrying a public one', async () => {
    s = await startServer({ dialect });
    const w = await world(s);
    const created = await s.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body: { url: 'https://hooks.example.com/k', events: ['key.created'] } });
    expect(created.status).toBe(201);
    const before = await snapshot(s);
    for (const address of PRIVATE_IN_IPV6) {
      const url = `http://[${address}]:8080/hooks`;
      const res = await s.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body: { url, events: ['key.created'] } });
      expect(res.status, url).toBe(400);
      expect(res.body).toMatchObject({ code: 'VALIDATION_FAILED', errors: [{ path: 'body/url' }] });
      expect(res.body.errors[0].message).toBe('is refused: private address (private targets need KEYWARD_WEBHOOK_ALLOW_PRIVATE=1 on the server)');
      const patched = await s.request('PATCH', `/v1/webhooks/${created.body.id}`, { token: w.token, body: { url } });
      expect(patched.status, url).toBe(400);
    }
    expect(await snapshot(s)).toBe(before);
    for (const address of PUBLIC_IN_IPV6) {
      const res = await s.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body: { url: `https://[${address}]/hooks`, events: ['key.created'] } });
      expect(res.status, address).toBe(201);
    }
  });

  it('a delivery to a name that now resolves to a private address is refused, and its attempt names no address', async () => {
    const rx = await startReceiver();
    const resolve: Resolve = async () => [{ address: '64:ff9b::a01:203', family: 6 }];
    try {
      s = await startServer({ dialect, resolve, env: { KEYWARD_WEBHOOK_POLL_MS: '60000' } });
      const w = await world(s);
      const hook = await s.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body: { url: `http://hooks.customer.test:${rx.port}/hooks`, events: ['key.created'] } });
      expect(hook.status).toBe(201);
      expect((await s.request('POST', `/v1/apps/${w.appId}/keys`, { token: w.token, body: { name: 'k' } })).status).toBe(201);
      await s.deps.webhooks.idle();
      await s.deps.webhooks.drain();
      const list = await s.request('GET', `/v1/webhooks/${hook.body.id}/deliveries`, { token: w.token });
      const [d] = list.body.data;
      expect(d).toMatchObject({ status: 'pending', attempts: 1, error: 'refused: private address' });
      expect(d.attemptLog).toEqual([expect.objectContaining({ outcome: 'failed', responseStatus: null, responseBody: null, error: 'refused: private address' })]);
      for (const leak of ['64:ff9b', 'a01:203', '10.1.2.3']) expect(list.text).not.toContain(leak);
      expect(rx.received).toHaveLength(0);
    } finally {
      await rx.close();
    }
  });
});
