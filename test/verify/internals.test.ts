// The verify answer's hand-written serializer against the schema, and the in-process limiter's
// rules (all-or-nothing, the shown limit, sweeping), without any I/O.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Ajv } from 'ajv';
import fastJson from 'fast-json-stringify';
import { VerifyAnswer } from '../../src/verify/routes.js';
import { serializeVerifyResult } from '../../src/verify/serialize.js';
import { digits } from '../../src/lib/digits.js';
import { VERIFY_CODES } from '../../src/verify/codes.js';
import type { VerifyResult } from '../../src/verify/verify.js';
import { MemoryRateLimiter, type LimitSubject } from '../../src/ratelimit/limiter.js';

describe('verify answer serializer', () => {
  const schemaSerializer = fastJson(VerifyAnswer as object) as (r: unknown) => string;
  const validate = new Ajv({ strict: false }).compile(VerifyAnswer);
  const text = fc.string({ unit: 'binary', maxLength: 40 });
  // Ids are Keyward's own: a prefix and 20 base62 characters.
  const id = (prefix: string) => fc.string({ unit: fc.constantFrom(...'0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'), minLength: 20, maxLength: 20 }).map((s) => `${prefix}_${s}`);
  const json = fc.jsonValue({ maxDepth: 3 });
  const result: fc.Arbitrary<VerifyResult> = fc.record({
    valid: fc.boolean(),
    code: fc.constantFrom(...VERIFY_CODES),
    keyId: id('key'),
    appId: id('app'),
    name: text,
    ownerId: fc.option(text, { nil: null }),
    environment: fc.constantFrom('live' as const, 'test' as const),
    permissions: fc.array(text, { maxLength: 4 }).map((a) => (Math.random() < 0.5 ? Object.freeze(a) : a)),
    resources: fc.array(text, { maxLength: 4 }),
    meta: fc.dictionary(text, json, { maxKeys: 4 }).map((m) => Object.freeze(m)),
    expiresAt: fc.option(fc.integer({ min: 0, max: 4_102_444_800_000 }).map((t) => new Date(t).toISOString()), { nil: null }),
    remaining: fc.option(fc.integer({ min: 0, max: 2 ** 40 }), { nil: null }),
    ratelimit: fc.record({
      limit: fc.integer({ min: 1, max: 2 ** 40 }),
      remaining: fc.integer({ min: 0, max: 2 ** 40 }),
      resetAt: fc.integer({ min: 0, max: 4_102_444_800_000 }).map((t) => new Date(t).toISOString()),
    }),
    // Named limits: names of their own pattern (letters, digits, `_ . -`).
    ratelimits: fc.array(fc.record({
      name: fc.string({ unit: fc.constantFrom(...'abcXYZ019_.-'), minLength: 1, maxLength: 12 }).map((n) => `n${n}`),
      limit: fc.integer({ min: 1, max: 2 ** 40 }),
      remaining: fc.integer({ min: 0, max: 2 ** 40 }),
      resetAt: fc.integer({ min: 0, max: 4_102_444_800_000 }).map((t) => new Date(t).toISOString()),
      exceeded: fc.boolean(),
    }), { maxLength: 4 }),
    identity: fc.record({ id: id('idt'), externalId: text, meta: fc.dictionary(text, json, { maxKeys: 3 }).map((m) => Object.freeze(m)) }),
  }, { requiredKeys: ['valid', 'code'] });

  it('writes what the schema serializer writes, for every shape of answer, and it validates', () => {
    fc.assert(fc.property(result, (r) => {
      const mine = serializeVerifyResult(r);
      const parsed: unknown = JSON.parse(mine);
      expect(parsed).toEqual(JSON.parse(schemaSerializer(r)));
      expect(validate(parsed), JSON.stringify(validate.errors)).toBe(true);
    }), { numRuns: 2000, seed: 11 });
  });

  it('serializes frozen lists once, but never caches a list that can still change', () => {
    const open = ['docs.read'];
    const r: VerifyResult = { valid: true, code: 'VALID', permissions: open, resources: Object.freeze(['a.com']) };
    expect(JSON.parse(serializeVerifyResult(r)).permissions).toEqual(['docs.read']);
    open.push('docs.write');
    expect(JSON.parse(serializeVerifyResult(r)).permissions).toEqual(['docs.read', 'docs.write']);
  });
});

