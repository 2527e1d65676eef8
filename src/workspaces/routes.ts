// Workspaces, their members and their root keys.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { forbidden } from '../errors.js';
import { parseJson } from '../lib/json.js';
import { iso, isoOrNull } from '../lib/time.js';
import { IdOf, withErrors } from '../http/common.js';
import { Email, Password } from '../auth/schemas.js';
import { originOf, type Guard } from '../auth/guard.js';
import { actorOf } from '../auth/service.js';
import { PERMISSIONS } from '../auth/permissions.js';
import { CreatedRootKey, MemberView, Role, RootKeyPermission, RootKeyView, WorkspaceView } from './schemas.js';
import type { MemberRow } from '../store/repos/workspaces.js';
import type { RootKeysTable } from '../store/schema.js';
import type { WorkspaceService } from './service.js';

const WsParams = Type.Object({ id: IdOf('workspace') });

const memberView = (m: MemberRow) => ({ userId: m.userId, email: m.email, name: m.name, role: m.role, createdAt: iso(m.createdAt) });
const rootKeyView = (k: RootKeysTable) => ({
  id: k.id, workspaceId: k.workspace_id, name: k.name, start: k.start, permissions: parseJson<string[]>(k.permissions, []),
  createdAt: iso(k.created_at), createdBy: k.created_by, lastUsedAt: isoOrNull(k.last_used_at), revokedAt: isoOrNull(k.revoked_at),
});

export interface WorkspaceRouteServices {
  workspaces: WorkspaceService;
  guard: Guard;
}

export const workspaceRoutes = ({ workspaces, guard }: WorkspaceRouteServices) => async (app: FastifyInstance) => {
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

  r.post('/v1/workspaces/:id/members', {
    schema: {
      tags: ['workspaces'], summary: 'Add a member',
      description: 'Adds an existing user by email, or creates the account when `password` is given for a new email. Only owners can add owners.',
      params: WsParams,
      body: Type.Object({ email: Email, role: Role, password: Type.Optional(Password), name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })) }, { additionalProperties: false }),
      response: withErrors({ 201: MemberView }),
    },
  }, async (req, reply) => {
    const access = await guard.workspace(req, req.params.id, '*');
    if (access.principal.kind !== 'user') throw forbidden('Members are managed by users, not root keys');
    const member = await workspaces.addMember(req.params.id, access, req.body);
    reply.code(201);
    return memberView(member);
  });

  r.delete('/v1/workspaces/:id/members/:userId', {
    schema: { tags: ['workspaces'], summary: 'Remove a member', params: Type.Object({ id: IdOf('workspace'), userId: IdOf('user') }), response: withErrors({ 204: Type.Null() }) },
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
    const { row, value } = await workspaces.createRootKey(req.params.id, access, req.body.name, req.body.permissions);
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
