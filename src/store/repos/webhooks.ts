// Webhook endpoints, the outbox (events, their deliveries and each delivery's attempts) and the
// claims that hand deliveries and time-driven notices to exactly one node.
import { sql, type Kysely, type Selectable } from 'kysely';
import { skipLockedOf } from '../dialects/sql.js';
import type { Database, KeysTable, WebhookAttemptsTable, WebhookDeliveriesTable, WebhookEventsTable, WebhooksTable } from '../schema.js';
import { offsetOf, type PageOf, type PageRequest } from './sql.js';

export type DeliveryRow = Selectable<WebhookDeliveriesTable>;
export type NewDelivery = Omit<WebhookDeliveriesTable, 'seq'>;
export type DeliveryStatus = WebhookDeliveriesTable['status'];
/** A claimed delivery with what sending it needs. */
export type ClaimedDelivery = DeliveryRow & {
  url: string; payload: string; secret_enc: string; previous_secret_enc: string | null; previous_secret_until: number | null;
  /** Whether its endpoint was failing when it was claimed (a success then has to say it no longer does). */
  endpoint_failing: boolean;
};
export type DeliveryListRow = DeliveryRow & { type: string };
export type AttemptRow = WebhookAttemptsTable;

export type WebhookChanges = Partial<Pick<WebhooksTable, 'url' | 'description' | 'events' | 'status' | 'disabled_reason' | 'consecutive_failures' | 'failing_since' | 'secret_enc' | 'previous_secret_enc' | 'previous_secret_until' | 'updated_at'>>;

/** What a settled attempt writes on its delivery. */
export type AttemptOutcome = Pick<WebhookDeliveriesTable, 'next_attempt_at' | 'response_status' | 'error' | 'latency_ms' | 'delivered_at'> & { delivered: boolean };

export class WebhookRepo {
  constructor(private readonly db: Kysely<Database>) {}

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

  /** Deletes an endpoint with its deliveries and their attempts (events no delivery refers to any more are pruned later). */
  async delete(id: string): Promise<void> {
    await this.db.deleteFrom('webhook_attempts').where('delivery_id', 'in', this.db.selectFrom('webhook_deliveries').select('id').where('webhook_id', '=', id)).execute();
    await this.db.deleteFrom('webhook_deliveries').where('webhook_id', '=', id).execute();
    await this.db.deleteFrom('webhooks').where('id', '=', id).execute();
  }

  /** Endpoints, enabled or not, that may receive an event of this workspace (and app); event types filtered by the caller. */
  subscribers(workspaceId: string, appId: string | null): Promise<Pick<WebhooksTable, 'id' | 'events' | 'status'>[]> {
    let q = this.db.selectFrom('webhooks').select(['id', 'events', 'status']).where('workspace_id', '=', workspaceId);
    q = appId === null ? q.where('app_id', 'is', null) : q.where((eb) => eb.or([eb('app_id', 'is', null), eb('app_id', '=', appId)]));
    return q.execute();
  }

  /** Every endpoint of a workspace but one (operational events go to all of them). */
  others(workspaceId: string, exceptId: string): Promise<Pick<WebhooksTable, 'id' | 'status'>[]> {
    return this.db.selectFrom('webhooks').select(['id', 'status']).where('workspace_id', '=', workspaceId).where('id', '!=', exceptId).execute();
  }

  async enqueue(event: WebhookEventsTable, deliveries: NewDelivery[]): Promise<void> {
    await this.db.insertInto('webhook_events').values(event).execute();
    if (deliveries.length > 0) await this.db.insertInto('webhook_deliveries').values(deliveries).execute();
  }

  /** New deliveries of events already stored (a replay keeping each event's webhook-id). */
  async addDeliveries(deliveries: NewDelivery[]): Promise<void> {
    if (deliveries.length > 0) await this.db.insertInto('webhook_deliveries').values(deliveries).execute();
  }

