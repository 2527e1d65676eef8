// The web console in a real browser (Debian's Chromium through playwright-core): first run, apps,
// keys (create, copy, edit, revoke), the playground and the docs page. Screenshots of every page
// go to test-artifacts/screenshots (git-ignored).
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_DIR } from '../../src/http/console.js';
import { startServer, verify, type TestServer } from '../support/harness.js';
import { startReceiver } from '../support/webhook-receiver.js';
import { verifySignature } from '../../src/webhooks/receiver.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = path.resolve('test-artifacts/screenshots');

describe('web console', () => {
  let s: TestServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  const shot = async (name: string, p: Page = page) => {
    await p.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  };

  beforeAll(async () => {
    if (!fs.existsSync(path.join(CONSOLE_DIR, 'index.html'))) throw new Error('the console is not built: run `npm run build` (npm test does)');
    if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium`);
    fs.mkdirSync(SHOTS, { recursive: true });
    s = await startServer({ listen: true, env: { KEYWARD_WEBHOOK_ALLOW_PRIVATE: '1' } });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-gpu', '--no-first-run'],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: s.url });
    page = await context.newPage();
    page.on('pageerror', (err) => { throw err; });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await s?.close();
  });

  const clipboard = () => page.evaluate(() => navigator.clipboard.readText());

  it('setup → app → key shown once and copied → it verifies → edit → revoke → refused', async () => {
    const violations: string[] = [];
    page.on('console', (m) => { if (/Content Security Policy/i.test(m.text())) violations.push(m.text()); });
    await page.goto(s.url);
    await page.waitForURL('**/setup');
    await shot('01-setup');
    await page.getByLabel('Workspace name').fill('Acme');
    await page.getByLabel('Email').fill('owner@example.com');
    await page.getByLabel('Password').fill('correct horse battery');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.waitForURL('**/apps');
    await page.getByRole('heading', { name: 'Apps', level: 1, exact: true }).waitFor();
    await shot('02-apps-empty');

    await page.getByRole('button', { name: 'New app' }).click();
    await page.getByLabel('Name').fill('Acme API');
    await page.getByLabel('Key prefix').fill('acme');
    await shot('03-new-app');
    await page.getByRole('button', { name: 'Create app' }).click();
    await page.waitForURL(/\/apps\/app_/);
    const appId = page.url().split('/').pop()!;
    s.appId = appId;

    await page.getByRole('button', { name: 'Create API key' }).first().click();
    await page.getByLabel('Name').fill('Production backend');
    await page.getByLabel('Owner').fill('customer_42');
    await page.getByLabel('Permissions').fill('docs.read, docs.write');
    await page.getByRole('checkbox', { name: 'Allow all IP addresses' }).uncheck();
    await page.locator('#k-ips').fill('10.0.0.0/8\n300.1.1.1');
    await page.getByRole('button', { name: 'Create key' }).click();
    await expect(page.getByText('300.1.1.1: not an IPv4 or IPv6 address')).toBeTruthy();
    await page.getByText(/300\.1\.1\.1: not an IPv4/).waitFor();
    await shot('04-create-key-validation');
    await page.locator('#k-ips').fill('10.0.0.0/8\n2001:db8::/32');
    await page.getByRole('checkbox', { name: 'Never expire' }).uncheck();
    await shot('05-create-key');
    await page.getByRole('button', { name: 'Create key' }).click();
    const shown = page.getByTestId('shown-key');
    await shown.waitFor();
    await page.getByText('will not be shown again').waitFor();
    await shot('06-key-shown-once');
    const key = (await shown.textContent())!;
    expect(key).toMatch(/^acme_live_[0-9A-Za-z]{38}$/);
    await page.getByTestId('copy-key').click();
    await expect.poll(clipboard).toBe(key);
    await page.getByRole('button', { name: 'I have stored it' }).click();
    await expect.poll(() => page.getByTestId('shown-key').count()).toBe(0);

    expect(await verify(s, { key, permissions: ['docs.read'], ip: '10.1.2.3' })).toMatchObject({ valid: true, ownerId: 'customer_42' });
    await page.getByRole('link', { name: 'Production backend' }).waitFor();
    await shot('07-keys-table');

    await page.getByLabel('Actions for Production backend').click();
    await page.getByRole('button', { name: 'Edit Production backend' }).click();
    await page.getByRole('button', { name: 'Remove docs.write' }).click();
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText('Key saved').waitFor();
    expect((await verify(s, { key, permissions: ['docs.write'], ip: '10.1.2.3' })).code).toBe('INSUFFICIENT_PERMISSIONS');

    await page.getByLabel('Actions for Production backend').click();
    await page.getByRole('button', { name: 'Revoke Production backend' }).click();
    await shot('08-revoke-confirm');
    const revokeButton = page.getByRole('dialog').getByRole('button', { name: 'Revoke key' });
    expect(await revokeButton.isDisabled()).toBe(true);
    await page.getByLabel('Type "Production backend" to confirm').fill('Production backend');
    await revokeButton.click();
    await page.getByText('Key revoked').waitFor();
    expect((await verify(s, { key, ip: '10.1.2.3' })).code).toBe('REVOKED');
    await page.getByRole('cell', { name: 'revoked', exact: true }).waitFor();

    await page.getByRole('link', { name: 'Production backend' }).click();
    const chart = page.getByTestId('usage-chart');
    await chart.waitFor();
    await page.getByText('key.revoke').waitFor();
    // The last bucket holds this test's verifies: by keyboard, the tooltip names each outcome.
    expect(await chart.getAttribute('aria-label')).toMatch(/last 24 hours: [1-9]/);
    await chart.focus();
    await page.keyboard.press('ArrowLeft');
    const tip = page.getByTestId('chart-tip');
    await expect.poll(() => tip.textContent()).toMatch(/VALID\s*\d/);
    expect(await tip.textContent()).toMatch(/INSUFFICIENT_PERMISSIONS\s*1/);
    await shot('09-key-detail');
    await page.getByRole('button', { name: '7d' }).click();
    await expect.poll(() => chart.getAttribute('aria-label')).toMatch(/last 7 days: [1-9]/);
    await page.getByRole('button', { name: '30d' }).click();
    await expect.poll(() => chart.getAttribute('aria-label')).toMatch(/last 30 days: [1-9]/);
    const box = (await chart.boundingBox())!;
    await page.mouse.move(box.x + box.width - 3, box.y + box.height / 2);
    await expect.poll(() => tip.textContent()).toMatch(/REVOKED\s*\d/);
    await shot('09b-key-usage-30d');

    await page.goto(`${s.url}/apps/${appId}/vault`);
    await page.getByRole('button', { name: 'Add secret' }).click();
    await page.getByLabel('Name').fill('STRIPE_KEY');
    await page.getByLabel('Value').fill('sk_test_123');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('cell', { name: 'STRIPE_KEY' }).waitFor();
    await shot('10-vault');
    await page.goto(`${s.url}/audit`);
    await page.getByText('vault.create').waitFor();
    // The permissions edit above, before and after.
    await page.getByText('Changed permissions').first().click();
    const change = page.getByTestId('audit-changes').first();
    await expect.poll(() => change.textContent()).toMatch(/permissions\["docs\.read","docs\.write"\]\s*→\s*\["docs\.read"\]/);
    await shot('11-audit');
    await page.goto(`${s.url}/members`);
    await page.getByRole('cell', { name: 'owner@example.com (you)' }).waitFor();
    await page.getByRole('button', { name: 'Invite member' }).click();
    await page.getByLabel('Email').fill('bob@example.com');
    await page.getByLabel('Role').selectOption('member');
    await page.getByRole('button', { name: 'Create invitation' }).click();
    await page.getByTestId('invite-url').waitFor();
    await page.getByTestId('copy-invite').click();
    const inviteUrl = await expect.poll(clipboard).toMatch(/\/accept-invite#token=kwi_/).then(() => clipboard());
    await page.getByRole('cell', { name: 'bob@example.com', exact: true }).waitFor();
    await shot('12-members');

    // Bob opens the link in a browser of his own, chooses his password, and lands in the workspace.
    const bob = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const bobPage = await bob.newPage();
    await bobPage.goto(inviteUrl);
    await bobPage.getByLabel('Password').fill('bobs own password');
    await bobPage.getByRole('button', { name: 'Create account and join' }).click();
    await bobPage.waitForURL(/\/apps$/);
    await bobPage.getByRole('link', { name: 'Acme API', exact: true }).waitFor();
    await bob.close();
    await page.reload();
    await page.getByRole('cell', { name: 'bob@example.com', exact: true }).first().waitFor();
    await expect.poll(() => page.getByTestId('pending-invitations').count()).toBe(0);
    expect(violations).toEqual([]);
  }, 90_000);

  it('playground: checks a key, sends a request, explains a refusal, keeps history, copies cURL', async () => {
    const created = await s.request('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password: 'correct horse battery' } });
    const ws = created.body.workspaces[0].id;
    const apps = await s.request('GET', `/v1/apps?workspaceId=${ws}`, { token: created.body.token });
    const k = await s.request('POST', `/v1/apps/${apps.body.data[0].id}/keys`, { token: created.body.token, body: { name: 'scoped', permissions: ['docs.read'] } });

    await page.goto(`${s.url}/playground`);
    await page.getByLabel('API key to inspect').fill(k.body.key);
    await page.getByRole('button', { name: 'Check key' }).click();
    await page.getByTestId('key-info').getByText('This key is scoped').waitFor();

    await page.getByLabel('Endpoint').selectOption('POST /v1/keys/verify');
    await page.getByLabel('JSON body').fill(JSON.stringify({ key: k.body.key, appId: apps.body.data[0].id, permissions: ['docs.write'] }));
    expect(await page.getByTestId('request-preview').textContent()).toContain('POST /v1/keys/verify');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByTestId('explain').waitFor();
    expect(await page.getByTestId('response-status').textContent()).toBe('200');
    expect(await page.getByTestId('explain').textContent()).toContain('lacks a permission');
    await shot('13-playground');

    await page.getByLabel('JSON body').fill('{"key": ');
    await page.getByText(/Invalid JSON/).waitFor();
    expect(await page.getByRole('button', { name: 'Send' }).isDisabled()).toBe(true);

    await page.getByLabel('Endpoint').selectOption('GET /v1/workspaces');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByTestId('response-body').getByText('"Acme"').waitFor();
    await expect.poll(() => page.getByTestId('history').locator('button').count()).toBe(2);
    await page.getByTestId('copy-curl').click();
    await expect.poll(clipboard).toMatch(/^curl -X GET '.*\/v1\/workspaces'/);

    // A request with a path parameter, to see it come back from history.
    await page.getByLabel('Endpoint').selectOption('GET /v1/apps/{appId}');
    await page.getByLabel('appId * (path)').fill(apps.body.data[0].id);
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByTestId('response-body').getByText('"keyPrefix"').waitFor();
    await expect.poll(() => page.getByTestId('history').locator('button').count()).toBe(3);

    await page.reload();
    await page.getByTestId('history').waitFor();
    await expect.poll(() => page.getByTestId('history').locator('button').count()).toBe(3);
    // Replaying the verify puts endpoint and body back; its key was never stored, so it waits for it.
    await page.getByTestId('history').locator('button').last().click();
    await expect.poll(() => page.getByLabel('Endpoint').inputValue()).toBe('POST /v1/keys/verify');
    await expect.poll(() => page.getByLabel('JSON body').inputValue()).toContain('"key": "<not stored>"');
    expect(await page.getByLabel('JSON body').inputValue()).toContain(apps.body.data[0].id);
    await page.getByTestId('replay-notice').waitFor();
    expect(await page.getByTestId('history').locator('button').count()).toBe(3);
    await page.getByLabel('JSON body').fill(JSON.stringify({ key: k.body.key, appId: apps.body.data[0].id, permissions: ['docs.write'] }));
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByTestId('explain').waitFor();
    await expect.poll(() => page.getByTestId('history').locator('button').count()).toBe(4);
    // Replaying the app read restores its parameter and sends it again.
    await page.getByTestId('history').locator('button').nth(1).click();
    await expect.poll(() => page.getByLabel('Endpoint').inputValue()).toBe('GET /v1/apps/{appId}');
    await expect.poll(() => page.getByLabel('appId * (path)').inputValue()).toBe(apps.body.data[0].id);
    await expect.poll(() => page.getByTestId('history').locator('button').count()).toBe(5);
    expect(await page.getByTestId('response-status').textContent()).toBe('200');
    await page.getByRole('button', { name: 'Clear' }).click();
    await expect.poll(() => page.getByTestId('history').count()).toBe(0);
  }, 60_000);

  it('root keys: created with keys:verify (shown once, verifies), revoked; gateway rules edited and saved', async () => {
    const login = await s.request('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password: 'correct horse battery' } });
    const ws = login.body.workspaces[0].id;
    const appId = (await s.request('GET', `/v1/apps?workspaceId=${ws}`, { token: login.body.token })).body.data[0].id as string;
    const k = await s.request('POST', `/v1/apps/${appId}/keys`, { token: login.body.token, body: { name: 'gw' } });

    await page.goto(`${s.url}/root-keys`);
    await page.getByRole('button', { name: 'New root key' }).click();
    await page.getByLabel('Name').fill('nginx gateway');
    // Enter in a field submits the dialog.
    await page.getByLabel('Name').press('Enter');
    const shown = page.getByTestId('shown-key');
    await shown.waitFor();
    const rootKey = (await shown.textContent())!;
    expect(rootKey).toMatch(/^kwroot_live_/);
    await shot('15-root-key-shown');
    await page.getByRole('button', { name: 'I have stored it' }).click();
    const viaRoot = await s.request('POST', '/v1/keys/verify', { body: { key: k.body.key }, headers: { authorization: `Bearer ${rootKey}` } });
    expect(viaRoot.body.code).toBe('VALID');
    await page.getByRole('button', { name: 'Revoke nginx gateway' }).click();
    await page.getByRole('button', { name: 'Revoke root key' }).click();
    await page.getByText('Root key revoked').waitFor();
    expect((await s.request('POST', '/v1/keys/verify', { body: { key: k.body.key }, headers: { authorization: `Bearer ${rootKey}` } })).status).toBe(401);

    await page.goto(`${s.url}/apps/${appId}/settings`);
    await page.getByRole('button', { name: 'Add rule' }).click();
    await page.getByLabel('Rule 1 methods').fill('post, delete');
    await page.getByLabel('Rule 1 path').fill('/orders/*');
    await page.getByLabel('Rule 1 permissions').fill('orders.write');
    await page.getByRole('button', { name: 'Save rules' }).click();
    await page.getByText('Gateway rules saved').waitFor();
    await shot('16-gateway-rules');
    const app = await s.request('GET', `/v1/apps/${appId}`, { token: login.body.token });
    expect(app.body.gatewayRules).toEqual([{ methods: ['POST', 'DELETE'], path: '/orders/*', permissions: ['orders.write'] }]);
    await page.getByLabel('Rule 1 methods').fill('FETCH');
    await page.getByRole('button', { name: 'Save rules' }).click();
    await page.getByText(/"FETCH" is not a method/).waitFor();

    await page.goto(`${s.url}/keys/not-a-key`);
    await page.getByRole('heading', { name: 'No such key' }).waitFor();

    await page.getByRole('button', { name: '+ New workspace' }).click();
    await page.getByLabel('Workspace name').fill('Side project');
    await page.getByLabel('Workspace name').press('Enter');
    await page.getByText('Workspace created').waitFor();
    await expect.poll(() => page.getByLabel('Workspace').inputValue()).not.toBe(ws);
    await page.getByRole('heading', { name: 'Apps', exact: true }).waitFor();
  }, 60_000);

  it('webhooks: created with an event picker (secret shown once), deliveries with status and response, retry, disable; readable on a phone', async () => {
    const rx = await startReceiver();
    try {
      const login = await s.request('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password: 'correct horse battery' } });
      const ws = login.body.workspaces[0].id;
      const appId = (await s.request('GET', `/v1/apps?workspaceId=${ws}`, { token: login.body.token })).body.data[0].id as string;
      await page.goto(`${s.url}/apps`);
      await page.getByLabel('Workspace').selectOption({ label: 'Acme' });
      await page.getByRole('link', { name: 'Webhooks' }).click();
      await page.getByRole('heading', { name: 'Webhooks', level: 1 }).waitFor();
      await page.getByText('No webhooks yet').waitFor();
      await page.getByRole('button', { name: 'New webhook' }).click();
      await page.getByLabel('Endpoint URL').fill(rx.url);
      await page.getByLabel('Description').fill('ops alerts');
      await page.getByLabel('key.created', { exact: true }).check();
      await shot('17-webhook-new');
      await page.getByRole('button', { name: 'Create webhook' }).click();
      const shown = page.getByTestId('shown-key');
      await shown.waitFor();
      const secret = (await shown.textContent())!;
      expect(secret).toMatch(/^whsec_/);
      await page.getByRole('button', { name: 'I have stored it' }).click();

      const k = await s.request('POST', `/v1/apps/${appId}/keys`, { token: login.body.token, body: { name: 'hooked' } });
      const [got] = await rx.waitFor(1);
      expect(got!.json).toMatchObject({ type: 'key.created', data: { id: k.body.id } });
      expect(verifySignature(secret, { id: got!.headers['webhook-id'] as string, timestamp: got!.headers['webhook-timestamp'] as string, signature: got!.headers['webhook-signature'] as string }, got!.body, Number(got!.headers['webhook-timestamp']))).toBe(true);

      await page.getByRole('link', { name: rx.url }).click();
      await page.getByRole('heading', { name: 'Deliveries' }).waitFor();
      const row = page.getByTestId('delivery').first();
      await expect.poll(async () => { await page.reload(); return row.textContent(); }, { timeout: 10_000 }).toMatch(/^key\.created.*delivered 200/);
      await shot('18-webhook-deliveries');
      await row.getByRole('button', { name: 'Retry' }).click();
      await page.getByText('Delivery queued again').waitFor();
      await rx.waitFor(2);
      expect(rx.received[1]!.headers['webhook-id']).toBe(got!.headers['webhook-id']);
      await page.getByRole('button', { name: 'Disable' }).click();
      await page.getByText('Webhook disabled').waitFor();
      await page.getByRole('button', { name: 'Enable' }).waitFor();

      const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
      const p = await phone.newPage();
      await p.goto(s.url + '/login');
      await p.evaluate((t) => localStorage.setItem('keyward.session', t), login.body.token as string);
      await p.goto(page.url());
      await p.getByRole('heading', { name: 'Deliveries' }).waitFor();
      await shot('19-phone-webhook', p);
      expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      await phone.close();
    } finally {
      await rx.close();
    }
  }, 60_000);

  it('docs page copies the real openapi.json and llms.txt', async () => {
    await page.goto(`${s.url}/reference`);
    await page.getByRole('heading', { name: 'verify', exact: true }).waitFor();
    await page.getByText('/v1/keys/verify').first().click();
    await shot('14-docs');
    const spec = await (await fetch(`${s.url}/openapi.json`)).text();
    const llms = await (await fetch(`${s.url}/llms.txt`)).text();
    await page.getByTestId('copy-openapi').click();
    await page.getByTestId('copy-openapi').getByText('Copied').waitFor();
    expect(await clipboard()).toBe(spec);
    await page.getByTestId('copy-llms').click();
    await page.getByTestId('copy-llms').getByText('Copied').waitFor();
    expect(await clipboard()).toBe(llms);
  });

  it('works at phone width and by keyboard', async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    const p = await phone.newPage();
    const login = await s.request('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password: 'correct horse battery' } });
    await p.goto(s.url + '/login');
    await p.evaluate((t) => localStorage.setItem('keyward.session', t), login.body.token as string);
    await p.goto(s.url + '/apps');
    await p.getByRole('heading', { name: 'Apps', level: 1, exact: true }).waitFor();
    const width = await p.evaluate(() => document.documentElement.scrollWidth);
    expect(width).toBeLessThanOrEqual(390);
    await shot('15-phone-apps', p);
    await p.getByRole('button', { name: '☰ Menu' }).click();
    await shot('16-phone-menu', p);

    // The keys on a phone: one card each, no sideways scroll, every action in reach.
    const ws = login.body.workspaces.find((x: any) => x.name === 'Acme').id;
    const appId = (await s.request('GET', `/v1/apps?workspaceId=${ws}`, { token: login.body.token })).body.data[0].id as string;
    const phoneKey = await s.request('POST', `/v1/apps/${appId}/keys`, { token: login.body.token, body: { name: 'phone key' } });
    await p.goto(`${s.url}/apps/${appId}`);
    await p.getByTestId(`key-card-${phoneKey.body.id}`).waitFor();
    expect(await p.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await shot('20-phone-keys-cards', p);
    await p.getByTestId(`key-card-${phoneKey.body.id}`).getByRole('button', { name: 'Disable phone key' }).click();
    await p.getByText('phone key disabled').waitFor();
    expect((await s.request('GET', `/v1/keys/${phoneKey.body.id}`, { token: login.body.token })).body.status).toBe('disabled');
    await phone.close();

    // Sorting by a column header, and a search asked once typing pauses (not once per letter).
    await page.goto(`${s.url}/apps`);
    await page.getByLabel('Workspace').selectOption({ label: 'Acme' });
    await page.goto(`${s.url}/apps/${appId}`);
    await page.getByTestId(`key-row-${phoneKey.body.id}`).waitFor();
    await page.getByRole('button', { name: 'Key', exact: true }).click();
    await expect.poll(() => page.locator('th[aria-sort="ascending"]').textContent()).toContain('Key');
    const names = await page.locator('tbody tr td:first-child a').allTextContents();
    expect(names).toEqual([...names].sort((x, y) => x.toLowerCase().localeCompare(y.toLowerCase())));
    expect(names.length).toBeGreaterThan(2);
    const searches: string[] = [];
    page.on('request', (r) => { if (r.url().includes('/keys?') && r.url().includes('q=')) searches.push(r.url()); });
    await page.getByLabel('Search keys').pressSequentially('phone', { delay: 30 });
    await expect.poll(() => page.locator('tbody tr').count()).toBe(1);
    expect(searches).toHaveLength(1);
    expect(searches[0]).toContain('q=phone');
    await shot('21-keys-sorted-searched');

    await page.goto(`${s.url}/apps`);
    await page.getByRole('heading', { name: 'Apps', level: 1, exact: true }).waitFor();
    await page.getByRole('button', { name: 'New app' }).focus();
    await page.keyboard.press('Enter');
    await page.getByRole('dialog').waitFor();
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('app-name');
    await page.keyboard.press('Escape');
    await expect.poll(() => page.getByRole('dialog').count()).toBe(0);
  });

  it('pages carry the security headers and the console runs under its CSP', async () => {
    const res = await fetch(`${s.url}/apps`, { headers: { accept: 'text/html' } });
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await res.text()).toContain('<div id="root">');
    const api404 = await fetch(`${s.url}/v1/nothing`, { headers: { accept: 'text/html' } });
    expect(api404.headers.get('content-type')).toContain('application/problem+json');
  });
});
