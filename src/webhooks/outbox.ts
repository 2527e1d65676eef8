// The outbox: an event written in the same transaction as the change it reports, with one
// delivery per subscribed endpoint. A committed change always has its deliveries; a rolled-back
// one never does. Nothing here sends: the dispatcher does, on any node.
import { keyView } from '../keys/model.js';
import { newId } from '../lib/random.js';
import { iso } from '../lib/time.js';
import { parseJson } from '../lib/json.js';
import type { Repos } from '../store/repos/index.js';
import type { KeysTable, RootKeysTable, WebhookEventsTable } from '../store/schema.js';
import type { NewDelivery } from '../store/repos/webhooks.js';
import type { WebhookEventType } from './events.js';

export interface OutboxEvent {
  type: WebhookEventType;
  workspaceId: string;
  /** The app whose key it is; null for workspace events (root keys). */
  appId: string | null;
  /** Events with one order key reach each endpoint in order (a key's id); null = no order. */
  orderKey: string | null;
  data: Record<string, unknown>;
}

export const rootKeyData = (k: RootKeysTable): Record<string, unknown> => ({
  id: k.id, workspaceId: k.workspace_id, name: k.name, start: k.start, permissions: parseJson<string[]>(k.permissions, []),
  createdAt: iso(k.created_at), createdBy: k.created_by, revokedAt: k.revoked_at === null ? null : iso(k.revoked_at),
});

export class WebhookOutbox {
  constructor(
    /** Attempts before a delivery is given up (a manual retry allows one more). */
    private readonly maxAttempts: number,
    /** How long before expires_at key.expiring is sent. */
    readonly expiryNoticeMs: number,
    /** Wakes this node's dispatcher once the transaction committed. */
    private readonly wake: () => void = () => {},
  ) {}

  /** Active endpoints of the workspace (and app) that take this event type. */
  async takers(r: Repos, workspaceId: string, appId: string | null, type: WebhookEventType): Promise<{ id: string }[]> {
    return (await r.webhooks.subscribers(workspaceId, appId)).filter((h) => parseJson<string[]>(h.events, []).includes(type));
  }

  /** The event row and one delivery row per endpoint. */
  private rows(event: OutboxEvent, now: number, hooks: readonly { id: string }[]): { event: WebhookEventsTable; deliveries: NewDelivery[] } {
    const id = newId('event');
    // The body is fixed now, so every attempt sends (and signs) the same bytes.
    const payload = JSON.stringify({ type: event.type, timestamp: iso(now), data: event.data });
    return {
      event: { id, workspace_id: event.workspaceId, type: event.type, payload, created_at: now },
      deliveries: hooks.map((h) => ({
        id: newId('delivery'), webhook_id: h.id, event_id: id, order_key: event.orderKey ?? id, status: 'pending' as const,
        attempts: 0, max_attempts: this.maxAttempts, next_attempt_at: now, locked_until: null, last_attempt_at: null,
        response_status: null, error: null, latency_ms: null, created_at: now, delivered_at: null,
      })),
    };
  }

  async emit(r: Repos, event: OutboxEvent, now: number, hooks?: { id: string }[]): Promise<void> {
    hooks ??= await this.takers(r, event.workspaceId, event.appId, event.type);
    if (hooks.length === 0) return;
    const { event: row, deliveries } = this.rows(event, now, hooks);
    await r.webhooks.enqueue(row, deliveries);
    r.afterCommit(this.wake);
  }

  /** A key event carrying the key's public view as it is now (never a value or secret). */
  key(r: Repos, type: WebhookEventType, key: KeysTable, now: number): Promise<void> {
    return this.emit(r, { type, workspaceId: key.workspace_id, appId: key.app_id, orderKey: key.id, data: keyView(key) }, now);
  }

  /**
   * The same event for many keys of one app (an app deleted), to the endpoints `takers` found,
   * written a few hundred rows a statement. Each key's `data` is that key as the change wrote it.
   */
  async keys(r: Repos, type: WebhookEventType, workspaceId: string, appId: string, keys: readonly KeysTable[], now: number, hooks: readonly { id: string }[]): Promise<void> {
    if (hooks.length === 0 || keys.length === 0) return;
    const events: WebhookEventsTable[] = [];
    const deliveries: NewDelivery[] = [];
    for (const key of keys) {
      const rows = this.rows({ type, workspaceId, appId, orderKey: key.id, data: keyView(key) }, now, hooks);
      events.push(rows.event);
      deliveries.push(...rows.deliveries);
    }
    await r.webhooks.enqueueMany(events, deliveries);
    r.afterCommit(this.wake);
  }

  rootKey(r: Repos, type: 'rootkey.created' | 'rootkey.revoked', key: RootKeysTable, now: number): Promise<void> {
    return this.emit(r, { type, workspaceId: key.workspace_id, appId: null, orderKey: key.id, data: rootKeyData(key) }, now);
  }

  /**
   * After a key is created or its expiry changed, inside that transaction: a key already inside
   * the notice window gets its key.expiring at once (and the scan will not send it again).
   */
  async expiringAtOnce(r: Repos, key: KeysTable, now: number): Promise<void> {
    if (key.expires_at === null || key.expiry_notice !== null || key.expires_at > now + this.expiryNoticeMs) return;
    if (await r.webhooks.claimExpiry(key.id, key.expires_at, null, 'expiring')) await this.key(r, 'key.expiring', { ...key, expiry_notice: 'expiring' }, now);
  }
}
