// Login defence in layers, every one charged before the password is checked (one atomic increment
// each), so parallel guesses cannot slip past a count. Per 15-minute window:
// - per email and address (10 by default): one address guessing one account; past 3 failures each
//   further attempt waits, doubling from 1 s to a minute;
// - per address across all emails (30), an address being an IPv4 address or an IPv6 /64
//   (src/auth/address.ts): one address trying many accounts, or made-up emails to burn CPU;
// - per email from addresses unknown to that account (100): many addresses guessing one account.
// An address the account logged in from (or ran setup or accepted an invitation from) is known to
// it, in the store; attempts from it skip the last two layers, so an attacker elsewhere cannot lock
// the owner out. A success gives back what its own attempt charged. With Redis the counts are
// shared by every node; without it (or while it fails) they are local.
import type { Redis } from 'ioredis';
import { AppError } from '../errors.js';
import { sha256Hex } from '../lib/hash.js';
import { MINUTE } from '../lib/time.js';

const LOGIN_WINDOW_MS = 15 * MINUTE;
/** Failures from one address for one email before each further attempt must wait: 1 s, 2 s, 4 s … up to a minute. */
const FREE_FAILURES = 3;
const MAX_DELAY_MS = 60_000;

/** The wait after the `failures`-th failure from one address for one email. */
const delayAfter = (failures: number): number => (failures < FREE_FAILURES ? 0 : Math.min(MAX_DELAY_MS, 1000 * 2 ** (failures - FREE_FAILURES)));

export interface LoginLimits {
  /** Attempts per window for one email from one address. */
  maxPerEmailAddress: number;
  /** Attempts per window from one address across all emails (known addresses aside). */
  maxPerAddress: number;
  /** Attempts per window for one email from addresses unknown to it. */
  maxPerEmail: number;
}

/** Counters with a window: the piece that differs between memory and Redis. */
export interface CounterStore {
  /** Adds one and answers the new count and how long until the window resets. */
  incr(name: string, windowMs: number): Promise<{ count: number; resetInMs: number }>;
  /** Takes one back, if the window still exists. */
  decr(name: string): Promise<void>;
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

  async decr(name: string) {
    const slot = this.counts.get(name);
    if (slot && slot.resetAt > this.now() && slot.count > 0) slot.count--;
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
    for (const [name, until] of this.marks) if (until <= now) this.marks.delete(name);
  }
}

/** INCR and the window's expiry in one script: the first attempt of a window sets it. */
const INCR = `local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
return {n, ttl}`;
/** DECR only a live window: a DECR of a missing key would make one without expiry. */
const DECR = `if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('GET', KEYS[1])) > 0 then redis.call('DECR', KEYS[1]) end
return 0`;

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

  async decr(name: string) {
    await this.fallback.decr(name);
    if (this.useRedis()) await this.redis.eval(DECR, 1, this.prefix + name).catch(() => 0);
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
  /** The password was right: this pair's failures are forgotten, this attempt's charges given back. */
  succeeded(): Promise<void>;
  /** The password was wrong: the next attempt from this address waits, longer each time. */
  failed(): Promise<void>;
  /** No password was checked (no capacity to check it): every charge of this attempt is given back. */
  refund(): Promise<void>;
}

export interface LoginAttempt {
  email: string;
  /** The address's network (src/auth/address.ts). */
  network: string;
  /** Whether the account of this email has logged in from this network before. */
  known: boolean;
}

export class LoginThrottle {
  constructor(private readonly counters: CounterStore, readonly limits: LoginLimits) {}

  /** Charges one attempt, or refuses (429) when a layer is exhausted; call before the check. */
  async charge({ email, network, known }: LoginAttempt): Promise<LoginTicket> {
    // Hashed so that neither Redis nor memory holds email addresses in clear.
    const who = sha256Hex(email).slice(0, 32);
    const where = sha256Hex(network).slice(0, 32);
    const pair = `login:f:${who}:${where}`;
    const cooldown = `login:d:${who}:${where}`;
    const refuse = (resetInMs: number) => new AppError('RATE_LIMITED', 'Too many failed logins; try again later', { retryAfterSec: Math.max(1, Math.ceil(resetInMs / 1000)) });
    if (await this.counters.has(cooldown)) throw refuse(1000);
    const charged: string[] = [];
    const perPair = await this.counters.incr(pair, LOGIN_WINDOW_MS);
    charged.push(pair);
    if (perPair.count > this.limits.maxPerEmailAddress) throw refuse(perPair.resetInMs);
    if (!known) {
      // The address first: attempts it refuses do not eat into the email's budget.
      const perAddress = await this.counters.incr(`login:a:${where}`, LOGIN_WINDOW_MS);
      charged.push(`login:a:${where}`);
      if (perAddress.count > this.limits.maxPerAddress) throw refuse(perAddress.resetInMs);
      const perEmail = await this.counters.incr(`login:e:${who}`, LOGIN_WINDOW_MS);
      charged.push(`login:e:${who}`);
      if (perEmail.count > this.limits.maxPerEmail) throw refuse(perEmail.resetInMs);
    }
    const giveBack = async (names: string[]) => {
      for (const name of names) await this.counters.decr(name);
    };
    return {
      succeeded: async () => {
        await this.counters.del(pair);
        await giveBack(charged.slice(1));
      },
      failed: async () => {
        const wait = delayAfter(perPair.count);
        if (wait > 0) await this.counters.mark(cooldown, wait);
      },
      refund: () => giveBack(charged),
    };
  }
}

/**
 * Password hashes in flight on this node, bounded: scrypt at the default cost holds 128 MiB and a
 * thread-pool thread for most of a second, so a flood of attempts past the counters (many
 * addresses, made-up emails) must not queue without end. Beyond the bound an attempt is refused at
 * once (503, Retry-After); `reserved` slots are only for attempts from an address known to the
 * account, so its owner gets in while strangers fill the rest.
 */
export class HashSlots {
  private inFlight = 0;

  constructor(readonly total: number, readonly reserved: number) {}

  /** A release function, or null when no slot is free for this kind of attempt. */
  tryAcquire(known: boolean): (() => void) | null {
    if (this.inFlight >= (known ? this.total : this.total - this.reserved)) return null;
    this.inFlight++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inFlight--;
    };
  }

  get busy(): number {
    return this.inFlight;
  }
}
