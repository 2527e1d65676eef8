// Wildcard path patterns (`*` matches any run of characters, `/` included) matched in time linear
// in the path, whatever the pattern: no regular expression is ever built from a pattern.
//
// A pattern `p0*p1*…*pk` matches a text when the text starts with p0, ends with pk, and p1 … pk-1
// occur in that order, without overlapping, in between. Taking the leftmost occurrence of each
// middle part is always right (a later one only leaves less room for the rest), so each part is
// searched once, with Knuth-Morris-Pratt, from where the previous one ended: every character of
// the text is looked at a bounded number of times, however many wildcards there are.

/** Counts the character comparisons of a match, for tests that hold matching linear. */
export interface StepMeter {
  steps: number;
}

interface Part {
  text: string;
  /** KMP failure function: the length of the longest proper border of text[0..i]. */
  border: Int32Array;
}

/** A compiled pattern: its parts between wildcards, with their search tables. */
export interface PathPattern {
  readonly source: string;
  /** No wildcard: the text must equal `head`. */
  readonly exact: boolean;
  readonly head: string;
  readonly tail: string;
  readonly middle: readonly Part[];
  /** The shortest text that can match. */
  readonly minLength: number;
}

function borders(text: string): Int32Array {
  const border = new Int32Array(text.length);
  let k = 0;
  for (let i = 1; i < text.length; i++) {
    while (k > 0 && text.charCodeAt(i) !== text.charCodeAt(k)) k = border[k - 1]!;
    if (text.charCodeAt(i) === text.charCodeAt(k)) k++;
    border[i] = k;
  }
  return border;
}

/** Compiles a pattern as written: callers lower-case both sides for a case-insensitive match. */
export function compilePathPattern(source: string): PathPattern {
  const parts = source.split('*');
  if (parts.length === 1) return { source, exact: true, head: source, tail: '', middle: [], minLength: source.length };
  const head = parts[0]!;
  const tail = parts[parts.length - 1]!;
  // Empty middle parts (`**`) match anywhere: nothing to search for.
  const middle = parts.slice(1, -1).filter((p) => p !== '').map((text) => ({ text, border: borders(text) }));
  return { source, exact: false, head, tail, middle, minLength: head.length + tail.length + middle.reduce((n, p) => n + p.text.length, 0) };
}

/** The end of the leftmost occurrence of `part` in text[from, to), or -1. */
function find(part: Part, text: string, from: number, to: number, meter: StepMeter | undefined): number {
  const p = part.text;
  const border = part.border;
  let k = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    while (k > 0 && c !== p.charCodeAt(k)) {
      k = border[k - 1]!;
      if (meter) meter.steps++;
    }
    if (meter) meter.steps++;
    if (c === p.charCodeAt(k) && ++k === p.length) return i + 1;
  }
  return -1;
}

export function matchPathPattern(pattern: PathPattern, text: string, meter?: StepMeter): boolean {
  if (pattern.exact) {
    if (meter) meter.steps += Math.min(text.length, pattern.head.length) + 1;
    return text === pattern.head;
  }
  if (text.length < pattern.minLength) return false;
  if (meter) meter.steps += pattern.head.length + pattern.tail.length;
  if (!text.startsWith(pattern.head) || !text.endsWith(pattern.tail)) return false;
  // Middle parts must fit between the head and the tail.
  let at = pattern.head.length;
  const end = text.length - pattern.tail.length;
  for (const part of pattern.middle) {
    at = find(part, text, at, end, meter);
    if (at === -1) return false;
  }
  return true;
}

/** How many wildcards a pattern holds. */
export function wildcardCount(source: string): number {
  let n = 0;
  for (let i = 0; i < source.length; i++) if (source.charCodeAt(i) === 42) n++;
  return n;
}
