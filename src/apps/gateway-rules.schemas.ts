// The gateway-rule schemas of the app API (pure TypeBox: the SDK and console derive types from them).
import { Type, type Static } from '@sinclair/typebox';
import { StringEnum } from '../http/schema.js';

export const GATEWAY_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** Limits on new rules; rules stored before them keep working (matching is linear whatever they hold). */
export const MAX_GATEWAY_RULES = 100;
export const MAX_RULE_WILDCARDS = 8;

export const GatewayRuleSchema = Type.Object({
  methods: Type.Optional(Type.Array(StringEnum(GATEWAY_METHODS), { minItems: 1, maxItems: 7, uniqueItems: true, description: 'Any method when absent; GET covers HEAD' })),
  path: Type.String({ minLength: 1, maxLength: 512, pattern: '^/', description: `Matched case-insensitively against the path without its query; \`*\` (at most ${MAX_RULE_WILDCARDS}) matches any run of characters, \`/\` included`, examples: ['/v1/documents/*'] }),
  permissions: Type.Array(Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\s]+$' }), { maxItems: 50, uniqueItems: true, examples: [['documents.write']] }),
}, { additionalProperties: false });

const RULES_DESCRIPTION = 'For /v1/forward-auth: every rule matching the forwarded method and path adds its permissions';

/** What PATCH and POST accept. */
export const GatewayRulesSchema = Type.Array(GatewayRuleSchema, { maxItems: MAX_GATEWAY_RULES, description: RULES_DESCRIPTION });
/** What an app shows: rules stored before the limits may hold more. */
export const StoredGatewayRulesSchema = Type.Array(GatewayRuleSchema, { description: RULES_DESCRIPTION });

export type GatewayRule = Static<typeof GatewayRuleSchema>;
