// What one lease takes from a key's usage cap, decided from the key's row as the lease transaction
// locked it: the refill of a new period, the units granted, and whether key.usage_low is due now.
// Pure: the caller reads the row, decides, then writes the result in the same transaction.
import { periodStarts } from '../lib/time.js';
import type { CapRow } from '../store/repos/credits.js';

export type { CapRow };

export interface LeaseAsk {
  /** Units the waiting requests need beyond what the node holds (0 for a lease asked ahead). */
  need: number;
  /** Fewer units than this help none of them: nothing is granted then. */
  least: number;
  /** Units wanted beyond the need, sized to the key's pace. */
  spare: number;
  /** Live nodes: no lease takes more than a fair share of what is left. */
  nodes: number;
}

export interface LeaseDecision {
  grant: number;
  /** keys.remaining after the lease. */
  remaining: number;
  epoch: number;
  lastRefillAt: number | null;
  usageLow: 'due' | 'sent' | null;
  /** key.usage_low is written now, in this transaction (once per period). */
  notice: boolean;
  /** Whether the row changes at all (a lease that refills, grants or notices nothing writes nothing). */
  changed: boolean;
  /** When the period of these units ends (Infinity without a refill). */
  periodEnd: number;
}

/** Whether a refill is due at `now`: a new UTC day or month has begun since the last one. */
function refillDue(row: CapRow, now: number): boolean {
  if (row.refill_amount === null || row.refill_interval === null) return false;
  const { day, month } = periodStarts(now);
  const start = row.refill_interval === 'daily' ? day : month;
  return row.last_refill_at === null || row.last_refill_at < start;
}

/** The end of the refill period that contains `now`; Infinity for a key without a refill. */
export function periodEnd(row: Pick<CapRow, 'refill_amount' | 'refill_interval'>, now: number): number {
  if (row.refill_amount === null || row.refill_interval === null) return Infinity;
  const d = new Date(now);
  return row.refill_interval === 'daily'
    ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1)
    : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** What is left in the current period (a due refill applied), without changing anything. */
export function leftNow(row: CapRow, now: number): number | null {
  if (row.remaining === null) return null;
  return refillDue(row, now) ? row.refill_amount! : row.remaining;
}

/**
 * The lease: a due refill first (a new period, a new epoch: units of the old one are void), then
 * `need` plus up to `spare` units, never more than a fair share of what is left (left / (4 x live
 * nodes)), so a small cap is not stranded on one node. Until key.usage_low has been written in a
 * period, spare units come only from above its line (10% of the refill, or of what remaining was
 * set to): the lease that crosses it takes only what waiting requests need, so on one node the
 * notice goes out when cap - VALIDs first reaches 10%, not a slice early.
 */
export function decideLease(row: CapRow, ask: LeaseAsk, now: number): LeaseDecision | null {
  if (row.remaining === null) return null;
  const due = refillDue(row, now);
  const left = due ? row.refill_amount! : row.remaining;
  const lowBefore = due ? null : row.usage_low;
  const base = row.refill_amount ?? row.remaining_base;
  let extra = Math.min(ask.spare, Math.floor(left / (4 * Math.max(1, ask.nodes))));
  if (base !== null && lowBefore === null) extra = Math.min(extra, left - ask.need - Math.floor(base / 10) - 1);
  extra = Math.max(0, extra);
  const grant = left < ask.least ? 0 : Math.min(left, ask.need + extra);
  const remaining = left - grant;
  // A notice found due but not sent (written by an older version's charge) goes out now too.
  const notice = base !== null && lowBefore !== 'sent' && remaining * 10 <= base;
  const usageLow = notice ? 'sent' : lowBefore;
  return {
    grant,
    remaining,
    epoch: due ? row.credit_epoch + 1 : row.credit_epoch,
    lastRefillAt: due ? now : row.last_refill_at,
    usageLow,
    notice,
    changed: due || grant > 0 || usageLow !== row.usage_low,
    periodEnd: periodEnd(row, now),
  };
}
