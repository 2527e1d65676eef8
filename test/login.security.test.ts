// Login throttling: attempts are charged before the password is checked (parallel guesses cannot
// slip through), shared across nodes through Redis, and an attacker elsewhere cannot lock the owner out.
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { passwordChecks } from '../src/lib/hash.js';
import { createPgDatabase, startServer, world, type TestServer } from './harness.js';

const REDIS_URL = process.env.TEST_REDIS_URL;
const PASSWORD = 'correct horse battery';

describe('login throttling', () => {
  const servers: TestServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });

  const login = (s: TestServer, password: string, ip = '203.0.113.9') =>
    s.request('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password }, headers: { 'x-forwarded-for': ip } });

  it('30 parallel wrong passwords from one address: exactly 10 are checked, the rest get 429 with Retry-After', async () => {
    const s = await startServer({ env: { KEYWARD_TRUST_PROXY: '127.0.0.1/32' } });
    servers.push(s);
    await world(s);
    const before = passwordChecks.count;
    const answers = await Promise.all(Array.from({ length: 30 }, () => login(s, 'wrong password!')));
    expect(passwordChecks.count - before).toBe(10);
    expect(answers.filter((a) => a.status === 401)).toHaveLength(10);
    const limited = answers.filter((a) => a.status === 429);
    expect(limited).toHaveLength(20);
    expect(Number(limited[0]!.headers.get('retry-after'))).toBeGreaterThan(0);
    // The right password from the same address waits too; from the owner's own address it works.
    expect((await login(s, PASSWORD)).status).toBe(429);
    expect((await login(s, PASSWORD, '198.51.100.4')).status).toBe(200);
    // After the window, the address may try again.
    s.clock.advance(15 * 60_000 + 1);
    expect((await login(s, PASSWORD)).status).toBe(200);
  });

  it('failures from one address grow the wait before the next attempt: 1 s, 2 s, 4 s …', async () => {
    const s = await startServer({ env: { KEYWARD_TRUST_PROXY: '127.0.0.1/32' } });
    servers.push(s);
    await world(s);
    for (let i = 0; i < 3; i++) expect((await login(s, 'wrong password!')).status).toBe(401);
    for (const wait of [1000, 2000, 4000]) {
      const early = await login(s, PASSWORD);
      expect(early.status, `before ${wait} ms`).toBe(429);
      expect(Number(early.headers.get('retry-after'))).toBeGreaterThan(0);
      s.clock.advance(wait);
      expect((await login(s, 'wrong password!')).status, `after ${wait} ms`).toBe(401);
    }
    // Another address is not slowed down by these failures.
    expect((await login(s, PASSWORD, '198.51.100.4')).status).toBe(200);
  });

  it('many addresses guessing one account hit the per-email ceiling; an address the owner used before is exempt', async () => {
    const s = await startServer({ env: { KEYWARD_TRUST_PROXY: '127.0.0.1/32' } });
    servers.push(s);
    await world(s);
    // The owner's first login counted once against the email's ceiling (the address was not known yet).
    expect((await login(s, PASSWORD, '198.51.100.4')).status).toBe(200);
    for (let i = 0; i < 99; i++) expect((await login(s, 'wrong password!', `10.9.${Math.floor(i / 3)}.${i % 3}`)).status).toBe(401);
    expect((await login(s, 'wrong password!', '10.99.0.1')).status).toBe(429);
    expect((await login(s, PASSWORD, '10.99.0.2')).status).toBe(429);
    expect((await login(s, PASSWORD, '198.51.100.4')).status).toBe(200);
  });

  it.runIf(REDIS_URL)('two nodes sharing Redis share the count: 30 parallel guesses over both, 10 checked', async () => {
    const pg = await createPgDatabase();
    const env = { KEYWARD_TRUST_PROXY: '127.0.0.1/32', REDIS_URL: REDIS_URL!, KEYWARD_MASTER_KEY: Buffer.alloc(32, 5).toString('base64'), KEYWARD_REDIS_PREFIX: `kwtest_${randomBytes(4).toString('hex')}:` };
    try {
      const a = await startServer({ dialect: 'postgres', databaseUrl: pg.url, env });
      const b = await startServer({ dialect: 'postgres', databaseUrl: pg.url, env });
      servers.push(a, b);
      await world(a);
      const before = passwordChecks.count;
      const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => login(i % 2 ? a : b, 'wrong password!')));
      expect(passwordChecks.count - before).toBe(10);
      expect(answers.filter((r) => r.status === 429)).toHaveLength(20);
    } finally {
      for (const s of servers.splice(0)) await s.close();
      await pg.drop();
    }
  });

  it('an older, cheaper password hash still logs in and is replaced at the configured cost', async () => {
    const dataDir = (await import('node:fs')).mkdtempSync(`${(await import('node:os')).tmpdir()}/keyward-rehash-`);
    const cheap = await startServer({ dataDir, env: { KEYWARD_PASSWORD_COST: '10' } });
    await world(cheap);
    await cheap.close();
    const strong = await startServer({ dataDir, env: { KEYWARD_PASSWORD_COST: '13' } });
    servers.push(strong);
    const stored = async () => (await strong.deps.store.db.selectFrom('users').select('password_hash').executeTakeFirstOrThrow()).password_hash;
    expect((await stored()).split('$')[1]).toBe(String(2 ** 10));
    expect((await strong.request('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password: PASSWORD } })).status).toBe(200);
    expect((await stored()).split('$')[1]).toBe(String(2 ** 13));
    expect((await strong.request('POST', '/v1/auth/login', { body: { email: 'owner@example.com', password: PASSWORD } })).status).toBe(200);
  });
});
