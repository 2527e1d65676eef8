// Hashing primitives: SHA-256 for keys and tokens, scrypt for passwords, constant-time compare.
import { hash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** One-shot hashing (crypto.hash): about 3× cheaper than a Hash object, and verify does one per call. */
export function sha256Hex(value: string): string {
  return hash('sha256', value, 'hex');
}

const KEY_LENGTH = 32;
const R = 8;
const P = 1;
/** scrypt needs 128·N·r bytes (N = 2^17: 128 MiB); twice that is allowed. */
const maxmemFor = (n: number): number => 2 * 128 * n * R;

function scrypt(password: string, salt: Buffer, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCb(password.normalize('NFKC'), salt, KEY_LENGTH, opts, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** How many password checks ran: lets tests see that every login attempt pays for one. */
export const passwordChecks = { count: 0 };

/** The largest N a stored hash may ask for (2^20 = 1 GiB): a forged row must not exhaust memory. */
const MAX_STORED_N = 2 ** 20;

/**
 * scrypt with N = 2^cost (OWASP: at least 2^17 with r = 8). Hashes are self-describing
 * (scrypt$N$r$p$salt$hash), so older, cheaper ones still verify and are replaced on the next login.
 */
export class PasswordHasher {
  private readonly n: number;
  private dummy: Promise<string> | undefined;

  constructor(cost: number) {
    this.n = 2 ** cost;
  }

  async hash(password: string): Promise<string> {
    const salt = randomBytes(16);
    const key = await scrypt(password, salt, { N: this.n, r: R, p: P, maxmem: maxmemFor(this.n) });
    return ['scrypt', this.n, R, P, salt.toString('base64url'), key.toString('base64url')].join('$');
  }

  async verify(password: string, stored: string): Promise<boolean> {
    passwordChecks.count++;
    const [scheme, n, r, p, salt, hash] = stored.split('$');
    if (scheme !== 'scrypt' || !n || !r || !p || !salt || !hash || Number(n) > MAX_STORED_N) return false;
    const expected = Buffer.from(hash, 'base64url');
    const actual = await scrypt(password, Buffer.from(salt, 'base64url'), { N: Number(n), r: Number(r), p: Number(p), maxmem: 2 * 128 * Number(n) * Number(r) });
    return actual.length === expected.length && timingSafeEqual(actual, expected);
  }

  /** Whether a stored hash is cheaper than this hasher's: rehash it after a good login. */
  needsRehash(stored: string): boolean {
    return Number(stored.split('$')[1]) < this.n;
  }

  /**
   * A hash of a password nobody knows, at this hasher's cost: an unknown email is checked against
   * it, so it costs exactly what a known one does.
   */
  dummyHash(): Promise<string> {
    this.dummy ??= this.hash(randomBytes(18).toString('base64url'));
    return this.dummy;
  }
}
