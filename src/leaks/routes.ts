// POST /v1/leaks: secret-scanning reports (GitHub's partner format). A signed report of a live key
// disables or revokes it by policy, audits it, and answers what happened to each token.
import { createPublicKey, verify as verifySignature, type KeyObject } from 'node:crypto';
import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { Deps } from '../deps.js';
import { AppError } from '../errors.js';
import { sha256Hex } from '../lib/hash.js';
import { recordAudit, type Actor } from '../audit/audit.js';
import { parseKey } from '../keys/format.js';
import { withErrors } from '../http/common.js';

const Report = Type.Array(Type.Object({
  token: Type.String({ maxLength: 512 }),
  type: Type.String({ maxLength: 128 }),
  url: Type.Optional(Type.String({ maxLength: 2048 })),
  source: Type.Optional(Type.String({ maxLength: 128 })),
}), { maxItems: 1000 });

const Outcome = Type.Object({
  token_hash: Type.String({ description: 'SHA-256 of the reported token, hex' }),
  token_type: Type.String(),
  label: Type.Union([Type.Literal('true_positive'), Type.Literal('false_positive')]),
  action: Type.Union([Type.Literal('disabled'), Type.Literal('revoked'), Type.Literal('already_inactive'), Type.Literal('none')]),
});

type RawRequest = FastifyRequest & { rawBody?: string };

export const leakRoutes = (deps: Deps) => async (fastify: FastifyInstance) => {
  const keys = new Map<string, KeyObject>(deps.config.leakPublicKeys.map((k) => [k.id, createPublicKey(k.pem)]));
  // The signature covers the exact bytes sent, so this route keeps them.
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    (req as RawRequest).rawBody = body as string;
    try {
      done(null, JSON.parse(body as string));
    } catch {
      done(new AppError('VALIDATION_FAILED', 'Body is not valid JSON'), undefined);
    }
  });

  fastify.withTypeProvider<TypeBoxTypeProvider>().post('/v1/leaks', {
    schema: {
      tags: ['leaks'], summary: 'Report leaked keys (secret-scanning partner format)', security: [],
      description: 'Signed with ECDSA P-256/SHA-256 over the raw body: headers `Github-Public-Key-Identifier` and `Github-Public-Key-Signature` (base64). ' +
        'Verification keys come from KEYWARD_LEAK_PUBLIC_KEYS; a reported key is disabled or revoked per KEYWARD_LEAK_POLICY, root keys are always revoked.',
      body: Report, response: withErrors({ 200: Type.Array(Outcome) }),
    },
    preValidation: async (req) => {
      const id = req.headers['github-public-key-identifier'];
      const signature = req.headers['github-public-key-signature'];
      const key = typeof id === 'string' ? keys.get(id) : undefined;
      const raw = (req as RawRequest).rawBody;
      if (!key || typeof signature !== 'string' || raw === undefined ||
          !verifySignature('sha256', Buffer.from(raw), key, Buffer.from(signature, 'base64'))) {
        throw new AppError('UNAUTHORIZED', 'The report signature is missing or does not verify');
      }
    },
  }, async (req) => {
    const actor: Actor = { type: 'system', id: 'leak-report', ip: req.ip ?? null, userAgent: req.headers['user-agent'] ?? null };
    const out: Static<typeof Outcome>[] = [];
    for (const item of req.body) out.push(await handleLeak(deps, actor, item));
    return out;
  });
};

async function handleLeak(deps: Deps, actor: Actor, item: Static<typeof Report>[number]): Promise<Static<typeof Outcome>> {
  const tokenHash = sha256Hex(item.token);
  const result = (label: 'true_positive' | 'false_positive', action: Static<typeof Outcome>['action']) => ({ token_hash: tokenHash, token_type: item.type, label, action });
  if (!parseKey(item.token)) return result('false_positive', 'none');
  const db = deps.store.db;
  const now = deps.clock.now();
  const meta = { url: item.url ?? null, source: item.source ?? null, type: item.type };

  const root = await db.selectFrom('root_keys').select(['id', 'workspace_id', 'revoked_at']).where('hash', '=', tokenHash).executeTakeFirst();
  if (root) {
    if (root.revoked_at !== null) return result('true_positive', 'already_inactive');
    await db.transaction().execute(async (trx) => {
      await trx.updateTable('root_keys').set({ revoked_at: now }).where('id', '=', root.id).execute();
      await recordAudit(trx, actor, { workspaceId: root.workspace_id, action: 'root_key.leak_revoke', targetType: 'root_key', targetId: root.id, meta }, now);
    });
    return result('true_positive', 'revoked');
  }

  const key = await db.selectFrom('key_hashes').innerJoin('keys', 'keys.id', 'key_hashes.key_id')
    .select(['keys.id', 'keys.workspace_id', 'keys.status']).where('key_hashes.hash', '=', tokenHash).executeTakeFirst();
  if (!key) return result('false_positive', 'none');
  if (key.status !== 'active') return result('true_positive', 'already_inactive');
  const policy = deps.config.leakPolicy;
  await db.transaction().execute(async (trx) => {
    await trx.updateTable('keys')
      .set(policy === 'revoke' ? { status: 'revoked', revoked_at: now, updated_at: now } : { status: 'disabled', updated_at: now })
      .where('id', '=', key.id).execute();
    await recordAudit(trx, actor, { workspaceId: key.workspace_id, action: policy === 'revoke' ? 'key.leak_revoke' : 'key.leak_disable', targetType: 'key', targetId: key.id, meta }, now);
  });
  deps.keyChanged(key.id, key.workspace_id);
  return result('true_positive', policy === 'revoke' ? 'revoked' : 'disabled');
}
