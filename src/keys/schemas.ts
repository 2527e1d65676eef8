// TypeBox schemas of the key API: create, patch, views, roll.
import { Type } from '@sinclair/typebox';
import { Nullable, StringEnum, Timestamp } from '../http/schema.js';
import { Environment, RateLimitSchema } from '../apps/schemas.js';
import { EXAMPLE_KEY } from '../lib/key-format.js';
import { NamedLimitView, NamedLimitsSchema } from '../ratelimit/schemas.js';

/** How the key list can be ordered; `-` first is descending. */
// The API names the orders the key repository can take; schemas stay free of the store's types (the
// SDK's declarations are built from them).
export const KEY_SORTS = ['createdAt', '-createdAt', 'name', '-name', 'lastUsedAt', '-lastUsedAt', 'expiresAt', '-expiresAt'] as const;
export type KeySort = (typeof KEY_SORTS)[number];
const Permission = Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\s]+$' });
const Refill = Type.Object({
  amount: Type.Integer({ minimum: 1, maximum: 1_000_000_000_000 }),
  interval: Type.Union([Type.Literal('daily'), Type.Literal('monthly')]),
}, { additionalProperties: false, description: 'Resets `remaining` to `amount` at the start of each UTC day or month' });

const editable = {
  name: Type.String({ minLength: 1, maxLength: 200, examples: ['Production backend'] }),
  ownerId: Nullable(Type.String({ minLength: 1, maxLength: 200, description: "Your own user or customer id", examples: ['user_123'] })),
  environment: Environment,
  permissions: Type.Array(Permission, { maxItems: 100, uniqueItems: true, examples: [['documents.read', 'documents.write']] }),
  resources: Type.Array(Type.String({ minLength: 1, maxLength: 253 }), { maxItems: 100, uniqueItems: true, description: 'Domain scope; empty = every resource', examples: [['acme.com', '*.acme.dev']] }),
  ipAllowlist: Type.Array(Type.String({ minLength: 2, maxLength: 64 }), { maxItems: 100, description: 'IPv4/IPv6 addresses and CIDRs; empty = any address', examples: [['203.0.113.7', '10.0.0.0/8', '2001:db8::/32']] }),
  expiresAt: Nullable(Timestamp),
  ratelimit: Nullable(RateLimitSchema),
  ownerRatelimit: Nullable(RateLimitSchema),
  ratelimits: NamedLimitsSchema,
  remaining: Nullable(Type.Integer({ minimum: 0, maximum: 1_000_000_000_000, description: 'Usage cap; null = unlimited' })),
  refill: Nullable(Refill),
  meta: Type.Object({}, { additionalProperties: true, maxProperties: 50, description: 'Your own data, returned by verify' }),
  status: Type.Union([Type.Literal('active'), Type.Literal('disabled')], { description: '`revoked` only through DELETE' }),
};

/** The fields a key is made of (create, PATCH, import). */
export const KEY_FIELDS = editable;

export const optionalAll = <T extends Record<string, import('@sinclair/typebox').TSchema>>(o: T) =>
  Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Type.Optional(v)])) as { [K in keyof T]: import('@sinclair/typebox').TOptional<T[K]> };

const { name: _name, ...rest } = editable;

export const CreateKeyBody = Type.Object({
  name: editable.name,
  kind: Type.Optional(StringEnum(['bearer', 'integration'] as const, {
    description: '`bearer`: one secret string. `integration`: the key id plus a secret, used over HTTP Basic (id:secret) or to sign HS256 JWTs (header kid = key id).',
  })),
  ...optionalAll(rest),
}, { additionalProperties: false });

export const PatchKeyBody = Type.Object(optionalAll(editable), { additionalProperties: false, minProperties: 1 });

export const KeyView = Type.Object({
  id: Type.String({ examples: ['key_3kTn8Vw2Xq7Lp0RzB4sM'] }),
  appId: Type.String(),
  kind: StringEnum(['bearer', 'integration'] as const),
  start: Type.String({ examples: ['acme_live_3fK9'] }),
  name: Type.String(),
  ownerId: Nullable(Type.String()),
  environment: Environment,
  permissions: Type.Array(Type.String()),
  resources: Type.Array(Type.String()),
  ipAllowlist: Type.Array(Type.String()),
  expiresAt: Nullable(Type.String()),
  ratelimit: Nullable(RateLimitSchema),
  ownerRatelimit: Nullable(RateLimitSchema),
  ratelimits: Type.Array(NamedLimitView),
  remaining: Nullable(Type.Integer()),
  refill: Nullable(Refill),
  meta: Type.Object({}, { additionalProperties: true }),
  status: StringEnum(['active', 'disabled', 'revoked'] as const, { examples: ['active'] }),
  createdAt: Type.String(),
  updatedAt: Type.String(),
  lastUsedAt: Nullable(Type.String()),
  revokedAt: Nullable(Type.String()),
  createdBy: Nullable(Type.String()),
  imported: Type.Boolean({ description: 'Brought in through POST /v1/apps/{appId}/keys/import rather than generated here' }),
});

export const CreatedKey = Type.Composite([KeyView, Type.Object({
  key: Type.Optional(Type.String({ description: 'Bearer keys: the key. Shown only in this response; store it now.', examples: [EXAMPLE_KEY] })),
  secret: Type.Optional(Type.String({ description: 'Integration keys: the secret that goes with `id`. Shown only in this response.' })),
})]);

export const RollBody = Type.Object({
  gracePeriodMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 30 * 86_400_000, default: 0, description: 'How long the old value keeps working; 0 = stops now' })),
  environment: Type.Optional(Environment),
}, { additionalProperties: false, description: 'The new value may move the key to another environment (it is part of the value)' });

export const ListKeysQuery = Type.Object({
  page: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1 })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20 })),
  ownerId: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
  status: Type.Optional(Type.Union([Type.Literal('active'), Type.Literal('disabled'), Type.Literal('revoked')])),
  environment: Type.Optional(Environment),
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: 'Search in name, start, id and owner' })),
  sort: Type.Optional(StringEnum(KEY_SORTS, { description: 'Order: a field, `-` first for descending (default `-createdAt`, newest first); keys never used or never expiring come last' })),
}, { additionalProperties: false });
