// Webhook endpoints, the outbox (events and their deliveries) and the claims that hand deliveries
// and time-driven notices to exactly one node.
import { PostgresAdapter, sql, type Kysely, type Selectable } from 'kysely';
import type { Database, KeysTable, WebhookDeliveriesTable, WebhookEventsTable, WebhooksTable } from '../schema.js';
import { offsetOf, type PageOf, type PageRequest } from './sql.js';

export type DeliveryRow = Selectable<WebhookDeliveriesTable>;
export type NewDelivery = Omit<WebhookDeliveriesTable, 'seq'>;
/** A claimed delivery with what sending it needs. */
export type ClaimedDelivery = DeliveryRow & { url: string; payload: string; secret_enc: string; previous_secret_enc: string | null; previous_secret_until: number | null };
export type DeliveryListRow = DeliveryRow & { type: string };

export type WebhookChanges = Partial<Pick<WebhooksTable, 'url' | 'description' | 'events' | 'status' | 'disabled_reason' | 'consecutive_failures' | 'secret_enc' | 'previous_secret_enc' | 'previous_secret_until' | 'updated_at'>>;

export class WebhookRepo {
  private readonly postgres: boolean;

  constructor(private readonly db: Kysely<Database>) {
    this.postgres = db.getExecutor().adapter instanceof PostgresAdapter;
  }

  find(id: string): Promise<WebhooksTable | undefined> {
    return this.db.selectFrom('webhooks').selectAll().where('id', '=', id).executeTakeFirst();
  }

  list(workspaceId: string): Promise<WebhooksTable[]> {
    return this.db.selectFrom('webhooks').selectAll().where('workspace_id', '=', workspaceId).orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
  }

  async insert(row: WebhooksTable): Promise<void> {
    await this.db.insertInto('webhooks').values(row).execute();
  }

  async update(id: string, changes: WebhookChanges): Promise<void> {
    await this.db.updateTable('webhooks').set(changes).where('id', '=', id).execute();
  }

  /** Deletes an endpoint with its deliveries (events no delivery refers to any more are pruned later). */
  async delete(id: string): Promise<void> {
    await this.db.deleteFrom('webhook_deliveries').where('webhook_id', '=', id).execute();
    await this.db.deleteFrom('webhooks').where('id', '=', id).execute();
  }

  /** Active endpoints that may receive an event of this workspace (and app); event types filtered by the caller. */
  subscribers(workspaceId: string, appId: string | null): Promise<Pick<WebhooksTable, 'id' | 'events'>[]> {
    let q = this.db.selectFrom('webhooks').select(['id', 'events']).where('workspace_id', '=', workspaceId).where('status', '=', 'active');
    q = appId === null ? q.where('app_id', 'is', null) : q.where((eb) => eb.or([eb('app_id', 'is', null), eb('app_id', '=', appId)]));
    return q.execute();
  }

  async enqueue(event: WebhookEventsTable, deliveries: NewDelivery[]): Promise<void> {
    await this.db.insertInto('webhook_events').values(event).execute();
    await this.db.insertInto('webhook_deliveries').values(deliveries).execute();
  }

  /**
   * Many events at once (an app's keys revoked together): a few multi-row statements instead of
   * two a key, each small enough for either store's limit on parameters.
   */
  async enqueueMany(events: WebhookEventsTable[], deliveries: NewDelivery[]): Promise<void> {
    const ROWS = 500;
    for (let i = 0; i < events.length; i += ROWS) await this.db.insertInto('webhook_events').values(events.slice(i, i + ROWS)).execute();
    for (let i = 0; i < deliveries.length; i += ROWS) await this.db.insertInto('webhook_deliveries').values(deliveries.slice(i, i + ROWS)).execute();
  }