  async insertEvents(events: WebhookEventsTable[]): Promise<void> {
    if (events.length > 0) await this.db.insertInto('webhook_events').values(events).execute();
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
   * by another node, of an active endpoint, and first in line for their key (an earlier unsent
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
    const lock = skipLockedOf(this.db, 'd');
    const claimed = await sql<DeliveryRow>`
      UPDATE webhook_deliveries SET locked_until = ${leaseUntil}, attempts = attempts + 1, last_attempt_at = ${now}
      WHERE seq IN (
        SELECT d.seq FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
        WHERE d.status = 'pending' AND d.next_attempt_at <= ${now}
          AND (d.locked_until IS NULL OR d.locked_until < ${now})
          AND w.status = 'active'
          AND NOT EXISTS (
            SELECT 1 FROM webhook_deliveries e
            WHERE e.webhook_id = d.webhook_id AND e.order_key = d.order_key AND e.seq < d.seq AND e.status IN ('pending', 'held'))
        ORDER BY d.seq LIMIT ${limit} ${lock})
      RETURNING *`.execute(this.db);
    if (claimed.rows.length === 0) return [];
    const rows = claimed.rows.map((r) => ({ ...r, seq: Number(r.seq) }));
    const hooks = await this.db.selectFrom('webhooks').select(['id', 'url', 'secret_enc', 'previous_secret_enc', 'previous_secret_until', 'consecutive_failures', 'failing_since'])
      .where('id', 'in', [...new Set(rows.map((r) => r.webhook_id))]).execute();
    const events = await this.db.selectFrom('webhook_events').select(['id', 'payload'])
      .where('id', 'in', [...new Set(rows.map((r) => r.event_id))]).execute();
    const hookOf = new Map(hooks.map((h) => [h.id, h]));
    const payloadOf = new Map(events.map((e) => [e.id, e.payload]));
    return rows.flatMap((r) => {
      const hook = hookOf.get(r.webhook_id);
      const payload = payloadOf.get(r.event_id);
      if (!hook || payload === undefined) return [];
      return [{
        ...r, url: hook.url, payload, secret_enc: hook.secret_enc, previous_secret_enc: hook.previous_secret_enc,
        previous_secret_until: hook.previous_secret_until === null ? null : Number(hook.previous_secret_until),
        endpoint_failing: hook.consecutive_failures > 0 || hook.failing_since !== null,
      }];
    });
  }

  /**
   * Records an attempt and its outcome on the delivery; only the claim still held (by its lease) is
   * written. A failure leaves the status as it is (pending, or held if the endpoint was disabled meanwhile).
   */
  async settle(d: DeliveryRow, leaseUntil: number, outcome: AttemptOutcome, attempt: AttemptRow): Promise<boolean> {
    const { delivered, ...columns } = outcome;
    const res = await this.db.updateTable('webhook_deliveries').set({ ...columns, locked_until: null, ...(delivered ? { status: 'delivered' as const } : {}) })
      .where('seq', '=', d.seq).where('locked_until', '=', leaseUntil).executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) return false;
    await this.db.insertInto('webhook_attempts').values(attempt).execute();
    return true;
  }

  /**
   * A failed attempt: no later delivery of the same key is due before this one's retry (so the
   * claim does not look at them again and again meanwhile).
   */
  async holdChainUntil(d: DeliveryRow, until: number): Promise<void> {
    await this.db.updateTable('webhook_deliveries').set({ next_attempt_at: until })
      .where('webhook_id', '=', d.webhook_id).where('order_key', '=', d.order_key).where('seq', '>', d.seq)
      .where('status', '=', 'pending').where('next_attempt_at', '<', until).execute();
  }

  /** A delivered one: the next deliveries of its key are due now. */
  async releaseChain(d: DeliveryRow, now: number): Promise<void> {
    await this.db.updateTable('webhook_deliveries').set({ next_attempt_at: now })
      .where('webhook_id', '=', d.webhook_id).where('order_key', '=', d.order_key).where('seq', '>', d.seq)
      .where('status', '=', 'pending').where('next_attempt_at', '>', now).execute();
  }

