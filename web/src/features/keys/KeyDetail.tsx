// One key: its settings, a 24-hour usage chart by outcome, and its audit entries.
import { api, type App, type AuditEntry, type Key, type Page } from '../../api';
import { Link } from '../../router';
import { useSession } from '../../state';
import type * as Api from '../../../../src/api/types';
import { useApi } from '../../query';
import { Badge, Empty, ErrorNote, statusTone, when } from '../../ui';

type Usage = Api.Usage;

const COLORS: Record<string, string> = {
  VALID: '#16a34a', RATE_LIMITED: '#f59e0b', USAGE_EXCEEDED: '#fb923c', INSUFFICIENT_PERMISSIONS: '#a855f7', RESOURCE_FORBIDDEN: '#8b5cf6',
  IP_NOT_ALLOWED: '#ec4899', EXPIRED: '#64748b', DISABLED: '#94a3b8', REVOKED: '#dc2626', INVALID_SIGNATURE: '#b91c1c', TOKEN_EXPIRED: '#475569',
};

export function UsageChart({ usage }: { usage: Usage }) {
  const codes = [...new Set(usage.data.flatMap((b) => Object.keys(b.counts)))].sort((a, b) => (a === 'VALID' ? -1 : b === 'VALID' ? 1 : a.localeCompare(b)));
  const max = Math.max(1, ...usage.data.map((b) => b.total));
  const w = 720;
  const h = 200;
  const bw = w / Math.max(1, usage.data.length);
  const total = usage.data.reduce((n, b) => n + b.total, 0);
  return (
    <figure style={{ margin: 0 }}>
      <svg className="chart" viewBox={`0 0 ${w} ${h + 20}`} role="img" aria-label={`Verifications in the last 24 hours: ${total}`} data-testid="usage-chart">
        {[0.25, 0.5, 0.75, 1].map((f) => <line key={f} x1={0} x2={w} y1={h - f * h} y2={h - f * h} stroke="#eef0f3" />)}
        {usage.data.map((b, i) => {
          let y = h;
          return (
            <g key={b.at}>
              <title>{`${new Date(b.at).toLocaleString()}: ${Object.entries(b.counts).map(([c, n]) => `${c} ${n}`).join(', ') || 'no requests'}`}</title>
              {codes.map((c) => {
                const v = b.counts[c] ?? 0;
                if (!v) return null;
                const bh = (v / max) * h;
                y -= bh;
                return <rect key={c} x={i * bw + 2} y={y} width={Math.max(1, bw - 4)} height={bh} rx={2} fill={COLORS[c] ?? '#0ea5e9'} />;
              })}
              {i % 4 === 0 && <text x={i * bw + bw / 2} y={h + 15} fontSize="10" textAnchor="middle" fill="#94a3b8">{new Date(b.at).getHours()}h</text>}
            </g>
          );
        })}
      </svg>
      <figcaption className="legend">
        <span><strong>{total}</strong> verifications</span>
        {codes.map((c) => <span key={c}><i style={{ background: COLORS[c] ?? '#0ea5e9' }} />{c} {usage.data.reduce((n, b) => n + (b.counts[c] ?? 0), 0)}</span>)}
      </figcaption>
    </figure>
  );
}

export function KeyDetail({ keyId }: { keyId: string }) {
  const { workspace } = useSession();
  const key = useApi(['key', keyId], () => api<Key>('GET', `/v1/keys/${keyId}`));
  const app = useApi(['app', key.data?.appId], () => api<App>('GET', `/v1/apps/${key.data!.appId}`), Boolean(key.data));
  const usage = useApi(['usage', keyId], () => api<Usage>('GET', `/v1/keys/${keyId}/usage?granularity=hour`));
  const audit = useApi(['audit', workspace?.id, 'target', keyId], () => api<Page<AuditEntry>>('GET', `/v1/workspaces/${workspace!.id}/audit?targetId=${keyId}&limit=50`), Boolean(workspace));
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
          <div className="crumbs"><Link to="/apps">Apps</Link> / {k && <Link to={`/apps/${k.appId}`}>{app.data?.name ?? 'App'}</Link>} / {k?.name ?? 'key'}</div>
          <h1>{k?.name ?? 'Key'} {k && <Badge tone={statusTone(k.status)}>{k.status}</Badge>}</h1>
          <p><code>{k?.start}…</code> · <span className="mono">{keyId}</span></p>
        </div>
      </div>
      <ErrorNote error={key.error} />
      <div className="stack">
        <section className="card card-pad">
          <h3>Usage, last 24 hours</h3>
          {usage.data ? <UsageChart usage={usage.data} /> : usage.error ? <ErrorNote error={usage.error} /> : <p>Loading…</p>}
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
              </dl>
            )}
          </section>
          <section className="card card-pad">
            <h3>Audit</h3>
            {(audit.data?.data ?? []).length === 0 ? <p style={{ color: 'var(--muted)' }}>No entries.</p> : (
              <ul style={{ listStyle: 'none', padding: 0, margin: 0 }} className="stack">
                {audit.data!.data.map((a) => (
                  <li key={a.id}><strong>{a.action}</strong> <span style={{ color: 'var(--muted)' }}>by {a.actor.type} {a.actor.id} · {when(a.at)}{a.ip ? ` · ${a.ip}` : ''}</span></li>
                ))}
              </ul>
            )}
          </section>
        </div>
      </div>
    </>
  );
}
