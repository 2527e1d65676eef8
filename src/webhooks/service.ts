// Webhook endpoints of a workspace: create (secret shown once), change, rotate the secret, delete,
// list deliveries and retry one. Each change and its audit entry commit together.
import type { Static } from '@sinclair/typebox';
import { invalid, notFound } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import { parseJson } from '../lib/json.js';
import { newId } from '../lib/random.js';
import { iso, isoOrNull } from '../lib/time.js';
import { sealContext, type SecretBox } from '../lib/secretbox.js';
import { createdResource } from '../shared/idempotency.js';
import type { Store } from '../store/db.js';
import type { Actor } from '../store/repos/index.js';
import type { PageOf, PageRequest } from '../store/repos/sql.js';
import type { DeliveryListRow } from '../store/repos/webhooks.js';
import type { WebhookDeliveriesTable, WebhooksTable } from '../store/schema.js';
import type { WebhookEventType } from './events.js';
import type { CreateWebhookBody, DeliveryView, PatchWebhookBody, WebhookView } from './schemas.js';
import { WebhookSender } from './sender.js';
import { newWebhookSecret } from './signing.js';
import { diff } from '../audit/diff.js';

/** How long the previous secret keeps signing after a rotation. */
export const SECRET_OVERLAP_MS = 24 * 3_600_000;

export function webhookView(w: WebhooksTable, now: number): Static<typeof WebhookView> {
  return {
    id: w.id, workspaceId: w.workspace_id, appId: w.app_id, url: w.url, description: w.description,
    events: parseJson<WebhookEventType[]>(w.events, []), status: w.status, disabledReason: w.disabled_reason,
    consecutiveFailures: w.consecutive_failures,
    secretRotatedUntil: w.previous_secret_until !== null && w.previous_secret_until > now ? iso(w.previous_secret_until) : null,
    createdAt: iso(w.created_at), updatedAt: iso(w.updated_at), createdBy: w.created_by,
  };
}

export function deliveryView(d: DeliveryListRow): Static<typeof DeliveryView> {
  return {
    id: d.id, webhookId: d.webhook_id, eventId: d.event_id, type: d.type as WebhookEventType, status: d.status,
    attempts: d.attempts, maxAttempts: d.max_attempts,
    nextAttemptAt: d.status === 'pending' ? iso(d.next_attempt_at) : null, lastAttemptAt: isoOrNull(d.last_attempt_at),
    responseStatus: d.response_status, error: d.error, latencyMs: d.latency_ms,
    createdAt: iso(d.created_at), deliveredAt: isoOrNull(d.delivered_at),
  };
}

export class WebhookService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly box: SecretBox,
    private readonly allowPrivate: boolean,
    /** Wakes this node's dispatcher (a manual retry is due now). */
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

  async create(workspaceId: string, actor: Actor, input: Static<typeof CreateWebhookBody>): Promise<{ row: WebhooksTable; secret: string }> {
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
      created_at: now, updated_at: now, created_by: actor.id,
    };
    await this.store.transaction(async (r) => {
      await r.webhooks.insert(row);
      createdResource(id);
      await r.audit.record(actor, { workspaceId, action: 'webhook.create', targetType: 'webhook', targetId: id, meta: { url, events: input.events, appId: row.app_id } }, now);
    });
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
      if (input.status === 'active') changes.consecutive_failures = 0;
    }
    const action = changes.status === 'active' ? 'webhook.enable' : changes.status === 'disabled' ? 'webhook.disable' : 'webhook.update';
    const next = { ...hook, ...changes };
    await this.store.transaction(async (r) => {
      await r.webhooks.update(hook.id, changes);
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

  deliveries(hook: WebhooksTable, status: WebhookDeliveriesTable['status'] | undefined, page: PageRequest): Promise<PageOf<DeliveryListRow>> {
    return this.store.repos.webhooks.deliveries(hook.id, status, page);
  }

  /** Sends a delivery again (same event, same webhook-id), now, whatever its state. */
  async retry(hook: WebhooksTable, deliveryId: string, actor: Actor): Promise<DeliveryListRow> {
    const delivery = await this.store.repos.webhooks.delivery(hook.id, deliveryId);
    if (!delivery) throw notFound('Delivery');
    const now = this.clock.now();
    await this.store.transaction(async (r) => {
      await r.webhooks.retry(delivery.seq, now);
      await r.audit.record(actor, { workspaceId: hook.workspace_id, action: 'webhook.retry', targetType: 'webhook', targetId: hook.id, meta: { deliveryId, eventId: delivery.event_id } }, now);
    });
    this.wake();
    return { ...delivery, status: 'pending', next_attempt_at: now, max_attempts: delivery.attempts + 1, delivered_at: null };
  }
}
