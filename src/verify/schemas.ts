// TypeBox schemas of POST /v1/keys/verify (pure: the console and SDK derive their types from them).
import { Type } from '@sinclair/typebox';
import { IdOf, Nullable, StringEnum } from '../http/schema.js';
import { VERIFY_CODES } from './steps.js';
import { EXAMPLE_KEY } from '../lib/key-format.js';
import { CheckedLimit, VerifyLimitAsk } from '../ratelimit/schemas.js';

export const VerifyBody = Type.Object({
  key: Type.Optional(Type.String({ maxLength: 512, description: 'The key as presented by your caller', examples: [EXAMPLE_KEY] })),
  authorization: Type.Optional(Type.String({ maxLength: 8192, description: 'A raw Authorization header value: "Bearer <key>"', examples: [`Bearer ${EXAMPLE_KEY}`] })),
  appId: Type.Optional(IdOf('app', 'Accept only keys of this app. Required unless the request carries a root key with "keys:verify" as "Authorization: Bearer <root key>"')),
  permissions: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 128 }), { maxItems: 50, description: 'All of these are required', examples: [['documents.read']] })),
  resource: Type.Optional(Type.String({ minLength: 1, maxLength: 253, description: 'Checked against the key\'s domain scope', examples: ['acme.com'] })),
  ip: Type.Optional(Type.String({ maxLength: 64, description: 'Your caller\'s address, checked against the key\'s allowlist', examples: ['203.0.113.7'] })),
  cost: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, default: 1, description: 'Charged against the usage cap when every other check passes; 0 checks without charging' })),
  dryRun: Type.Optional(Type.Boolean({ description: 'Decide only: nothing is charged or counted (usage cap, rate limits, analytics, last use)' })),
  ratelimits: Type.Optional(Type.Array(VerifyLimitAsk, { maxItems: 20, description: 'Named limits of the key and of its identity to check, with what this request costs each; `autoApply` limits are checked whether named or not. A name neither has is ignored', examples: [[{ name: 'tokens', cost: 250 }]] })),
}, { additionalProperties: false });

export const VerifyAnswer = Type.Object({
  valid: Type.Boolean(),
  code: StringEnum(VERIFY_CODES),
  keyId: Type.Optional(Type.String()),
  appId: Type.Optional(Type.String()),
  name: Type.Optional(Type.String()),
  ownerId: Type.Optional(Nullable(Type.String())),
  environment: Type.Optional(Type.String()),
  permissions: Type.Optional(Type.Array(Type.String())),
  resources: Type.Optional(Type.Array(Type.String())),
  meta: Type.Optional(Type.Object({}, { additionalProperties: true })),
  expiresAt: Type.Optional(Nullable(Type.String())),
  remaining: Type.Optional(Nullable(Type.Integer({ description: 'Usage cap left after this call (capped keys; null = no cap): the store\'s count plus the units this node holds unspent, exact on one node' }))),
  ratelimit: Type.Optional(Type.Object({ limit: Type.Integer(), remaining: Type.Integer(), resetAt: Type.String() })),
  ratelimits: Type.Optional(Type.Array(CheckedLimit, { description: 'Every named limit checked (the key\'s, then its identity\'s); `exceeded` marks the ones that refused' })),
  identity: Type.Optional(Type.Object({ id: Type.String(), externalId: Type.String(), meta: Type.Object({}, { additionalProperties: true }) }, { description: 'The identity of the key\'s owner, when the workspace has one' })),
}, { examples: [{ valid: true, code: 'VALID', keyId: 'key_3kTn8Vw2Xq7Lp0RzB4sM', appId: 'app_9sQm2Lx7Vb3Nc8Zr1Kd5', ownerId: 'user_123', environment: 'live', permissions: ['documents.read'], resources: [], meta: {}, expiresAt: null, remaining: 41, ratelimit: { limit: 1000, remaining: 998, resetAt: '2026-01-15T12:00:00.000Z' } }] });
