// Every page of the console, and the states a first-time user meets on them, at 1280 and 390 px in
// Debian's Chromium: nothing wider than its viewport or cut off in a box, and axe-core finds nothing
// critical or serious. The signed-in pages come from the console's route table, so a page added there
// is walked here too. Screenshots of each go to test-artifacts/screenshots (git-ignored).
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_DIR } from '../../src/http/console.js';
import { axe, consoleRoutes, consoleWorld, fill, launch, openPage, overflowProblems, settled, shot, WIDTHS, type AxeFinding, type ConsoleWorld } from '../support/console-browser.js';

describe('console pages at 1280 and 390 px', () => {
  let browser: Browser;
  let w: ConsoleWorld;
  let setupFindings: Record<string, { overflow: string[]; axe: AxeFinding[] }>;

  beforeAll(async () => {
    if (!fs.existsSync(path.join(CONSOLE_DIR, 'index.html'))) throw new Error('the console is not built: run `npm run build` (npm test does)');
    browser = await launch();
    w = await consoleWorld();
    setupFindings = {};
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await w?.s.close();
  });

  /** Width and axe on the page as it is now; a screenshot named after it. */
  const check = async (page: Page, name: string) => {
    await shot(page, name);
    return { overflow: await overflowProblems(page), axe: await axe(page) };
  };

  for (const width of WIDTHS) {
    it(`${width.name}: every signed-in page, the public pages and their dialogs`, async () => {
      const found: Record<string, { overflow: string[]; axe: AxeFinding[] }> = {};
      const owner = await openPage(browser, w.s.url, width, w.token, w.workspaceId);
      for (const route of consoleRoutes()) {
        const url = fill(route, w.fixtures);
        await owner.goto(w.s.url + url);
        await settled(owner);
        found[`${width.name} ${url}`] = await check(owner, `r3-${width.name}${url.replaceAll('/', '_')}`);
      }

      // States behind a click: the create-key form with a list being typed, a row's actions, a key shown once.
      await owner.goto(`${w.s.url}/apps/${w.appId}`);
      await settled(owner);
      await owner.getByRole('button', { name: 'Create API key' }).first().click();
      await owner.locator('#k-perms').fill('docs.read');
      await owner.locator('#k-perms').press('Enter');
      await owner.getByRole('checkbox', { name: 'Allow all IP addresses' }).uncheck();
      await owner.getByRole('checkbox', { name: 'Never expire' }).uncheck();
      await owner.getByRole('button', { name: 'Add named limit' }).click();
      await owner.getByLabel('Limit 1 name').fill('tokens');
      found[`${width.name} create key`] = await check(owner, `r3-${width.name}-create-key`);
      await owner.getByLabel('Name', { exact: true }).fill('shown once');
      await owner.getByRole('checkbox', { name: 'Allow all IP addresses' }).check();
      await owner.getByRole('button', { name: 'Create key' }).click();
      await owner.getByTestId('shown-key').waitFor();
      found[`${width.name} key shown once`] = await check(owner, `r3-${width.name}-shown-once`);
      await owner.getByRole('button', { name: 'I have stored it' }).click();
      if (width.width > 820) await owner.getByLabel('Actions for Production backend').click();
      found[`${width.name} key actions`] = await check(owner, `r3-${width.name}-key-actions`);
      await owner.getByRole('button', { name: 'Roll Production backend' }).click();
      found[`${width.name} roll`] = await check(owner, `r3-${width.name}-roll`);
      await owner.getByRole('button', { name: 'Cancel' }).click();

      await owner.goto(`${w.s.url}/members`);
      await settled(owner);
      await owner.getByRole('button', { name: 'Remove bob@example.com' }).click();
      found[`${width.name} remove member`] = await check(owner, `r3-${width.name}-remove-member`);
      await owner.getByRole('button', { name: 'Cancel' }).click();

      // The playground after a first Send, the docs with an operation open.
      await owner.goto(`${w.s.url}/playground`);
      await settled(owner);
      await owner.getByRole('button', { name: 'Send' }).click();
      await owner.getByTestId('response-status').waitFor();
      found[`${width.name} playground answered`] = await check(owner, `r3-${width.name}-playground-sent`);
      await owner.context().close();

      const visitor = await openPage(browser, w.s.url, width, null);
      for (const url of ['/login', '/docs', `/docs#verifyKey`, '/accept-invite#token=' + w.inviteToken]) {
        await visitor.goto(w.s.url + url);
        await settled(visitor);
        found[`${width.name} ${url.split('#')[0]}${url.includes('#verify') ? ' (open operation)' : ''}`] = await check(visitor, `r3-${width.name}-public${url.split('#')[0]!.replaceAll('/', '_')}${url.includes('#verify') ? '-op' : ''}`);
      }
      await visitor.context().close();

      // What a member sees.
      const member = await openPage(browser, w.s.url, width, w.member.token, w.workspaceId);
      for (const url of ['/members', '/root-keys', `/apps/${w.appId}/settings`, '/audit']) {
        await member.goto(w.s.url + url);
        await settled(member);
        found[`${width.name} member ${url}`] = await check(member, `r3-${width.name}-member${url.replaceAll('/', '_')}`);
      }
      await member.context().close();

      const problems = Object.entries({ ...setupFindings, ...found }).filter(([, f]) => f.overflow.length || f.axe.length);
      fs.writeFileSync(path.resolve(`test-artifacts/findings-${width.name}.json`), JSON.stringify(problems, null, 2));
      expect(problems, JSON.stringify(problems, null, 2)).toEqual([]);
      expect(Object.keys(found).length).toBeGreaterThan(consoleRoutes().length + 10);
    }, 180_000);
  }
});
