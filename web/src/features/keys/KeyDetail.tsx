// One key: its settings, a usage chart by outcome (24 hours, 7 or 30 days), and its audit entries.
import { useState } from 'react';
import { api, type App, type AuditEntry, type Key, type Page } from '../../api';
import { Link } from '../../router';
import { useSession } from '../../state';
import type * as Api from '../../../../src/api/types';
import { invalidate, useApi } from '../../query';
import { AuditChanges, Badge, Empty, ErrorNote, statusTone, when } from '../../ui';
import { useKeyActions } from './KeyActions';

type Usage = Api.Usage;
type VerifyCode = Api.VerifyCode;

/**
 * One colour per outcome, told apart at a glance (and by most colour-blind readers): accepted in
 * green, limits in warm colours, scope refusals in purples and blues, dead keys in greys and reds.
 */
const COLORS: Record<VerifyCode, string> = {
  VALID: '#16a34a', RATE_LIMITED: '#f59e0b', USAGE_EXCEEDED: '#c2410c',
  INSUFFICIENT_PERMISSIONS: '#7c3aed', RESOURCE_FORBIDDEN: '#0891b2', IP_NOT_ALLOWED: '#db2777',
  EXPIRED: '#64748b', DISABLED: '#a8a29e', REVOKED: '#dc2626',
  NOT_FOUND: '#1e3a8a', MALFORMED: '#0f172a', INVALID_SIGNATURE: '#7f1d1d', TOKEN_EXPIRED: '#4d7c0f',
};
const colorOf = (code: string): string => COLORS[code as VerifyCode] ?? '#0ea5e9';

/** The chart's ranges: how far back, and the bucket size that keeps bars readable. */
const RANGES = {
  '24h': { label: '24 hours', ms: 86_400_000, granularity: 'hour' },
  '7d': { label: '7 days', ms: 7 * 86_400_000, granularity: 'hour' },
  '30d': { label: '30 days', ms: 30 * 86_400_000, granularity: 'day' },
} as const;
export type Range = keyof typeof RANGES;

function axisLabel(range: Range, at: Date, i: number): string | null {
  if (range === '24h') return i % 4 === 0 ? `${at.getHours()}h` : null;
  if (range === '7d') return at.getHours() === 0 ? at.toLocaleDateString(undefined, { weekday: 'short' }) : null;
  return i % 5 === 0 ? at.toLocaleDateString(undefined, { month: 'short', day: 'numeric' }) : null;
}

