// The wildcard matcher of gateway rules: right on every pattern (checked against a reference),
// and linear in the path whatever the pattern. Nothing is timed: the matcher counts its steps.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileRules, permissionsFor } from '../../src/apps/gateway-rules.js';
import { compilePathPattern, matchPathPattern, type StepMeter } from '../../src/lib/path-match.js';

/** The textbook definition, exponential at worst: a reference for small inputs only. */
function reference(pattern: string, text: string): boolean {
  const memo = new Map<string, boolean>();
  const go = (p: number, t: number): boolean => {
    const id = `${p},${t}`;
    if (memo.has(id)) return memo.get(id)!;
    let result: boolean;
    if (p === pattern.length) result = t === text.length;
    else if (pattern[p] === '*') result = go(p + 1, t) || (t < text.length && go(p, t + 1));
    else result = t < text.length && pattern[p] === text[t] && go(p + 1, t + 1);
    memo.set(id, result);
    return result;
  };
  return go(0, 0);
}

const steps = (pattern: string, text: string): { matched: boolean; steps: number } => {
  const meter: StepMeter = { steps: 0 };
  const matched = matchPathPattern(compilePathPattern(pattern), text, meter);
  return { matched, steps: meter.steps };
};

describe('gateway rule matcher', () => {
  it('agrees with the definition of `*` on random patterns and paths', () => {
    const alphabet = fc.constantFrom('a', 'b', '/', '*');
    fc.assert(fc.property(
      fc.array(alphabet, { maxLength: 12 }).map((a) => a.join('')),
      fc.array(fc.constantFrom('a', 'b', '/'), { maxLength: 16 }).map((a) => a.join('')),
      (pattern, text) => {
        expect(matchPathPattern(compilePathPattern(pattern), text), `${pattern} ~ ${text}`).toBe(reference(pattern, text));
      },
    ), { numRuns: 5000, seed: 29 });
  });

  it('the step count on a 64 KB path stays linear, for the patterns that stalled the regex matcher', () => {
    const cases: [string, (n: number) => string, boolean][] = [
      // The two: a 2.4 KB path stalled the node 1.4 s, a 3 KB one never answered.
      ['/files/*/*/*.pdf', (n) => `/files/${'/'.repeat(n - 7)}`, false],
      ['/*/*/*/*/*/*/x', (n) => '/'.repeat(n), false],
      // Repeats that make a naive search backtrack at every position.
      ['/*aaaaaaab*aaaaaaab*x', (n) => `/${'a'.repeat(n - 1)}`, false],
      [`/${'*a'.repeat(8)}b`, (n) => `/${'a'.repeat(n - 1)}`, false],
      [`/${'*a'.repeat(8)}*`, (n) => `/${'a'.repeat(n - 1)}`, true],
      ['*', (n) => 'x'.repeat(n), true],
    ];
    for (const [pattern, path, matches] of cases) {
      const small = steps(pattern, path(32 * 1024));
      const large = steps(pattern, path(64 * 1024));
      expect(large.matched, pattern).toBe(matches);
      // At most a few steps per character, and twice the path costs about twice the steps.
      expect(large.steps, pattern).toBeLessThanOrEqual(3 * 64 * 1024);
      expect(large.steps / Math.max(1, small.steps), pattern).toBeLessThan(2.1);
    }
    // A match found at the far end costs no more.
    const far = steps('/*/*/*.pdf', `/${'a/'.repeat(32 * 1024 - 3)}x.pdf`);
    expect(far.matched).toBe(true);
    expect(far.steps).toBeLessThanOrEqual(3 * 64 * 1024);
  });

  it('rules: every match adds its permissions, GET covers HEAD, case is ignored, escapes in rules read like paths', () => {
    const rules = compileRules([
      { path: '/docs/*', permissions: ['docs.read'] },
      { methods: ['PUT', 'DELETE'], path: '/docs/*', permissions: ['docs.write'] },
      { methods: ['GET'], path: '/Reports/*', permissions: ['reports'] },
      { path: '/%61pi/*', permissions: ['api'] },
    ]);
    expect(permissionsFor(rules, 'DELETE', '/docs/1')).toEqual(['docs.read', 'docs.write']);
    expect(permissionsFor(rules, 'GET', '/docs/1')).toEqual(['docs.read']);
    expect(permissionsFor(rules, 'HEAD', '/reports/q')).toEqual(['reports']);
    expect(permissionsFor(rules, 'POST', '/reports/q')).toBeNull();
    expect(permissionsFor(rules, 'GET', '/api/x')).toEqual(['api']);
    expect(permissionsFor(null, 'GET', '/docs/1')).toBeNull();
  });
});