  /**
   * Claims up to `limit` due deliveries until `leaseUntil`, in one statement: pending, due, not held
   * by another node, of an active endpoint, and first in line for their key (an earlier pending
   * delivery of the same key to the same endpoint holds the later ones back). On PostgreSQL rows
   * another node is claiming are skipped (FOR UPDATE SKIP LOCKED), and a row claimed meanwhile
   * fails the re-checked lease condition, so no delivery is handed to two nodes; SQLite has one writer.
   */
  async claim(now: number, leaseUntil: number, limit: number): Promise<ClaimedDelivery[]> {
    // A read first: most polls find nothing due, and on SQLite a write waits for the usage writer's
    // lock on the event loop's thread, where a read never waits.
    const due = await this.db.selectFrom('webhook_deliveries').select('seq')
      .where('status', '=', 'pending').where('next_attempt_at', '<=', now)
      .where((eb) => eb.or([eb('locked_until', 'is', null), eb('locked_until', '<', now)]))
      .limit(1).executeTakeFirst();
    if (due === undefined) return [];
    const lock = this.postgres ? sql`FOR UPDATE OF d SKIP LOCKED` : sql``;
    const claimed = await sql<DeliveryRow>`
      UPDATE webhook_deliveries SET locked_until = ${leaseUntil}, attempts = attempts + 1, last_attempt_at = ${now}
      WHERE seq IN (
        SELECT d.seq FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= ${now}
          AND (d.locked_until IS NULL OR d.locked_until < ${now})
          AND w.status = 'active'
          AND NOT EXISTS (
            SELECT 1 FROM webhook_deliveries e
            WHERE e.webhook_id = d.webhook_id AND e.order_key = d.order_key AND e.seq < d.seq AND e.status = 'pending')
        ORDER BY d.seq LIMIT ${limit} ${lock})
      RETURNING *`.execute(this.db);
    if (claimed.rows.length === 0) return [];
    const rows = claimed.rows.map((r) => ({ ...r, seq: Number(r.seq) }));
    const hooks = await this.db.selectFrom('webhooks').select(['id', 'url', 'secret_enc', 'previous_secret_enc', 'previous_secret_until'])
      .where('id', 'in', [...new Set(rows.map((r) => r.webhook_id))]).execute();
    const events = await this.db.selectFrom('webhook_events').select(['id', 'payload'])
      .where('id', 'in', [...new Set(rows.map((r) => r.event_id))]).execute();
    const hookOf = new Map(hooks.map((h) => [h.id, h]));
    const payloadOf = new Map(events.map((e) => [e.id, e.payload]));
    return rows.flatMap((r) => {
      const hook = hookOf.get(r.webhook_id);
      const payload = payloadOf.get(r.event_id);
      if (!hook || payload === undefined) return [];
      return [{ ...r, url: hook.url, payload, secret_enc: hook.secret_enc, previous_secret_enc: hook.previous_secret_enc, previous_secret_until: hook.previous_secret_until === null ? null : Number(hook.previous_secret_until) }];
    });
  }

