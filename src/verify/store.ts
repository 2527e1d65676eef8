// What verify reads from the store, through the store's gate (src/store/gate.ts): a key by the hash
// of a value, and an integration key with its secrets opened. Nothing else of verify touches the
// store; both answers land in the key cache (./cache.ts).
import { sealContext, type SecretBox } from '../lib/secretbox.js';
import type { Store } from '../store/db.js';
import type { StoreGate } from '../store/gate.js';
import { toCachedKey, type CacheEntry, type IntegrationEntry } from './cache.js';

export class VerifyStore {
  private readonly encoder = new TextEncoder();

  constructor(private readonly store: Store, private readonly gate: StoreGate, private readonly box: SecretBox) {}

  /** The key a value belongs to, with that value's own expiry; null for an unknown value. */
  readonly load = async (hash: string): Promise<CacheEntry | null> => {
    const row = await this.gate.run(() => this.store.keyByHash(hash));
    if (!row) return null;
    const { value_expires_at, ...key } = row;
    return { key: toCachedKey(key), valueExpiresAt: value_expires_at };
  };

  /** An integration key (id + secret over Basic, or an HS256 JWT) and its live secrets. */
  readonly loadIntegration = async (id: string): Promise<IntegrationEntry | null> => {
    const found = await this.gate.run(() => this.store.repos.keys.findIntegration(id));
    if (!found) return null;
    return {
      key: toCachedKey(found.key),
      secrets: found.values.map((v) => ({ secret: this.encoder.encode(this.box.open(v.secret_enc, sealContext.keySecret(id))), valueExpiresAt: v.expires_at })),
    };
  };
}
