// Gateway rules of an app: which permissions a forwarded request needs, by method and path.
// Rules see the canonical path (src/lib/request-path.ts) without its query string and match it
// case-insensitively and with or without a trailing slash; `*` matches any run of characters, `/`
// included. Every matching rule applies (their permissions add up), and a rule for GET covers
// HEAD, which routers send to GET handlers.
import { invalid } from '../errors.js';
import { compilePathPattern, matchPathPattern, wildcardCount, type PathPattern } from '../lib/path-match.js';
import { canonicalPath, PATH_PROBLEMS, toLowerAscii } from '../lib/request-path.js';
import { MAX_GATEWAY_RULES, MAX_RULE_WILDCARDS, type GatewayRule } from './gateway-rules.schemas.js';

export { GATEWAY_METHODS, type GatewayRule } from './gateway-rules.schemas.js';

/**
 * Refuses (400) a rule set beyond the limits, or a rule whose path no accepted request can ever
 * have (a `..` segment, `;`, `//` …: such requests are refused before rules are looked at).
 */
export function checkGatewayRules(rules: readonly GatewayRule[] | null | undefined): void {
  if (!rules) return;
  if (rules.length > MAX_GATEWAY_RULES) throw invalid('body/gatewayRules', `must hold at most ${MAX_GATEWAY_RULES} rules`);
  rules.forEach((rule, i) => {
    const where = `body/gatewayRules/${i}/path`;
    if (wildcardCount(rule.path) > MAX_RULE_WILDCARDS) throw invalid(where, `must hold at most ${MAX_RULE_WILDCARDS} "*" wildcards`);
    // A `*` is an ordinary character to the path reader: what is left must be a readable path.
    const read = canonicalPath(rule.path);
    if (!read.ok) throw invalid(where, `can never match: ${PATH_PROBLEMS[read.problem]}`);
  });
}

/** A rule made ready to match: its canonical, lower-case path compiled. */
export interface CompiledRule {
  /** null = any method. */
  methods: ReadonlySet<string> | null;
  pattern: PathPattern;
  permissions: readonly string[];
}

/** The rule's path as requests are read: unreserved escapes decoded, lower case. */
function rulePath(path: string): string {
  const read = canonicalPath(path);
  // A rule stored before paths were checked keeps its text: it matches only what it spells.
  return read.ok ? read.path : toLowerAscii(path);
}

export function compileRules(rules: readonly GatewayRule[]): CompiledRule[] {
  return rules.map((r) => {
    let methods: Set<string> | null = null;
    if (r.methods) {
      methods = new Set(r.methods);
      if (methods.has('GET')) methods.add('HEAD');
    }
    return { methods, pattern: compilePathPattern(rulePath(r.path)), permissions: r.permissions };
  });
}

/**
 * The permissions the matching rules add, or null when none matches. `path` is canonical (from
 * canonicalPath), `method` upper-case. One matching rule's list is returned as it is stored.
 */
export function permissionsFor(rules: readonly CompiledRule[] | null, method: string, path: string): readonly string[] | null {
  if (rules === null) return null;
  // Routers send `/admin/` to the `/admin` route (Express's non-strict routing, Fastify's
  // ignoreTrailingSlash) and `/admin` to `/admin/`: a rule covers the path with and without it.
  const trimmed = path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : null;
  const slashed = trimmed === null ? `${path}/` : null;
  let found: readonly string[] | null = null;
  let merged: string[] | null = null;
  for (const rule of rules) {
    if (rule.methods !== null && !rule.methods.has(method)) continue;
    const p = rule.pattern;
    if (!matchPathPattern(p, path) && !(trimmed !== null && matchPathPattern(p, trimmed)) && !(slashed !== null && p.exact && p.head === slashed)) continue;
    if (found === null) found = rule.permissions;
    else (merged ??= [...found]).push(...rule.permissions);
  }
  return merged ?? found;
}
