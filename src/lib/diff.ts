// What an audit entry says changed: the fields that differ between two public views, before and
// after (views never carry a secret, so neither does the audit trail).
export interface Diff {
  before: Record<string, unknown>;
  after: Record<string, unknown>;
}

export function diff<T extends Record<string, unknown>>(before: T, after: T, ignore: readonly string[] = ['updatedAt', 'lastUsedAt']): Diff {
  const out: Diff = { before: {}, after: {} };
  for (const field of Object.keys(after)) {
    if (ignore.includes(field)) continue;
    if (JSON.stringify(before[field]) !== JSON.stringify(after[field])) {
      out.before[field] = before[field] ?? null;
      out.after[field] = after[field] ?? null;
    }
  }
  return out;
}
