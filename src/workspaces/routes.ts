// Workspaces, their members and their root keys.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { forbidden } from '../errors.js';
import { parseJson } from '../lib/json.js';
import { iso, isoOrNull } from '../lib/time.js';
import { IdOf, withErrors } from '../http/common.js';
import { Password, SessionView } from '../auth/schemas.js';
import { bearerToken, originOf, type Guard } from '../auth/guard.js';
import { actorOf } from '../auth/service.js';
import { PERMISSIONS } from '../auth/permissions.js';
import { CreatedInvitation, CreatedRootKey, InvitationView, InviteBody, MemberView, Role, RootKeyPermission, RootKeyView, WorkspaceView } from './schemas.js';
import type { MemberRow } from '../store/repos/workspaces.js';
import type { InvitationsTable, RootKeysTable } from '../store/schema.js';
import type { Role as RoleName } from '../store/repos/workspaces.js';
import type { WorkspaceService } from './service.js';
import type { InvitationService } from './invitations.js';
import type { Idempotency } from '../http/idempotency.js';

const WsParams = Type.Object({ id: IdOf('workspace') });

const invitationView = (i: InvitationsTable) => ({
  id: i.id, workspaceId: i.workspace_id, email: i.email, role: i.role, createdAt: iso(i.created_at), expiresAt: iso(i.expires_at), createdBy: i.created_by,
});
const memberView = (m: MemberRow) => ({ userId: m.userId, email: m.email, name: m.name, role: m.role, createdAt: iso(m.createdAt) });
const rootKeyView = (k: RootKeysTable) => ({
  id: k.id, workspaceId: k.workspace_id, name: k.name, start: k.start, permissions: parseJson<string[]>(k.permissions, []),
  createdAt: iso(k.created_at), createdBy: k.created_by, lastUsedAt: isoOrNull(k.last_used_at), revokedAt: isoOrNull(k.revoked_at),
});

export interface WorkspaceRouteServices {
  workspaces: WorkspaceService;
  invitations: InvitationService;
  guard: Guard;
  idempotency: Idempotency;
}

