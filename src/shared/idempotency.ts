// Safe retries (contract v2): the request's Idempotency-Key travels with the request in an
// AsyncLocalStorage, and the store writes "this key made that object" in the same transaction as
// the object itself. So a create either happened and is remembered, or neither: a retry after a
// lost answer finds the object instead of making a second one.
import { AsyncLocalStorage } from 'node:async_hooks';

export interface IdempotencyClaim {
  scope: string;
  key: string;
  requestHash: string;
  /** When the request came: the claim is remembered for 24 hours from then. */
  at: number;
  /** Set by the service inside its transaction: the id of what it created. */
  resourceId?: string;
  /** Set by the store once the claim is written with the created object. */
  recorded?: boolean;
}

const current = new AsyncLocalStorage<IdempotencyClaim>();

export function withClaim<T>(claim: IdempotencyClaim, run: () => Promise<T>): Promise<T> {
  return current.run(claim, run);
}

export function activeClaim(): IdempotencyClaim | undefined {
  return current.getStore();
}

/** Called by a create inside its transaction: names what this request made. */
export function createdResource(id: string): void {
  const claim = current.getStore();
  if (claim && claim.resourceId === undefined) claim.resourceId = id;
}
