// The store budget of the request being served: one bound on everything it waits for in the store
// (pooled connections, statements, settling a lost COMMIT), however many round trips it makes.
// Only waiting on the store spends it; a password hash or a JSON body between two queries does not.
import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';

/** What a store wait is bounded by (times on performance.now()'s scale: monotonic, unlike a clock tests move). */
export interface StoreBudget {
  /** When the budget runs out if waiting starts (or goes on) now. */
  deadline(): number;
  /** A wait starts; waits that overlap spend the budget once, for their wall time together. */
  begin(): void;
  end(): void;
}

class RequestBudget implements StoreBudget {
  /** False once the request is answered: work it started in the background takes its own bounds. */
  open = true;
  /** A transaction of this request committed: a store failure after it is no longer "nothing changed". */
  committed = false;
  private waits = 0;
  private since = 0;

  constructor(private left: number) {}

  deadline(): number {
    return (this.waits > 0 ? this.since : performance.now()) + this.left;
  }

  begin(): void {
    if (this.waits++ === 0) this.since = performance.now();
  }

  end(): void {
    if (--this.waits === 0) this.left -= performance.now() - this.since;
  }
}

/** A bound of its own for work outside any request: a fixed deadline for one connection lease. */
class FixedBudget implements StoreBudget {
  constructor(private readonly at: number) {}
  deadline(): number {
    return this.at;
  }
  begin(): void {}
  end(): void {}
}

export const fixedBudget = (deadline: number): StoreBudget => new FixedBudget(deadline);

const current = new AsyncLocalStorage<RequestBudget>();
let inFlight = 0;

/**
 * Runs `next` (the rest of a request) with a store budget of `ms`; the returned function ends it.
 * The storage is disabled again whenever no request holds a budget (the first `run` of an
 * AsyncLocalStorage turns on Node's async hooks for the whole process), so verify, which never takes one, does not pay for Node's async hooks
 * while no management request is in flight.
 */
export function beginStoreBudget(ms: number, next: () => void): () => void {
  const budget = new RequestBudget(ms);
  inFlight++;
  let ended = false;
  current.run(budget, next);
  return () => {
    if (ended) return;
    ended = true;
    budget.open = false;
    if (--inFlight === 0) current.disable();
  };
}

/** Runs `fn` with a store budget of its own (`Infinity`: none, for migrations), ended when it settles. */
export async function withStoreBudget<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  let end: (() => void) | undefined;
  const run = new Promise<T>((resolve, reject) => {
    end = beginStoreBudget(ms, () => void fn().then(resolve, reject));
  });
  try {
    return await run;
  } finally {
    end?.();
  }
}

/** Notes that a transaction of the request in progress committed. */
export function noteCommitted(): void {
  const budget = current.getStore();
  if (budget?.open) budget.committed = true;
}

/** Whether a transaction of the request in progress committed already. */
export function committedInRequest(): boolean {
  return current.getStore()?.committed === true;
}

/** The budget of the request in progress, if there is one. */
export function requestBudget(): StoreBudget | undefined {
  const budget = current.getStore();
  return budget?.open ? budget : undefined;
}

/** A wait on the store that reached its deadline: the store is away (a 503); nothing was changed. */
export class StoreTimeoutError extends Error {
  /** Read by isStoreUnavailable, like a network timeout. */
  readonly code = 'ETIMEDOUT';
  /** `sent`: whether the statement had left (a COMMIT that had not, needs no settling). */
  constructor(what: string, readonly sent: boolean) {
    super(`store deadline exceeded (${what})`);
  }
}
