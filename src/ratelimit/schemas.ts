// TypeBox schemas of named limits, overrides and the standalone limiter (pure: the console and SDK
// derive their types from them).
import { Type, type Static } from '@sinclair/typebox';
import { RateLimitSchema } from '../apps/schemas.js';

/** The most named limits a key, or an identity, may hold. */
export const MAX_NAMED_LIMITS = 10;

export const LimitName = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$', description: 'Letters, digits, `_ . -`; up to 64', examples: ['requests'] });

export const NamedLimitSchema = Type.Object({
  name: LimitName,
  limit: RateLimitSchema.properties.limit,
  durationMs: RateLimitSchema.properties.durationMs,
  autoApply: Type.Optional(Type.Boolean({ default: false, description: 'Checked on every verify (cost 1), named in `ratelimits` or not' })),
}, { additionalProperties: false });

export const NamedLimitsSchema = Type.Array(NamedLimitSchema, { maxItems: MAX_NAMED_LIMITS, description: `Named limits, up to ${MAX_NAMED_LIMITS}; a verify checks those it names in \`ratelimits\` and every \`autoApply\` one` });

/** A named limit as stored and shown (autoApply always present). */
export interface NamedLimit {
  name: string;
  limit: number;
  durationMs: number;
  autoApply: boolean;
}

export const NamedLimitView = Type.Object({ name: Type.String(), limit: Type.Integer(), durationMs: Type.Integer(), autoApply: Type.Boolean() });

/** The stored form of a list from the API: names unique, autoApply filled in. */
export function normalizeLimits(list: Static<typeof NamedLimitsSchema>): NamedLimit[] {
  return list.map((l) => ({ name: l.name, limit: l.limit, durationMs: l.durationMs, autoApply: l.autoApply ?? false }));
}

/** The index of the first repeated name, or -1. */
export function repeatedName(list: readonly { name: string }[]): number {
  const seen = new Set<string>();
  for (const [i, l] of list.entries()) {
    if (seen.has(l.name)) return i;
    seen.add(l.name);
  }
  return -1;
}

export const VerifyLimitAsk = Type.Object({
  name: LimitName,
  cost: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, default: 1, description: 'Units this request spends of the limit; 0 checks without spending' })),
}, { additionalProperties: false });

export const CheckedLimit = Type.Object({
  name: Type.String(),
  limit: Type.Integer(),
  remaining: Type.Integer(),
  resetAt: Type.String({ format: 'date-time' }),
  exceeded: Type.Boolean(),
});

/** An override's identifier: exact, or a prefix ending in `*` (a lone `*` matches everything). */
export const OverrideIdentifier = Type.String({ minLength: 1, maxLength: 256, pattern: '^[^*]*\\*?$', description: 'Exact, or ending in `*` to match every identifier with that prefix; the most specific override wins', examples: ['cust_*'] });

export const Namespace = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$', description: 'What is limited (a login form, a job queue): letters, digits, `_ . -`; up to 64', examples: ['login'] });

export const WorkspaceOverrideBody = Type.Object({
  identifier: OverrideIdentifier,
  name: LimitName,
  limit: RateLimitSchema.properties.limit,
  durationMs: RateLimitSchema.properties.durationMs,
}, { additionalProperties: false });

export const NamespaceOverrideBody = Type.Object({
  namespace: Namespace,
  identifier: OverrideIdentifier,
  limit: RateLimitSchema.properties.limit,
  durationMs: RateLimitSchema.properties.durationMs,
}, { additionalProperties: false });

export const OverrideView = Type.Object({
  id: Type.String(),
  workspaceId: Type.String(),
  kind: Type.String({ enum: ['limit', 'namespace'] }),
  name: Type.String({ description: 'The named limit, or the namespace' }),
  identifier: Type.String(),
  limit: Type.Integer(),
  durationMs: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
  updatedAt: Type.String({ format: 'date-time' }),
});

export const LimitBody = Type.Object({
  namespace: Namespace,
  identifier: Type.String({ minLength: 1, maxLength: 256, description: 'Who is limited within the namespace (a user id, an address, a tenant)', examples: ['user_123'] }),
  limit: RateLimitSchema.properties.limit,
  durationMs: RateLimitSchema.properties.durationMs,
  cost: Type.Optional(Type.Integer({ minimum: 0, maximum: 1_000_000, default: 1, description: 'Units this request spends; 0 checks without spending' })),
}, { additionalProperties: false });

export const LimitAnswer = Type.Object({
  success: Type.Boolean({ description: 'Whether the request is within the limit (and was counted)' }),
  limit: Type.Integer({ description: 'The limit applied: the request\'s, or an override\'s' }),
  remaining: Type.Integer(),
  reset: Type.Integer({ description: 'When the current window ends, epoch milliseconds' }),
});
