// The webhook worker every node runs: claims due deliveries from the outbox (each handed to one
// node), sends them, records each attempt, retries with backoff until a delivery succeeds or its
// endpoint is disabled; and scans for the time-driven events (key.expiring, key.expired,
// key.usage_low), each claimed once in the store, with a timer set to the next one due.
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import { sealContext, type SecretBox } from '../lib/secretbox.js';
import { iso } from '../lib/time.js';
import type { Store } from '../store/db.js';
import type { Repos } from '../store/repos/index.js';
import type { AttemptRow, ClaimedDelivery } from '../store/repos/webhooks.js';
import type { WebhookOutbox } from './outbox.js';
import type { AttemptResult, WebhookSender } from './sender.js';
import { webhookView } from './service.js';
import { signatureHeader } from './signing.js';

export interface DispatcherOptions {
  /** How often the outbox is looked at when nothing woke this node (other nodes' events, retries). */
  pollMs: number;
  /** First retry delay; each next one doubles, with jitter, up to MAX_RETRY_DELAY_MS. */
  retryBaseMs: number;
  /** Longest wait for one attempt. */
  timeoutMs: number;
  /** An endpoint failing this long without a success is disabled. */
  disableAfterMs: number;
  /** How often keys are scanned for due notices, whatever the timer to the next one says. */
  scanMs: number;
  /** Settled deliveries, and those of a disabled endpoint, are kept this long. */
  retentionMs: number;
  /** Told of each attempt's outcome (metrics). */
  onAttempt?: (outcome: 'delivered' | 'retry') => void;
}

const BATCH = 20;
const SCAN_BATCH = 200;
/** The longest wait between two attempts at one delivery. */
export const MAX_RETRY_DELAY_MS = 3_600_000;
const PRUNE_EVERY_MS = 3_600_000;
/** A timer set to a due time fires this much after it (timers may round down by a millisecond). */
const DUE_SLACK_MS = 5;

/** Exponential backoff with equal jitter: half the doubled delay fixed, half random; at most an hour. */
export function retryDelay(baseMs: number, attempt: number, random = Math.random): number {
  const full = Math.min(MAX_RETRY_DELAY_MS, baseMs * 2 ** Math.min(40, Math.max(0, attempt - 1)));
  return Math.round(full / 2 + random() * (full / 2));
}

/** Another node took the delivery over (this node's lease ran out): what this attempt wrote is rolled back. */
class LeaseLost extends Error {}

/** The transaction's value, or undefined when it was rolled back for a lost lease. */
function settledOnly<T>(tx: Promise<T>): Promise<T | undefined> {
  return tx.catch((err: unknown) => {
    if (err instanceof LeaseLost) return undefined;
    throw err;
  });
}

/** Masks the endpoint's secrets in what its receiver answered (a receiver echoing its configuration). */
function masked(text: string | null, secrets: readonly string[]): string | null {
  if (text === null) return null;
  let out = text;
  for (const s of secrets) {
    for (const form of [s, s.replace(/^whsec_/, '')]) if (form.length >= 16) out = out.split(form).join('[secret]');
  }
  return out;
}

export class WebhookDispatcher {
  private pollTimer: NodeJS.Timeout | undefined;
  private scanTimer: NodeJS.Timeout | undefined;
  private dueTimer: NodeJS.Timeout | undefined;
  /** The due time dueTimer is set for. */
  private dueTimerAt: number | null = null;
  private running: Promise<void> | null = null;
  private scanning: Promise<void> | null = null;
  private again = false;
  private closed = false;
  private lastPrune = 0;
  private lastWarn = 0;
  private readonly inflight = new Set<Promise<unknown>>();

  constructor(
    private readonly store: Store,
    private readonly box: SecretBox,
    private readonly sender: WebhookSender,
    private readonly outbox: WebhookOutbox,
    private readonly clock: Clock,
    private readonly logger: Logger,
    private readonly opts: DispatcherOptions,
  ) {}

  start(): void {
    const poll = () => {
      this.pollTimer = setTimeout(() => {
        this.kick();
        poll();
      }, this.opts.pollMs);
      this.pollTimer.unref();
    };
    const scan = () => {
      this.scanTimer = setTimeout(() => {
        // scanSoon never rejects: a failed scan is logged.
        void this.scanSoon().finally(() => {
          if (!this.closed) scan();
        });
      }, this.opts.scanMs);
      this.scanTimer.unref();
    };
    poll();
    scan();
    this.kick();
    void this.scanSoon();
  }

