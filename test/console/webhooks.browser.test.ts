// The webhook page of the console in a real browser (Debian's Chromium through playwright-core):
// a delivery's attempts and payload, the test event, replay, and an endpoint Keyward disabled.
// Screenshots go to test-artifacts/screenshots (git-ignored).
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_DIR } from '../../src/http/console.js';
import { createKey, startServer, world, type TestServer, type World } from '../support/harness.js';
import { startReceiver, type Receiver } from '../support/webhook-receiver.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = path.resolve('test-artifacts/screenshots');

describe('web console: webhooks', () => {
  let s: TestServer;
  let w: World;
  let rx: Receiver;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    if (!fs.existsSync(path.join(CONSOLE_DIR, 'index.html'))) throw new Error('the console is not built: run `npm run build` (npm test does)');
    if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium`);
    fs.mkdirSync(SHOTS, { recursive: true });
    rx = await startReceiver();
    s = await startServer({ listen: true, env: { KEYWARD_WEBHOOK_ALLOW_PRIVATE: '1', KEYWARD_WEBHOOK_POLL_MS: '60000' } });
    w = await world(s);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-gpu', '--no-first-run'],
    });
    page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    page.on('pageerror', (err) => { throw err; });
    await page.goto(s.url + '/login');
    await page.evaluate((t) => localStorage.setItem('keyward.session', t), w.token);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await s?.close();
    await rx?.close();
  });

  it('shows each attempt with its answer and the payload; sends a test event; replays; shows a disabled endpoint keeps its events', async () => {
    const hook = await s.request('POST', `/v1/workspaces/${w.workspaceId}/webhooks`, { token: w.token, body: { url: rx.url, events: ['key.created'] } });
    expect(hook.status).toBe(201);
    rx.answer({ status: 503, body: 'upstream busy' });
    const key = await createKey(s, w, { name: 'watched' });
    await s.deps.webhooks.idle();
    s.clock.advance(10_000);
    await s.deps.webhooks.drain();
    await rx.waitFor(2);

    await page.goto(`${s.url}/webhooks/${hook.body.id}`);
    await page.getByRole('heading', { name: 'Deliveries' }).waitFor();
    const row = page.getByTestId('delivery').first();
    await expect.poll(() => row.textContent()).toMatch(/key\.created.*delivered 200/);
    await row.getByRole('button', { name: 'View' }).click();
    const attempts = page.getByTestId('attempt');
    await expect.poll(() => attempts.count()).toBe(2);
    expect(await attempts.nth(0).textContent()).toMatch(/^2.*delivered 200.*ms.*ok$/);
    expect(await attempts.nth(1).textContent()).toMatch(/^1.*failed 503.*ms.*upstream busy$/);
    expect(JSON.parse((await page.getByTestId('payload').textContent())!)).toMatchObject({ type: 'key.created', data: { id: key.id, name: 'watched' } });
    await page.screenshot({ path: path.join(SHOTS, '30-webhook-delivery-attempts.png'), fullPage: true });
    await page.getByRole('button', { name: 'Close' }).last().click();

    await page.getByRole('button', { name: 'Send test event' }).click();
    await page.getByText('Test event sent').waitFor();
    const got = await rx.waitFor(3);
    expect(got[2]!.json).toMatchObject({ type: 'webhook.test', data: { webhookId: hook.body.id } });

    await page.getByRole('button', { name: 'Replay…' }).click();
    await page.getByLabel('Since').waitFor();
    await page.screenshot({ path: path.join(SHOTS, '31-webhook-replay.png'), fullPage: true });
    await page.getByRole('button', { name: 'Replay', exact: true }).click();
    await page.getByText('Queued 2 events again').waitFor();
    const replayed = (await rx.waitFor(5)).slice(3);
    expect(replayed.map((r) => r.headers['webhook-id']).sort()).toEqual([got[0]!.headers['webhook-id'], got[2]!.headers['webhook-id']].sort());

    // Keyward disabled it: the reason, and that its events are kept.
    await s.deps.store.transaction((r) => r.webhooks.disableIfActive(hook.body.id, 'failing for 120 hours without a success', s.clock.now()));
    await createKey(s, w, { name: 'while disabled' });
    await page.reload();
    await page.getByTestId('disabled-note').waitFor();
    expect(await page.getByTestId('disabled-note').textContent()).toMatch(/^Disabled by Keyward: failing for 120 hours without a success\. Its events are kept/);
    await page.getByLabel('Delivery status').selectOption('held');
    await expect.poll(() => page.getByTestId('delivery').first().textContent()).toMatch(/key\.created.*held/);
    await page.screenshot({ path: path.join(SHOTS, '32-webhook-disabled.png'), fullPage: true });
    await page.getByRole('button', { name: 'Enable' }).click();
    await page.getByText('Webhook enabled').waitFor();
    expect((await rx.waitFor(6))[5]!.json).toMatchObject({ type: 'key.created', data: { name: 'while disabled' } });
  }, 60_000);
});
