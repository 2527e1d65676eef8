// One store transaction for the leases and give-backs of a flush (src/credits/slices.ts): the
// keys locked, each lease decided (decide.ts) and written, this node's reservations recorded,
// give-backs applied and key.usage_low written where a lease crossed its line. Also the shapes the
// node keeps per key.
import type { Repos } from '../store/repos/index.js';
import type { CapRowOf, SliceRow } from '../store/repos/credits.js';
import type { WebhookOutbox } from '../webhooks/outbox.js';
import { decideLease, periodEnd, type LeaseDecision } from './decide.js';

/** A refusal: the cap cannot pay for this call; `remaining` is what this node knows is left. */
export interface CapExceeded {
  readonly exceeded: true;
  readonly remaining: number;
}

/**
 * What a capped call gets: the units left after it (the store's remaining as this node last saw it
 * plus the units this node holds: exact on one node), a refusal, or null when the key turned out to
 * have no cap (it was changed meanwhile).
 */
export type CapAnswer = number | CapExceeded | null;

export interface Waiter {
  cost: number;
  resolve: (answer: CapAnswer) => void;
  reject: (err: unknown) => void;
}

/** One key's units on this node, in one credit period (`epoch`). */
export interface Slice {
  readonly keyId: string;
  /** -1 until the store has answered once. */
  epoch: number;
  /** The period's end (Infinity without a refill): from then on its units are void. */
  periodEnd: number;
  /** The store's totals for this node in `epoch`, as of the last answer. */
  leased: number;
  released: number;
  /** Spent here in `epoch`; and how much of it the store has been told. */
  spent: number;
  reported: number;
  /** Units this node will not spend: of an ended period, or being given back. */
  withheld: number;
  /** leased - released - spent - withheld: spendable now. */
  tokens: number;
  /** keys.remaining as the last answer had it. */
  storeLeft: number;
  /** Spare units the next lease asks for (sized to the key's pace). */
  size: number;
  /** Asked ahead at or below this many tokens. */
  low: number;
  grantedAt: number;
  activeAt: number;
  /** Requests waiting for units, in arrival order. */
  waiting: Waiter[];
  /** A store write for this key is on its way. */
  busy: boolean;
  /** A lease is wanted ahead of need. */
  ahead: boolean;
  /** The last lease asked ahead got nothing: the next asks only when a request needs it. */
  noRoom: boolean;
  /** The key changed (or sat idle, or the node stops): unspent units go back before any more are spent. */
  giveBack: boolean;
  /** The give-back is an idle one: the slice keeps its reserve (slices.ts, KEEP_MS). */
  keep: boolean;
  /** A write failed without an answer: it may still land, so the store's totals are read again. */
  unsure: boolean;
  /** Store writes of this slice started so far (a read of the key can tell whether one began meanwhile). */
  ops: number;
}

export type Op =
  | { kind: 'lease'; slice: Slice; need: number; least: number; spare: number; waiters: Waiter[]; spent: number }
  | { kind: 'release'; slice: Slice; epoch: number; units: number; spent: number };

export interface OpResult {
  /** The key has no cap (any more), or is gone. */
  uncapped: boolean;
  epoch: number;
  periodEnd: number;
  storeLeft: number;
  row: SliceRow | undefined;
  granted: number;
}

/** A write that found a later write of this node already stored: rolled back, nothing changed. */
export class LateWrite extends Error {}

export interface LeaseContext {
  nodeId: string;
  outbox: WebhookOutbox;
  /** This flush's place among the node's writes. */
  seq: number;
  /** Live nodes: a lease takes at most a fair share of what is left. */
  nodes: number;
  now: number;
}

/**
 * One transaction for every op of a flush, a few statements whatever their number: the keys
 * read and locked, the leases decided (decide.ts) and written, this node's reservations recorded,
 * give-backs applied, and key.usage_low written where a lease crossed its line.
 */
