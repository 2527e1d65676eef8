// SQL pieces every repository shares: LIKE patterns, counting, paging.
import { sql, type RawBuilder } from 'kysely';

/** `%text%` with LIKE's wildcards escaped; pair with `ESCAPE '\'` (SQLite has no default escape). */
export function containsPattern(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** `text%` with LIKE's wildcards escaped (case kept); pair with `ESCAPE '\'`. */
export function prefixPattern(text: string): string {
  return `${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** `lower(column) LIKE pattern ESCAPE '\'`, the same in both dialects. */
export function likeLower(column: string, pattern: string): RawBuilder<boolean> {
  return sql<boolean>`lower(${sql.ref(column)}) like ${pattern} escape '\\'`;
}

export interface PageRequest {
  page: number;
  limit: number;
}

export interface PageOf<T> {
  rows: T[];
  total: number;
}

export const offsetOf = (p: PageRequest): number => (p.page - 1) * p.limit;
