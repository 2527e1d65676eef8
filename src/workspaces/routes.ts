// Workspaces, their members and their root keys.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Deps } from '../deps.js';
import { AppError, conflict, forbidden, notFound } from '../errors.js';
import { hashPassword, sha256Hex } from '../lib/hash.js';
import { parseJson } from '../lib/json.js';
import { newId } from '../lib/random.js';
import { generateKey } from '../keys/format.js';
import { iso, isoOrNull } from '../keys/model.js';
import { recordAudit } from '../audit/audit.js';
import { IdOf, withErrors } from '../http/common.js';
import { Email, Password } from '../auth/routes.js';
import { authorize, actorOf, requireAccess, resolvePrincipal, ROOT_KEY_PREFIX } from '../auth/principal.js';
import { grants, PERMISSIONS, ROLES } from '../auth/permissions.js';

const WorkspaceView = Type.Object({ id: Type.String(), name: Type.String(), createdAt: Type.String({ format: 'date-time' }), role: Type.Optional(Type.String()) });
const MemberView = Type.Object({ userId: Type.String(), email: Type.String(), name: Type.String(), role: Type.String(), createdAt: Type.String({ format: 'date-time' }) });
const RootKeyView = Type.Object({
  id: Type.String(), workspaceId: Type.String(), name: Type.String(), start: Type.String(),
  permissions: Type.Array(Type.String()), createdAt: Type.String({ format: 'date-time' }),
  createdBy: Type.Union([Type.String(), Type.Null()]), lastUsedAt: Type.Union([Type.String(), Type.Null()]),
  revokedAt: Type.Union([Type.String(), Type.Null()]),
});
const WsParams = Type.Object({ id: IdOf('workspace') });
const Role = Type.Union(ROLES.map((r) => Type.Literal(r)));