export const workspaceRoutes = ({ workspaces, invitations, guard, idempotency }: WorkspaceRouteServices) => async (app: FastifyInstance) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();

  r.get('/v1/workspaces', {
    schema: { tags: ['workspaces'], summary: 'Workspaces the caller belongs to', response: withErrors({ 200: Type.Object({ data: Type.Array(WorkspaceView) }) }) },
  }, async (req) => {
    const rows = await workspaces.listFor(await guard.principal(req));
    return { data: rows.map((w) => ({ id: w.id, name: w.name, createdAt: iso(w.created_at), ...(w.role ? { role: w.role } : {}) })) };
  });

  r.post('/v1/workspaces', {
    schema: {
      tags: ['workspaces'], summary: 'Create a workspace (the caller becomes its owner)',
      body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }) }, { additionalProperties: false }),
      response: withErrors({ 201: WorkspaceView }),
    },
  }, async (req, reply) => {
    const principal = await guard.principal(req);
    const ws = await workspaces.create(principal, actorOf(principal, originOf(req)), req.body.name);
    reply.code(201);
    return { id: ws.id, name: ws.name, createdAt: iso(ws.created_at), role: 'owner' };
  });

  r.get('/v1/workspaces/:id', {
    schema: { tags: ['workspaces'], summary: 'Read a workspace', params: WsParams, response: withErrors({ 200: WorkspaceView }) },
  }, async (req) => {
    const access = await guard.workspace(req, req.params.id, 'apps:read');
    const w = await workspaces.get(req.params.id);
    return { id: w.id, name: w.name, createdAt: iso(w.created_at), ...(access.role ? { role: access.role } : {}) };
  });

  r.get('/v1/workspaces/:id/members', {
    schema: { tags: ['workspaces'], summary: 'Members and their roles', params: WsParams, response: withErrors({ 200: Type.Object({ data: Type.Array(MemberView) }) }) },
  }, async (req) => {
    await guard.workspace(req, req.params.id, 'apps:read');
    return { data: (await workspaces.members(req.params.id)).map(memberView) };
  });

  const invite = async (req: FastifyRequest<{ Params: { id: string }; Body: { email: string; role: RoleName } }>, reply: FastifyReply) => {
    const access = await guard.workspace(req, req.params.id, '*');
    if (access.principal.kind !== 'user') throw forbidden('Members are invited by users, not root keys');
    const { row, token, url } = await idempotency.run(req, (claim) => invitations.create(req.params.id, access, req.body, claim));
    reply.code(201).header('cache-control', 'no-store');
    return { ...invitationView(row), token, url };
  };

  r.post('/v1/workspaces/:id/invitations', {
    schema: {
      tags: ['workspaces'], summary: 'Invite someone by email (a one-time link, valid 7 days)',
      description: 'The answer is the same whether or not the email has an account anywhere. The invitee sets their own password, or accepts while logged in as that email. Only owners can invite owners.',
      params: WsParams, body: InviteBody, response: withErrors({ 201: CreatedInvitation }),
    },
  }, invite);

  r.post('/v1/workspaces/:id/members', {
    schema: {
      tags: ['workspaces'], summary: 'Add a member (sends an invitation)',
      description: 'Kept for v1 clients: creates an invitation exactly like `POST /v1/workspaces/{id}/invitations`. No account is ever created or joined here.',
      params: WsParams, body: InviteBody, response: withErrors({ 201: CreatedInvitation }),
    },
  }, invite);

  r.get('/v1/workspaces/:id/invitations', {
    schema: { tags: ['workspaces'], summary: 'Pending invitations (never their tokens)', params: WsParams, response: withErrors({ 200: Type.Object({ data: Type.Array(InvitationView) }) }) },
  }, async (req) => {
    await guard.workspace(req, req.params.id, '*');
    return { data: (await invitations.pending(req.params.id)).map(invitationView) };
  });

  r.delete('/v1/workspaces/:id/invitations/:invitationId', {
    schema: { tags: ['workspaces'], summary: 'Revoke a pending invitation', params: Type.Object({ id: IdOf('workspace'), invitationId: IdOf('invitation') }), response: withErrors({ 204: Type.Null() }) },
  }, async (req, reply) => {
    const access = await guard.workspace(req, req.params.id, '*');
    await invitations.revoke(req.params.id, req.params.invitationId, access);
    return reply.code(204).send();
  });

  r.post('/v1/invitations/inspect', {
    schema: {
      tags: ['workspaces'], summary: 'What an invitation is for', security: [],
      description: 'For the accept page: the workspace it joins, the invited email and the role. A used, revoked, expired or unknown token is 404. The token goes in the body, never in a URL.',
      body: Type.Object({ token: Type.String({ minLength: 1, maxLength: 200 }) }, { additionalProperties: false }),
      response: withErrors({ 200: Type.Object({ workspace: Type.Object({ name: Type.String() }), email: Type.String(), role: Role, expiresAt: Type.String() }) }),
    },
  }, async (req, reply) => {
    const found = await invitations.inspect(req.body.token);
    reply.header('cache-control', 'no-store');
    return { ...found, expiresAt: iso(found.expiresAt) };
  });

  r.post('/v1/invitations/accept', {
    schema: {
      tags: ['workspaces'], summary: 'Accept an invitation', security: [{ bearer: [] }, {}],
      description: 'A new email sets its password here and gets a session. An existing account sends its own password (and gets a session, like a login: throttled alike) or its own session (`Authorization: Bearer <token>`). Until a password or a session proves who is accepting, the answers do not depend on whether the email has an account. An invitation dies with its inviter\'s right to invite that role. A refused accept leaves the invitation usable.',
      body: Type.Object({
        token: Type.String({ minLength: 1, maxLength: 200 }),
        password: Type.Optional(Password),
        name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
      }, { additionalProperties: false }),
      response: withErrors({ 200: Type.Object({ workspace: Type.Object({ id: Type.String(), name: Type.String(), role: Role }), session: Type.Optional(SessionView) }) }),
    },
  }, async (req, reply) => {
    const principal = bearerToken(req) === null ? null : await guard.principal(req);
    const accepted = await invitations.accept(req.body.token, principal, req.body, originOf(req));
    reply.header('cache-control', 'no-store');
    return accepted;
  });

  r.patch('/v1/workspaces/:id/members/:userId', {
    schema: {
      tags: ['workspaces'], summary: "Change a member's role",
      description: 'Owners are made and unmade only by owners, and a workspace keeps at least one. Pending invitations the member may no longer make (an admin made member: all of them) are revoked with the change.',
      params: Type.Object({ id: IdOf('workspace'), userId: IdOf('user') }),
      body: Type.Object({ role: Role }, { additionalProperties: false }),
      response: withErrors({ 204: Type.Null() }),
    },
  }, async (req, reply) => {
    const access = await guard.workspace(req, req.params.id, '*');
    if (access.principal.kind !== 'user') throw forbidden('Members are managed by users, not root keys');
    await workspaces.setRole(req.params.id, access, req.params.userId, req.body.role);
    return reply.code(204).send();
  });

  r.delete('/v1/workspaces/:id/members/:userId', {
    schema: {
      tags: ['workspaces'], summary: 'Remove a member',
      description: "Their open change streams of this workspace end at once on every node, and their pending invitations are revoked.",
      params: Type.Object({ id: IdOf('workspace'), userId: IdOf('user') }), response: withErrors({ 204: Type.Null() }),
    },
  }, async (req, reply) => {
    const access = await guard.workspace(req, req.params.id, '*');
    if (access.principal.kind !== 'user') throw forbidden('Members are managed by users, not root keys');
    await workspaces.removeMember(req.params.id, access, req.params.userId);
    return reply.code(204).send();
  });

  r.get('/v1/workspaces/:id/root-keys', {
    schema: { tags: ['root keys'], summary: 'Root keys of a workspace (never their values)', params: WsParams, response: withErrors({ 200: Type.Object({ data: Type.Array(RootKeyView) }) }) },
  }, async (req) => {
    await guard.workspace(req, req.params.id, '*');
    return { data: (await workspaces.rootKeys(req.params.id)).map(rootKeyView) };
  });

  r.post('/v1/workspaces/:id/root-keys', {
    schema: {
      tags: ['root keys'], summary: 'Create a root key (its value is shown once)', params: WsParams,
      body: Type.Object({
        name: Type.String({ minLength: 1, maxLength: 100, examples: ['CI deploys'] }),
        permissions: Type.Array(RootKeyPermission, { minItems: 1, maxItems: PERMISSIONS.length, uniqueItems: true }),
      }, { additionalProperties: false }),
      response: withErrors({ 201: CreatedRootKey }),
    },
  }, async (req, reply) => {
    const access = await guard.workspace(req, req.params.id, '*');
    const { row, value } = await idempotency.run(req, (claim) => workspaces.createRootKey(req.params.id, access, req.body.name, req.body.permissions, claim));
    reply.code(201).header('cache-control', 'no-store');
    return { ...rootKeyView(row), key: value };
  });

  r.delete('/v1/root-keys/:id', {
    schema: { tags: ['root keys'], summary: 'Revoke a root key (immediate)', params: Type.Object({ id: IdOf('rootKey') }), response: withErrors({ 204: Type.Null() }) },
  }, async (req, reply) => {
    const { target, access } = await guard.rootKey(req, req.params.id, '*');
    await workspaces.revokeRootKey(target, access);
    return reply.code(204).send();
  });
};
