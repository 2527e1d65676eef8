// The path of a request as every router reads it, or the reason it cannot be read so.
//
// Upstream routers disagree on many spellings of a path: Fastify decodes `%61` before routing,
// Express does not; Express ignores case, Fastify does not; some resolve `..`, strip `;params` or
// treat `\` as `/`, others send such paths to a catch-all. A gateway rule checked against one
// reading while the upstream routes by another is a way around the rule. So only spellings that
// mean the same to all of them are accepted: percent-encoded unreserved characters are decoded
// (`/%61dmin` is `/admin`), letters are lower-cased (rules match case-insensitively), and every
// form routers disagree on is refused. Dot segments are refused, never resolved: resolving would
// let `/admin/../public/x` pass as `/public/x` while Fastify and Express route it to `/admin/*`.

export type PathProblem =
  | 'not-absolute'
  | 'dot-segment'
  | 'empty-segment'
  | 'semicolon'
  | 'encoded-slash'
  | 'backslash'
  | 'nul'
  | 'bad-encoding'
  | 'fragment'
  | 'bad-character'
  | 'case-fold';

/** What each refusal tells the caller (fixed text: a refusal never echoes the path). */
export const PATH_PROBLEMS: Record<PathProblem, string> = {
  'not-absolute': 'the path must start with "/"',
  'dot-segment': 'the path holds a "." or ".." segment (raw or percent-encoded); routers resolve them differently',
  'empty-segment': 'the path holds an empty segment ("//"); routers merge or keep them differently',
  semicolon: 'the path holds ";"; some routers cut parameters there, others do not',
  'encoded-slash': 'the path holds an encoded "/" or "\\" (%2F, %5C); routers decode them differently',
  backslash: 'the path holds "\\"; some routers read it as "/"',
  nul: 'the path holds a NUL character (%00)',
  'bad-encoding': 'the path holds "%" not followed by two hex digits',
  fragment: 'the path holds "#"; some routers cut the path there, others do not',
  'bad-character': 'the path holds a control, space or non-ASCII character; send it percent-encoded',
  'case-fold': 'the path holds an encoded non-ASCII character that a case-insensitive router folds to ASCII (such as U+212A, the Kelvin sign, read as "k")',
};

export type CanonicalPath = { ok: true; path: string } | { ok: false; problem: PathProblem };

const HEX = (c: number): number => (c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1);

/** ALPHA / DIGIT / "-" / "." / "_" / "~" (RFC 3986 unreserved). */
const unreserved = (c: number): boolean =>
  (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 45 || c === 46 || c === 95 || c === 126;

const SLASH = 47;
const DOT = 46;

/**
 * The character a percent-encoded UTF-8 sequence starting at `i` (lead byte `lead`) stands for, or
 * '' when it is not one. Looks at most three escapes ahead: matching stays linear.
 */
function encodedCharAt(target: string, i: number, end: number, lead: number): string {
  const more = lead >= 0xf0 ? 3 : lead >= 0xe0 ? 2 : 1;
  if (lead >= 0xf8) return '';
  let cp = lead & (0x3f >> more);
  for (let k = 1; k <= more; k++) {
    const at = i + 3 * k;
    if (at + 2 >= end || target.charCodeAt(at) !== 37) return '';
    const hi = HEX(target.charCodeAt(at + 1));
    const lo = hi === -1 ? -1 : HEX(target.charCodeAt(at + 2));
    if (lo === -1) return '';
    const byte = hi * 16 + lo;
    if ((byte & 0xc0) !== 0x80) return '';
    cp = (cp << 6) | (byte & 0x3f);
  }
  return cp <= 0x10ffff ? String.fromCodePoint(cp) : '';
}

/**
 * Whether a non-ASCII character becomes ASCII under a case mapping: a router that ignores case
 * (Fastify's `caseSensitive: false` lower-cases the decoded path; others upper-case, or fold) would
 * read the Kelvin sign as `k`, `ſ` as `s`, `İ` as `i` with a combining dot, `ﬀ` as `ff`.
 */
function foldsToAscii(ch: string): boolean {
  if (ch === '') return false;
  return /[\x00-\x7f]/.test(ch.toLowerCase()) || /[\x00-\x7f]/.test(ch.toUpperCase()) || /[\x00-\x7f]/.test(ch.toUpperCase().toLowerCase());
}

/**
 * The canonical, lower-case path of a request target (its query, from the first `?`, left out).
 * Linear in the length of the target; the caller bounds that length.
 */
export function canonicalPath(target: string): CanonicalPath {
  const q = target.indexOf('?');
  const end = q === -1 ? target.length : q;
  if (end === 0 || target.charCodeAt(0) !== SLASH) return { ok: false, problem: 'not-absolute' };
  // Built only when something changes: most paths are already canonical but for their case.
  let out: string[] | null = null;
  let copiedTo = 0;
  // The current segment: how many characters it holds once decoded, and how many of them are dots.
  let segLength = 0;
  let segDots = 0;
  for (let i = 1; i <= end; i++) {
    const c = i === end ? SLASH : target.charCodeAt(i);
    if (c === SLASH) {
      if (segLength > 0 && segLength === segDots && segLength <= 2) return { ok: false, problem: 'dot-segment' };
      // An empty segment anywhere but at the end (a trailing slash) is `//`.
      if (segLength === 0 && i < end) return { ok: false, problem: 'empty-segment' };
      segLength = 0;
      segDots = 0;
      continue;
    }
    if (c === 37) {
      const hi = i + 2 < end ? HEX(target.charCodeAt(i + 1)) : -1;
      const lo = hi === -1 ? -1 : HEX(target.charCodeAt(i + 2));
      if (lo === -1) return { ok: false, problem: 'bad-encoding' };
      const byte = hi * 16 + lo;
      if (byte === 0) return { ok: false, problem: 'nul' };
      if (byte === SLASH || byte === 92) return { ok: false, problem: 'encoded-slash' };
      if (byte >= 0xc0 && foldsToAscii(encodedCharAt(target, i, end, byte))) return { ok: false, problem: 'case-fold' };
      out ??= [];
      out.push(target.slice(copiedTo, i));
      // Unreserved characters mean the same encoded or not: decode them. Everything else keeps its
      // encoding (lower-case hex, like the rest of the canonical path).
      out.push(unreserved(byte) ? String.fromCharCode(byte) : target.slice(i, i + 3));
      copiedTo = i + 3;
      segLength++;
      if (byte === DOT) segDots++;
      i += 2;
      continue;
    }
    if (c === 59) return { ok: false, problem: 'semicolon' };
    if (c === 92) return { ok: false, problem: 'backslash' };
    if (c === 35) return { ok: false, problem: 'fragment' };
    if (c < 0x21 || c > 0x7e) return { ok: false, problem: c === 0 ? 'nul' : 'bad-character' };
    segLength++;
    if (c === DOT) segDots++;
  }
  const path = out === null ? target.slice(0, end) : out.join('') + target.slice(copiedTo, end);
  // Only printable ASCII is left, so this lower-cases letters and nothing else.
  return { ok: true, path: path.toLowerCase() };
}

/** ASCII-only lower case: no locale or Unicode folding can turn another character into a letter. */
export const toLowerAscii = (text: string): string => text.replace(/[A-Z]+/g, (s) => s.toLowerCase());
