// Apps: containers of keys with defaults for new keys; conversions from stored rows.
import type { Static } from '@sinclair/typebox';
import { parseJson } from '../lib/json.js';
import { iso, MINUTE } from '../lib/time.js';
import type { AppsTable } from '../store/schema.js';
import type { AppView, RateLimitSchema } from './schemas.js';
import type { GatewayRule } from './gateway-rules.js';

export { AppDefaultsSchema, AppView, ImportKeysSetting, KeyPrefix, RateLimitSchema } from './schemas.js';

export interface AppDefaults {
  environment: 'live' | 'test';
  ratelimit: Static<typeof RateLimitSchema> | null;
  ownerRatelimit: Static<typeof RateLimitSchema> | null;
}

/** The contract's default: 1000 requests per minute per owner. */
export const DEFAULTS: AppDefaults = { environment: 'live', ratelimit: null, ownerRatelimit: { limit: 1000, durationMs: MINUTE } };

export function appDefaults(row: Pick<AppsTable, 'defaults'>): AppDefaults {
  return { ...DEFAULTS, ...parseJson<Partial<AppDefaults>>(row.defaults, {}) };
}

export function appView(row: AppsTable): Static<typeof AppView> {
  return {
    id: row.id, workspaceId: row.workspace_id, name: row.name, keyPrefix: row.key_prefix, defaults: appDefaults(row),
    gatewayRules: parseJson<GatewayRule[]>(row.gateway_rules, []),
    importKeys: row.import_keys === 1,
    createdAt: iso(row.created_at), updatedAt: iso(row.updated_at),
  };
}

/** "Acme Payments API" → "acmepaym": a readable prefix that secret scanners can anchor on. */
export function prefixFromName(name: string): string {
  const cleaned = name.toLowerCase().replace(/[^a-z0-9]/g, '').replace(/^[0-9]+/, '').slice(0, 8);
  return cleaned.length >= 2 ? cleaned : 'key';
}