  /** Counts a failed attempt of an endpoint: answers the failures since its last success and since when it fails. */
  async countFailure(id: string, at: number): Promise<{ failures: number; failingSince: number }> {
    const row = await this.db.updateTable('webhooks')
      .set((eb) => ({ consecutive_failures: eb('consecutive_failures', '+', 1), failing_since: eb.fn.coalesce('failing_since', eb.val(at)) }))
      .where('id', '=', id).returning(['consecutive_failures', 'failing_since']).executeTakeFirst();
    return { failures: row?.consecutive_failures ?? 0, failingSince: row?.failing_since ?? at };
  }

  /** A success: the endpoint no longer fails. True when it did until now. */
  async countSuccess(id: string): Promise<boolean> {
    const res = await this.db.updateTable('webhooks').set({ consecutive_failures: 0, failing_since: null })
      .where('id', '=', id).where((eb) => eb.or([eb('consecutive_failures', '>', 0), eb('failing_since', 'is not', null)])).executeTakeFirst();
    return Number(res.numUpdatedRows) > 0;
  }

  /** An endpoint answers again: what waits on a backoff is due now. */
  async dueNow(webhookId: string, now: number): Promise<void> {
    await this.db.updateTable('webhook_deliveries').set({ next_attempt_at: now })
      .where('webhook_id', '=', webhookId).where('status', '=', 'pending').where('next_attempt_at', '>', now).execute();
  }

  /** Disables an active endpoint (its unsent deliveries held); false when it already was (another node got there first). */
  async disableIfActive(id: string, reason: string, now: number): Promise<boolean> {
    const res = await this.db.updateTable('webhooks').set({ status: 'disabled', disabled_reason: reason, updated_at: now })
      .where('id', '=', id).where('status', '=', 'active').executeTakeFirst();
    if (Number(res.numUpdatedRows) === 0) return false;
    await this.hold(id);
    return true;
  }

  /** A disabled endpoint's deliveries wait, out of the claim's way. */
  async hold(webhookId: string): Promise<void> {
    await this.db.updateTable('webhook_deliveries').set({ status: 'held' }).where('webhook_id', '=', webhookId).where('status', '=', 'pending').execute();
  }

  /** An enabled endpoint's held deliveries are due now. */
  async release(webhookId: string, now: number): Promise<void> {
    await this.db.updateTable('webhook_deliveries').set({ status: 'pending', next_attempt_at: now }).where('webhook_id', '=', webhookId).where('status', '=', 'held').execute();
  }

  /**
   * Puts right deliveries written while their endpoint's status changed in a concurrent transaction
   * (PostgreSQL, read committed): held ones of an enabled endpoint go out, pending ones of a
   * disabled one wait. Answers how many it moved.
   */
  async reconcile(now: number): Promise<number> {
    const stuck = await this.db.selectFrom('webhook_deliveries').select('seq')
      .where((eb) => eb.or([
        eb.and([eb('status', '=', 'held'), eb('webhook_id', 'in', eb.selectFrom('webhooks').select('id').where('status', '=', 'active'))]),
        eb.and([eb('status', '=', 'pending'), eb('webhook_id', 'in', eb.selectFrom('webhooks').select('id').where('status', '=', 'disabled'))]),
      ])).limit(1).executeTakeFirst();
    if (stuck === undefined) return 0;
    const released = await this.db.updateTable('webhook_deliveries').set({ status: 'pending', next_attempt_at: now })
      .where('status', '=', 'held').where('webhook_id', 'in', this.db.selectFrom('webhooks').select('id').where('status', '=', 'active')).executeTakeFirst();
    const held = await this.db.updateTable('webhook_deliveries').set({ status: 'held' })
      .where('status', '=', 'pending').where('webhook_id', 'in', this.db.selectFrom('webhooks').select('id').where('status', '=', 'disabled')).executeTakeFirst();
    return Number(released.numUpdatedRows) + Number(held.numUpdatedRows);
  }

