// The Idempotency-Key header on creates: a repeat with the same key and body within 24 hours
// creates nothing and answers 409 ALREADY_CREATED with the created object's id (its secret is
// never shown twice); the same key with another body answers 422 IDEMPOTENCY_KEY_REUSED.
import type { FastifyRequest } from 'fastify';
import { AppError, invalid } from '../errors.js';
import { sha256Hex } from '../lib/hash.js';
import { DAY } from '../lib/time.js';
import type { Clock } from '../lib/clock.js';
import type { IdempotencyClaim, Store } from '../store/db.js';
import { bearerToken } from './headers.js';

const IDEMPOTENCY_WINDOW_MS = DAY;
const KEY = /^[\x21-\x7e]{1,255}$/;

export class Idempotency {
  constructor(private readonly store: Store, private readonly clock: Clock) {}

  /**
   * Runs a create once per (caller, path, Idempotency-Key); without the header, just runs it. The
   * create hands the claim to its store transaction (`made(claim, id)`), which records it.
   */
  async run<T>(req: FastifyRequest, create: (claim: IdempotencyClaim | undefined) => Promise<T>): Promise<T> {
    const header = req.headers['idempotency-key'];
    if (header === undefined) return create(undefined);
    if (typeof header !== 'string' || !KEY.test(header)) throw invalid('header/idempotency-key', 'must be 1 to 255 visible ASCII characters');
    const now = this.clock.now();
    // Scoped to the credential and the path: two callers, or two apps, never share a key.
    const scope = sha256Hex(`${sha256Hex(bearerToken(req) ?? '')}\u0000${req.method} ${req.url.split('?')[0]}`);
    const requestHash = sha256Hex(JSON.stringify(req.body ?? null));
    const answerFor = async (): Promise<never> => {
      const seen = await this.store.repos.idempotency.find(scope, header, now - IDEMPOTENCY_WINDOW_MS);
      if (!seen) throw new AppError('CONFLICT', 'A request with this Idempotency-Key is in progress; retry shortly');
      if (seen.request_hash !== requestHash) throw new AppError('IDEMPOTENCY_KEY_REUSED', 'This Idempotency-Key was used with another request body');
      throw new AppError('ALREADY_CREATED', 'This request was already made with this Idempotency-Key; nothing new was created', { extra: { id: seen.resource_id } });
    };
    if (await this.store.repos.idempotency.find(scope, header, now - IDEMPOTENCY_WINDOW_MS)) return answerFor();
    try {
      return await create({ scope, key: header, requestHash, at: now });
    } catch (err) {
      // Two requests with one key at once: the loser's transaction rolled back on the key.
      if (this.store.isUniqueViolation(err)) return answerFor();
      throw err;
    }
  }
}