  /** Look at the outbox now (a local change just committed events). */
  kick(): void {
    if (this.closed) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.drain().catch((err: unknown) => {
      this.warn(err, 'webhook delivery round failed');
    }).finally(() => {
      this.running = null;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  /**
   * An expiry notice falls due at `at` (this node's clock): scan then. Only due times within one
   * scan interval set the timer; the periodic scan covers the rest.
   */
  dueAt(at: number): void {
    if (this.closed) return;
    const delay = Math.max(0, at - this.clock.now());
    if (delay >= this.opts.scanMs || (this.dueTimerAt !== null && this.dueTimerAt <= at)) return;
    clearTimeout(this.dueTimer);
    this.dueTimerAt = at;
    this.dueTimer = setTimeout(() => {
      this.dueTimerAt = null;
      void this.scanSoon();
    }, delay + DUE_SLACK_MS);
    this.dueTimer.unref();
  }

  /** The due time the timer is set for (tests read it). */
  nextDue(): number | null {
    return this.dueTimerAt;
  }

  /** One scan at a time on this node; a failure is logged, not thrown. */
  private scanSoon(): Promise<void> {
    this.scanning ??= this.scan().catch((err: unknown) => this.warn(err, 'webhook scan failed')).finally(() => {
      this.scanning = null;
    });
    return this.scanning;
  }

  /** While the store is away every poll fails the same way: one line every 10 s is enough. */
  private warn(err: unknown, message: string): void {
    const now = Date.now();
    if (now - this.lastWarn < 10_000) return;
    this.lastWarn = now;
    this.logger.warn({ err }, `${message}; retrying (further failures within 10 s are not logged)`);
  }

  /** Sends everything due now, batch after batch; resolves when nothing due is left (tests await it). */
  async drain(): Promise<void> {
    for (;;) {
      if (this.closed) return;
      const now = this.clock.now();
      const leaseUntil = now + this.opts.timeoutMs + Math.max(1000, this.opts.timeoutMs / 2);
      const batch = await this.store.repos.webhooks.claim(now, leaseUntil, BATCH);
      if (batch.length === 0) return;
      await Promise.all(batch.map((d) => this.track(this.deliver(d, leaseUntil))));
    }
  }

  /** Until this resolves, this node is not in the middle of a round (tests wait on it). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private track<T>(p: Promise<T>): Promise<T> {
    this.inflight.add(p);
    return p.finally(() => this.inflight.delete(p));
  }

  private secretsOf(d: ClaimedDelivery, now: number): string[] {
    const secrets = [this.box.open(d.secret_enc, sealContext.webhookSecret(d.webhook_id))];
    if (d.previous_secret_enc !== null && d.previous_secret_until !== null && d.previous_secret_until > now) {
      secrets.push(this.box.open(d.previous_secret_enc, sealContext.webhookSecret(d.webhook_id)));
    }
    return secrets;
  }

  private async deliver(d: ClaimedDelivery, leaseUntil: number): Promise<void> {
    const now = this.clock.now();
    const timestampSec = Math.floor(now / 1000);
    const secrets = this.secretsOf(d, now);
    let result: AttemptResult;
    try {
      result = await this.sender.send({ url: d.url, id: d.event_id, timestampSec, body: d.payload, signature: signatureHeader(secrets, d.event_id, timestampSec, d.payload) });
    } catch {
      result = { ok: false, status: null, error: 'the request failed', body: null, latencyMs: 0 };
    }
    const after = this.clock.now();
    const attempt: AttemptRow = {
      delivery_id: d.id, number: d.attempts, attempted_at: now, outcome: result.ok ? 'delivered' : 'failed',
      response_status: result.status, response_body: masked(result.body, secrets), error: result.error, latency_ms: result.latencyMs,
    };
    const common = { response_status: result.status, error: result.error, latency_ms: result.latencyMs };
    // The attempt, its delivery's state and the endpoint's failure record (and a disable it causes)
    // commit together: a reader never sees an attempt its endpoint has not counted, and a crash
    // loses neither. The endpoint's row is written first: every transaction that writes it and
    // deliveries (this one, enabling and disabling) takes them in that order, so none deadlock.
    if (result.ok) {
      const settled = await settledOnly(this.store.transaction(async (r) => {
        // An endpoint that was not failing when this was claimed has no failure older than this attempt.
        const recovered = d.endpoint_failing && (await r.webhooks.countSuccess(d.webhook_id));
        if (!(await r.webhooks.settle(d, leaseUntil, { ...common, delivered: true, next_attempt_at: d.next_attempt_at, delivered_at: after }, attempt))) throw new LeaseLost();
        // Only a delivery that failed before held its key's later ones back.
        if (d.attempts > 1) await r.webhooks.releaseChain(d, after);
        // The endpoint answers again: what waited on a backoff goes out now, not up to an hour later.
        if (recovered) await r.webhooks.dueNow(d.webhook_id, after);
        return true;
      }));
      if (settled) this.opts.onAttempt?.('delivered');
      return;
    }
    const retryAt = after + retryDelay(this.opts.retryBaseMs, d.attempts);
    const outcome = await settledOnly(this.store.transaction(async (r) => {
      const { failures, failingSince } = await r.webhooks.countFailure(d.webhook_id, now);
      if (!(await r.webhooks.settle(d, leaseUntil, { ...common, delivered: false, next_attempt_at: retryAt, delivered_at: null }, attempt))) throw new LeaseLost();
      await r.webhooks.holdChainUntil(d, retryAt);
      const disabled = after - failingSince >= this.opts.disableAfterMs ? await this.disable(r, d.webhook_id, failures, failingSince, result.error, after) : undefined;
      return { disabled };
    }));
    if (outcome === undefined) return;
    this.opts.onAttempt?.('retry');
    this.logger.info({ webhookId: d.webhook_id, deliveryId: d.id, attempt: d.attempts, status: result.status, error: result.error, retryAt: iso(retryAt) }, 'webhook delivery failed; will retry');
    if (outcome.disabled !== undefined) this.logger.warn({ webhookId: d.webhook_id, reason: outcome.disabled }, 'webhook endpoint disabled');
  }

  /**
   * Disables an active endpoint inside the caller's transaction: its deliveries held, an audit
   * entry, and `webhook.disabled` to the workspace's other endpoints. Answers the reason, or
   * undefined if it was not active.
   */
  private async disable(r: Repos, webhookId: string, failures: number, failingSince: number, lastError: string | null, now: number): Promise<string | undefined> {
    const hours = Math.floor((now - failingSince) / 3_600_000);
    const reason = `failing for ${hours} hours without a success (${failures} failed attempts since ${iso(failingSince)})${lastError ? `; the last: ${lastError}` : ''}`;
    const hook = await r.webhooks.find(webhookId);
    if (!hook || !(await r.webhooks.disableIfActive(webhookId, reason, now))) return undefined;
    const disabled = { ...hook, status: 'disabled' as const, disabled_reason: reason, consecutive_failures: failures, failing_since: failingSince, updated_at: now };
    await r.audit.record({ type: 'system', id: 'webhooks', ip: null, userAgent: null }, {
      workspaceId: hook.workspace_id, action: 'webhook.disable', targetType: 'webhook', targetId: webhookId, meta: { reason, url: hook.url, failingSince: iso(failingSince), failures },
    }, now);
    await this.outbox.endpointDisabled(r, hook, { ...webhookView(disabled, now), disabledAt: iso(now) }, now);
    return reason;
  }

  /** One scan for due notices (tests call it instead of waiting for the timer). */
  async scan(): Promise<void> {
    const now = this.clock.now();
    const repo = this.store.repos.webhooks;
    const noticeUntil = now + this.outbox.expiryNoticeMs;
    await repo.retireRevokedExpiry(noticeUntil);
    for (;;) {
      const due = await repo.dueExpiry(now, noticeUntil, SCAN_BATCH);
      for (const key of due) {
        await this.store.transaction(async (r) => {
          const expiresAt = key.expires_at!;
          let notice = key.expiry_notice;
          if (notice === null && (await r.webhooks.claimExpiry(key.id, expiresAt, null, 'expiring'))) {
            notice = 'expiring';
            await this.outbox.key(r, 'key.expiring', { ...key, expiry_notice: notice }, now);
          }
          if (notice === 'expiring' && expiresAt <= now && (await r.webhooks.claimExpiry(key.id, expiresAt, 'expiring', 'expired'))) {
            await this.outbox.key(r, 'key.expired', { ...key, expiry_notice: 'expired' }, now);
          }
        });
      }
      if (due.length < SCAN_BATCH) break;
    }
    for (;;) {
      const due = await repo.dueUsageLow(SCAN_BATCH);
      for (const key of due) {
        await this.store.transaction(async (r) => {
          if (await r.webhooks.claimUsageLow(key.id)) await this.outbox.key(r, 'key.usage_low', { ...key, usage_low: 'sent' }, now);
        });
      }
      if (due.length < SCAN_BATCH) break;
    }
    if ((await repo.reconcile(now)) > 0) this.kick();
    if (now - this.lastPrune >= PRUNE_EVERY_MS) {
      this.lastPrune = now;
      for (const { webhookId, expired } of await repo.prune(now - this.opts.retentionMs)) {
        this.logger.warn({ webhookId, expired }, 'deliveries of a disabled webhook endpoint expired after the retention period');
      }
    }
    const next = await repo.nextExpiryDue(now, this.outbox.expiryNoticeMs);
    if (next !== null) this.dueAt(next);
  }

  /** Stops claiming; attempts under way finish (each bounded by the timeout). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.pollTimer);
    clearTimeout(this.scanTimer);
    clearTimeout(this.dueTimer);
    await Promise.allSettled([...this.inflight]);
  }
}