  /** Newest first, with the event type. */
  async deliveries(webhookId: string, status: DeliveryStatus | undefined, page: PageRequest): Promise<PageOf<DeliveryListRow>> {
    let q = this.db.selectFrom('webhook_deliveries').innerJoin('webhook_events', 'webhook_events.id', 'webhook_deliveries.event_id')
      .where('webhook_deliveries.webhook_id', '=', webhookId);
    if (status !== undefined) q = q.where('webhook_deliveries.status', '=', status);
    const { n } = await q.select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow();
    const rows = await q.selectAll('webhook_deliveries').select('webhook_events.type as type')
      .orderBy('webhook_deliveries.seq', 'desc').limit(page.limit).offset(offsetOf(page)).execute();
    return { rows: rows.map((r) => ({ ...r, seq: Number(r.seq) })), total: Number(n) };
  }

  async delivery(webhookId: string, id: string): Promise<(DeliveryListRow & { payload: string }) | undefined> {
    const row = await this.db.selectFrom('webhook_deliveries').innerJoin('webhook_events', 'webhook_events.id', 'webhook_deliveries.event_id')
      .selectAll('webhook_deliveries').select(['webhook_events.type as type', 'webhook_events.payload as payload'])
      .where('webhook_deliveries.webhook_id', '=', webhookId).where('webhook_deliveries.id', '=', id).executeTakeFirst();
    return row ? { ...row, seq: Number(row.seq) } : undefined;
  }

  /** The delivery of an event to an endpoint (the first, if the event was replayed). */
  async deliveryOfEvent(webhookId: string, eventId: string): Promise<DeliveryListRow | undefined> {
    const row = await this.db.selectFrom('webhook_deliveries').innerJoin('webhook_events', 'webhook_events.id', 'webhook_deliveries.event_id')
      .selectAll('webhook_deliveries').select('webhook_events.type as type')
      .where('webhook_deliveries.webhook_id', '=', webhookId).where('webhook_deliveries.event_id', '=', eventId)
      .orderBy('webhook_deliveries.seq').limit(1).executeTakeFirst();
    return row ? { ...row, seq: Number(row.seq) } : undefined;
  }

  /** The newest `perDelivery` attempts of each delivery, newest first. */
  async attempts(deliveryIds: readonly string[], perDelivery: number): Promise<AttemptRow[]> {
    if (deliveryIds.length === 0) return [];
    const ranked = this.db.selectFrom('webhook_attempts').selectAll()
      .select(sql<number>`row_number() over (partition by delivery_id order by number desc)`.as('rank'))
      .where('delivery_id', 'in', deliveryIds).as('ranked');
    const rows = await this.db.selectFrom(ranked)
      .select(['delivery_id', 'number', 'attempted_at', 'outcome', 'response_status', 'response_body', 'error', 'latency_ms'])
      .where('rank', '<=', perDelivery).orderBy('delivery_id').orderBy('number', 'desc').execute();
    return rows;
  }

  /** A manual retry: due now, same event (and so the same webhook-id); held while its endpoint is disabled. */
  async retry(seq: number, now: number, status: 'pending' | 'held'): Promise<void> {
    await this.db.updateTable('webhook_deliveries').set({ status, next_attempt_at: now, locked_until: null, delivered_at: null })
      .where('seq', '=', seq).execute();
  }

  /**
   * Events this endpoint was sent (or tried) since `since`, oldest first, without those it still
   * has to send: what a replay sends again.
   */
  async replayable(webhookId: string, since: number, limit: number): Promise<{ event_id: string; order_key: string; first_seq: number; created_at: number }[]> {
    const rows = await this.db.selectFrom('webhook_deliveries as d').innerJoin('webhook_events as e', 'e.id', 'd.event_id')
      .select((eb) => ['d.event_id', eb.fn.min('d.order_key').as('order_key'), eb.fn.min('d.seq').as('first_seq'), eb.fn.min('e.created_at').as('created_at')])
      // A delivery is never older than its event: its own time narrows the rows read.
      .where('d.webhook_id', '=', webhookId).where('d.created_at', '>=', since).where('e.created_at', '>=', since)
      .groupBy('d.event_id')
      .having(sql<number>`sum(case when d.status in ('pending', 'held') then 1 else 0 end)`, '=', 0)
      .orderBy('first_seq').limit(limit).execute();
    return rows.map((r) => ({ event_id: r.event_id, order_key: String(r.order_key), first_seq: Number(r.first_seq), created_at: Number(r.created_at) }));
  }

