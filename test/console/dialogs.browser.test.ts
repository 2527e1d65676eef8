// What a new user trips on in the first ten minutes, at 1280 and 390 px in Debian's Chromium: Enter
// in a list field adds to it and never submits the dialog; a secret shown once survives Escape and
// a click beside the dialog; removing a member and revoking a root key ask first; a member sees no
// control that would answer 403; the key page has the key's actions and says what changed; the
// playground's first request and an app key sent to a management endpoint are explained.
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_DIR } from '../../src/http/console.js';
import { addMember } from '../support/harness.js';
import { consoleWorld, launch, openPage, settled, shot, WIDTHS, type ConsoleWorld, type Width } from '../support/console-browser.js';

describe('console dialogs and roles', () => {
  let browser: Browser;
  let w: ConsoleWorld;
  beforeAll(async () => {
    if (!fs.existsSync(path.join(CONSOLE_DIR, 'index.html'))) throw new Error('the console is not built: run `npm run build` (npm test does)');
    browser = await launch();
    w = await consoleWorld();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await w?.s.close();
  });

  const api = async (method: string, url: string, body?: unknown) => (await w.s.request(method, url, { token: w.token, ...(body === undefined ? {} : { body }) })).body;
  const keyNamed = async (name: string) => ((await api('GET', `/v1/apps/${w.appId}/keys?q=${encodeURIComponent(name)}`)).data as { name: string; id: string; permissions: string[]; resources: string[]; environment: string }[]).find((k) => k.name === name);

  /** A row's action: behind the row menu on wide screens, on the key's card on phones. */
  const keyAction = async (page: Page, width: Width, name: string, action: string) => {
    if (width.width > 820) await page.getByLabel(`Actions for ${name}`).click();
    await page.getByRole('button', { name: `${action} ${name}` }).click();
  };

  /** Escape, then a click on the backdrop: the dialog and its secret are still there. */
  const survivesStrayClose = async (page: Page) => {
    const value = await page.getByTestId('shown-key').textContent();
    await page.keyboard.press('Escape');
    await page.mouse.click(3, 3);
    await page.mouse.click(3, page.viewportSize()!.height - 3);
    expect(await page.getByTestId('shown-key').textContent()).toBe(value);
    expect(await page.getByRole('dialog').count()).toBe(1);
    return value!;
  };

  for (const width of WIDTHS) {
    it(`${width.name}: Enter in a list field adds and never submits, in create and in edit`, async () => {
      const page = await openPage(browser, w.s.url, width, w.token, w.workspaceId);
      await page.goto(`${w.s.url}/apps/${w.appId}`);
      await settled(page);
      const name = `restricted ${width.name}`;
      await page.getByRole('button', { name: 'Create API key' }).first().click();
      await page.getByLabel('Name').fill(name);
      for (const [field, value] of [['#k-perms', 'docs.read'], ['#k-perms', 'docs.write'], ['#k-res', 'acme.com'], ['#k-res', '']] as const) {
        await page.locator(field).fill(value);
        await page.locator(field).press('Enter');
        // Still the form: nothing was created.
        await page.getByRole('button', { name: 'Create key' }).waitFor();
        expect(await keyNamed(name)).toBeUndefined();
      }
      expect(await page.getByRole('dialog').locator('.chips .chip').allTextContents()).toEqual(['docs.read×', 'docs.write×', 'acme.com×']);
      // Typed but not yet added: leaving the field adds it, so it is not lost when the form is sent.
      await page.locator('#k-res').fill('*.acme.dev');
      await page.getByLabel('Name').press('Enter');
      await page.getByTestId('shown-key').waitFor();
      const created = await keyNamed(name);
      expect(created).toMatchObject({ permissions: ['docs.read', 'docs.write'], resources: ['acme.com', '*.acme.dev'] });
      await shot(page, `r3-${width.name}-chips-created`);
      await page.getByRole('button', { name: 'I have stored it' }).click();

      // Edit: Enter in the scope adds to it and saves nothing; the environment is not offered (a roll changes it).
      await keyAction(page, width, name, 'Edit');
      expect(await page.locator('select#k-env').count()).toBe(0);
      await page.locator('#k-res').fill('shop.acme.com');
      await page.locator('#k-res').press('Enter');
      await page.getByRole('button', { name: 'Save changes' }).waitFor();
      expect((await keyNamed(name))!.resources).toEqual(['acme.com', '*.acme.dev']);
      await page.getByRole('button', { name: 'Save changes' }).click();
      await page.getByText('Key saved').waitFor();
      expect((await keyNamed(name))!.resources).toEqual(['acme.com', '*.acme.dev', 'shop.acme.com']);
      await page.context().close();
    }, 60_000);

    it(`${width.name}: secrets shown once survive Escape and a click beside the dialog (key, rolled key, root key, webhook secret)`, async () => {
      const page = await openPage(browser, w.s.url, width, w.token, w.workspaceId);
      await page.goto(`${w.s.url}/apps/${w.appId}`);
      await settled(page);
      const name = `shown ${width.name}`;
      await page.getByRole('button', { name: 'Create API key' }).first().click();
      await page.getByLabel('Name').fill(name);
      await page.getByLabel('Name').press('Enter');
      await page.getByTestId('shown-key').waitFor();
      expect(await survivesStrayClose(page)).toMatch(/^acme_live_/);
      await page.getByRole('button', { name: 'I have stored it' }).click();
      await expect.poll(() => page.getByRole('dialog').count()).toBe(0);

      // A roll may move the key to the other environment; its new value is shown once too.
      await keyAction(page, width, name, 'Roll');
      await page.getByLabel('Environment of the new value').selectOption('test');
      await page.getByRole('button', { name: 'Roll key' }).click();
      await page.getByTestId('shown-key').waitFor();
      expect(await survivesStrayClose(page)).toMatch(/^acme_test_/);
      expect((await keyNamed(name))!.environment).toBe('test');
      await page.getByRole('button', { name: 'I have stored it' }).click();

      await page.goto(`${w.s.url}/root-keys`);
      await settled(page);
      await page.getByRole('button', { name: 'New root key' }).click();
      await page.getByLabel('Name').fill(`gateway ${width.name}`);
      await page.getByLabel('Name').press('Enter');
      await page.getByTestId('shown-key').waitFor();
      expect(await survivesStrayClose(page)).toMatch(/^kwroot_live_/);
      await page.getByRole('button', { name: 'I have stored it' }).click();

      await page.goto(`${w.s.url}/webhooks`);
      await settled(page);
      await page.getByRole('button', { name: 'New webhook' }).click();
      await page.getByLabel('Endpoint URL').fill(`http://127.0.0.1:9/${width.name}`);
      await page.getByRole('button', { name: 'Create webhook' }).click();
      await page.getByTestId('shown-key').waitFor();
      expect(await survivesStrayClose(page)).toMatch(/^whsec_/);
      await page.context().close();
    }, 60_000);

    it(`${width.name}: removing a member and revoking a root key ask first; Cancel changes nothing`, async () => {
      const email = `dana-${width.name}@example.com`;
      const dana = await addMember(w.s, w, email, 'member', 'danas own password');
      const root = await api('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { name: `deploys ${width.name}`, permissions: ['keys:read'] });
      const page = await openPage(browser, w.s.url, width, w.token, w.workspaceId);
      await page.goto(`${w.s.url}/members`);
      await settled(page);
      await page.getByRole('button', { name: `Remove ${email}` }).click();
      await page.getByRole('dialog').getByText('They lose access').waitFor();
      await page.getByRole('button', { name: 'Cancel' }).click();
      const members = async () => ((await api('GET', `/v1/workspaces/${w.workspaceId}/members`)).data as { userId: string }[]).map((m) => m.userId);
      expect(await members()).toContain(dana.userId);
      await page.getByRole('button', { name: `Remove ${email}` }).click();
      await page.getByRole('button', { name: 'Remove member' }).click();
      await expect.poll(members).not.toContain(dana.userId);

      const rootRevoked = async () => ((await api('GET', `/v1/workspaces/${w.workspaceId}/root-keys`)).data as { id: string; revokedAt: string | null }[]).find((k) => k.id === root.id)!.revokedAt;
      await page.goto(`${w.s.url}/root-keys`);
      await settled(page);
      await page.getByRole('button', { name: `Revoke deploys ${width.name}` }).click();
      await page.getByRole('dialog').getByText('is refused from now on').waitFor();
      await shot(page, `r3-${width.name}-revoke-root-confirm`);
      await page.getByRole('button', { name: 'Cancel' }).click();
      expect(await rootRevoked()).toBeNull();
      await page.getByRole('button', { name: `Revoke deploys ${width.name}` }).click();
      await page.getByRole('button', { name: 'Revoke root key' }).click();
      await expect.poll(rootRevoked).not.toBeNull();
      await page.context().close();
    }, 60_000);

    it(`${width.name}: a member sees no Invite, Remove, New root key or New app, and no "*" permission message`, async () => {
      const page = await openPage(browser, w.s.url, width, w.member.token, w.workspaceId);
      const refusals: string[] = [];
      page.on('response', (r) => { if (r.status() === 403) refusals.push(r.url()); });
      await page.goto(`${w.s.url}/members`);
      await settled(page);
      await page.getByRole('cell', { name: 'owner@example.com' }).waitFor();
      expect(await page.getByRole('button', { name: 'Invite member' }).count()).toBe(0);
      expect(await page.getByRole('button', { name: /^Remove/ }).count()).toBe(0);
      await page.goto(`${w.s.url}/root-keys`);
      await settled(page);
      await page.getByTestId('root-keys-role').waitFor();
      expect(await page.getByRole('button', { name: 'New root key' }).count()).toBe(0);
      expect(await page.locator('main').textContent()).not.toMatch(/No workspace of yours|"\*" permission/);
      await page.goto(`${w.s.url}/apps`);
      await settled(page);
      await page.getByRole('link', { name: 'Acme API', exact: true }).first().waitFor();
      expect(await page.getByRole('button', { name: 'New app' }).count()).toBe(0);
      await page.goto(`${w.s.url}/audit`);
      await settled(page);
      expect(refusals).toEqual([]);
      await page.context().close();
    }, 60_000);

    it(`${width.name}: the key page has the key's actions, says what each change changed, and when a key was revoked`, async () => {
      const page = await openPage(browser, w.s.url, width, w.token, w.workspaceId);
      await page.goto(`${w.s.url}/keys/${w.keyId}`);
      await settled(page);
      for (const action of ['Edit', 'Disable', 'Roll', 'Revoke']) await page.getByRole('button', { name: `${action} Production backend` }).waitFor();
      const audit = page.getByTestId('key-audit');
      await audit.getByText('Changed permissions').click();
      expect(await audit.getByTestId('audit-changes').filter({ hasText: 'permissions' }).first().textContent()).toMatch(/permissions\["docs\.read","docs\.write"\]\s*→\s*\["docs\.read","docs\.write","docs\.admin"\]/);
      await page.getByRole('button', { name: 'Disable Production backend' }).click();
      await page.getByRole('status').getByText('Production backend disabled').waitFor();
      expect((await api('GET', `/v1/keys/${w.keyId}`)).status).toBe('disabled');
      await page.getByRole('button', { name: 'Enable Production backend' }).click();
      await expect.poll(async () => (await api('GET', `/v1/keys/${w.keyId}`)).status).toBe('active');
      await page.goto(`${w.s.url}/keys/${w.revokedKeyId}`);
      await settled(page);
      await page.getByText(/^Revoked$/).waitFor();
      expect(await page.locator('h1').textContent()).toContain('revoked');
      expect(await page.getByRole('button', { name: 'Revoke Old integration' }).count()).toBe(0);
      await page.context().close();
    }, 60_000);

    it(`${width.name}: the playground's first request answers for a well-formed key; an app key on a management endpoint is explained`, async () => {
      const page = await openPage(browser, w.s.url, width, w.token, w.workspaceId);
      await page.goto(`${w.s.url}/playground`);
      await settled(page);
      await expect.poll(() => page.getByLabel('JSON body').inputValue()).toContain(w.appId);
      await page.getByRole('button', { name: 'Send' }).click();
      await page.getByTestId('response-body').waitFor();
      const first = JSON.parse((await page.getByTestId('response-body').textContent())!);
      expect(first).toMatchObject({ valid: false, code: 'NOT_FOUND' });

      await page.getByLabel('API key to inspect').fill(w.key);
      await page.getByLabel('Send as').selectOption('key');
      await page.getByLabel('Endpoint').selectOption('GET /v1/workspaces');
      await page.getByTestId('key-on-management').waitFor();
      await page.getByRole('button', { name: 'Send' }).click();
      await expect.poll(() => page.getByTestId('response-status').textContent()).toBe('401');
      expect(await page.getByTestId('explain').textContent()).toMatch(/This is an app key: app keys are checked with POST \/v1\/keys\/verify/);
      await shot(page, `r3-${width.name}-playground-app-key`);
      await page.context().close();
    }, 60_000);

    it(`${width.name}: the invitation page names the workspace and the role`, async () => {
      const invite = await api('POST', `/v1/workspaces/${w.workspaceId}/invitations`, { email: `erin-${width.name}@example.com`, role: 'member' });
      const page = await openPage(browser, w.s.url, width, null);
      await page.goto(`${w.s.url}/accept-invite#token=${invite.token}`);
      await page.getByRole('heading', { name: 'Join Acme' }).waitFor();
      expect(await page.locator('.auth-card').textContent()).toContain(`You are invited to Acme as a member. The invitation is for erin-${width.name}@example.com.`);
      await page.goto('about:blank');
      await page.goto(`${w.s.url}/accept-invite#token=kwi_not-a-real-token`);
      await page.getByRole('heading', { name: 'Invitation no longer valid' }).waitFor();
      await page.context().close();
    }, 60_000);
  }
});
