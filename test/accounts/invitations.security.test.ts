// Members join by invitation only. Nobody sets another person's password, the inviter learns
// nothing about accounts elsewhere (until a password or a session proves who accepts), a refused
// accept leaves the invitation usable, and an invitation dies with its inviter's rights.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { passwordChecks } from '../../src/lib/hash.js';
import { DIALECTS, addMember, mailOf, snapshot, startServer, world, type TestServer, type World } from '../support/harness.js';

describe.each(DIALECTS)('invitations (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  beforeAll(async () => {
    s = await startServer({ dialect, env: { KEYWARD_TRUST_PROXY: '127.0.0.1/32' } });
  });
  afterAll(async () => s.close());
  beforeEach(async () => {
    w = await world(s);
  });
  /** Accounts are per server: each test's emails carry its world's tag. */
  const mail = (local: string) => mailOf(w, local);

  const invite = (email: string, role = 'member', token = w.token, workspaceId = w.workspaceId) =>
    s.request('POST', `/v1/workspaces/${workspaceId}/invitations`, { token, body: { email, role } });
  const accept = (body: Record<string, unknown>, token?: string, ip = '203.0.113.5') =>
    s.request('POST', '/v1/invitations/accept', { body, headers: { 'x-forwarded-for': ip }, ...(token ? { token } : {}) });
  /** An answer without what differs between any two requests. */
  const shape = (a: { status: number; body: Record<string, unknown> }) => ({ status: a.status, body: { ...a.body, requestId: undefined } });
  const users = async () => (await s.deps.store.db.selectFrom('users').select('email').execute()).map((u) => u.email).sort();

  it('the answer does not depend on whether the email has an account anywhere, and no account is made', async () => {
    await addMember(s, w, mail('known'), 'member', 'known password 1');
    const before = await users();
    const known = await invite(mail('known'));
    const unknown = await invite(mail('nobody'));
    expect(known.status).toBe(201);
    expect(unknown.status).toBe(201);
    expect(Object.keys(known.body).sort()).toEqual(Object.keys(unknown.body).sort());
    expect(known.body.url).toMatch(/\/accept-invite#token=kwi_/);
    // The v1 members endpoint invites too: it never creates or joins an account.
    const legacy = await s.request('POST', `/v1/workspaces/${w.workspaceId}/members`, { token: w.token, body: { email: mail('legacy'), role: 'member' } });
    expect(legacy.status).toBe(201);
    expect(legacy.body.token).toMatch(/^kwi_/);
    const withPassword = await s.request('POST', `/v1/workspaces/${w.workspaceId}/members`, { token: w.token, body: { email: mail('x'), role: 'member', password: 'admin chosen pw' } });
    expect(withPassword.status).toBe(400);
    expect(await users()).toEqual(before);
  });

  it('the pre-hijack is closed: another workspace cannot join, or set the password of, an existing account', async () => {
    const victim = await addMember(s, w, mail('victim'), 'member', 'victims own password');
    // Mallory runs another workspace and invites the victim's email.
    const mallory = await s.request('POST', '/v1/workspaces', { token: w.token, body: { name: 'Mallory' } });
    const inv = await invite(mail('victim'), 'member', w.token, mallory.body.id);
    // Using the token without the victim's session, with a password of Mallory's choosing: refused, nothing changes.
    const before = await snapshot(s);
    const hijack = await accept({ token: inv.body.token, password: 'mallory chose this' });
    expect(hijack.status).toBe(401);
    expect(await snapshot(s)).toBe(before);
    expect((await s.request('POST', '/v1/auth/login', { body: { email: mail('victim'), password: 'mallory chose this' } })).status).toBe(401);
    // Another logged-in user cannot take it either.
    const other = await addMember(s, w, mail('other'), 'member', 'other password 1');
    expect((await accept({ token: inv.body.token }, other.token)).status).toBe(403);
    // The victim, logged in, can: the refusals did not use the token up.
    const ok = await accept({ token: inv.body.token }, victim.token);
    expect(ok.status).toBe(200);
    expect(ok.body.workspace).toMatchObject({ id: mallory.body.id, role: 'member' });
    expect(ok.body.session).toBeUndefined();
    expect((await accept({ token: inv.body.token }, victim.token)).status).toBe(404);
  });

  it('a new email sets its own password; the token works once; revoked and expired ones are 404', async () => {
    const inv = await invite(mail('new'), 'admin');
    expect((await accept({ token: inv.body.token })).status).toBe(400);
    const ok = await accept({ token: inv.body.token, password: 'my own password', name: 'Newbie' });
    expect(ok.status).toBe(200);
    expect(ok.body.session.user).toMatchObject({ email: mail('new'), name: 'Newbie' });
    expect(ok.body.session.workspaces).toEqual([expect.objectContaining({ id: w.workspaceId, role: 'admin' })]);
    expect((await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit`, { token: ok.body.session.token })).status).toBe(200);
    expect((await accept({ token: inv.body.token, password: 'another password' })).status).toBe(404);

    const revoked = await invite(mail('gone'));
    const pending = await s.request('GET', `/v1/workspaces/${w.workspaceId}/invitations`, { token: w.token });
    expect(pending.body.data.map((i: { email: string }) => i.email)).toEqual([mail('gone')]);
    expect(pending.text).not.toContain(revoked.body.token);
    expect((await s.request('DELETE', `/v1/workspaces/${w.workspaceId}/invitations/${revoked.body.id}`, { token: w.token })).status).toBe(204);
    expect((await accept({ token: revoked.body.token, password: 'my own password' })).status).toBe(404);

    const late = await invite(mail('late'));
    s.clock.advance(7 * 86_400_000 + 1);
    expect((await accept({ token: late.body.token, password: 'my own password' })).status).toBe(404);
    expect(await users()).not.toContain(mail('late'));
  });

  it('only owners invite owners; members and root keys invite nobody; tokens are stored hashed', async () => {
    const admin = await addMember(s, w, mail('admin'), 'admin', 'admin password 1');
    expect((await invite(mail('boss'), 'owner', admin.token)).status).toBe(403);
    expect((await invite(mail('boss'), 'owner')).status).toBe(201);
    const member = await addMember(s, w, mail('member'), 'member', 'member password');
    expect((await invite(mail('x'), 'member', member.token)).status).toBe(403);
    const root = (await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'ci', permissions: ['*'] } })).body.key;
    expect((await invite(mail('x'), 'member', root)).status).toBe(403);
    const created = await invite(mail('hashed'));
    const rows = await s.deps.store.db.selectFrom('invitations').selectAll().execute();
    expect(JSON.stringify(rows)).not.toContain(created.body.token);
  });

  it('until a password or a session proves who accepts, an existing email and a new one get the same answers', async () => {
    await addMember(s, w, mail('known'), 'member', 'known password 1');
    const other = await addMember(s, w, mail('other'), 'member', 'other password 1');
    const mallory = await s.request('POST', '/v1/workspaces', { token: w.token, body: { name: 'Mallory' } });
    const existing = await invite(mail('known'), 'member', w.token, mallory.body.id);
    const fresh = await invite(mail('fresh'), 'member', w.token, mallory.body.id);
    const before = await snapshot(s);
    // The token alone.
    const a1 = await accept({ token: existing.body.token });
    const b1 = await accept({ token: fresh.body.token });
    expect(a1.status).toBe(400);
    expect(shape(a1)).toEqual(shape(b1));
    // The token with a session of someone else.
    const a2 = await accept({ token: existing.body.token }, other.token);
    const b2 = await accept({ token: fresh.body.token }, other.token);
    expect(a2.status).toBe(403);
    expect(shape(a2)).toEqual(shape(b2));
    // With a password too, but someone else's session: still nothing that tells them apart.
    const a3 = await accept({ token: existing.body.token, password: 'a password 123' }, other.token);
    const b3 = await accept({ token: fresh.body.token, password: 'a password 123' }, other.token);
    expect(shape(a3)).toEqual(shape(b3));
    expect(await snapshot(s)).toBe(before);
  });

  it("an existing account accepts with its own password (a session comes with it); a wrong one is a throttled password check", async () => {
    await addMember(s, w, mail('known'), 'member', 'known password 1');
    const other = await s.request('POST', '/v1/workspaces', { token: w.token, body: { name: 'Other' } });
    const inv = await invite(mail('known'), 'admin', w.token, other.body.id);
    const checks = passwordChecks.count;
    for (let i = 0; i < 10; i++) {
      expect((await accept({ token: inv.body.token, password: `wrong password ${i}` }, undefined, '203.0.113.77')).status).toBe(401);
      // Past the third failure each attempt waits longer (1 s, 2 s … a minute); wait it out here.
      s.clock.advance(60_000);
    }
    expect(passwordChecks.count - checks).toBe(10);
    // Past the per-email-and-address ceiling: refused before any password is checked.
    const limited = await accept({ token: inv.body.token, password: 'known password 1' }, undefined, '203.0.113.77');
    expect(limited.status).toBe(429);
    expect(passwordChecks.count - checks).toBe(10);
    const ok = await accept({ token: inv.body.token, password: 'known password 1' });
    expect(ok.status).toBe(200);
    expect(ok.body.workspace).toMatchObject({ id: other.body.id, role: 'admin' });
    expect(ok.body.session.user.email).toBe(mail('known'));
    expect(ok.body.session.workspaces.map((x: { id: string }) => x.id).sort()).toEqual([w.workspaceId, other.body.id].sort());
  });

  it('two invitations of different workspaces for one new email, accepted at the same moment: one account, the other 409', async () => {
    const second = await s.request('POST', '/v1/workspaces', { token: w.token, body: { name: 'Second' } });
    const a = await invite(mail('twice'), 'member');
    const b = await invite(mail('twice'), 'admin', w.token, second.body.id);
    // Both accepts have looked the email up (no account) before either writes: a barrier on the
    // hash of the new password, which each runs after its lookup.
    const hasher = s.deps.services.auth.passwords;
    const hash = hasher.hash.bind(hasher);
    let arrived = 0;
    let open!: () => void;
    const barrier = new Promise<void>((resolve) => {
      open = resolve;
    });
    hasher.hash = async (password) => {
      if (++arrived === 2) open();
      await barrier;
      return hash(password);
    };
    try {
      const answers = await Promise.all([
        accept({ token: a.body.token, password: 'first password 1' }),
        accept({ token: b.body.token, password: 'second password 2' }),
      ]);
      expect(answers.map((x) => x.status).sort()).toEqual([200, 409]);
      expect(answers.find((x) => x.status === 409)!.body.code).toBe('CONFLICT');
    } finally {
      hasher.hash = hash;
    }
    expect((await users()).filter((e) => e === mail('twice'))).toHaveLength(1);
    // The refused one changed nothing: its invitation is still there for the account, logged in.
    const pending = [
      ...(await s.request('GET', `/v1/workspaces/${w.workspaceId}/invitations`, { token: w.token })).body.data,
      ...(await s.request('GET', `/v1/workspaces/${second.body.id}/invitations`, { token: w.token })).body.data,
    ];
    expect(pending).toHaveLength(1);
  });

  it("invitations die with their inviter's rights: removed, demoted, or no longer allowed the role", async () => {
    const admin = await addMember(s, w, mail('admin'), 'admin', 'admin password 1');
    const fromRemoved = await invite(mail('x1'), 'admin', admin.token);
    expect(fromRemoved.status).toBe(201);
    expect((await s.request('DELETE', `/v1/workspaces/${w.workspaceId}/members/${admin.userId}`, { token: w.token })).status).toBe(204);
    expect((await accept({ token: fromRemoved.body.token, password: 'my own password' })).status).toBe(404);

    const admin2 = await addMember(s, w, mail('admin2'), 'admin', 'admin password 2');
    const fromDemoted = await invite(mail('x2'), 'member', admin2.token);
    const demote = await s.request('PATCH', `/v1/workspaces/${w.workspaceId}/members/${admin2.userId}`, { token: w.token, body: { role: 'member' } });
    expect(demote.status).toBe(204);
    expect((await accept({ token: fromDemoted.body.token, password: 'my own password' })).status).toBe(404);
    const pending = await s.request('GET', `/v1/workspaces/${w.workspaceId}/invitations`, { token: w.token });
    expect(pending.body.data).toEqual([]);

    // However the inviter's role changed (here straight in the store), accept checks it again.
    const owner2 = await addMember(s, w, mail('owner2'), 'owner', 'owner password 2');
    const ownerInvite = await invite(mail('x3'), 'owner', owner2.token);
    const adminInvite = await invite(mail('x4'), 'admin', owner2.token);
    await s.deps.store.repos.workspaces.setRole(w.workspaceId, owner2.userId, 'admin');
    expect((await accept({ token: ownerInvite.body.token, password: 'my own password' })).status).toBe(404);
    const stillOk = await accept({ token: adminInvite.body.token, password: 'my own password' });
    expect(stillOk.status).toBe(200);
    expect(stillOk.body.workspace.role).toBe('admin');
    expect(await users()).not.toContain(mail('x1'));
  });

  it('roles change only within the rules: admins cannot make owners, a workspace keeps one owner', async () => {
    const admin = await addMember(s, w, mail('admin'), 'admin', 'admin password 1');
    const m = await addMember(s, w, mail('m'), 'member', 'member password');
    const patch = (userId: string, role: string, token = w.token) => s.request('PATCH', `/v1/workspaces/${w.workspaceId}/members/${userId}`, { token, body: { role } });
    expect((await patch(m.userId, 'owner', admin.token)).status).toBe(403);
    expect((await patch(m.userId, 'admin', admin.token)).status).toBe(204);
    expect((await patch(w.userId, 'admin', admin.token)).status).toBe(403);
    const last = await patch(w.userId, 'admin');
    expect(last.status).toBe(409);
    expect((await patch(m.userId, 'member', m.token)).status).toBe(204);
    expect((await patch(admin.userId, 'member', m.token)).status).toBe(403);
    expect((await patch(m.userId, 'superuser')).status).toBe(400);
    const members = await s.request('GET', `/v1/workspaces/${w.workspaceId}/members`, { token: w.token });
    expect(members.body.data.map((x: { email: string; role: string }) => `${x.email}:${x.role}`).sort()).toEqual([`${mail('admin')}:admin`, `${mail('m')}:member`, `${w.email}:owner`].sort());
  });
});
