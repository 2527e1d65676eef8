// One identity: its keys (every app of the workspace), their usage together over 24 hours, its meta
// and named limits (editable), and deleting it.
import { useState } from 'react';
import { api, type Key, type Page } from '../../api';
import type * as Api from '../../../../src/api/types';
import { Link, navigate } from '../../router';
import { invalidate, useApi } from '../../query';
import { useSession } from '../../state';
import { Badge, Button, Confirm, Empty, ErrorNote, Field, relative, statusTone, when } from '../../ui';
import { UsageChart } from '../keys/KeyDetail';
import { NamedLimitsEditor, toLimits, toRows, type LimitRow } from './NamedLimits';

const DAY = 86_400_000;

/** The usage of every listed key over the last 24 hours, bucket by bucket. */
async function usageOf(keys: readonly Key[]): Promise<Api.Usage> {
  const since = new Date(Date.now() - DAY).toISOString();
  const all = await Promise.all(keys.map((k) => api<Api.Usage>('GET', `/v1/keys/${k.id}/usage?granularity=hour&since=${encodeURIComponent(since)}`)));
  const buckets = new Map<string, { at: string; total: number; counts: Record<string, number> }>();
  for (const u of all) {
    for (const b of u.data) {
      const sum = buckets.get(b.at) ?? { at: b.at, total: 0, counts: {} };
      sum.total += b.total;
      for (const [code, n] of Object.entries(b.counts)) sum.counts[code] = (sum.counts[code] ?? 0) + n;
      buckets.set(b.at, sum);
    }
  }
  return { keyId: '', granularity: 'hour', since, until: new Date().toISOString(), data: [...buckets.values()].sort((a, b) => a.at.localeCompare(b.at)) };
}

export function IdentityDetail({ identityId }: { identityId: string }) {
  const { can, toast } = useSession();
  const writable = can('identities:write');
  const identity = useApi(['identity', identityId], () => api<Api.Identity>('GET', `/v1/identities/${identityId}`));
  const keys = useApi(['identity-keys', identityId], () => api<Page<Key>>('GET', `/v1/identities/${identityId}/keys?limit=100`));
  const usage = useApi(['identity-usage', identityId, keys.data?.data.map((k) => k.id).join(',')], () => usageOf(keys.data!.data), Boolean(keys.data));
  const [rows, setRows] = useState<LimitRow[] | null>(null);
  const [meta, setMeta] = useState<string | null>(null);
  const [error, setError] = useState<unknown>();
  const [deleting, setDeleting] = useState(false);
  const i = identity.data;
  const shownRows = rows ?? toRows(i?.ratelimits);
  const shownMeta = meta ?? JSON.stringify(i?.meta ?? {}, null, 2);

  if (identity.error) {
    return (
      <>
        <div className="crumbs"><Link to="/identities">Identities</Link> / identity</div>
        <Empty title="No such identity"><p>This identity does not exist, or it belongs to a workspace you are not in.</p><Link to="/identities">Back to identities</Link></Empty>
      </>
    );
  }
  const save = async () => {
    const ratelimits = toLimits(shownRows);
    if (typeof ratelimits === 'string') return setError(new Error(ratelimits));
    let parsed: unknown;
    try {
      parsed = JSON.parse(shownMeta);
    } catch {
      return setError(new Error('Meta is not valid JSON'));
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return setError(new Error('Meta must be a JSON object'));
    try {
      setError(undefined);
      await api('PATCH', `/v1/identities/${identityId}`, { meta: parsed, ratelimits });
      setRows(null);
      setMeta(null);
      await invalidate('identity', identityId);
      await invalidate('identities');
      toast('Identity saved');
    } catch (err) {
      setError(err);
    }
  };
  const liveKeys = (keys.data?.data ?? []).filter((k) => k.status !== 'revoked').length;
  return (
    <>
      <div className="page-head">
        <div>
          <nav className="crumbs" aria-label="Breadcrumb"><Link to="/identities">Identities</Link> / {i?.externalId ?? '…'}</nav>
          <h1 className="wrap-anywhere">{i?.externalId ?? 'Identity'}</h1>
          <p><span className="mono">{identityId}</span>{i && <> · created {when(i.createdAt)}</>}</p>
        </div>
        {writable && <Button kind="danger" onClick={() => setDeleting(true)}>Delete identity</Button>}
      </div>
      <ErrorNote error={error ?? keys.error} />
      <div className="stack">
        <section className="card card-pad">
          <h3>Usage of its keys, last 24 hours</h3>
          {usage.data ? <UsageChart usage={usage.data} range="24h" /> : usage.error ? <ErrorNote error={usage.error} /> : <p>Loading…</p>}
        </section>
        <section className="card">
          <div className="card-pad"><h3>Keys ({keys.data?.total ?? 0})</h3><p className="hint">Every key whose owner is <code>{i?.externalId}</code>, in any app of the workspace.</p></div>
          <div className="table-wrap"><table>
            <thead><tr><th>Key</th><th>Status</th><th className="hide-sm">Last used</th></tr></thead>
            <tbody>
              {(keys.data?.data ?? []).map((k) => (
                <tr key={k.id}>
                  <td className="wrap-anywhere"><Link to={`/keys/${k.id}`}>{k.name}</Link><div className="key-sub"><code>{k.start}…</code></div></td>
                  <td><Badge tone={statusTone(k.status)}>{k.status}</Badge></td>
                  <td className="hide-sm nowrap">{relative(k.lastUsedAt)}</td>
                </tr>
              ))}
              {keys.data && keys.data.data.length === 0 && <tr><td colSpan={3}><Empty title="No keys name this identity" /></td></tr>}
            </tbody>
          </table></div>
        </section>
        <fieldset className="card card-pad stack plain-fieldset" disabled={!writable} aria-label="Limits and meta">
          <h3>Named limits</h3>
          <p className="hint">Windows shared by every key of this identity, in every app. Overrides of the workspace (per app: <em>Overrides</em>) may replace a limit for some identities.</p>
          <NamedLimitsEditor idPrefix="idt" rows={shownRows} onChange={setRows} disabled={!writable} />
          <Field label="Meta" htmlFor="idt-meta" hint="A JSON object returned by verify with every key of this identity">
            <textarea id="idt-meta" className="mono" rows={4} value={shownMeta} onChange={(e) => setMeta(e.target.value)} />
          </Field>
          {writable && <div className="row"><span className="spacer" /><Button kind="primary" onClick={() => void save()}>Save identity</Button></div>}
        </fieldset>
      </div>
      {deleting && i && (
        <Confirm title={`Delete ${i.externalId}?`} action="Delete identity" onClose={() => setDeleting(false)}
          onConfirm={async () => {
            await api('DELETE', `/v1/identities/${identityId}${liveKeys > 0 ? '?force=true' : ''}`);
            await invalidate('identities');
            toast('Identity deleted');
            navigate('/identities');
          }}>
          {liveKeys > 0
            ? <>{liveKeys} key(s) name it as their owner. They keep verifying, without its named limits and meta, until an identity with this external id is created again.</>
            : <>Its named limits and meta are gone. A key created with this owner later makes a new, empty identity.</>}
        </Confirm>
      )}
    </>
  );
}
