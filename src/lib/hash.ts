// Hashing primitives: SHA-256 for keys and tokens, scrypt for passwords, constant-time compare.
import { hash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** One-shot hashing (crypto.hash): about 3× cheaper than a Hash object, and verify does one per call. */
export function sha256Hex(value: string): string {
  return hash('sha256', value, 'hex');
}

const KEY_LENGTH = 32;
const R = 8;
const P = 1;

function scrypt(password: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password.normalize('NFKC'), salt, KEY_LENGTH, opts, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** How many password checks ran: lets tests see that every login attempt pays for one. */
export const passwordChecks = { count: 0 };

/** The most memory a stored hash may ask for (128·N·r = 1 GiB): a forged row must not exhaust memory. */
const MAX_STORED_NR = 2 ** 23;

/**
 * One scrypt run and why it ran: `hash` (a new password), `verify` (against a stored hash),
 * `dummy` (an unknown account), `pad` (a failed check of a cheaper stored hash, topped up).
 */
export interface ScryptRun {
  n: number;
  r: number;
  p: number;
  purpose: 'hash' | 'verify' | 'dummy' | 'pad';
}

interface Parsed {
  n: number;
  r: number;
  p: number;
  salt: Buffer;
  hash: Buffer;
}

function parse(stored: string): Parsed | null {
  const [scheme, n, r, p, salt, hash, extra] = stored.split('$');
  if (scheme !== 'scrypt' || !n || !r || !p || !salt || !hash || extra !== undefined) return null;
  const [N, R_, P_] = [Number(n), Number(r), Number(p)];
  if (!Number.isSafeInteger(N) || !Number.isSafeInteger(R_) || !Number.isSafeInteger(P_)) return null;
  if (N < 2 || (N & (N - 1)) !== 0 || R_ < 1 || P_ < 1 || P_ > 16 || N * R_ > MAX_STORED_NR) return null;
  return { n: N, r: R_, p: P_, salt: Buffer.from(salt, 'base64url'), hash: Buffer.from(hash, 'base64url') };
}

/**
 * scrypt with N = 2^cost (OWASP: at least 2^17 with r = 8). Hashes are self-describing
 * (scrypt$N$r$p$salt$hash), so hashes made at another cost still verify and are replaced at the
 * next good login. Whatever the account's state, a failed check runs one scrypt at this hasher's
 * cost: an unknown email runs it against a dummy, and a cheaper stored hash is topped up with one,
 * so the time of a refusal does not tell which accounts exist or how old their hash is.
 */
export class PasswordHasher {
  private readonly n: number;
  /** Random salt and random "hash": verifying against it costs a full scrypt and never succeeds. */
  private readonly dummy: Parsed;
  private readonly observers = new Set<(run: ScryptRun) => void>();

  constructor(cost: number) {
    this.n = 2 ** cost;
    this.dummy = { n: this.n, r: R, p: P, salt: randomBytes(16), hash: randomBytes(KEY_LENGTH) };
  }

  /** Sees every scrypt run (parameters and purpose); returns the unsubscribe. */
  observe(observer: (run: ScryptRun) => void): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  async hash(password: string): Promise<string> {
    const salt = randomBytes(16);
    const key = await this.run(password, salt, this.n, R, P, 'hash');
    return ['scrypt', this.n, R, P, salt.toString('base64url'), key.toString('base64url')].join('$');
  }

  /**
   * Checks a password against an account's stored hash, or against nothing (no such account):
   * false then, at the cost a real check has.
   */
  async check(password: string, stored: string | undefined): Promise<boolean> {
    passwordChecks.count++;
    const parsed = stored === undefined ? null : parse(stored);
    if (!parsed) {
      await this.compare(password, this.dummy, 'dummy');
      return false;
    }
    const ok = await this.compare(password, parsed, 'verify');
    // A cheaper hash refused quickly would tell that this account exists and has not logged in
    // since the cost was raised; the top-up makes it cost what an unknown email costs.
    if (!ok && parsed.n < this.n) await this.compare(password, this.dummy, 'pad');
    return ok;
  }

  /** Whether a stored hash has other parameters than this hasher's: rehash it after a good login. */
  needsRehash(stored: string): boolean {
    const parsed = parse(stored);
    return !parsed || parsed.n !== this.n || parsed.r !== R || parsed.p !== P;
  }

  private async compare(password: string, stored: Parsed, purpose: ScryptRun['purpose']): Promise<boolean> {
    const actual = await this.run(password, stored.salt, stored.n, stored.r, stored.p, purpose);
    return actual.length === stored.hash.length && timingSafeEqual(actual, stored.hash);
  }

  private run(password: string, salt: Buffer, n: number, r: number, p: number, purpose: ScryptRun['purpose']): Promise<Buffer> {
    for (const observer of this.observers) observer({ n, r, p, purpose });
    return scrypt(password, salt, { N: n, r, p, maxmem: 2 * 128 * n * r });
  }
}
