// SQL pieces every repository shares: LIKE patterns, counting, paging.

/** `%text%` with LIKE's wildcards escaped; pair with `ESCAPE '\'` (SQLite has no default escape). */
export function containsPattern(text: string): string {
  return `%${text.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** `text%` with LIKE's wildcards escaped (case kept); pair with `ESCAPE '\'`. */
export function prefixPattern(text: string): string {
  return `${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
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
