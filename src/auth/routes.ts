// First-run setup, login and logout. Sessions are random tokens stored only as SHA-256.
import { randomBytes } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Kysely } from 'kysely';
import type { Deps } from '../deps.js';
import { AppError, conflict } from '../errors.js';
import { DUMMY_PASSWORD_HASH, hashPassword, sha256Hex, verifyPassword } from '../lib/hash.js';
import { newId } from '../lib/random.js';
import { iso } from '../keys/model.js';
import { recordAudit } from '../audit/audit.js';
import { isUniqueViolation } from '../store/db.js';
import type { Database } from '../store/schema.js';
import { withErrors } from '../http/common.js';
import { resolvePrincipal, SESSION_PREFIX } from './principal.js';

export const Email = Type.String({ format: 'email', maxLength: 254, examples: ['ada@example.com'] });
export const Password = Type.String({ minLength: 10, maxLength: 200, description: 'At least 10 characters' });

const UserView = Type.Object({ id: Type.String(), email: Type.String(), name: Type.String() });
const WorkspaceBrief = Type.Object({ id: Type.String(), name: Type.String(), role: Type.String() });
const SessionView = Type.Object({
  token: Type.String({ description: 'Session token; send as "Authorization: Bearer <token>"' }),
  expiresAt: Type.String({ format: 'date-time' }),
  user: UserView,
  workspaces: Type.Array(WorkspaceBrief),
});

async function startSession(deps: Deps, db: Kysely<Database>, userId: string, ip: string | null) {
  const token = SESSION_PREFIX + randomBytes(32).toString('base64url');
  const now = deps.clock.now();
  const expiresAt = now + deps.config.sessionTtlMs;
  await db.insertInto('sessions').values({ id: newId('session'), user_id: userId, token_hash: sha256Hex(token), created_at: now, expires_at: expiresAt, ip }).execute();
  return { token, expiresAt: iso(expiresAt) };
}

export async function sessionBody(deps: Deps, userId: string, session: { token: string; expiresAt: string }) {
  const db = deps.store.db;
  const user = await db.selectFrom('users').select(['id', 'email', 'name']).where('id', '=', userId).executeTakeFirstOrThrow();
  const workspaces = await db.selectFrom('members').innerJoin('workspaces', 'workspaces.id', 'members.workspace_id')
    .select(['workspaces.id', 'workspaces.name', 'members.role']).where('members.user_id', '=', userId)
    .orderBy('workspaces.created_at').execute();
  return { ...session, user, workspaces };
}

function clientIp(req: FastifyRequest): string | null {
  return req.ip ?? null;
}