  eventsById(ids: readonly string[]): Promise<WebhookEventsTable[]> {
    if (ids.length === 0) return Promise.resolve([]);
    return this.db.selectFrom('webhook_events').selectAll().where('id', 'in', ids).execute();
  }

  /**
   * Removes what is older than `before`: settled deliveries, and unsent ones of disabled endpoints
   * (an enabled endpoint's deliveries are retried until it succeeds or is disabled); then events no
   * delivery refers to. Answers how many unsent deliveries expired, by endpoint.
   */
  async prune(before: number): Promise<{ webhookId: string; expired: number }[]> {
    // Reads first: most hours there is nothing to remove, and on SQLite a write waits for the usage writer's lock.
    const oldEvent = await this.db.selectFrom('webhook_events').select('id').where('created_at', '<', before).limit(1).executeTakeFirst();
    if (oldEvent === undefined) return [];
    const expired = await this.db.selectFrom('webhook_deliveries').select((eb) => ['webhook_id', eb.fn.countAll<number>().as('n')])
      .where('status', '=', 'held').where('created_at', '<', before).groupBy('webhook_id').execute();
    await this.db.deleteFrom('webhook_attempts').where('delivery_id', 'in', this.db.selectFrom('webhook_deliveries').select('id')
      .where('status', 'in', ['delivered', 'failed', 'held']).where('created_at', '<', before)).execute();
    await this.db.deleteFrom('webhook_deliveries').where('status', 'in', ['delivered', 'failed', 'held']).where('created_at', '<', before).execute();
    await this.db.deleteFrom('webhook_events').where('created_at', '<', before)
      .where((eb) => eb.not(eb.exists(eb.selectFrom('webhook_deliveries').select('seq').whereRef('webhook_deliveries.event_id', '=', 'webhook_events.id'))))
      .execute();
    return expired.map((e) => ({ webhookId: e.webhook_id, expired: Number(e.n) }));
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

  /**
   * Revoked keys get no expiry notice: taking those that would be due out of the pending index keeps
   * the scan from reading them again and again.
   */
  async retireRevokedExpiry(noticeUntil: number): Promise<void> {
    const pending = sql<boolean>`expires_at IS NOT NULL AND (expiry_notice IS NULL OR expiry_notice = 'expiring')`;
    // A read first: there is rarely any, and on SQLite a write waits for the usage writer's lock on the event loop's thread.
    const any = await this.db.selectFrom('keys').select('id').where(pending).where('expires_at', '<=', noticeUntil).where('status', '=', 'revoked').limit(1).executeTakeFirst();
    if (any === undefined) return;
    await this.db.updateTable('keys').set({ expiry_notice: 'expired' })
      .where(pending).where('expires_at', '<=', noticeUntil).where('status', '=', 'revoked').execute();
  }

  /**
   * When the next expiry notice falls due after `now`: a key.expiring at expires_at - notice for
   * keys without one, a key.expired at expires_at for keys that had theirs. Two probes of the
   * pending-notice index; null when nothing is pending.
   */
  async nextExpiryDue(now: number, noticeMs: number): Promise<number | null> {
    const expiring = await this.db.selectFrom('keys').select('expires_at')
      .where(sql<boolean>`expires_at IS NOT NULL AND (expiry_notice IS NULL OR expiry_notice = 'expiring')`)
      .where('expiry_notice', 'is', null).where('expires_at', '>', now + noticeMs)
      .orderBy('expires_at').limit(1).executeTakeFirst();
    const expired = await this.db.selectFrom('keys').select('expires_at')
      .where(sql<boolean>`expires_at IS NOT NULL AND (expiry_notice IS NULL OR expiry_notice = 'expiring')`)
      .where('expiry_notice', '=', 'expiring').where('expires_at', '>', now)
      .orderBy('expires_at').limit(1).executeTakeFirst();
    const times = [expiring?.expires_at == null ? null : Number(expiring.expires_at) - noticeMs, expired?.expires_at == null ? null : Number(expired.expires_at)]
      .filter((t): t is number => t !== null);
    return times.length === 0 ? null : Math.min(...times);
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
