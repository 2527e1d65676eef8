// The editor of named limits (a key's or an identity's): up to 10 rows of name, limit, window and
// whether every verify checks it.
import type * as Api from '../../../../src/api/types';
import { Button } from '../../ui';

export type NamedLimit = Api.NamedLimit;

/** A row as typed: numbers kept as text until saved. */
export interface LimitRow {
  name: string;
  limit: string;
  seconds: string;
  autoApply: boolean;
}

export const MAX_LIMITS = 10;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export const toRows = (limits: readonly NamedLimit[] | undefined): LimitRow[] =>
  (limits ?? []).map((l) => ({ name: l.name, limit: String(l.limit), seconds: String(l.durationMs / 1000), autoApply: l.autoApply }));

/** The rows as the API takes them, or the first problem with them. */
export function toLimits(rows: readonly LimitRow[]): NamedLimit[] | string {
  const seen = new Set<string>();
  const out: NamedLimit[] = [];
  for (const [i, r] of rows.entries()) {
    const name = r.name.trim();
    if (!NAME.test(name)) return `Limit ${i + 1}: a name of letters, digits, _ . - (up to 64)`;
    if (seen.has(name)) return `Limit ${i + 1}: "${name}" is used twice`;
    seen.add(name);
    const limit = Number(r.limit);
    const seconds = Number(r.seconds);
    if (!Number.isInteger(limit) || limit < 1) return `Limit ${i + 1}: the limit is a whole number from 1`;
    if (!Number.isInteger(seconds) || seconds < 1) return `Limit ${i + 1}: the window is a whole number of seconds from 1`;
    out.push({ name, limit, durationMs: seconds * 1000, autoApply: r.autoApply });
  }
  return out;
}

export function NamedLimitsEditor({ idPrefix, rows, onChange, disabled }: { idPrefix: string; rows: LimitRow[]; onChange: (rows: LimitRow[]) => void; disabled?: boolean }) {
  const set = (i: number, patch: Partial<LimitRow>) => onChange(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return (
    <div className="stack" data-testid={`${idPrefix}-limits`}>
      {rows.length === 0 && <p className="hint">No named limits. A verify names the ones it checks (<code>{'"ratelimits": [{"name": "tokens", "cost": 250}]'}</code>); those set to apply always are checked on every verify.</p>}
      {rows.map((r, i) => (
        <div className="row named-limit" key={i}>
          <input aria-label={`Limit ${i + 1} name`} className="mono" value={r.name} placeholder="requests" onChange={(e) => set(i, { name: e.target.value })} disabled={disabled} style={{ width: 140 }} />
          <input aria-label={`Limit ${i + 1} requests`} type="number" min={1} value={r.limit} onChange={(e) => set(i, { limit: e.target.value })} disabled={disabled} style={{ width: 100 }} />
          <span>per</span>
          <input aria-label={`Limit ${i + 1} seconds`} type="number" min={1} value={r.seconds} onChange={(e) => set(i, { seconds: e.target.value })} disabled={disabled} style={{ width: 80 }} />
          <span>s</span>
          <label className="check"><input type="checkbox" checked={r.autoApply} onChange={(e) => set(i, { autoApply: e.target.checked })} disabled={disabled} />Always</label>
          <Button kind="ghost" aria-label={`Remove limit ${i + 1}`} disabled={disabled} onClick={() => onChange(rows.filter((_, j) => j !== i))}>Remove</Button>
        </div>
      ))}
      {rows.length < MAX_LIMITS && <div><Button disabled={disabled} onClick={() => onChange([...rows, { name: '', limit: '100', seconds: '60', autoApply: false }])}>Add named limit</Button></div>}
    </div>
  );
}

export const limitText = (l: NamedLimit) => `${l.name}: ${l.limit} per ${l.durationMs / 1000}s${l.autoApply ? ' (always)' : ''}`;
