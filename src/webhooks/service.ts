// Webhook endpoints of a workspace: create (secret shown once), change, enable and disable, rotate
// the secret, delete; their deliveries with every attempt, a manual retry, a test event and a
// replay. Each change and its audit entry commit together.
import type { Static } from '@sinclair/typebox';
import { invalid, notFound } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import { parseJson } from '../lib/json.js';
import { newId } from '../lib/random.js';
import { iso, isoOrNull } from '../lib/time.js';
import { sealContext, type SecretBox } from '../lib/secretbox.js';
import { made, type IdempotencyClaim, type Store } from '../store/db.js';
import type { Actor } from '../store/repos/index.js';
import type { PageOf, PageRequest } from '../store/repos/sql.js';
import type { AttemptRow, DeliveryListRow, DeliveryStatus, NewDelivery } from '../store/repos/webhooks.js';
import type { WebhookEventsTable, WebhooksTable } from '../store/schema.js';
import type { DeliveredEventType, WebhookEventType } from './events.js';
import type { AttemptView, CreateWebhookBody, DeliveryView, PatchWebhookBody, WebhookView } from './schemas.js';
import { newDelivery, type WebhookOutbox } from './outbox.js';
import { WebhookSender } from './sender.js';
import { newWebhookSecret } from './signing.js';
import { diff } from '../lib/diff.js';

/** How long the previous secret keeps signing after a rotation. */
const SECRET_OVERLAP_MS = 24 * 3_600_000;
/** Attempts shown with each delivery of a list (a delivery's own read shows them all). */
const LIST_ATTEMPTS = 5;
/** Attempts a delivery's own read shows at most (an endpoint failing for days is retried hourly). */
const DETAIL_ATTEMPTS = 1000;
/** Events one replay request queues at most; `nextSince` says where to go on. */
export const REPLAY_MAX = 1000;

export function webhookView(w: WebhooksTable, now: number): Static<typeof WebhookView> {
  return {
    id: w.id, workspaceId: w.workspace_id, appId: w.app_id, url: w.url, description: w.description,
    events: parseJson<WebhookEventType[]>(w.events, []), status: w.status, disabledReason: w.disabled_reason,
    consecutiveFailures: w.consecutive_failures, failingSince: isoOrNull(w.failing_since),
    secretRotatedUntil: w.previous_secret_until !== null && w.previous_secret_until > now ? iso(w.previous_secret_until) : null,
    createdAt: iso(w.created_at), updatedAt: iso(w.updated_at), createdBy: w.created_by,
  };
}

function attemptView(a: AttemptRow): Static<typeof AttemptView> {
  return {
    number: a.number, attemptedAt: iso(a.attempted_at), outcome: a.outcome, responseStatus: a.response_status,
    responseBody: a.response_body, error: a.error, latencyMs: a.latency_ms,
  };
}

export function deliveryView(d: DeliveryListRow, attempts: readonly AttemptRow[]): Static<typeof DeliveryView> {
  return {
    id: d.id, webhookId: d.webhook_id, eventId: d.event_id, type: d.type as DeliveredEventType, status: d.status,
    attempts: d.attempts,
    nextAttemptAt: d.status === 'pending' ? iso(d.next_attempt_at) : null, lastAttemptAt: isoOrNull(d.last_attempt_at),
    responseStatus: d.response_status, error: d.error, latencyMs: d.latency_ms,
    createdAt: iso(d.created_at), deliveredAt: isoOrNull(d.delivered_at),
    attemptLog: attempts.map(attemptView),
  };
}

export interface DeliveryWithAttempts {
  row: DeliveryListRow;
  attempts: AttemptRow[];
}