export function UsageChart({ usage, range = '24h' }: { usage: Usage; range?: Range }) {
  const [hover, setHover] = useState<number | null>(null);
  const codes = [...new Set(usage.data.flatMap((b) => Object.keys(b.counts)))].sort((a, b) => (a === 'VALID' ? -1 : b === 'VALID' ? 1 : a.localeCompare(b)));
  const max = Math.max(1, ...usage.data.map((b) => b.total));
  const w = 720;
  const h = 200;
  const bw = w / Math.max(1, usage.data.length);
  const total = usage.data.reduce((n, b) => n + b.total, 0);
  const when = (at: string) => new Date(at).toLocaleString(undefined, usage.granularity === 'day' ? { dateStyle: 'medium' } : { dateStyle: 'medium', timeStyle: 'short' });
  const shown = hover === null ? undefined : usage.data[hover];
  const pick = (clientX: number, el: SVGSVGElement) => {
    const box = el.getBoundingClientRect();
    const i = Math.floor(((clientX - box.left) / box.width) * usage.data.length);
    setHover(i >= 0 && i < usage.data.length ? i : null);
  };
  return (
    <figure style={{ margin: 0, position: 'relative' }}>
      <svg className="chart" viewBox={`0 0 ${w} ${h}`} role="img" aria-label={`Verifications in the last ${RANGES[range].label}: ${total}`} data-testid="usage-chart"
        tabIndex={0} onMouseMove={(e) => pick(e.clientX, e.currentTarget)} onMouseLeave={() => setHover(null)}
        onKeyDown={(e) => {
          if (e.key === 'ArrowRight') setHover((i) => Math.min(usage.data.length - 1, (i ?? -1) + 1));
          else if (e.key === 'ArrowLeft') setHover((i) => Math.max(0, (i ?? usage.data.length) - 1));
          else if (e.key === 'Escape') setHover(null);
        }}
        onBlur={() => setHover(null)}>
        {[0.25, 0.5, 0.75, 1].map((f) => <line key={f} x1={0} x2={w} y1={h - f * h} y2={h - f * h} stroke="#eef0f3" />)}
        {usage.data.map((b, i) => {
          let y = h;
          const label = axisLabel(range, new Date(b.at), i);
          return (
            <g key={b.at}>
              {hover === i && <rect x={i * bw} y={0} width={bw} height={h} fill="#eef2ff" />}
              {codes.map((c) => {
                const v = b.counts[c] ?? 0;
                if (!v) return null;
                const bh = (v / max) * h;
                y -= bh;
                return <rect key={c} x={i * bw + Math.min(2, bw / 6)} y={y} width={Math.max(1, bw - Math.min(4, bw / 3))} height={bh} rx={bw > 8 ? 2 : 0} fill={colorOf(c)} />;
              })}
            </g>
          );
        })}
      </svg>
      {/* Axis labels in HTML, not in the drawing: they keep a readable size however narrow the chart gets. */}
      <div className="chart-axis" aria-hidden="true">
        {usage.data.map((b, i) => {
          const label = axisLabel(range, new Date(b.at), i);
          const at = ((i + 0.5) / usage.data.length) * 100;
          return label && <span key={b.at} style={at < 6 ? { left: 0 } : at > 94 ? { right: 0 } : { left: `${at}%`, transform: 'translateX(-50%)' }}>{label}</span>;
        })}
      </div>
      {shown && hover !== null && (
        <div className="chart-tip" role="status" data-testid="chart-tip" style={(hover + 0.5) / usage.data.length > 0.5 ? { right: `${Math.max(0, 100 - ((hover + 0.5) / usage.data.length) * 100 + 2)}%` } : { left: `${((hover + 0.5) / usage.data.length) * 100 + 2}%` }}>
          <strong>{when(shown.at)}</strong>
          {shown.total === 0 ? <div>no requests</div> : Object.entries(shown.counts).sort(([, a], [, b]) => b - a).map(([c, n]) => (
            <div key={c}><i style={{ background: colorOf(c) }} />{c} <strong>{n}</strong></div>
          ))}
        </div>
      )}
      <figcaption className="legend">
        <span><strong>{total}</strong> verifications</span>
        {codes.map((c) => <span key={c}><i style={{ background: colorOf(c) }} />{c} {usage.data.reduce((n, b) => n + (b.counts[c] ?? 0), 0)}</span>)}
      </figcaption>
    </figure>
  );
}