export async function applyOps(r: Repos, ops: readonly Op[], ctx: LeaseContext): Promise<OpResult[]> {
  const { nodeId, seq, nodes, now } = ctx;
  const caps = new Map<string, CapRowOf>();
  for (const row of await r.credits.lockCaps(ops.map((op) => op.slice.keyId))) caps.set(row.id, row);
  const decisions = new Map<Op, LeaseDecision>();
  const writes: Parameters<Repos['credits']['setCaps']>[0][number][] = [];
  const reserve: { keyId: string; epoch: number; units: number; spent: number }[] = [];
  const read: string[] = [];
  const giveBack: { keyId: string; epoch: number; units: number }[] = [];
  const release: { keyId: string; epoch: number; units: number; spent: number }[] = [];
  for (const op of ops) {
    const s = op.slice;
    const row = caps.get(s.keyId);
    if (op.kind === 'release') {
      if (op.units > 0 && row !== undefined && row.remaining !== null) giveBack.push({ keyId: s.keyId, epoch: op.epoch, units: op.units });
      release.push({ keyId: s.keyId, epoch: op.epoch, units: op.units, spent: op.spent });
      continue;
    }
    const d = row === undefined ? null : decideLease(row, { need: op.need, least: op.least, spare: op.spare, nodes }, now);
    if (d === null) continue;
    decisions.set(op, d);
    if (d.changed) writes.push({ id: s.keyId, remaining: d.remaining, last_refill_at: d.lastRefillAt, credit_epoch: d.epoch, usage_low: d.usageLow });
    // What this node reports spent counts only in the period it was spent in.
    if (d.grant > 0) reserve.push({ keyId: s.keyId, epoch: d.epoch, units: d.grant, spent: d.epoch === s.epoch ? op.spent : 0 });
    else read.push(s.keyId);
  }
  if (writes.length > 0) await r.credits.setCaps(writes);
  const slices = reserve.length > 0 ? await r.credits.reserve(nodeId, reserve, seq, now) : new Map<string, SliceRow>();
  if (reserve.some((x) => !slices.has(x.keyId))) throw new LateWrite('a later write of this node is already stored');
  if (giveBack.length > 0) await r.credits.giveBack(giveBack);
  const released = release.length > 0 ? await r.credits.release(nodeId, release, seq, now) : new Map<string, SliceRow>();
  const missing = release.filter((x) => !released.has(x.keyId)).map((x) => x.keyId);
  // A release without its row is a slice whose first lease never landed; one whose row is there
  // but was not updated found a later write of this node.
  for (const [keyId, row] of await r.credits.slices(nodeId, [...read, ...missing])) {
    if (missing.includes(keyId)) throw new LateWrite('a later write of this node is already stored');
    slices.set(keyId, row);
  }
  const out: OpResult[] = [];
  for (const op of ops) {
    const s = op.slice;
    const row = caps.get(s.keyId);
    if (op.kind === 'release') {
      if (row === undefined || row.remaining === null) {
        out.push({ uncapped: true, epoch: -1, periodEnd: Infinity, storeLeft: 0, row: released.get(s.keyId), granted: 0 });
        continue;
      }
      const given = op.units > 0 && row.credit_epoch === op.epoch;
      out.push({ uncapped: false, epoch: row.credit_epoch, periodEnd: periodEnd(row, now), storeLeft: row.remaining + (given ? op.units : 0), row: released.get(s.keyId), granted: 0 });
      continue;
    }
    const d = decisions.get(op);
    if (d === undefined) {
      out.push({ uncapped: true, epoch: -1, periodEnd: Infinity, storeLeft: 0, row: undefined, granted: 0 });
      continue;
    }
    const slice = slices.get(s.keyId);
    if (d.notice) await notice(r, ctx.outbox, op, d, slice, now);
    out.push({ uncapped: false, epoch: d.epoch, periodEnd: d.periodEnd, storeLeft: d.remaining, row: slice, granted: d.grant });
  }
  return out;
}

/** key.usage_low, in the transaction of the lease that crossed the line (once per period: decide.ts). */
async function notice(r: Repos, outbox: WebhookOutbox, op: Extract<Op, { kind: 'lease' }>, d: LeaseDecision, slice: SliceRow | undefined, now: number): Promise<void> {
  const s = op.slice;
  const key = await r.keys.find(s.keyId);
  if (!key) return;
  // What is left as this node knows it once the requests this lease serves are answered: the
  // store's remaining plus what the node will still hold (exact on one node).
  const holds = slice !== undefined && slice.epoch === d.epoch ? slice.leased - slice.released - (d.epoch === s.epoch ? s.spent + s.withheld : slice.spent) : 0;
  let asked = 0;
  for (const w of op.waiters) asked += w.cost;
  await outbox.key(r, 'key.usage_low', { ...key, remaining: d.remaining + Math.max(0, holds - asked) }, now);
}
