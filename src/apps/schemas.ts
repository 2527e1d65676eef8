// TypeBox schemas of the app API (pure: the console and SDK derive their types from them).
import { Type } from '@sinclair/typebox';
import { PREFIX_PATTERN } from '../lib/ids.js';
import { Nullable, StringEnum } from '../http/schema.js';
import { GatewayRulesSchema, StoredGatewayRulesSchema } from './gateway-rules.schemas.js';

export { GatewayRulesSchema };

export const RateLimitSchema = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1_000_000_000, examples: [100] }),
  durationMs: Type.Integer({ minimum: 1000, maximum: 30 * 86_400_000, examples: [60_000] }),
}, { additionalProperties: false });

export const Environment = StringEnum(['live', 'test'] as const);

export const AppDefaultsSchema = Type.Object({
  environment: Type.Optional(Environment),
  ratelimit: Type.Optional(Nullable(RateLimitSchema)),
  ownerRatelimit: Type.Optional(Nullable(RateLimitSchema)),
}, { additionalProperties: false, description: 'Applied to keys created without these fields' });

export const ImportKeysSetting = Type.Boolean({ description: 'Accept keys imported through POST /v1/apps/{appId}/keys/import, whatever their format, in verify; off again, those outside Keyward\'s format stop verifying on every node' });

export const KeyPrefix = Type.String({ pattern: PREFIX_PATTERN, description: 'Lowercase letters and digits, 2–16 chars, starting with a letter; unique across the instance', examples: ['acme'] });

export const AppView = Type.Object({
  id: Type.String(), workspaceId: Type.String(), name: Type.String(), keyPrefix: Type.String(),
  defaults: Type.Object({ environment: Environment, ratelimit: Nullable(RateLimitSchema), ownerRatelimit: Nullable(RateLimitSchema) }),
  gatewayRules: StoredGatewayRulesSchema,
  importKeys: Type.Boolean({ description: 'Verify accepts this app\'s imported keys whatever their format (POST /v1/apps/{appId}/keys/import)' }),
  createdAt: Type.String({ format: 'date-time' }), updatedAt: Type.String({ format: 'date-time' }),
});
