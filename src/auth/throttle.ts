// Login throttling. Each attempt is charged before the password is checked (one atomic increment),
// so parallel guesses cannot slip past the count. Two ceilings per window:
// - per email and address (10): one address guessing one account;
// After 3 failures from one address, each further attempt must wait, doubling from 1 s to a minute.
// - per email (100), from addresses that have not logged in to that account before: many addresses
//   guessing one account. An address the owner logged in from is exempt, so an attacker elsewhere
//   cannot lock the owner out.
// With Redis the counts are shared by every node; without it (or while it fails) they are local.
import type { Redis } from 'ioredis';
import { AppError } from '../errors.js';
import { sha256Hex } from '../lib/hash.js';
import { DAY, MINUTE } from '../lib/time.js';

export const LOGIN_WINDOW_MS = 15 * MINUTE;
export const MAX_FAILURES_PER_ADDRESS = 10;
export const MAX_FAILURES_PER_EMAIL = 100;
/** Failures from one address before each further attempt must wait: 1 s, 2 s, 4 s … up to a minute. */
const FREE_FAILURES = 3;
const MAX_DELAY_MS = 60_000;

/** The wait after the `failures`-th failure from one address for one email. */
export const delayAfter = (failures: number): number => (failures < FREE_FAILURES ? 0 : Math.min(MAX_DELAY_MS, 1000 * 2 ** (failures - FREE_FAILURES)));
/** How long an address that logged in stays exempt from the per-email ceiling. */
const KNOWN_ADDRESS_MS = 30 * DAY;

/** Counters with a window: the piece that differs between memory and Redis. */
export interface CounterStore {
  /** Adds one and answers the new count and how long until the window resets. */
  incr(name: string, windowMs: number): Promise<{ count: number; resetInMs: number }>;
  del(name: string): Promise<void>;
  mark(name: string, ttlMs: number): Promise<void>;
  has(name: string): Promise<boolean>;
}

export class MemoryCounters implements CounterStore {
  private readonly counts = new Map<string, { count: number; resetAt: number }>();
  private readonly marks = new Map<string, number>();

  constructor(private readonly now: () => number) {}

  async incr(name: string, windowMs: number) {
    const now = this.now();
    this.sweep(now);
    let slot = this.counts.get(name);
    if (!slot || slot.resetAt <= now) {
      slot = { count: 0, resetAt: now + windowMs };
      this.counts.set(name, slot);
    }
    slot.count++;
    return { count: slot.count, resetInMs: slot.resetAt - now };
  }

  async del(name: string) {
    this.counts.delete(name);
  }

  async mark(name: string, ttlMs: number) {
    this.marks.set(name, this.now() + ttlMs);
  }

  async has(name: string) {
    const until = this.marks.get(name);
    return until !== undefined && until > this.now();
  }

  private sweep(now: number) {
    if (this.counts.size < 10_000) return;
    for (const [name, slot] of this.counts) if (slot.resetAt <= now) this.counts.delete(name);
  }
}

/** INCR and the window's expiry in one script: the first attempt of a window sets it. */
const INCR = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
return {n, ttl}`;

export class RedisCounters implements CounterStore {
  constructor(private readonly redis: Redis, private readonly prefix: string, private readonly fallback: CounterStore) {}

  private useRedis(): boolean {
    return this.redis.status === 'ready';
  }

  async incr(name: string, windowMs: number) {
    if (!this.useRedis()) return this.fallback.incr(name, windowMs);
    try {
      const [count, ttl] = (await this.redis.eval(INCR, 1, this.prefix + name, windowMs)) as [number, number];
      return { count, resetInMs: ttl > 0 ? ttl : windowMs };
    } catch {
      return this.fallback.incr(name, windowMs);
    }
  }

  async del(name: string) {
    await this.fallback.del(name);
    if (this.useRedis()) await this.redis.del(this.prefix + name).catch(() => 0);
  }

  async mark(name: string, ttlMs: number) {
    await this.fallback.mark(name, ttlMs);
    if (this.useRedis()) await this.redis.set(this.prefix + name, '1', 'PX', ttlMs).catch(() => null);
  }

  async has(name: string) {
    if (await this.fallback.has(name)) return true;
    if (!this.useRedis()) return false;
    return (await this.redis.exists(this.prefix + name).catch(() => 0)) === 1;
  }
}

export interface LoginTicket {
  /** The password was right: the address's failures are forgotten and the address is known. */
  succeeded(): Promise<void>;
  /** The password was wrong: the next attempt from this address waits, longer each time. */
  failed(): Promise<void>;
}

export class LoginThrottle {
  constructor(private readonly counters: CounterStore) {}

  /** Charges one attempt, or refuses (429) when a ceiling is reached; call before the check. */
  async charge(email: string, ip: string | null): Promise<LoginTicket> {
    // Hashed so that neither Redis nor memory holds email addresses in clear.
    const who = sha256Hex(email).slice(0, 32);
    const where = ip ?? 'unknown';
    const pair = `login:f:${who}:${where}`;
    const known = `login:k:${who}:${where}`;
    const refuse = (resetInMs: number) => new AppError('RATE_LIMITED', 'Too many failed logins; try again later', { retryAfterSec: Math.max(1, Math.ceil(resetInMs / 1000)) });
    const cooldown = `login:d:${who}:${where}`;
    if (await this.counters.has(cooldown)) throw refuse(1000);
    const perAddress = await this.counters.incr(pair, LOGIN_WINDOW_MS);
    if (perAddress.count > MAX_FAILURES_PER_ADDRESS) throw refuse(perAddress.resetInMs);
    if (!(await this.counters.has(known))) {
      const perEmail = await this.counters.incr(`login:e:${who}`, LOGIN_WINDOW_MS);
      if (perEmail.count > MAX_FAILURES_PER_EMAIL) throw refuse(perEmail.resetInMs);
    }
    return {
      succeeded: async () => {
        await this.counters.del(pair);
        await this.counters.mark(known, KNOWN_ADDRESS_MS);
      },
      failed: async () => {
        const wait = delayAfter(perAddress.count);
        if (wait > 0) await this.counters.mark(cooldown, wait);
      },
    };
  }
}
