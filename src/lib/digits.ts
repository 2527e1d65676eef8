// Integers as decimal text without V8's number-to-string cache, for counts that change per request.

/** "000" … "999", for the digits after the first group of a count. */
const GROUPS = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
/** "0" … "999", for the first group. */
const LEADING = Array.from({ length: 1000 }, (_, i) => String(i));

/**
 * A non-negative integer's decimal digits, built from the tables above rather than by `String(n)`
 * (anything else goes to `String`).
 * V8 caches the strings it makes from numbers in a table that lives in the old generation, and
 * everything that table points to survives the young generation's collections: a count that is new
 * on every request (a busy owner's remaining requests) promoted every answer's digits, 88 KB per
 * collection against 9.5 with counts that repeat (`--trace-gc-nvp`), and the old generation then
 * filled until a full collection stopped the event loop. These strings die young.
 */
export function digits(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0) return String(n);
  if (n < 1000) return LEADING[n]!;
  let s = GROUPS[n % 1000]!;
  n = Math.floor(n / 1000);
  while (n >= 1000) {
    s = GROUPS[n % 1000]! + s;
    n = Math.floor(n / 1000);
  }
  return LEADING[n]! + s;
}
