// TypeBox schemas of the identity API (pure: the console and SDK derive their types from them).
import { Type } from '@sinclair/typebox';
import { PageQuery } from '../http/schema.js';
import { NamedLimitView, NamedLimitsSchema } from '../ratelimit/schemas.js';

export const ExternalId = Type.String({ minLength: 1, maxLength: 200, description: 'Your own id of the customer: the `ownerId` of its keys', examples: ['cust_42'] });

const Meta = Type.Object({}, { additionalProperties: true, maxProperties: 50, description: 'Your own data, returned by verify with every key of this identity' });

export const CreateIdentityBody = Type.Object({
  externalId: ExternalId,
  meta: Type.Optional(Meta),
  ratelimits: Type.Optional(NamedLimitsSchema),
}, { additionalProperties: false });

export const PatchIdentityBody = Type.Object({
  meta: Type.Optional(Meta),
  ratelimits: Type.Optional(NamedLimitsSchema),
}, { additionalProperties: false, minProperties: 1, description: '`externalId` cannot change: it is what the keys name as their owner' });

export const IdentityView = Type.Object({
  id: Type.String({ examples: ['idt_3kTn8Vw2Xq7Lp0RzB4sM'] }),
  workspaceId: Type.String(),
  externalId: Type.String(),
  meta: Type.Object({}, { additionalProperties: true }),
  ratelimits: Type.Array(NamedLimitView),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

export const ListIdentitiesQuery = Type.Object({
  ...PageQuery,
  q: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Search in externalId (case-insensitive substring)' })),
}, { additionalProperties: false });

export const DeleteIdentityQuery = Type.Object({
  force: Type.Optional(Type.Boolean({ default: false, description: 'Delete even though keys name it as their owner: they keep verifying, without identity limits or meta, until it is created again' })),
}, { additionalProperties: false });
