// The key format and the pure rate-limit decision, without any I/O.
import { describe, expect, it } from 'vitest';
import { checksum, generateKey, parseKey } from '../../src/lib/key-format.js';
import { decideRateLimit } from '../../src/ratelimit/decide.js';
import { parseIpEntry } from '../../src/lib/ip.js';

describe('key format', () => {
  it('generates <prefix>_<env>_<32 random><6 checksum> and parses it back', () => {
    const { plaintext, start } = generateKey('acme', 'test');
    expect(plaintext).toMatch(/^acme_test_[0-9A-Za-z]{38}$/);
    expect(start).toBe(plaintext.slice(0, 14));
    expect(parseKey(plaintext)).toEqual({ prefix: 'acme', environment: 'test' });
    expect(checksum(plaintext.slice(0, -6))).toBe(plaintext.slice(-6));
  });

  it('rejects any single-character change', () => {
    const { plaintext } = generateKey('acme', 'live');
    for (let i = 0; i < plaintext.length; i++) {
      const c = plaintext[i] === 'x' ? 'y' : 'x';
      expect(parseKey(plaintext.slice(0, i) + c + plaintext.slice(i + 1)), `position ${i}`).toBeNull();
    }
  });

  it('is unique and uses the whole alphabet', () => {
    const seen = new Set<string>();
    const chars = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const { plaintext } = generateKey('kk', 'live');
      seen.add(plaintext);
      for (const ch of plaintext.slice(8, 40)) chars.add(ch);
    }
    expect(seen.size).toBe(2000);
    expect(chars.size).toBe(62);
  });
});

describe('sliding-window decision', () => {
  const spec = { bucket: 'b', limit: 10, durationMs: 60_000 };
  it('allows exactly the limit in a window and weights the previous window', () => {
    let state;
    let allowed = 0;
    for (let i = 0; i < 15; i++) {
      const r = decideRateLimit(state, spec, 60_000 * 10 + i);
      if (r.decision.allowed) allowed++;
      state = r.next;
    }
    expect(allowed).toBe(10);
    // Half-way through the next window, half of the previous window still counts: 5 more allowed.
    let later = 0;
    for (let i = 0; i < 10; i++) {
      const r = decideRateLimit(state, spec, 60_000 * 11 + 30_000 + i);
      if (r.decision.allowed) later++;
      state = r.next;
    }
    expect(later).toBe(5);
  });
});

describe('IP entries', () => {
  it('accepts canonical addresses and CIDRs only', () => {
    for (const ok of ['10.0.0.1', '10.0.0.0/8', '0.0.0.0/0', '::1', '2001:db8::/32', '::ffff:10.0.0.0/104']) expect(parseIpEntry(ok), ok).not.toBeNull();
    for (const bad of ['10.0.0', '10.0.0.0/33', '010.0.0.1', '0x0a.0.0.1', '2001:db8::/129', 'localhost', '10.0.0.0/', '10.0.0.0/8/8']) expect(parseIpEntry(bad), bad).toBeNull();
  });
});
