// The API shape of a key and its conversions from stored rows; never carries a plaintext or hash.
import type { Static } from '@sinclair/typebox';
import { parseJson } from '../lib/json.js';
import type { KeyView as KeyViewSchema } from './schemas.js';
import { iso, isoOrNull } from '../lib/time.js';
import type { KeysTable } from '../store/schema.js';

export interface RateLimitSpec {
  limit: number;
  durationMs: number;
}

export interface Refill {
  amount: number;
  interval: 'daily' | 'monthly';
}

/** A key as the API shows it: the type of the response schema, so there is one definition. */
export type KeyView = Static<typeof KeyViewSchema>;


export function keyView(row: KeysTable, lastUsedOverride?: number): KeyView {
  const lastUsed = Math.max(row.last_used_at ?? 0, lastUsedOverride ?? 0);
  return {
    id: row.id,
    appId: row.app_id,
    kind: row.kind,
    start: row.start,
    name: row.name,
    ownerId: row.owner_id,
    environment: row.environment,
    permissions: parseJson(row.permissions, []),
    resources: parseJson(row.resources, []),
    ipAllowlist: parseJson(row.ip_allowlist, []),
    expiresAt: isoOrNull(row.expires_at),
    ratelimit: parseJson(row.ratelimit, null),
    ownerRatelimit: parseJson(row.owner_ratelimit, null),
    ratelimits: parseJson(row.ratelimits, []),
    remaining: row.remaining,
    refill: row.refill_amount !== null && row.refill_interval !== null
      ? { amount: row.refill_amount, interval: row.refill_interval }
      : null,
    meta: parseJson(row.meta, {}),
    status: row.status,
    createdAt: iso(row.created_at),
    updatedAt: iso(row.updated_at),
    lastUsedAt: lastUsed > 0 ? iso(lastUsed) : null,
    revokedAt: isoOrNull(row.revoked_at),
    createdBy: row.created_by,
    imported: row.imported === 1,
  };
}
