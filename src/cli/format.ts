// Small helpers of the CLI: tables, durations, limits, stdin.

/** A mistake in how the command was called: exit code 2. */
export class UsageError extends Error {}
export function printTable<T extends object>(rows: T[], columns: (keyof T & string)[]): void {
  if (rows.length === 0) {
    process.stdout.write('(none)\n');
    return;
  }
  const cell = (row: T, c: keyof T & string) => {
    const v = row[c];
    return v === null || v === undefined ? '' : Array.isArray(v) ? v.join(',') : String(v);
  };
  const widths = columns.map((c) => Math.max(c.length, ...rows.map((r) => cell(r, c).length)));
  const line = (values: string[]) => values.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd() + '\n';
  process.stdout.write(line(columns.map((c) => c.toUpperCase())));
  for (const r of rows) process.stdout.write(line(columns.map((c) => cell(r, c))));
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "90s", "10m", "12h", "30d" → milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d+)([smhd])$/.exec(text.trim());
  if (!m) throw new UsageError(`"${text}" is not a duration like 30s, 10m, 12h or 7d`);
  return Number(m[1]) * UNITS[m[2]!]!;
}

/** "100/1m" → { limit: 100, durationMs: 60000 }. */
export function parseLimit(text: string): { limit: number; durationMs: number } {
  const [limit, per] = text.split('/');
  if (!limit || !per || !/^\d+$/.test(limit)) throw new UsageError(`"${text}" is not a limit like 100/1m`);
  return { limit: Number(limit), durationMs: parseDuration(per) };
}

export async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  let data = '';
  for await (const chunk of process.stdin) data += chunk;
  return data;
}
