// Apps: containers of keys with defaults for new keys.
import { Type, type Static } from '@sinclair/typebox';
import { parseJson } from '../lib/json.js';
import { iso } from '../lib/time.js';
import type { AppsTable } from '../store/schema.js';
import { Nullable } from '../http/common.js';
import { PREFIX_PATTERN } from '../keys/format.js';

export const RateLimitSchema = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1_000_000_000, examples: [100] }),
  durationMs: Type.Integer({ minimum: 1000, maximum: 30 * 86_400_000, examples: [60_000] }),
}, { additionalProperties: false });

export const AppDefaultsSchema = Type.Object({
  environment: Type.Optional(Type.Union([Type.Literal('live'), Type.Literal('test')])),
  ratelimit: Type.Optional(Nullable(RateLimitSchema)),
  ownerRatelimit: Type.Optional(Nullable(RateLimitSchema)),
}, { additionalProperties: false, description: 'Applied to keys created without these fields' });

export interface AppDefaults {
  environment: 'live' | 'test';
  ratelimit: Static<typeof RateLimitSchema> | null;
  ownerRatelimit: Static<typeof RateLimitSchema> | null;
}

/** The contract's default: 1000 requests per minute per owner. */
export const DEFAULTS: AppDefaults = { environment: 'live', ratelimit: null, ownerRatelimit: { limit: 1000, durationMs: 60_000 } };

export const KeyPrefix = Type.String({ pattern: PREFIX_PATTERN, description: 'Lowercase letters and digits, 2–16 chars, starting with a letter', examples: ['acme'] });

export const AppView = Type.Object({
  id: Type.String(), workspaceId: Type.String(), name: Type.String(), keyPrefix: Type.String(),
  defaults: Type.Object({ environment: Type.String(), ratelimit: Nullable(RateLimitSchema), ownerRatelimit: Nullable(RateLimitSchema) }),
  createdAt: Type.String({ format: 'date-time' }), updatedAt: Type.String({ format: 'date-time' }),
});

export function appDefaults(row: Pick<AppsTable, 'defaults'>): AppDefaults {
  return { ...DEFAULTS, ...parseJson<Partial<AppDefaults>>(row.defaults, {}) };
}

export function appView(row: AppsTable): Static<typeof AppView> {
  return {
    id: row.id, workspaceId: row.workspace_id, name: row.name, keyPrefix: row.key_prefix, defaults: appDefaults(row),
    createdAt: iso(row.created_at), updatedAt: iso(row.updated_at),
  };
}

/** "Acme Payments API" → "acmepaym": a readable prefix that secret scanners can anchor on. */
export function prefixFromName(name: string): string {
  const cleaned = name.toLowerCase().replace(/[^a-z0-9]/g, '').replace(/^[0-9]+/, '').slice(0, 8);
  return cleaned.length >= 2 ? cleaned : 'key';
}
