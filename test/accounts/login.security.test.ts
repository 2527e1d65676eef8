// Login defence: every layer is charged before the password is checked (parallel guesses cannot
// slip through), a node runs a bounded number of password hashes at once, the owner gets in from
// an address known to the account while strangers exhaust everything else, and a refusal costs
// the same scrypt work whatever the account's state.
import { afterEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { passwordChecks, type ScryptRun } from '../../src/lib/hash.js';
import { DIALECTS, addMember, createPgDatabase, startServer, world, type TestServer } from '../support/harness.js';

const REDIS_URL = process.env.TEST_REDIS_URL;
const PASSWORD = 'correct horse battery';
const OWNER = 'owner@example.com';
const OWNER_IP = '198.51.100.7';
/** Behind a trusted proxy (the tests name the client's address), at the cheapest password cost. */
const PROXY = { KEYWARD_TRUST_PROXY: '127.0.0.1/32', KEYWARD_PASSWORD_COST: '10' };
/** Enough hash slots that no attempt is refused for capacity (tests of the counters alone). */
const MANY_SLOTS = { KEYWARD_LOGIN_HASH_SLOTS: '64', KEYWARD_LOGIN_HASH_RESERVED: '0' };

const login = (s: TestServer, email: string, password: string, ip: string) =>
  s.request('POST', '/v1/auth/login', { body: { email, password }, headers: { 'x-forwarded-for': ip } });

/** First-run setup from `ip` (that address becomes known to the owner's account). */
async function setupFrom(s: TestServer, ip: string): Promise<void> {
  const res = await s.request('POST', '/v1/setup', { body: { email: OWNER, password: PASSWORD, workspaceName: 'Acme' }, headers: { 'x-forwarded-for': ip } });
  expect(res.status).toBe(201);
}

/**
 * Holds every password check of `password` until released: the test decides when hashes finish,
 * so "how many are in flight" is a count, not a race.
 */
function holdChecks(s: TestServer, password: string) {
  const hasher = s.deps.services.auth.passwords;
  const check = hasher.check.bind(hasher);
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const held = { count: 0 };
  hasher.check = async (given, stored) => {
    if (given !== password) return check(given, stored);
    held.count++;
    await gate;
    return check(given, stored);
  };
  return { held, release: () => {
    hasher.check = check;
    release();
  } };
}

describe.each(DIALECTS)('login defence (%s)', (dialect) => {
  const servers: TestServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
  });
  const start = async (env: Record<string, string> = {}) => {
    const s = await startServer({ dialect, env: { ...PROXY, ...env } });
    servers.push(s);
    return s;
  };

  it('the lockout attack: 100 failures over 34 addresses and 16 made-up emails at once; the owner still logs in from a known address', async () => {
    const s = await start();
    await setupFrom(s, OWNER_IP);
    // 100 failures, 3 per address over 34 addresses: each is checked, none hits a per-address layer.
    const before = passwordChecks.count;
    for (let i = 0; i < 100; i++) expect((await login(s, OWNER, 'wrong password!', `10.20.${Math.floor(i / 3)}.1`)).status).toBe(401);
    expect(passwordChecks.count - before).toBe(100);
    // The email's budget for unknown addresses is spent: strangers, and the owner from a new address, wait.
    expect((await login(s, OWNER, 'wrong password!', '10.30.0.1')).status).toBe(429);
    expect((await login(s, OWNER, PASSWORD, '192.0.2.44')).status).toBe(429);
    // But not from the address setup ran from: it is known to the account.
    expect((await login(s, OWNER, PASSWORD, OWNER_IP)).status).toBe(200);

    // 16 concurrent logins with made-up emails from one address, their hashes held in flight: two
    // take the node's free slots, the other 14 are refused at once (503, Retry-After), not queued.
    const hold = holdChecks(s, 'made up password');
    const attack = Array.from({ length: 16 }, (_, i) => login(s, `nobody${i}@example.net`, 'made up password', '203.0.113.66'));
    const settled: { status: number; headers: Headers }[] = [];
    for (const a of attack) void a.then((r) => settled.push(r));
    await expect.poll(() => hold.held.count + settled.length).toBe(16);
    expect(hold.held.count).toBe(2);
    expect(settled.map((r) => r.status)).toEqual(Array(14).fill(503));
    expect(settled.every((r) => Number(r.headers.get('retry-after')) > 0)).toBe(true);
    // Meanwhile the owner, from the address setup ran from, takes the slot kept for known addresses.
    const owner = await login(s, OWNER, PASSWORD, OWNER_IP);
    expect(owner.status).toBe(200);
    expect(owner.body.token).toMatch(/^kws_/);
    // A stranger gets no such slot while the two hashes are still running.
    expect((await login(s, 'someone@example.net', 'made up password', '203.0.113.99')).status).toBe(503);
    hold.release();
    expect((await Promise.all(attack)).map((r) => r.status).sort()).toEqual([...Array(2).fill(401), ...Array(14).fill(503)]);

    // When the window has passed, new addresses may try again.
    s.clock.advance(15 * 60_000 + 1);
    expect((await login(s, OWNER, PASSWORD, '192.0.2.44')).status).toBe(200);
  }, 90_000);

  it('one address across many emails hits its own ceiling; five spellings of one IPv6 address (and its /64) are one address', async () => {
    const s = await start(MANY_SLOTS);
    await setupFrom(s, OWNER_IP);
    const spellings = ['2001:db8:7:1::5', '2001:DB8:7:1::5', '2001:0db8:0007:0001:0000:0000:0000:0005', '2001:db8:7:1:0:0:0:5', '[2001:db8:7:1::5]'];
    for (let i = 0; i < 30; i++) expect((await login(s, `made${i}@example.net`, 'wrong password!', spellings[i % 5]!)).status, `attempt ${i}`).toBe(401);
    for (const ip of [...spellings, '2001:db8:7:1:ffff::1']) expect((await login(s, 'other@example.net', 'wrong password!', ip)).status, ip).toBe(429);
    // Another /64 is another address; the owner from a known address is not held up either.
    expect((await login(s, 'other@example.net', 'wrong password!', '2001:db8:7:2::5')).status).toBe(401);
    expect((await login(s, OWNER, PASSWORD, OWNER_IP)).status).toBe(200);
    // An IPv4 address and its IPv4-mapped IPv6 spelling share one counter too.
    for (let i = 0; i < 30; i++) expect((await login(s, `m${i}@example.net`, 'wrong password!', i % 2 ? '192.0.2.8' : '::ffff:192.0.2.8')).status).toBe(401);
    expect((await login(s, 'm99@example.net', 'wrong password!', '192.0.2.8')).status).toBe(429);
  });

  it('30 parallel wrong passwords for one email from one address: exactly 10 are checked, the rest get 429 with Retry-After', async () => {
    const s = await start(MANY_SLOTS);
    await setupFrom(s, OWNER_IP);
    const before = passwordChecks.count;
    // The checks are held until every attempt has been charged or refused: all 30 are in flight at once.
    const hold = holdChecks(s, 'wrong password!');
    const pending = Array.from({ length: 30 }, () => login(s, OWNER, 'wrong password!', '203.0.113.9'));
    let refused = 0;
    for (const p of pending) void p.then(() => refused++);
    await expect.poll(() => hold.held.count + refused).toBe(30);
    expect(hold.held.count).toBe(10);
    hold.release();
    const answers = await Promise.all(pending);
    expect(passwordChecks.count - before).toBe(10);
    expect(answers.filter((a) => a.status === 401)).toHaveLength(10);
    const limited = answers.filter((a) => a.status === 429);
    expect(limited).toHaveLength(20);
    expect(Number(limited[0]!.headers.get('retry-after'))).toBeGreaterThan(0);
    // The right password from the same address waits too; from the owner's own address it works.
    expect((await login(s, OWNER, PASSWORD, '203.0.113.9')).status).toBe(429);
    expect((await login(s, OWNER, PASSWORD, OWNER_IP)).status).toBe(200);
    s.clock.advance(15 * 60_000 + 1);
    expect((await login(s, OWNER, PASSWORD, '203.0.113.9')).status).toBe(200);
  });

  it('failures from one address grow the wait before the next attempt: 1 s, 2 s, 4 s …', async () => {
    const s = await start();
    await setupFrom(s, OWNER_IP);
    for (let i = 0; i < 3; i++) expect((await login(s, OWNER, 'wrong password!', '203.0.113.9')).status).toBe(401);
    for (const wait of [1000, 2000, 4000]) {
      const early = await login(s, OWNER, PASSWORD, '203.0.113.9');
      expect(early.status, `before ${wait} ms`).toBe(429);
      expect(Number(early.headers.get('retry-after'))).toBeGreaterThan(0);
      s.clock.advance(wait);
      expect((await login(s, OWNER, 'wrong password!', '203.0.113.9')).status, `after ${wait} ms`).toBe(401);
    }
    expect((await login(s, OWNER, PASSWORD, '198.51.100.4')).status).toBe(200);
  });

  it('setup, an accepted invitation and a good login each make their address known: it stays open while the email is locked elsewhere', async () => {
    // A small per-email budget: the layer is the same, the test only needs fewer attempts to spend it.
    const s = await start({ KEYWARD_LOGIN_MAX_PER_EMAIL: '10' });
    const w = await world(s);
    // The member accepts their invitation from 192.0.2.10 and later logs in once from 192.0.2.11.
    const invite = await s.request('POST', `/v1/workspaces/${w.workspaceId}/invitations`, { token: w.token, body: { email: 'ann@example.com', role: 'member' } });
    const accepted = await s.request('POST', '/v1/invitations/accept', { body: { token: invite.body.token, password: 'anns own password' }, headers: { 'x-forwarded-for': '192.0.2.10' } });
    expect(accepted.status).toBe(200);
    expect((await login(s, 'ann@example.com', 'anns own password', '192.0.2.11')).status).toBe(200);
    // A successful login gives back its own charge: 10 failures more still fill the email's budget.
    for (let i = 0; i < 10; i++) expect((await login(s, 'ann@example.com', 'wrong password!', `10.40.${i}.1`)).status).toBe(401);
    expect((await login(s, 'ann@example.com', 'anns own password', '10.50.0.1')).status).toBe(429);
    expect((await login(s, 'ann@example.com', 'anns own password', '192.0.2.10')).status).toBe(200);
    expect((await login(s, 'ann@example.com', 'anns own password', '192.0.2.11')).status).toBe(200);
    // The owner set up from the harness's own address (127.0.0.1, no forwarded header).
    for (let i = 0; i < 10; i++) expect((await login(s, OWNER, 'wrong password!', `10.60.${i}.1`)).status).toBe(401);
    expect((await login(s, OWNER, PASSWORD, '10.70.0.1')).status).toBe(429);
    expect((await s.request('POST', '/v1/auth/login', { body: { email: OWNER, password: PASSWORD } })).status).toBe(200);
    const known = await s.deps.store.db.selectFrom('login_addresses').select(['network']).execute();
    expect(known.map((k) => k.network).sort()).toEqual(['127.0.0.1', '192.0.2.10', '192.0.2.11']);
  });

  it('every refusal runs one scrypt at the configured cost, whatever the account: unknown email, wrong password, cheaper stored hash', async () => {
    const dataDir = (await import('node:fs')).mkdtempSync(`${(await import('node:os')).tmpdir()}/keyward-cost-`);
    const pg = dialect === 'postgres' ? await createPgDatabase() : undefined;
    const where = { dialect, dataDir, ...(pg ? { databaseUrl: pg.url } : {}) };
    try {
      const cheap = await startServer({ ...where, env: { ...PROXY, KEYWARD_PASSWORD_COST: '10' } });
      await addMember(cheap, await world(cheap), 'old@example.com', 'member', 'old member password');
      await cheap.close();
      const s = await startServer({ ...where, env: { ...PROXY, KEYWARD_PASSWORD_COST: '13' } });
      servers.push(s);
      const runs: ScryptRun[] = [];
      s.deps.services.auth.passwords.observe((run) => runs.push(run));
      const costs = async (email: string, password: string, expected: number) => {
        runs.length = 0;
        expect((await login(s, email, password, '203.0.113.20')).status).toBe(expected);
        return runs.map((r) => `${r.purpose}:${r.n}:${r.r}:${r.p}`);
      };
      const strong = 2 ** 13;
      const cheapN = 2 ** 10;
      // An unknown email: one check against a dummy at the configured cost, nothing made first.
      expect(await costs('nobody@example.com', 'wrong password!', 401)).toEqual([`dummy:${strong}:8:1`]);
      // An account still hashed at the old cost: its own check, topped up to the configured cost.
      expect(await costs('old@example.com', 'wrong password!', 401)).toEqual([`verify:${cheapN}:8:1`, `pad:${strong}:8:1`]);
      // The right password replaces the old hash; from then on a refusal is one check at the new cost.
      expect(await costs(OWNER, PASSWORD, 200)).toEqual([`verify:${cheapN}:8:1`, `hash:${strong}:8:1`]);
      expect(await costs(OWNER, 'wrong password!', 401)).toEqual([`verify:${strong}:8:1`]);
      expect(await costs(OWNER, PASSWORD, 200)).toEqual([`verify:${strong}:8:1`]);
      const stored = await s.deps.store.db.selectFrom('users').select(['email', 'password_hash']).orderBy('email').execute();
      expect(stored.map((u) => `${u.email}:${u.password_hash.split('$')[1]}`)).toEqual([`old@example.com:${cheapN}`, `${OWNER}:${strong}`]);
    } finally {
      for (const s of servers.splice(0)) await s.close();
      await pg?.drop();
      (await import('node:fs')).rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('login defence across nodes', () => {
  it.runIf(REDIS_URL)('two nodes sharing Redis share the count: 30 parallel guesses over both, 10 checked', async () => {
    const pg = await createPgDatabase();
    const env = { ...PROXY, ...MANY_SLOTS, REDIS_URL: REDIS_URL!, KEYWARD_MASTER_KEY: Buffer.alloc(32, 5).toString('base64'), KEYWARD_REDIS_PREFIX: `kwtest_${randomBytes(4).toString('hex')}:` };
    const servers: TestServer[] = [];
    try {
      const a = await startServer({ dialect: 'postgres', databaseUrl: pg.url, env });
      const b = await startServer({ dialect: 'postgres', databaseUrl: pg.url, env });
      servers.push(a, b);
      await world(a);
      const before = passwordChecks.count;
      const holds = [holdChecks(a, 'wrong password!'), holdChecks(b, 'wrong password!')];
      const pending = Array.from({ length: 30 }, (_, i) => login(i % 2 ? a : b, OWNER, 'wrong password!', '203.0.113.9'));
      let refused = 0;
      for (const p of pending) void p.then(() => refused++);
      await expect.poll(() => holds[0]!.held.count + holds[1]!.held.count + refused).toBe(30);
      for (const h of holds) h.release();
      const answers = await Promise.all(pending);
      expect(passwordChecks.count - before).toBe(10);
      expect(answers.filter((r) => r.status === 429)).toHaveLength(20);
    } finally {
      for (const s of servers) await s.close();
      await pg.drop();
    }
  });
});
