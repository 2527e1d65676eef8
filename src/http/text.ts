// Request text that no store keeps faithfully: NUL (PostgreSQL refuses it) and unpaired UTF-16
// surrogates (stored as U+FFFD, so the stored value would differ from the one acknowledged), and
// JSON nested deeper than any field of the API needs. Found before validation, answered with 400.
import { invalid } from '../errors.js';

/** Deeper than any schema of the API goes (meta included): refused before anything recurses. */
const MAX_JSON_DEPTH = 16;

const BAD_TEXT = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

const problemOf = (text: string): string | null => (BAD_TEXT.test(text) ? (text.includes('\u0000') ? 'must not contain NUL characters' : 'must be valid Unicode (an unpaired surrogate was sent)') : null);

/** Throws a 400 naming the first bad field (never quoting it); walks without recursion. */
export function checkRequestText(value: unknown, context: string): void {
  const stack: [unknown, string, number][] = [[value, context, 0]];
  while (stack.length > 0) {
    const [v, path, depth] = stack.pop()!;
    if (typeof v === 'string') {
      const problem = problemOf(v);
      if (problem) throw invalid(path, problem);
      continue;
    }
    if (v === null || typeof v !== 'object') continue;
    if (depth >= MAX_JSON_DEPTH) throw invalid(path, `is nested deeper than ${MAX_JSON_DEPTH} levels`);
    if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push([v[i], `${path}/${i}`, depth + 1]);
      continue;
    }
    for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
      const keyProblem = problemOf(k);
      if (keyProblem) throw invalid(path, `has a field name that ${keyProblem}`);
      stack.push([child, `${path}/${k}`, depth + 1]);
    }
  }
}
