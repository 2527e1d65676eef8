// Members join by invitation only. Nobody sets another person's password, the inviter learns
// nothing about accounts elsewhere, and a refused accept leaves the invitation usable.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DIALECTS, addMember, snapshot, startServer, world, type TestServer, type World } from './harness.js';

describe.each(DIALECTS)('invitations (%s)', (dialect) => {
  let s: TestServer;
  let w: World;
  beforeEach(async () => {
    s = await startServer({ dialect });
    w = await world(s);
  });
  afterEach(async () => s.close());

  const invite = (email: string, role = 'member', token = w.token, workspaceId = w.workspaceId) =>
    s.request('POST', `/v1/workspaces/${workspaceId}/invitations`, { token, body: { email, role } });
  const accept = (body: Record<string, unknown>, token?: string) => s.request('POST', '/v1/invitations/accept', { body, ...(token ? { token } : {}) });
  const users = async () => (await s.deps.store.db.selectFrom('users').select('email').execute()).map((u) => u.email).sort();

  it('the answer does not depend on whether the email has an account anywhere, and no account is made', async () => {
    await addMember(s, w, 'known@example.com', 'member', 'known password 1');
    const before = await users();
    const known = await invite('known@example.com');
    const unknown = await invite('nobody@example.com');
    expect(known.status).toBe(201);
    expect(unknown.status).toBe(201);
    expect(Object.keys(known.body).sort()).toEqual(Object.keys(unknown.body).sort());
    expect(known.body.url).toMatch(/\/accept-invite#token=kwi_/);
    // The v1 members endpoint invites too: it never creates or joins an account.
    const legacy = await s.request('POST', `/v1/workspaces/${w.workspaceId}/members`, { token: w.token, body: { email: 'legacy@example.com', role: 'member' } });
    expect(legacy.status).toBe(201);
    expect(legacy.body.token).toMatch(/^kwi_/);
    const withPassword = await s.request('POST', `/v1/workspaces/${w.workspaceId}/members`, { token: w.token, body: { email: 'x@example.com', role: 'member', password: 'admin chosen pw' } });
    expect(withPassword.status).toBe(400);
    expect(await users()).toEqual(before);
  });

  it('the pre-hijack is closed: another workspace cannot join, or set the password of, an existing account', async () => {
    const victim = await addMember(s, w, 'victim@example.com', 'member', 'victims own password');
    // Mallory runs another workspace and invites the victim's email.
    const mallory = await s.request('POST', '/v1/workspaces', { token: w.token, body: { name: 'Mallory' } });
    const inv = await invite('victim@example.com', 'member', w.token, mallory.body.id);
    // Using the token without the victim's session, with a password of Mallory's choosing: refused, nothing changes.
    const before = await snapshot(s);
    const hijack = await accept({ token: inv.body.token, password: 'mallory chose this' });
    expect(hijack.status).toBe(401);
    expect(await snapshot(s)).toBe(before);
    expect((await s.request('POST', '/v1/auth/login', { body: { email: 'victim@example.com', password: 'mallory chose this' } })).status).toBe(401);
    // Another logged-in user cannot take it either.
    const other = await addMember(s, w, 'other@example.com', 'member', 'other password 1');
    expect((await accept({ token: inv.body.token }, other.token)).status).toBe(403);
    // The victim, logged in, can: the refusals did not use the token up.
    const ok = await accept({ token: inv.body.token }, victim.token);
    expect(ok.status).toBe(200);
    expect(ok.body.workspace).toMatchObject({ id: mallory.body.id, role: 'member' });
    expect(ok.body.session).toBeUndefined();
    expect((await accept({ token: inv.body.token }, victim.token)).status).toBe(404);
  });

  it('a new email sets its own password; the token works once; revoked and expired ones are 404', async () => {
    const inv = await invite('new@example.com', 'admin');
    expect((await accept({ token: inv.body.token })).status).toBe(400);
    const ok = await accept({ token: inv.body.token, password: 'my own password', name: 'Newbie' });
    expect(ok.status).toBe(200);
    expect(ok.body.session.user).toMatchObject({ email: 'new@example.com', name: 'Newbie' });
    expect(ok.body.session.workspaces).toEqual([expect.objectContaining({ id: w.workspaceId, role: 'admin' })]);
    expect((await s.request('GET', `/v1/workspaces/${w.workspaceId}/audit`, { token: ok.body.session.token })).status).toBe(200);
    expect((await accept({ token: inv.body.token, password: 'another password' })).status).toBe(404);

    const revoked = await invite('gone@example.com');
    const pending = await s.request('GET', `/v1/workspaces/${w.workspaceId}/invitations`, { token: w.token });
    expect(pending.body.data.map((i: { email: string }) => i.email)).toEqual(['gone@example.com']);
    expect(pending.text).not.toContain(revoked.body.token);
    expect((await s.request('DELETE', `/v1/workspaces/${w.workspaceId}/invitations/${revoked.body.id}`, { token: w.token })).status).toBe(204);
    expect((await accept({ token: revoked.body.token, password: 'my own password' })).status).toBe(404);

    const late = await invite('late@example.com');
    s.clock.advance(7 * 86_400_000 + 1);
    expect((await accept({ token: late.body.token, password: 'my own password' })).status).toBe(404);
    expect(await users()).not.toContain('late@example.com');
  });

  it('only owners invite owners; members and root keys invite nobody; tokens are stored hashed', async () => {
    const admin = await addMember(s, w, 'admin@example.com', 'admin', 'admin password 1');
    expect((await invite('boss@example.com', 'owner', admin.token)).status).toBe(403);
    expect((await invite('boss@example.com', 'owner')).status).toBe(201);
    const member = await addMember(s, w, 'member@example.com', 'member', 'member password');
    expect((await invite('x@example.com', 'member', member.token)).status).toBe(403);
    const root = (await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'ci', permissions: ['*'] } })).body.key;
    expect((await invite('x@example.com', 'member', root)).status).toBe(403);
    const created = await invite('hashed@example.com');
    const rows = await s.deps.store.db.selectFrom('invitations').selectAll().execute();
    expect(JSON.stringify(rows)).not.toContain(created.body.token);
  });
});