export function KeyDetail({ keyId }: { keyId: string }) {
  const { workspace, can } = useSession();
  const key = useApi(['key', keyId], () => api<Key>('GET', `/v1/keys/${keyId}`));
  const app = useApi(['app', key.data?.appId], () => api<App>('GET', `/v1/apps/${key.data!.appId}`), Boolean(key.data));
  const [range, setRange] = useState<Range>('24h');
  const usage = useApi(['usage', keyId, range], () => {
    const { ms, granularity } = RANGES[range];
    return api<Usage>('GET', `/v1/keys/${keyId}/usage?granularity=${granularity}&since=${encodeURIComponent(new Date(Date.now() - ms).toISOString())}`);
  });
  const audit = useApi(['audit', workspace?.id, 'target', keyId], () => api<Page<AuditEntry>>('GET', `/v1/workspaces/${workspace!.id}/audit?targetId=${keyId}&limit=50`), Boolean(workspace) && can('audit:read'));
  const actions = useKeyActions(() => { void invalidate('key', keyId); void invalidate('keys'); void invalidate('audit'); });
  const k = key.data;
  // A key id that is malformed, unknown or another tenant's: one plain page, not a stuck loader.
  if (key.error) {
    return (
      <>
        <div className="crumbs"><Link to="/apps">Apps</Link> / key</div>
        <Empty title="No such key"><p>This key does not exist, or it belongs to a workspace you are not in.</p><Link to="/apps">Back to apps</Link></Empty>
      </>
    );
  }
  return (
    <>
      <div className="page-head">
        <div>
          <nav className="crumbs" aria-label="Breadcrumb"><Link to="/apps">Apps</Link> / {k && <Link to={`/apps/${k.appId}`}>{app.data?.name ?? 'App'}</Link>} / {k?.name ?? 'key'}</nav>
          <h1>{k?.name ?? 'Key'} {k && <Badge tone={statusTone(k.status)}>{k.status}</Badge>}{k?.imported && <> <Badge tone="grey">imported</Badge></>}</h1>
          <p><code>{k?.start}…</code> · <span className="mono">{keyId}</span>{k?.revokedAt && <> · revoked {when(k.revokedAt)}</>}</p>
        </div>
        {k && k.status !== 'revoked' && <div className="row">{actions.buttons(k)}</div>}
      </div>
      {actions.dialogs}
      <ErrorNote error={key.error} />
      <div className="stack">
        <section className="card card-pad">
          <div className="row" style={{ justifyContent: 'space-between', alignItems: 'baseline' }}>
            <h3>Usage, last {RANGES[range].label}</h3>
            <div className="segmented" role="group" aria-label="Usage range">
              {(Object.keys(RANGES) as Range[]).map((r) => <button key={r} type="button" aria-pressed={r === range} onClick={() => setRange(r)}>{r}</button>)}
            </div>
          </div>
          {usage.data ? <UsageChart usage={usage.data} range={range} /> : usage.error ? <ErrorNote error={usage.error} /> : <p>Loading…</p>}
        </section>
        <div className="grid-2">
          <section className="card card-pad">
            <h3>Settings</h3>
            {k && (
              <dl className="kv">
                <dt>Kind</dt><dd>{k.kind}</dd>
                <dt>Owner</dt><dd>{k.ownerId ?? '—'}</dd>
                <dt>Environment</dt><dd>{k.environment}</dd>
                <dt>Permissions</dt><dd>{k.permissions.join(', ') || 'any'}</dd>
                <dt>Domain scope</dt><dd>{k.resources.join(', ') || 'all resources'}</dd>
                <dt>IP allowlist</dt><dd>{k.ipAllowlist.join(', ') || 'any address'}</dd>
                <dt>Expires</dt><dd>{k.expiresAt ? when(k.expiresAt) : 'never'}</dd>
                <dt>Rate limit</dt><dd>{k.ratelimit ? `${k.ratelimit.limit} per ${k.ratelimit.durationMs / 1000}s` : 'none'}</dd>
                <dt>Owner limit</dt><dd>{k.ownerRatelimit ? `${k.ownerRatelimit.limit} per ${k.ownerRatelimit.durationMs / 1000}s` : 'none'}</dd>
                <dt>Remaining</dt><dd>{k.remaining ?? 'unlimited'}{k.refill ? ` (refills to ${k.refill.amount} ${k.refill.interval})` : ''}</dd>
                <dt>Created</dt><dd>{when(k.createdAt)}</dd>
                <dt>Last used</dt><dd>{when(k.lastUsedAt)}</dd>
                {k.revokedAt && <><dt>Revoked</dt><dd>{when(k.revokedAt)}</dd></>}
              </dl>
            )}
          </section>
          <section className="card card-pad">
            <h3>Audit</h3>
            {!can('audit:read') ? <p className="muted">The audit log is open to owners and admins.</p> : (audit.data?.data ?? []).length === 0 ? <p className="muted">No entries.</p> : (
              <ul className="stack audit-lines" data-testid="key-audit">
                {audit.data!.data.map((a) => (
                  <li key={a.id}>
                    <strong>{a.action}</strong> <span className="muted">by {a.actor.email ?? `${a.actor.type} ${a.actor.id}`} · {when(a.at)}{a.ip ? ` · ${a.ip}` : ''}</span>
                    <AuditChanges meta={a.meta} />
                  </li>
                ))}
              </ul>
            )}
          </section>
        </div>
      </div>
    </>
  );
}
