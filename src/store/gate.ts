// The verify path's queries to the store. While the store's circuit is open (a query found the
// store down), only the one probe due is sent; every other query is refused at once with the
// store's 503, and cached keys answer from the cache meanwhile. Queries of the management API and
// of background work (the change feed, usage) are not gated: they bound their own waits.
import { AppError, FIXED_DETAIL } from '../errors.js';
import type { Circuit } from '../lib/circuit.js';
import type { Store } from './db.js';

export class StoreGate {
  /** Queries sent, and queries refused because the store was known down. */
  sent = 0;
  refused = 0;
  private readonly down = new AppError('SERVICE_UNAVAILABLE', FIXED_DETAIL.storeUnavailable, { retryAfterSec: 1 });

  constructor(private readonly store: Pick<Store, 'isUnavailable'>, readonly circuit: Circuit, private readonly now: () => number) {}

  run<T>(query: () => Promise<T>): Promise<T> {
    const passage = this.circuit.enter(this.now());
    if (passage === 'refuse') {
      this.refused++;
      return Promise.reject(this.down);
    }
    this.sent++;
    const probe = passage === 'probe';
    return query().then((value) => {
      this.circuit.success(probe);
      return value;
    }, (err: unknown) => {
      // A query the store refused (bad input, a constraint) still shows it answering.
      if (this.store.isUnavailable(err)) this.circuit.failure(this.now(), probe);
      else this.circuit.success(probe);
      throw err;
    });
  }
}
