// The outbox: an event written in the same transaction as the change it reports, with one
// delivery per subscribed endpoint, enabled or not (a disabled endpoint's wait, held, until it is
// enabled again). A committed change always has its deliveries; a rolled-back one never does.
// Nothing here sends: the dispatcher does, on any node.
import { newId } from '../lib/random.js';
import { iso } from '../lib/time.js';
import { parseJson } from '../lib/json.js';
import type { Repos } from '../store/repos/index.js';
import type { NewDelivery } from '../store/repos/webhooks.js';
import type { KeysTable, RootKeysTable, WebhookEventsTable, WebhooksTable } from '../store/schema.js';
import type { DeliveredEventType, WebhookEventType } from './events.js';

export interface OutboxEvent {
  type: DeliveredEventType;
  workspaceId: string;
  /** The app whose key it is; null for workspace events (root keys, endpoints). */
  appId: string | null;
  /** Events with one order key reach each endpoint in order (a key's id); null = no order. */
  orderKey: string | null;
  data: Record<string, unknown>;
}

type Taker = { id: string; status: WebhooksTable['status'] };

const rootKeyData = (k: RootKeysTable): Record<string, unknown> => ({
  id: k.id, workspaceId: k.workspace_id, name: k.name, start: k.start, permissions: parseJson<string[]>(k.permissions, []),
  createdAt: iso(k.created_at), createdBy: k.created_by, revokedAt: k.revoked_at === null ? null : iso(k.revoked_at),
});

/** A new delivery of an event to an endpoint: due now, or held while the endpoint is disabled. */
export function newDelivery(hook: Taker, eventId: string, orderKey: string, now: number): NewDelivery {
  return {
    id: newId('delivery'), webhook_id: hook.id, event_id: eventId, order_key: orderKey, status: hook.status === 'active' ? 'pending' : 'held',
    attempts: 0, next_attempt_at: now, locked_until: null, last_attempt_at: null,
    response_status: null, error: null, latency_ms: null, created_at: now, delivered_at: null,
  };
}

export class WebhookOutbox {
  constructor(
    /** How long before expires_at key.expiring is sent. */
    readonly expiryNoticeMs: number,
    /** A key's event data: its API view (keys/model.ts), handed in so that events need no feature. */
    private readonly keyData: (row: KeysTable) => Record<string, unknown>,
    /** Wakes this node's dispatcher once the transaction committed. */
    private readonly wake: () => void = () => {},
    /** Tells this node's dispatcher that an expiry notice falls due at this time. */
    private readonly dueAt: (at: number) => void = () => {},
  ) {}

  /** Endpoints of the workspace (and app), enabled or not, that take this event type. */
  async takers(r: Repos, workspaceId: string, appId: string | null, type: WebhookEventType): Promise<Taker[]> {
    return (await r.webhooks.subscribers(workspaceId, appId)).filter((h) => parseJson<string[]>(h.events, []).includes(type));
  }

  /** The event row and one delivery row per endpoint (held for a disabled one). */
  private rows(event: OutboxEvent, now: number, hooks: readonly Taker[]): { event: WebhookEventsTable; deliveries: NewDelivery[] } {
    const id = newId('event');
    // The body is fixed now, so every attempt sends (and signs) the same bytes.
    const payload = JSON.stringify({ type: event.type, timestamp: iso(now), data: event.data });
    return {
      event: { id, workspace_id: event.workspaceId, type: event.type, payload, created_at: now },
      deliveries: hooks.map((h) => newDelivery(h, id, event.orderKey ?? id, now)),
    };
  }

  /** Writes the event and a delivery to each endpoint; answers the event id (undefined when no endpoint takes it). */
  async emit(r: Repos, event: OutboxEvent, now: number, hooks?: Taker[]): Promise<string | undefined> {
    hooks ??= await this.takers(r, event.workspaceId, event.appId, event.type as WebhookEventType);
    if (hooks.length === 0) return undefined;
    const { event: row, deliveries } = this.rows(event, now, hooks);
    await r.webhooks.enqueue(row, deliveries);
    if (hooks.some((h) => h.status === 'active')) r.afterCommit(this.wake);
    return row.id;
  }

  /** A key event carrying the key's public view as it is now (never a value or secret). */
  async key(r: Repos, type: WebhookEventType, key: KeysTable, now: number): Promise<void> {
    await this.emit(r, { type, workspaceId: key.workspace_id, appId: key.app_id, orderKey: key.id, data: this.keyData(key) }, now);
  }

  /**
   * The same event for many keys of one app (an app deleted, keys imported), to the endpoints
   * `takers` found (looked up here when not given), written a few hundred rows a statement. Each
   * key's `data` is that key as the change wrote it.
   */
  async keys(r: Repos, type: WebhookEventType, workspaceId: string, appId: string, keys: readonly KeysTable[], now: number, hooks?: readonly Taker[]): Promise<void> {
    if (keys.length === 0) return;
    hooks ??= await this.takers(r, workspaceId, appId, type);
    if (hooks.length === 0) return;
    const events: WebhookEventsTable[] = [];
    const deliveries: NewDelivery[] = [];
    for (const key of keys) {
      const rows = this.rows({ type, workspaceId, appId, orderKey: key.id, data: this.keyData(key) }, now, hooks);
      events.push(rows.event);
      deliveries.push(...rows.deliveries);
    }
    await r.webhooks.enqueueMany(events, deliveries);
    if (hooks.some((h) => h.status === 'active')) r.afterCommit(this.wake);
  }

  async rootKey(r: Repos, type: 'rootkey.created' | 'rootkey.revoked', key: RootKeysTable, now: number): Promise<void> {
    await this.emit(r, { type, workspaceId: key.workspace_id, appId: null, orderKey: key.id, data: rootKeyData(key) }, now);
  }

  /** `webhook.test` to one endpoint, whatever it subscribed to: answers the event id. */
  async test(r: Repos, hook: WebhooksTable, now: number): Promise<string> {
    const data = { webhookId: hook.id, message: 'A test event from Keyward: your endpoint receives and verifies webhooks.' };
    return (await this.emit(r, { type: 'webhook.test', workspaceId: hook.workspace_id, appId: null, orderKey: null, data }, now, [hook]))!;
  }

  /** `webhook.disabled` to every other endpoint of the workspace, whatever they subscribed to. */
  async endpointDisabled(r: Repos, hook: WebhooksTable, data: Record<string, unknown>, now: number): Promise<void> {
    const others = await r.webhooks.others(hook.workspace_id, hook.id);
    if (others.length > 0) await this.emit(r, { type: 'webhook.disabled', workspaceId: hook.workspace_id, appId: null, orderKey: hook.id, data }, now, others);
  }

  /**
   * After a key is created or its expiry changed, inside that transaction: a key already inside
   * the notice window gets its key.expiring at once (and the scan will not send it again); this
   * node's dispatcher learns when the next notice of the key falls due.
   */
  async expiringAtOnce(r: Repos, key: KeysTable, now: number): Promise<void> {
    if (key.expires_at === null) return;
    const expiresAt = key.expires_at;
    r.afterCommit(() => this.dueAt(expiresAt - this.expiryNoticeMs > now ? expiresAt - this.expiryNoticeMs : expiresAt));
    if (key.expiry_notice !== null || expiresAt > now + this.expiryNoticeMs) return;
    if (await r.webhooks.claimExpiry(key.id, expiresAt, null, 'expiring')) await this.key(r, 'key.expiring', { ...key, expiry_notice: 'expiring' }, now);
  }
}