export class WebhookService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly box: SecretBox,
    private readonly allowPrivate: boolean,
    private readonly outbox: WebhookOutbox,
    /** Wakes this node's dispatcher (something is due now). */
    private readonly wake: () => void,
  ) {}

  now(): number {
    return this.clock.now();
  }

  /** A URL deliveries may go to; checked again on the resolved address at every attempt. Never probed. */
  private checkUrl(raw: string): string {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw invalid('body/url', 'is not an absolute URL');
    }
    const refused = WebhookSender.refusedUrl(url, this.allowPrivate);
    if (refused) throw invalid('body/url', `is refused: ${refused} (private targets need KEYWARD_WEBHOOK_ALLOW_PRIVATE=1 on the server)`);
    return url.toString();
  }

  list(workspaceId: string): Promise<WebhooksTable[]> {
    return this.store.repos.webhooks.list(workspaceId);
  }

  async create(workspaceId: string, actor: Actor, input: Static<typeof CreateWebhookBody>, claim?: IdempotencyClaim): Promise<{ row: WebhooksTable; secret: string }> {
    const url = this.checkUrl(input.url);
    if (input.appId !== undefined) {
      const app = await this.store.repos.apps.find(input.appId);
      if (!app || app.workspace_id !== workspaceId) throw invalid('body/appId', 'is not an app of this workspace');
    }
    const now = this.clock.now();
    const secret = newWebhookSecret();
    const id = newId('webhook');
    const row: WebhooksTable = {
      id, workspace_id: workspaceId, app_id: input.appId ?? null, url, description: input.description ?? '',
      events: JSON.stringify(input.events), secret_enc: this.box.seal(secret, sealContext.webhookSecret(id)),
      previous_secret_enc: null, previous_secret_until: null, status: 'active', disabled_reason: null, consecutive_failures: 0,
      failing_since: null, created_at: now, updated_at: now, created_by: actor.id,
    };
    await this.store.transaction(async (r) => {
      await r.webhooks.insert(row);
      await r.audit.record(actor, { workspaceId, action: 'webhook.create', targetType: 'webhook', targetId: id, meta: { url, events: input.events, appId: row.app_id } }, now);
    }, { idempotency: made(claim, id) });
    return { row, secret };
  }

  async update(hook: WebhooksTable, actor: Actor, input: Static<typeof PatchWebhookBody>): Promise<WebhooksTable> {
    const now = this.clock.now();
    const changes: Partial<WebhooksTable> = { updated_at: now };
    if (input.url !== undefined) changes.url = this.checkUrl(input.url);
    if (input.events !== undefined) changes.events = JSON.stringify(input.events);
    if (input.description !== undefined) changes.description = input.description;
    if (input.status !== undefined && input.status !== hook.status) {
      changes.status = input.status;
      changes.disabled_reason = null;
      // Enabled by hand: a fresh start, whatever it failed before.
      if (input.status === 'active') Object.assign(changes, { consecutive_failures: 0, failing_since: null });
    }
    const action = changes.status === 'active' ? 'webhook.enable' : changes.status === 'disabled' ? 'webhook.disable' : 'webhook.update';
    const next = { ...hook, ...changes };
    await this.store.transaction(async (r) => {
      await r.webhooks.update(hook.id, changes);
      // What it missed while disabled goes out now, in order per key; while disabled, events wait.
      if (changes.status === 'active') await r.webhooks.release(hook.id, now);
      if (changes.status === 'disabled') await r.webhooks.hold(hook.id);
      await r.audit.record(actor, { workspaceId: hook.workspace_id, action, targetType: 'webhook', targetId: hook.id, meta: { changes: Object.keys(input), ...diff(webhookView(hook, now), webhookView(next, now)) } }, now);
    });
    if (changes.status === 'active') this.wake();
    return next;
  }

  /** A new secret; the old one keeps signing (a second signature) for SECRET_OVERLAP_MS. */
  async rotateSecret(hook: WebhooksTable, actor: Actor): Promise<{ secret: string; previousValidUntil: number }> {
    const now = this.clock.now();
    const secret = newWebhookSecret();
    const until = now + SECRET_OVERLAP_MS;
    await this.store.transaction(async (r) => {
      await r.webhooks.update(hook.id, {
        secret_enc: this.box.seal(secret, sealContext.webhookSecret(hook.id)),
        previous_secret_enc: hook.secret_enc, previous_secret_until: until, updated_at: now,
      });
      await r.audit.record(actor, { workspaceId: hook.workspace_id, action: 'webhook.rotate_secret', targetType: 'webhook', targetId: hook.id }, now);
    });
    return { secret, previousValidUntil: until };
  }

  async delete(hook: WebhooksTable, actor: Actor): Promise<void> {
    const now = this.clock.now();
    await this.store.transaction(async (r) => {
      await r.webhooks.delete(hook.id);
      await r.audit.record(actor, { workspaceId: hook.workspace_id, action: 'webhook.delete', targetType: 'webhook', targetId: hook.id, meta: { url: hook.url } }, now);
    });
  }

  /** A page of deliveries, each with its latest attempts. */
  async deliveries(hook: WebhooksTable, status: DeliveryStatus | undefined, page: PageRequest): Promise<PageOf<DeliveryWithAttempts>> {
    const { rows, total } = await this.store.repos.webhooks.deliveries(hook.id, status, page);
    const attempts = await this.store.repos.webhooks.attempts(rows.map((r) => r.id), LIST_ATTEMPTS);
    return { rows: rows.map((row) => ({ row, attempts: attempts.filter((a) => a.delivery_id === row.id) })), total };
  }

  /** One delivery with every attempt and the body it sends. */
  async delivery(hook: WebhooksTable, deliveryId: string): Promise<DeliveryWithAttempts & { payload: string }> {
    const row = await this.store.repos.webhooks.delivery(hook.id, deliveryId);
    if (!row) throw notFound('Delivery');
    return { row, attempts: await this.store.repos.webhooks.attempts([row.id], DETAIL_ATTEMPTS), payload: row.payload };
  }

  /** Sends a delivery again (same event, same webhook-id), now, whatever its state; held while the endpoint is disabled. */
  async retry(hook: WebhooksTable, deliveryId: string, actor: Actor): Promise<DeliveryWithAttempts> {
    const delivery = await this.store.repos.webhooks.delivery(hook.id, deliveryId);
    if (!delivery) throw notFound('Delivery');
    const now = this.clock.now();
    const status = hook.status === 'active' ? 'pending' : 'held';
    // The attempts the answer shows are read in the transaction: nothing is read after its COMMIT.
    const attempts = await this.store.transaction(async (r) => {
      await r.webhooks.retry(delivery.seq, now, status);
      await r.audit.record(actor, { workspaceId: hook.workspace_id, action: 'webhook.retry', targetType: 'webhook', targetId: hook.id, meta: { deliveryId, eventId: delivery.event_id } }, now);
      return r.webhooks.attempts([delivery.id], LIST_ATTEMPTS);
    });
    this.wake();
    const { payload: _payload, ...row } = delivery;
    return { row: { ...row, status, next_attempt_at: now, delivered_at: null }, attempts };
  }

  /** A `webhook.test` event to this endpoint (held while it is disabled). */
  async test(hook: WebhooksTable, actor: Actor): Promise<DeliveryWithAttempts> {
    const now = this.clock.now();
    const row = await this.store.transaction(async (r) => {
      const eventId = await this.outbox.test(r, hook, now);
      await r.audit.record(actor, { workspaceId: hook.workspace_id, action: 'webhook.test', targetType: 'webhook', targetId: hook.id, meta: { eventId } }, now);
      // Read in the transaction: as written, before this node's dispatcher (woken at the commit) takes it.
      return r.webhooks.deliveryOfEvent(hook.id, eventId);
    });
    if (!row) throw notFound('Delivery');
    return { row, attempts: [] };
  }

  /**
   * Queues again the events this endpoint was sent since `since` (those still to be sent are not
   * doubled), oldest first, at most REPLAY_MAX a call. Each keeps its webhook-id, so a receiver
   * drops what it already has; with `newIds` each gets a new one (the same body, a new event).
   */
  async replay(hook: WebhooksTable, actor: Actor, since: number, newIds: boolean): Promise<{ replayed: number; nextSince: number | null }> {
    const now = this.clock.now();
    const found = await this.store.repos.webhooks.replayable(hook.id, since, REPLAY_MAX + 1);
    const batch = found.slice(0, REPLAY_MAX);
    const nextSince = found.length > REPLAY_MAX ? found[REPLAY_MAX]!.created_at : null;
    const replayed = await this.store.transaction(async (r) => {
      let deliveries: NewDelivery[];
      if (newIds) {
        const originals = new Map((await r.webhooks.eventsById(batch.map((e) => e.event_id))).map((e) => [e.id, e]));
        const events: WebhookEventsTable[] = [];
        deliveries = [];
        for (const e of batch) {
          const original = originals.get(e.event_id);
          if (!original) continue;
          const id = newId('event');
          events.push({ ...original, id, created_at: now });
          // A replayed event of a key keeps its place among that key's events; an unordered one orders by itself.
          deliveries.push(newDelivery(hook, id, e.order_key === e.event_id ? id : e.order_key, now));
        }
        await r.webhooks.insertEvents(events);
      } else {
        deliveries = batch.map((e) => newDelivery(hook, e.event_id, e.order_key, now));
      }
      await r.webhooks.addDeliveries(deliveries);
      await r.audit.record(actor, { workspaceId: hook.workspace_id, action: 'webhook.replay', targetType: 'webhook', targetId: hook.id, meta: { since: iso(since), replayed: deliveries.length, newIds } }, now);
      return deliveries.length;
    });
    if (replayed > 0 && hook.status === 'active') this.wake();
    return { replayed, nextSince };
  }
}