export const workspaceRoutes = (deps: Deps) => async (app: FastifyInstance) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const db = deps.store.db;

  r.get('/v1/workspaces', {
    schema: { tags: ['workspaces'], summary: 'Workspaces the caller belongs to', response: withErrors({ 200: Type.Object({ data: Type.Array(WorkspaceView) }) }) },
  }, async (req) => {
    const p = await resolvePrincipal(deps, req);
    const q = db.selectFrom('workspaces').select(['workspaces.id', 'workspaces.name', 'workspaces.created_at']);
    const rows = p.kind === 'root'
      ? (await q.where('id', '=', p.workspaceId).execute()).map((w) => ({ ...w, role: undefined }))
      : await q.innerJoin('members', 'members.workspace_id', 'workspaces.id').select('members.role')
        .where('members.user_id', '=', p.userId).orderBy('workspaces.created_at').execute();
    return { data: rows.map((w) => ({ id: w.id, name: w.name, createdAt: iso(w.created_at), ...(w.role ? { role: w.role } : {}) })) };
  });

  r.post('/v1/workspaces', {
    schema: {
      tags: ['workspaces'], summary: 'Create a workspace (the caller becomes its owner)',
      body: Type.Object({ name: Type.String({ minLength: 1, maxLength: 100 }) }, { additionalProperties: false }),
      response: withErrors({ 201: WorkspaceView }),
    },
  }, async (req, reply) => {
    const p = await resolvePrincipal(deps, req);
    if (p.kind !== 'user') throw forbidden('Root keys cannot create workspaces');
    const now = deps.clock.now();
    const id = newId('workspace');
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('workspaces').values({ id, name: req.body.name, created_at: now }).execute();
      await trx.insertInto('members').values({ workspace_id: id, user_id: p.userId, role: 'owner', created_at: now }).execute();
      await recordAudit(trx, actorOf(p, req), { workspaceId: id, action: 'workspace.create', targetType: 'workspace', targetId: id }, now);
    });
    reply.code(201);
    return { id, name: req.body.name, createdAt: iso(now), role: 'owner' };
  });

  r.get('/v1/workspaces/:id', {
    schema: { tags: ['workspaces'], summary: 'Read a workspace', params: WsParams, response: withErrors({ 200: WorkspaceView }) },
  }, async (req) => {
    const p = await authorize(deps, req, 'apps:read');
    const access = await requireAccess(deps, req, p, req.params.id, 'apps:read');
    const w = await db.selectFrom('workspaces').selectAll().where('id', '=', req.params.id).executeTakeFirst();
    if (!w) throw notFound('Workspace');
    return { id: w.id, name: w.name, createdAt: iso(w.created_at), ...(access.role ? { role: access.role } : {}) };
  });

  r.get('/v1/workspaces/:id/members', {
    schema: { tags: ['workspaces'], summary: 'Members and their roles', params: WsParams, response: withErrors({ 200: Type.Object({ data: Type.Array(MemberView) }) }) },
  }, async (req) => {
    const p = await authorize(deps, req, 'apps:read');
    await requireAccess(deps, req, p, req.params.id, 'apps:read');
    const rows = await db.selectFrom('members').innerJoin('users', 'users.id', 'members.user_id')
      .select(['users.id', 'users.email', 'users.name', 'members.role', 'members.created_at'])
      .where('members.workspace_id', '=', req.params.id).orderBy('members.created_at').execute();
    return { data: rows.map((m) => ({ userId: m.id, email: m.email, name: m.name, role: m.role, createdAt: iso(m.created_at) })) };
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
    const p = await authorize(deps, req, '*');
    if (p.kind !== 'user') throw forbidden('Members are managed by users, not root keys');
    const access = await requireAccess(deps, req, p, req.params.id, '*');
    if (req.body.role === 'owner' && access.role !== 'owner') throw forbidden('Only an owner can add an owner');
    const email = req.body.email.toLowerCase();
    const now = deps.clock.now();
    const passwordHash = req.body.password ? await hashPassword(req.body.password) : null;
    const member = await db.transaction().execute(async (trx) => {
      let user = await trx.selectFrom('users').select(['id', 'email', 'name']).where('email', '=', email).executeTakeFirst();
      if (!user) {
        if (!passwordHash) throw new AppError('VALIDATION_FAILED', 'No account has this email; give a password to create one', { errors: [{ path: 'body/password', message: 'is required for a new account' }] });
        user = { id: newId('user'), email, name: req.body.name ?? email.split('@')[0]! };
        await trx.insertInto('users').values({ ...user, password_hash: passwordHash, created_at: now }).execute();
      }
      const existing = await trx.selectFrom('members').select('role').where('workspace_id', '=', req.params.id).where('user_id', '=', user.id).executeTakeFirst();
      if (existing) throw conflict('This user is already a member');
      await trx.insertInto('members').values({ workspace_id: req.params.id, user_id: user.id, role: req.body.role, created_at: now }).execute();
      await recordAudit(trx, access.actor, { workspaceId: req.params.id, action: 'member.add', targetType: 'user', targetId: user.id, meta: { role: req.body.role } }, now);
      return user;
    });
    reply.code(201);
    return { userId: member.id, email: member.email, name: member.name, role: req.body.role, createdAt: iso(now) };
  });

  r.delete('/v1/workspaces/:id/members/:userId', {
    schema: { tags: ['workspaces'], summary: 'Remove a member', params: Type.Object({ id: IdOf('workspace'), userId: IdOf('user') }), response: withErrors({ 204: Type.Null() }) },
  }, async (req, reply) => {
    const p = await authorize(deps, req, '*');
    if (p.kind !== 'user') throw forbidden('Members are managed by users, not root keys');
    const access = await requireAccess(deps, req, p, req.params.id, '*');
    const now = deps.clock.now();
    await db.transaction().execute(async (trx) => {
      const target = await trx.selectFrom('members').select('role').where('workspace_id', '=', req.params.id).where('user_id', '=', req.params.userId).executeTakeFirst();
      if (!target) throw notFound('Member');
      if (target.role === 'owner') {
        if (access.role !== 'owner') throw forbidden('Only an owner can remove an owner');
        const owners = await trx.selectFrom('members').select((eb) => eb.fn.countAll<number>().as('n')).where('workspace_id', '=', req.params.id).where('role', '=', 'owner').executeTakeFirstOrThrow();
        if (Number(owners.n) <= 1) throw conflict('A workspace keeps at least one owner');
      }
      await trx.deleteFrom('members').where('workspace_id', '=', req.params.id).where('user_id', '=', req.params.userId).execute();
      await recordAudit(trx, access.actor, { workspaceId: req.params.id, action: 'member.remove', targetType: 'user', targetId: req.params.userId }, now);
    });
    return reply.code(204).send();
  });

  r.get('/v1/workspaces/:id/root-keys', {
    schema: { tags: ['root keys'], summary: 'Root keys of a workspace (never their values)', params: WsParams, response: withErrors({ 200: Type.Object({ data: Type.Array(RootKeyView) }) }) },
  }, async (req) => {
    const p = await authorize(deps, req, '*');
    await requireAccess(deps, req, p, req.params.id, '*');
    const rows = await db.selectFrom('root_keys').selectAll().where('workspace_id', '=', req.params.id).orderBy('created_at', 'desc').execute();
    return {
      data: rows.map((k) => ({
        id: k.id, workspaceId: k.workspace_id, name: k.name, start: k.start, permissions: parseJson<string[]>(k.permissions, []),
        createdAt: iso(k.created_at), createdBy: k.created_by, lastUsedAt: isoOrNull(k.last_used_at), revokedAt: isoOrNull(k.revoked_at),
      })),
    };
  });

  r.post('/v1/workspaces/:id/root-keys', {
    schema: {
      tags: ['root keys'], summary: 'Create a root key (its value is shown once)', params: WsParams,
      body: Type.Object({
        name: Type.String({ minLength: 1, maxLength: 100, examples: ['CI deploys'] }),
        permissions: Type.Array(Type.Union(PERMISSIONS.map((x) => Type.Literal(x))), { minItems: 1, maxItems: PERMISSIONS.length, uniqueItems: true }),
      }, { additionalProperties: false }),
      response: withErrors({ 201: Type.Composite([RootKeyView, Type.Object({ key: Type.String({ description: 'The root key. Shown only in this response.' }) })]) }),
    },
  }, async (req, reply) => {
    const p = await authorize(deps, req, '*');
    const access = await requireAccess(deps, req, p, req.params.id, '*');
    for (const perm of req.body.permissions) {
      if (!grants(access.permissions, perm)) throw forbidden(`Cannot grant "${perm}", which this credential lacks`);
    }
    const now = deps.clock.now();
    const { plaintext, start } = generateKey(ROOT_KEY_PREFIX, 'live');
    const row = {
      id: newId('rootKey'), workspace_id: req.params.id, name: req.body.name, hash: sha256Hex(plaintext), start,
      permissions: JSON.stringify(req.body.permissions), created_at: now, created_by: access.actor.id, revoked_at: null, last_used_at: null,
    };
    await db.transaction().execute(async (trx) => {
      await trx.insertInto('root_keys').values(row).execute();
      await recordAudit(trx, access.actor, { workspaceId: req.params.id, action: 'root_key.create', targetType: 'root_key', targetId: row.id, meta: { permissions: req.body.permissions } }, now);
    });
    reply.code(201);
    return {
      id: row.id, workspaceId: row.workspace_id, name: row.name, start, permissions: req.body.permissions,
      createdAt: iso(now), createdBy: row.created_by, lastUsedAt: null, revokedAt: null, key: plaintext,
    };
  });

  r.delete('/v1/root-keys/:id', {
    schema: { tags: ['root keys'], summary: 'Revoke a root key (immediate)', params: Type.Object({ id: IdOf('rootKey') }), response: withErrors({ 204: Type.Null() }) },
  }, async (req, reply) => {
    const p = await authorize(deps, req, '*');
    const key = await db.selectFrom('root_keys').select(['workspace_id', 'revoked_at']).where('id', '=', req.params.id).executeTakeFirst();
    if (!key) throw notFound('Root key');
    const access = await requireAccess(deps, req, p, key.workspace_id, '*', 'Root key');
    if (key.revoked_at === null) {
      const now = deps.clock.now();
      await db.transaction().execute(async (trx) => {
        await trx.updateTable('root_keys').set({ revoked_at: now }).where('id', '=', req.params.id).execute();
        await recordAudit(trx, access.actor, { workspaceId: key.workspace_id, action: 'root_key.revoke', targetType: 'root_key', targetId: req.params.id }, now);
      });
    }
    return reply.code(204).send();
  });
};
