// The store deadline of the request being served: one bound on everything it waits for in the
// store (pooled connections, statements, settling a lost COMMIT), however many round trips it makes.
import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';

interface Scope {
  /** On performance.now()'s scale: monotonic, unlike a clock tests move. */
  at: number;
  /** False once the request is answered: work it started in the background takes its own bounds. */
  open: boolean;
}

const current = new AsyncLocalStorage<Scope>();
let inFlight = 0;

/**
 * Runs `next` (the rest of a request) with a store deadline `ms` from now; the returned function
 * ends it. As with Idempotency-Key claims (../shared/idempotency.ts), the storage is disabled again
 * whenever no request holds a deadline, so verify, which never takes one, does not pay for Node's
 * async hooks while no management request is in flight.
 */
export function beginStoreDeadline(ms: number, next: () => void): () => void {
  const scope: Scope = { at: performance.now() + ms, open: true };
  inFlight++;
  let ended = false;
  current.run(scope, next);
  return () => {
    if (ended) return;
    ended = true;
    scope.open = false;
    if (--inFlight === 0) current.disable();
  };
}

/** Runs `fn` with its own store deadline (`Infinity`: none, for migrations), ended when it settles. */
export async function withStoreDeadline<T>(ms: number, fn: () => Promise<T>): Promise<T> {
  let end: (() => void) | undefined;
  const run = new Promise<T>((resolve, reject) => {
    end = beginStoreDeadline(ms, () => void fn().then(resolve, reject));
  });
  try {
    return await run;
  } finally {
    end?.();
  }
}

/** The deadline of the request in progress (performance.now() scale), if there is one. */
export function requestDeadline(): number | undefined {
  const scope = current.getStore();
  return scope?.open ? scope.at : undefined;
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
