// Gateway rules of an app: which permissions a forwarded request needs, by method and path.
// `path` matches the path without its query string; `*` matches any run of characters, `/`
// included; the first rule that matches adds its permissions.
import { Type, type Static } from '@sinclair/typebox';
import { StringEnum } from '../http/schema.js';

export const GATEWAY_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

export const GatewayRuleSchema = Type.Object({
  methods: Type.Optional(Type.Array(StringEnum(GATEWAY_METHODS), { minItems: 1, maxItems: 7, uniqueItems: true, description: 'Any method when absent' })),
  path: Type.String({ minLength: 1, maxLength: 512, pattern: '^/', description: '`*` matches any run of characters, `/` included', examples: ['/v1/documents/*'] }),
  permissions: Type.Array(Type.String({ minLength: 1, maxLength: 128, pattern: '^[^\\s]+$' }), { maxItems: 50, uniqueItems: true, examples: [['documents.write']] }),
}, { additionalProperties: false });

export const GatewayRulesSchema = Type.Array(GatewayRuleSchema, { maxItems: 200, description: 'For /v1/forward-auth: the first rule matching the forwarded method and path adds its permissions' });

export type GatewayRule = Static<typeof GatewayRuleSchema>;

/** A rule made ready to match: its path as an anchored pattern. */
export interface CompiledRule {
  methods: ReadonlySet<string> | null;
  pattern: RegExp;
  permissions: readonly string[];
}

export function compileRules(rules: readonly GatewayRule[]): CompiledRule[] {
  return rules.map((r) => ({
    methods: r.methods ? new Set(r.methods) : null,
    pattern: new RegExp(`^${r.path.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`, 's'),
    permissions: r.permissions,
  }));
}

/** The permissions the first matching rule adds, or null when none matches. */
export function permissionsFor(rules: readonly CompiledRule[] | null, method: string, path: string): readonly string[] | null {
  if (rules === null) return null;
  for (const rule of rules) {
    if (rule.methods !== null && !rule.methods.has(method)) continue;
    if (rule.pattern.test(path)) return rule.permissions;
  }
  return null;
}