describe('digits', () => {
  it('writes every integer as String does, across group boundaries and beyond', () => {
    const edges = [0, 9, 10, 99, 100, 999, 1000, 1001, 1010, 1100, 99_999, 100_000, 999_999, 1_000_000, 1_000_001, 1_000_000_000, Number.MAX_SAFE_INTEGER];
    for (const n of edges) expect(digits(n)).toBe(String(n));
    fc.assert(fc.property(fc.maxSafeNat(), (n) => digits(n) === String(n)), { numRuns: 5000, seed: 5 });
    // Not a count: left to String.
    for (const n of [-1, 1.5, NaN, Infinity, 2 ** 60]) expect(digits(n)).toBe(String(n));
  });
});

describe('in-process rate limiter', () => {
  const T0 = Date.UTC(2026, 0, 15, 12, 0, 0);
  const subject = (id: string, ownerId: string | null, keyLimit: number | null, ownerLimit: number | null): LimitSubject => ({
    id, appId: 'app_1', ownerId,
    ratelimit: keyLimit === null ? null : { limit: keyLimit, durationMs: 60_000 },
    ownerRatelimit: ownerLimit === null ? null : { limit: ownerLimit, durationMs: 60_000 },
  });

  it('counts a request against both windows, or against neither', () => {
    const limiter = new MemoryRateLimiter();
    const a = subject('key_a', 'cust', 10, 2);
    const b = subject('key_b', 'cust', 10, 2);
    expect(limiter.takeSync(a, T0)?.allowed).toBe(true);
    expect(limiter.takeSync(b, T0)?.allowed).toBe(true);
    // The owner is spent: a's own window must not be charged by the refusals.
    for (let i = 0; i < 5; i++) expect(limiter.takeSync(a, T0 + i)).toMatchObject({ allowed: false, limit: 2, remaining: 0 });
    const alone = { ...a, ownerRatelimit: null };
    expect(limiter.takeSync(alone, T0 + 10)).toMatchObject({ allowed: true, limit: 10, remaining: 8 });
    void limiter.close();
  });

  it('shows the limit with less left, and the refusing one when one refuses', () => {
    const limiter = new MemoryRateLimiter();
    const k = subject('key_c', null, 3, 100);
    expect(limiter.takeSync(k, T0)).toMatchObject({ allowed: true, limit: 3, remaining: 2 });
    const roomy = subject('key_d', null, 100, 3);
    expect(limiter.takeSync(roomy, T0)).toMatchObject({ allowed: true, limit: 3, remaining: 2 });
    limiter.takeSync(k, T0);
    limiter.takeSync(k, T0);
    expect(limiter.takeSync(k, T0)).toMatchObject({ allowed: false, limit: 3, remaining: 0, resetAt: T0 + 60_000 });
    void limiter.close();
  });

  it('a key without an owner is its own owner, apart from other keys; no limits means no decision', () => {
    const limiter = new MemoryRateLimiter();
    expect(limiter.takeSync(subject('key_e', null, null, 1), T0)?.allowed).toBe(true);
    expect(limiter.takeSync(subject('key_f', null, null, 1), T0)?.allowed).toBe(true);
    expect(limiter.takeSync(subject('key_e', null, null, 1), T0)?.allowed).toBe(false);
    expect(limiter.takeSync(subject('key_g', null, null, null), T0)).toBeUndefined();
    void limiter.close();
  });

  it('slides: half of the previous window still counts half-way through the next', () => {
    const limiter = new MemoryRateLimiter();
    const k = subject('key_h', null, 10, null);
    const start = T0 - (T0 % 60_000);
    for (let i = 0; i < 10; i++) limiter.takeSync(k, start + i);
    let later = 0;
    for (let i = 0; i < 10; i++) if (limiter.takeSync(k, start + 90_000 + i)?.allowed) later++;
    expect(later).toBe(5);
    void limiter.close();
  });

  it('sweeps windows that can no longer matter, and only those', () => {
    const limiter = new MemoryRateLimiter();
    limiter.takeSync(subject('key_i', 'old', 5, 5), T0);
    limiter.takeSync(subject('key_j', 'new', 5, 5), T0 + 120_000);
    expect(limiter.size).toBe(4);
    limiter.sweep(T0 + 180_000);
    expect(limiter.size).toBe(2);
    void limiter.close();
  });
});