  /** Records an attempt's outcome; only the claim still held (by its lease) is written. */
  async settle(seq: number, leaseUntil: number, outcome: Pick<WebhookDeliveriesTable, 'status' | 'next_attempt_at' | 'response_status' | 'error' | 'latency_ms' | 'delivered_at'>): Promise<boolean> {
    const res = await this.db.updateTable('webhook_deliveries').set({ ...outcome, locked_until: null })
      .where('seq', '=', seq).where('locked_until', '=', leaseUntil).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Consecutive failed attempts of an endpoint: reset by a success, returns the new count on a failure. */
  async countFailure(id: string): Promise<number> {
    const row = await this.db.updateTable('webhooks').set((eb) => ({ consecutive_failures: eb('consecutive_failures', '+', 1) }))
      .where('id', '=', id).returning('consecutive_failures').executeTakeFirst();
    return row?.consecutive_failures ?? 0;
  }

  async resetFailures(id: string): Promise<void> {
    await this.db.updateTable('webhooks').set({ consecutive_failures: 0 }).where('id', '=', id).where('consecutive_failures', '>', 0).execute();
  }

  /** Disables an active endpoint; false when it already was (another node got there first). */
  async disableIfActive(id: string, reason: string, now: number): Promise<boolean> {
    const res = await this.db.updateTable('webhooks').set({ status: 'disabled', disabled_reason: reason, updated_at: now })
      .where('id', '=', id).where('status', '=', 'active').executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Newest first, with the event type. */
  async deliveries(webhookId: string, status: WebhookDeliveriesTable['status'] | undefined, page: PageRequest): Promise<PageOf<DeliveryListRow>> {
    let q = this.db.selectFrom('webhook_deliveries').innerJoin('webhook_events', 'webhook_events.id', 'webhook_deliveries.event_id')
      .where('webhook_deliveries.webhook_id', '=', webhookId);
    if (status !== undefined) q = q.where('webhook_deliveries.status', '=', status);
    const { n } = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await q.selectAll('webhook_deliveries').select('webhook_events.type as type')
      .orderBy('webhook_deliveries.seq', 'desc').limit(page.limit).offset(offsetOf(page)).execute();
    return { rows: rows.map((r) => ({ ...r, seq: Number(r.seq) })), total: Number(n) };
  }

  async delivery(webhookId: string, id: string): Promise<DeliveryListRow | undefined> {
    const row = await this.db.selectFrom('webhook_deliveries').innerJoin('webhook_events', 'webhook_events.id', 'webhook_deliveries.event_id')
      .selectAll('webhook_deliveries').select('webhook_events.type as type')
      .where('webhook_deliveries.webhook_id', '=', webhookId).where('webhook_deliveries.id', '=', id).executeTakeFirst();
    return row ? { ...row, seq: Number(row.seq) } : undefined;
  }

  /** A manual retry: due now, one more attempt allowed, same event (and so the same webhook-id). */
  async retry(seq: number, now: number): Promise<void> {
    await this.db.updateTable('webhook_deliveries')
      .set((eb) => ({ status: 'pending', next_attempt_at: now, locked_until: null, max_attempts: eb('attempts', '+', 1), delivered_at: null }))
      .where('seq', '=', seq).execute();
  }

  /** Settled deliveries older than `before`, and events no delivery refers to. */
  async prune(before: number): Promise<void> {
    await this.db.deleteFrom('webhook_deliveries').where('status', '!=', 'pending').where('created_at', '<', before).execute();
    await this.db.deleteFrom('webhook_events').where('created_at', '<', before)
      .where((eb) => eb.not(eb.exists(eb.selectFrom('webhook_deliveries').select('seq').whereRef('webhook_deliveries.event_id', '=', 'webhook_events.id'))))
      .execute();
  }

  // ---- Time-driven notices: each claimed by one conditional update, so any number of nodes emit it once.

  /** Keys whose expiry notice is due: `expiring` for expires_at <= noticeUntil, `expired` for expires_at <= now. */
  dueExpiry(now: number, noticeUntil: number, limit: number): Promise<KeysTable[]> {
    return this.db.selectFrom('keys').selectAll()
      .where(sql<boolean>`expires_at IS NOT NULL AND (expiry_notice IS NULL OR expiry_notice = 'expiring')`)
      .where('expires_at', '<=', noticeUntil)
      .where((eb) => eb.or([eb('expiry_notice', 'is', null), eb('expires_at', '<=', now)]))
      .where('status', '!=', 'revoked')
      .orderBy('expires_at').limit(limit).execute();
  }

  /** Moves a key's expiry notice from `from` to `to` for this expires_at; false when another node did. */
  async claimExpiry(id: string, expiresAt: number, from: KeysTable['expiry_notice'], to: 'expiring' | 'expired'): Promise<boolean> {
    let q = this.db.updateTable('keys').set({ expiry_notice: to }).where('id', '=', id).where('expires_at', '=', expiresAt);
    q = from === null ? q.where('expiry_notice', 'is', null) : q.where('expiry_notice', '=', from);
    return Number((await q.executeTakeFirst()).numUpdatedRows) > 0;
  }

  dueUsageLow(limit: number): Promise<KeysTable[]> {
    return this.db.selectFrom('keys').selectAll().where(sql<boolean>`usage_low = 'due'`).limit(limit).execute();
  }

  async claimUsageLow(id: string): Promise<boolean> {
    const res = await this.db.updateTable('keys').set({ usage_low: 'sent' }).where('id', '=', id).where('usage_low', '=', 'due').executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** Sealed secrets, for re-encryption under a new master key. */
  sealedSecrets(): Promise<Pick<WebhooksTable, 'id' | 'secret_enc' | 'previous_secret_enc'>[]> {
    return this.db.selectFrom('webhooks').select(['id', 'secret_enc', 'previous_secret_enc']).execute();
  }
}