export const authRoutes = (deps: Deps) => async (app: FastifyInstance) => {
  const r = app.withTypeProvider<TypeBoxTypeProvider>();
  const db = deps.store.db;

  r.get('/v1/setup', {
    schema: { tags: ['setup'], summary: 'Whether first-run setup is still needed', security: [],
      response: withErrors({ 200: Type.Object({ needsSetup: Type.Boolean() }) }) },
  }, async () => {
    const row = await db.selectFrom('users').select('id').limit(1).executeTakeFirst();
    return { needsSetup: !row };
  });

  r.post('/v1/setup', {
    schema: {
      tags: ['setup'], summary: 'Create the first user and workspace', security: [],
      description: 'Only allowed while no user exists; answers 409 afterwards.',
      body: Type.Object({
        email: Email, password: Password,
        workspaceName: Type.String({ minLength: 1, maxLength: 100, examples: ['Acme'] }),
        name: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
      }, { additionalProperties: false }),
      response: withErrors({ 201: SessionView }),
    },
  }, async (req, reply) => {
    const { email, password, workspaceName } = req.body;
    const now = deps.clock.now();
    const passwordHash = await hashPassword(password);
    const userId = newId('user');
    const workspaceId = newId('workspace');
    const session = await db.transaction().execute(async (trx) => {
      // The settings row is the atomic "setup done" flag: a concurrent second setup hits its key.
      try {
        await trx.insertInto('settings').values({ name: 'setup', value: iso(now) }).execute();
      } catch (err) {
        if (isUniqueViolation(err)) throw conflict('Setup is already complete; log in instead');
        throw err;
      }
      const existing = await trx.selectFrom('users').select('id').limit(1).executeTakeFirst();
      if (existing) throw conflict('Setup is already complete; log in instead');
      await trx.insertInto('users').values({ id: userId, email: email.toLowerCase(), name: req.body.name ?? email.split('@')[0]!, password_hash: passwordHash, created_at: now }).execute();
      await trx.insertInto('workspaces').values({ id: workspaceId, name: workspaceName, created_at: now }).execute();
      await trx.insertInto('members').values({ workspace_id: workspaceId, user_id: userId, role: 'owner', created_at: now }).execute();
      await recordAudit(trx, { type: 'user', id: userId, ip: clientIp(req), userAgent: req.headers['user-agent'] ?? null },
        { workspaceId, action: 'workspace.create', targetType: 'workspace', targetId: workspaceId, meta: { setup: true } }, now);
      return startSession(deps, trx, userId, clientIp(req));
    });
    reply.code(201);
    return sessionBody(deps, userId, session);
  });

  r.post('/v1/auth/login', {
    schema: {
      tags: ['auth'], summary: 'Log in with email and password', security: [],
      description: '10 failed attempts per email and address in 15 minutes answer 429 with Retry-After.',
      body: Type.Object({ email: Type.String({ maxLength: 254 }), password: Type.String({ maxLength: 200 }) }, { additionalProperties: false }),
      response: withErrors({ 200: SessionView }),
    },
  }, async (req) => {
    const email = req.body.email.toLowerCase();
    const limiterKey = `${email}|${clientIp(req) ?? ''}`;
    const used = await deps.loginLimiter.get(limiterKey);
    if (used && used.consumedPoints >= 10) {
      throw new AppError('RATE_LIMITED', 'Too many failed logins; try again later', { retryAfterSec: Math.ceil(used.msBeforeNext / 1000) });
    }
    const user = await db.selectFrom('users').select(['id', 'password_hash']).where('email', '=', email).executeTakeFirst();
    // Unknown emails are checked against a dummy hash: both failures cost one scrypt.
    const ok = await verifyPassword(req.body.password, user?.password_hash ?? DUMMY_PASSWORD_HASH);
    if (!user || !ok) {
      await deps.loginLimiter.penalty(limiterKey, 1);
      throw new AppError('UNAUTHORIZED', 'Email or password is wrong');
    }
    await deps.loginLimiter.delete(limiterKey);
    const session = await startSession(deps, db, user.id, clientIp(req));
    return sessionBody(deps, user.id, session);
  });

  r.post('/v1/auth/logout', {
    schema: { tags: ['auth'], summary: 'End the current session', response: withErrors({ 204: Type.Null() }) },
  }, async (req, reply) => {
    const principal = await resolvePrincipal(deps, req);
    if (principal.kind !== 'user') throw new AppError('FORBIDDEN', 'Root keys have no session; revoke the key instead');
    await db.deleteFrom('sessions').where('id', '=', principal.sessionId).execute();
    return reply.code(204).send();
  });

  r.get('/v1/auth/me', {
    schema: { tags: ['auth'], summary: 'The current user and their workspaces', response: withErrors({ 200: Type.Omit(SessionView, ['token']) }) },
  }, async (req) => {
    const principal = await resolvePrincipal(deps, req);
    if (principal.kind !== 'user') throw new AppError('FORBIDDEN', 'Only a user session has a profile');
    const s = await db.selectFrom('sessions').select('expires_at').where('id', '=', principal.sessionId).executeTakeFirstOrThrow();
    const { token: _t, ...rest } = await sessionBody(deps, principal.userId, { token: '', expiresAt: iso(s.expires_at) });
    return rest;
  });
};
