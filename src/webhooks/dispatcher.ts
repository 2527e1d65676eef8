// The webhook worker every node runs: claims due deliveries from the outbox (each handed to one
// node), sends them, records the outcome, retries with backoff; and scans for the time-driven
// events (key.expiring, key.expired, key.usage_low), each claimed once in the store.
import type { Logger } from 'pino';
import type { Clock } from '../lib/clock.js';
import { sealContext, type SecretBox } from '../lib/secretbox.js';
import type { Store } from '../store/db.js';
import type { Repos } from '../store/repos/index.js';
import type { ClaimedDelivery } from '../store/repos/webhooks.js';
import type { WebhookOutbox } from './outbox.js';
import type { WebhookSender } from './sender.js';
import { signatureHeader } from './signing.js';

export interface DispatcherOptions {
  /** How often the outbox is looked at when nothing woke this node (other nodes' events, retries). */
  pollMs: number;
  /** First retry delay; each next one doubles, with jitter. */
  retryBaseMs: number;
  /** Longest wait for one attempt. */
  timeoutMs: number;
  /** An endpoint is disabled after this many failed attempts in a row. */
  disableAfter: number;
  /** How often keys are scanned for expiry and low usage. */
  scanMs: number;
  /** Settled deliveries are kept this long. */
  retentionMs: number;
  /** Told of each attempt's outcome (metrics). */
  onAttempt?: (outcome: 'delivered' | 'retry' | 'failed') => void;
}

const BATCH = 20;
const SCAN_BATCH = 200;
const MAX_RETRY_DELAY_MS = 6 * 3_600_000;
const PRUNE_EVERY_MS = 3_600_000;

/** Exponential backoff with equal jitter: half the doubled delay fixed, half random. */
export function retryDelay(baseMs: number, attempt: number, random = Math.random): number {
  const full = Math.min(MAX_RETRY_DELAY_MS, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(full / 2 + random() * (full / 2));
}

export class WebhookDispatcher {
  private pollTimer: NodeJS.Timeout | undefined;
  private scanTimer: NodeJS.Timeout | undefined;
  private running: Promise<void> | null = null;
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
        this.scan().catch((err: unknown) => this.warn(err, 'webhook scan failed')).finally(() => {
          if (!this.closed) scan();
        });
      }, this.opts.scanMs);
      this.scanTimer.unref();
    };
    poll();
    scan();
    this.kick();
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
    let result;
    try {
      result = await this.sender.send({ url: d.url, id: d.event_id, timestampSec, body: d.payload, signature: signatureHeader(this.secretsOf(d, now), d.event_id, timestampSec, d.payload) });
    } catch (err) {
      result = { ok: false, status: null, error: (err as Error).message, latencyMs: 0 };
    }
    const after = this.clock.now();
    // The attempt and the endpoint's failure count (and a disable it causes) commit together: a
    // reader never sees an attempt its endpoint has not counted, and a crash loses neither.
    if (result.ok) {
      const settled = await this.store.transaction(async (r) => {
        if (!(await r.webhooks.settle(d.seq, leaseUntil, { status: 'delivered', next_attempt_at: d.next_attempt_at, response_status: result.status, error: null, latency_ms: result.latencyMs, delivered_at: after }))) return false;
        await r.webhooks.resetFailures(d.webhook_id);
        return true;
      });
      if (settled) this.opts.onAttempt?.('delivered');
      return;
    }
    const exhausted = d.attempts >= d.max_attempts;
    const outcome = await this.store.transaction(async (r) => {
      const settled = await r.webhooks.settle(d.seq, leaseUntil, {
        status: exhausted ? 'failed' : 'pending',
        next_attempt_at: exhausted ? d.next_attempt_at : after + retryDelay(this.opts.retryBaseMs, d.attempts),
        response_status: result.status, error: result.error, latency_ms: result.latencyMs, delivered_at: null,
      });
      if (!settled) return undefined;
      const failures = await r.webhooks.countFailure(d.webhook_id);
      const disabled = failures >= this.opts.disableAfter ? await this.disable(r, d.webhook_id, failures, result.error, after) : undefined;
      return { disabled };
    });
    if (outcome === undefined) return;
    this.opts.onAttempt?.(exhausted ? 'failed' : 'retry');
    this.logger.info({ webhookId: d.webhook_id, deliveryId: d.id, attempt: d.attempts, status: result.status, error: result.error }, exhausted ? 'webhook delivery failed for good' : 'webhook delivery failed; will retry');
    if (outcome.disabled !== undefined) this.logger.warn({ webhookId: d.webhook_id, reason: outcome.disabled }, 'webhook endpoint disabled');
  }

  /** Disables an active endpoint with an audit entry, inside the caller's transaction; answers the reason, or undefined if it was not active. */
  private async disable(r: Repos, webhookId: string, failures: number, lastError: string | null, now: number): Promise<string | undefined> {
    const reason = `${failures} failed attempts in a row${lastError ? `; the last: ${lastError}` : ''}`;
    const hook = await r.webhooks.find(webhookId);
    if (!hook || !(await r.webhooks.disableIfActive(webhookId, reason, now))) return undefined;
    await r.audit.record({ type: 'system', id: 'webhooks', ip: null, userAgent: null }, {
      workspaceId: hook.workspace_id, action: 'webhook.disable', targetType: 'webhook', targetId: webhookId, meta: { reason, url: hook.url },
    }, now);
    return reason;
  }

  /** One scan for due notices (tests call it instead of waiting for the timer). */
  async scan(): Promise<void> {
    const now = this.clock.now();
    const repo = this.store.repos.webhooks;
    for (;;) {
      const due = await repo.dueExpiry(now, now + this.outbox.expiryNoticeMs, SCAN_BATCH);
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
    if (now - this.lastPrune >= PRUNE_EVERY_MS) {
      this.lastPrune = now;
      await repo.prune(now - this.opts.retentionMs);
    }
  }

  /** Stops claiming; attempts under way finish (each bounded by the timeout). */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.pollTimer);
    clearTimeout(this.scanTimer);
    await Promise.allSettled([...this.inflight]);
  }
}
