// Rate-limit overrides, reached from an app: overrides of named limits (by identity externalId or
// key id) and of the standalone limiter's namespaces. Both belong to the workspace, so they apply
// to every app of it; each applies on every node within a second.
import { useState } from 'react';
import { api, type App, type Page } from '../../api';
import type * as Api from '../../../../src/api/types';
import { Link } from '../../router';
import { invalidate, useApi } from '../../query';
import { useSession } from '../../state';
import { Button, Empty, ErrorNote, Field, when } from '../../ui';

type Override = Api.RatelimitOverride;
type Kind = 'limit' | 'namespace';

export function Overrides({ appId }: { appId: string }) {
  const { workspace, can } = useSession();
  const app = useApi(['app', appId], () => api<App>('GET', `/v1/apps/${appId}`));
  const ws = workspace?.id;
  const named = useApi(['overrides', ws, 'limit'], () => api<Page<Override>>('GET', `/v1/workspaces/${ws}/ratelimit-overrides?limit=100`), Boolean(ws) && can('identities:read'));
  const spaces = useApi(['overrides', ws, 'namespace'], () => api<Page<Override>>('GET', `/v1/ratelimit/overrides?workspaceId=${ws}&limit=100`), Boolean(ws) && can('ratelimit:limit'));
  return (
    <>
      <div className="page-head">
        <div>
          <nav className="crumbs" aria-label="Breadcrumb"><Link to="/apps">Apps</Link> / <Link to={`/apps/${appId}`}>{app.data?.name ?? '…'}</Link> / overrides</nav>
          <h1>Rate-limit overrides</h1>
          <p>An override replaces a limit for some identifiers: exactly one, or every one starting with a prefix (<code>cust_*</code>). The most specific wins: an exact identifier, then the longest prefix. Overrides belong to the workspace and apply to every app in it, on every node within a second.</p>
        </div>
      </div>
      <ErrorNote error={app.error} />
      <div className="stack">
        <OverrideList kind="limit" title="Named limits" what="Identifier: an identity's external id (its limits), or a key id (the key's own limits)." list={named} readable={can('identities:read')} editable={can('identities:write')} workspaceId={ws} />
        <OverrideList kind="namespace" title="Standalone limiter namespaces" what="Identifier: what POST /v1/ratelimit calls the identifier within the namespace." list={spaces} readable={can('ratelimit:limit')} editable={can('ratelimit:limit')} workspaceId={ws} />
      </div>
    </>
  );
}

function OverrideList({ kind, title, what, list, readable, editable, workspaceId }: { kind: Kind; title: string; what: string; list: { data?: Page<Override> | undefined; error?: unknown }; readable: boolean; editable: boolean; workspaceId: string | undefined }) {
  const { toast } = useSession();
  const [identifier, setIdentifier] = useState('');
  const [name, setName] = useState('');
  const [limit, setLimit] = useState('1000');
  const [seconds, setSeconds] = useState('60');
  const [error, setError] = useState<unknown>();
  const label = kind === 'limit' ? 'Limit name' : 'Namespace';
  const base = kind === 'limit' ? `/v1/workspaces/${workspaceId}/ratelimit-overrides` : '/v1/ratelimit/overrides';
  const query = (o: { name: string; identifier: string }) => kind === 'limit'
    ? `?name=${encodeURIComponent(o.name)}&identifier=${encodeURIComponent(o.identifier)}`
    : `?workspaceId=${workspaceId}&namespace=${encodeURIComponent(o.name)}&identifier=${encodeURIComponent(o.identifier)}`;
  const save = async () => {
    try {
      setError(undefined);
      const spec = { identifier: identifier.trim(), limit: Number(limit), durationMs: Number(seconds) * 1000 };
      if (kind === 'limit') await api('PUT', base, { ...spec, name: name.trim() });
      else await api('PUT', `${base}?workspaceId=${workspaceId}`, { ...spec, namespace: name.trim() });
      await invalidate('overrides');
      setIdentifier('');
      toast('Override saved');
    } catch (err) {
      setError(err);
    }
  };
  const remove = async (o: Override) => {
    try {
      await api('DELETE', `${base}${query(o)}`);
      await invalidate('overrides');
      toast('Override deleted');
    } catch (err) {
      setError(err);
    }
  };
  const prefix = kind === 'limit' ? 'ov' : 'ns';
  if (!readable) {
    return (
      <section className="card card-pad" aria-label={title}>
        <h3>{title}</h3>
        <p className="note note-info">Owners and admins manage these.</p>
      </section>
    );
  }
  return (
    <section className="card" aria-label={title}>
      <div className="card-pad"><h3>{title}</h3><p className="hint">{what}</p></div>
      <ErrorNote error={error ?? list.error} />
      <div className="table-wrap"><table>
        <thead><tr><th>Override</th><th>Limit</th><th className="hide-sm">Changed</th><th><span className="sr-only">Actions</span></th></tr></thead>
        <tbody>
          {(list.data?.data ?? []).map((o) => (
            <tr key={o.id}>
              <td className="wrap-anywhere"><span className="mono">{o.name}</span><div className="key-sub">for <code>{o.identifier}</code></div></td>
              <td>{o.limit} per {o.durationMs / 1000}s</td>
              <td className="hide-sm nowrap">{when(o.updatedAt)}</td>
              <td className="actions-cell">{editable && <Button kind="ghost" aria-label={`Delete override ${o.name} ${o.identifier}`} onClick={() => void remove(o)}>Delete</Button>}</td>
            </tr>
          ))}
          {list.data && list.data.data.length === 0 && <tr><td colSpan={4}><Empty title="No overrides" /></td></tr>}
        </tbody>
      </table></div>
      {editable && (
        <div className="card-pad grid-2">
          <Field label={label} htmlFor={`${prefix}-name`}><input id={`${prefix}-name`} className="mono" value={name} placeholder={kind === 'limit' ? 'requests' : 'login'} onChange={(e) => setName(e.target.value)} /></Field>
          <Field label="Identifier" htmlFor={`${prefix}-id`} hint="Exact, or ending in * for a prefix"><input id={`${prefix}-id`} className="mono" value={identifier} placeholder="cust_*" onChange={(e) => setIdentifier(e.target.value)} /></Field>
          <Field label="Requests" htmlFor={`${prefix}-limit`}><input id={`${prefix}-limit`} type="number" min={1} value={limit} onChange={(e) => setLimit(e.target.value)} /></Field>
          <Field label="Per seconds" htmlFor={`${prefix}-sec`}><input id={`${prefix}-sec`} type="number" min={1} value={seconds} onChange={(e) => setSeconds(e.target.value)} /></Field>
          <div className="row"><Button kind="primary" disabled={!name.trim() || !identifier.trim()} onClick={() => void save()}>Save override</Button></div>
        </div>
      )}
    </section>
  );
}
