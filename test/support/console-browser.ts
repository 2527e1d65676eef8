// What the console's browser tests share: Debian's Chromium through playwright-core, a signed-in
// page at a given width, axe-core run inside the page, the "wider than its viewport" check, and the
// list of the console's pages read from its one route table (web/src/routes.tsx).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { chromium, type Browser, type Page } from 'playwright-core';
import { addMember, startServer, world, type TestServer, type World } from './harness.js';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const SHOTS = path.resolve('test-artifacts/screenshots');
export const WIDTHS = [{ name: 'desktop', width: 1280, height: 860 }, { name: 'phone', width: 390, height: 844 }] as const;
export type Width = (typeof WIDTHS)[number];

export async function launch(): Promise<Browser> {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium`);
  fs.mkdirSync(SHOTS, { recursive: true });
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-gpu', '--no-first-run'],
  });
}

/** A page at this width, signed in with `token` (or signed out when null). Page errors fail the test. */
export async function openPage(browser: Browser, baseUrl: string, width: Width, token: string | null, workspaceId?: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: width.width, height: width.height }, isMobile: width.width < 500 });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: baseUrl });
  if (token) {
    await context.addInitScript(([t, ws]) => {
      localStorage.setItem('keyward.session', t!);
      if (ws) localStorage.setItem('keyward.workspace', ws);
    }, [token, workspaceId ?? ''] as const);
  }
  const page = await context.newPage();
  page.on('pageerror', (err) => { throw err; });
  return page;
}

/**
 * The console's signed-in pages, from its route table: a page added there is checked here without
 * touching this file (its path parameters need a value in `fixtures`, or the test says which).
 */
export function consoleRoutes(): string[] {
  const source = fs.readFileSync(path.resolve('web/src/routes.tsx'), 'utf8');
  const paths = [...source.matchAll(/\{\s*path:\s*'([^']+)'/g)].map((m) => m[1]!);
  if (paths.length === 0) throw new Error('no routes found in web/src/routes.tsx');
  return paths;
}

export function fill(route: string, fixtures: Record<string, string>): string {
  return route.replace(/:(\w+)/g, (_m, name: string) => {
    const value = fixtures[name];
    if (!value) throw new Error(`route ${route}: give the browser tests a value for :${name} (fixtures in the test that lists pages)`);
    return value;
  });
}

/** The page has settled: no request in flight, nothing still saying it is loading. */
export async function settled(page: Page): Promise<void> {
  await page.waitForLoadState('networkidle');
  await page.waitForFunction(() => !document.body.innerText.includes('Loading…') && document.querySelector('h1, [role="dialog"]') !== null, undefined, { timeout: 15_000 });
}

/**
 * Everything wider than the viewport, or cut off inside a box: the document itself, any box that
 * scrolls or hides sideways (tables, cards, dialogs; code blocks excepted: they scroll by design), and
 * any visible control that ends past the right edge.
 */
export function overflowProblems(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const vw = document.documentElement.clientWidth;
    const problems: string[] = [];
    const name = (el: Element) => `${el.tagName.toLowerCase()}${el.id ? '#' + el.id : ''}${el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\s+/).join('.') : ''}`;
    if (document.documentElement.scrollWidth > vw) problems.push(`page is ${document.documentElement.scrollWidth} px wide in a ${vw} px viewport`);
    for (const el of document.querySelectorAll('body *')) {
      const style = getComputedStyle(el);
      if (style.display === 'none' || style.visibility === 'hidden' || el.closest('pre, .secret-box code')) continue;
      const box = el.getBoundingClientRect();
      if (box.width === 0 && box.height === 0) continue;
      if (['auto', 'scroll', 'hidden'].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1 && !el.matches('pre, textarea, input, select, .sr-only, .history, .history *')) {
        problems.push(`${name(el)} holds ${el.scrollWidth} px in ${el.clientWidth} px`);
      }
      if (el.matches('button, a, input, select, summary, textarea') && box.right > vw + 1 && !el.closest('.sidebar:not(.open)')) problems.push(`${name(el)} ends at ${Math.round(box.right)} px, past the ${vw} px viewport`);
    }
    return problems;
  });
}

const require = createRequire(import.meta.url);
const AXE_SOURCE = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeFinding {
  id: string;
  impact: string;
  help: string;
  nodes: string[];
}

/** axe-core inside the page (evaluated through the debugging protocol, so the page's CSP allows it): critical and serious findings. */
export async function axe(page: Page): Promise<AxeFinding[]> {
  if (!(await page.evaluate(() => 'axe' in window))) await page.evaluate(AXE_SOURCE);
  const results = await page.evaluate(async () => {
    const run = (window as unknown as { axe: { run(ctx: Document, opts: object): Promise<{ violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] }> } }).axe;
    return (await run.run(document, { resultTypes: ['violations'] })).violations;
  });
  return results.filter((v) => v.impact === 'critical' || v.impact === 'serious').map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
}

export async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}


export interface ConsoleWorld extends World {
  s: TestServer;
  keyId: string;
  key: string;
  revokedKeyId: string;
  webhookId: string;
  rootKeyId: string;
  member: { token: string; userId: string; email: string };
  inviteToken: string;
  fixtures: Record<string, string>;
}

/** A server with one of everything the console shows: keys (one revoked, one used), a webhook, a root key, a secret, a member and a pending invitation. */
export async function consoleWorld(): Promise<ConsoleWorld> {
  const s = await startServer({ listen: true, env: { KEYWARD_WEBHOOK_ALLOW_PRIVATE: '1' } });
  const w = await world(s);
  const post = async (path: string, body: unknown, token = w.token) => {
    const res = await s.request('POST', path, { token, body });
    if (res.status >= 300) throw new Error(`${path}: ${res.status} ${res.text}`);
    return res.body;
  };
  const key = await post(`/v1/apps/${w.appId}/keys`, { name: 'Production backend', ownerId: 'customer_42', permissions: ['docs.read', 'docs.write'], resources: ['acme.com'], expiresAt: new Date(Date.now() + 30 * 86_400_000).toISOString() });
  for (const permissions of [['docs.read'], ['billing.write']]) await post('/v1/keys/verify', { key: key.key, appId: w.appId, permissions });
  const revoked = await post(`/v1/apps/${w.appId}/keys`, { name: 'Old integration', kind: 'integration' });
  await s.request('DELETE', `/v1/keys/${revoked.id}`, { token: w.token });
  await s.request('PATCH', `/v1/keys/${key.id}`, { token: w.token, body: { permissions: ['docs.read', 'docs.write', 'docs.admin'] } });
  const hook = await post(`/v1/workspaces/${w.workspaceId}/webhooks`, { url: 'http://127.0.0.1:9/keyward-hook', events: ['key.revoked'], description: 'ops alerts' });
  const root = await post(`/v1/workspaces/${w.workspaceId}/root-keys`, { name: 'CI deploys', permissions: ['keys:read', 'keys:write'] });
  await s.request('PUT', `/v1/apps/${w.appId}/vault/STRIPE_KEY`, { token: w.token, body: { value: 'sk_test_123' } });
  // The key's owner is an identity (made with the key): give it named limits, and the workspace an override.
  const identity = (await s.request('GET', `/v1/workspaces/${w.workspaceId}/identities?q=customer_42`, { token: w.token })).body.data[0];
  await s.request('PATCH', `/v1/identities/${identity.id}`, { token: w.token, body: { meta: { plan: 'pro' }, ratelimits: [{ name: 'requests', limit: 1000, durationMs: 60_000, autoApply: true }, { name: 'tokens', limit: 50_000, durationMs: 3_600_000 }] } });
  await s.request('PUT', `/v1/workspaces/${w.workspaceId}/ratelimit-overrides`, { token: w.token, body: { identifier: 'customer_*', name: 'requests', limit: 5000, durationMs: 60_000 } });
  const member = await addMember(s, w, 'bob@example.com', 'member', 'bobs own password');
  const invite = await post(`/v1/workspaces/${w.workspaceId}/invitations`, { email: 'carol@example.com', role: 'admin' });
  return {
    ...w, s, keyId: key.id, key: key.key, revokedKeyId: revoked.id, webhookId: hook.id, rootKeyId: root.id,
    member: { ...member, email: 'bob@example.com' }, inviteToken: invite.token,
    fixtures: { appId: w.appId, keyId: key.id, webhookId: hook.id, identityId: identity.id },
  };
}
