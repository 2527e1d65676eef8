// An app's keys: table with search, filters and pages; create, edit, disable, roll, revoke.
import { useEffect, useState, type ReactNode } from 'react';
import { api, type App, type Key, type Page } from '../../api';
import { Link } from '../../router';
import { invalidate, useApi } from '../../query';
import { Badge, Button, day, Empty, ErrorNote, relative, RowMenu, statusTone } from '../../ui';
import { KeyForm } from './KeyForm';
import { useKeyActions } from './KeyActions';

const LIMIT = 20;
/** Typing pauses this long before the list is asked again. */
const SEARCH_DEBOUNCE_MS = 250;

type Sort = 'createdAt' | '-createdAt' | 'name' | '-name' | 'lastUsedAt' | '-lastUsedAt' | 'expiresAt' | '-expiresAt';

/** A column header that orders the list: first click ascending (newest first for dates), second reverses. */
function SortHeader({ field, sort, onSort, children, className, firstDescending = false }: { field: string; sort: Sort; onSort: (s: Sort) => void; children: ReactNode; className?: string; firstDescending?: boolean }) {
  const active = sort === field || sort === `-${field}`;
  const descending = sort.startsWith('-');
  const next = (active ? (descending ? field : `-${field}`) : firstDescending ? `-${field}` : field) as Sort;
  return (
    <th className={className} aria-sort={active ? (descending ? 'descending' : 'ascending') : 'none'}>
      <button type="button" className="sort-btn" onClick={() => onSort(next)}>{children}{active ? (descending ? ' ↓' : ' ↑') : ''}</button>
    </th>
  );
}

export function AppKeys({ appId }: { appId: string }) {
  const [typed, setTyped] = useState('');
  const [q, setQ] = useState('');
  const [sort, setSort] = useState<Sort>('-createdAt');
  const [page, setPage] = useState(1);
  useEffect(() => {
    const t = setTimeout(() => {
      setQ(typed.trim());
      setPage(1);
    }, SEARCH_DEBOUNCE_MS);
    return () => clearTimeout(t);
  }, [typed]);
  const [status, setStatus] = useState('');
  const [environment, setEnvironment] = useState('');
  const [creating, setCreating] = useState(false);
  const app = useApi(['app', appId], () => api<App>('GET', `/v1/apps/${appId}`));
  const query = new URLSearchParams({ page: String(page), limit: String(LIMIT), ...(q ? { q } : {}), ...(status ? { status } : {}), ...(environment ? { environment } : {}), ...(sort !== '-createdAt' ? { sort } : {}) });
  const keys = useApi(['keys', appId, query.toString()], () => api<Page<Key>>('GET', `/v1/apps/${appId}/keys?${query}`));
  const reloadKeys = () => void invalidate('keys', appId);
  const actions = useKeyActions(() => { reloadKeys(); void invalidate('key'); });
  const pages = Math.max(1, Math.ceil((keys.data?.total ?? 0) / LIMIT));
  const sortBy = (v: Sort) => { setSort(v); setPage(1); };
  const list = keys.data?.data ?? [];

  return (
    <>
      <div className="page-head">
        <div>
          <nav className="crumbs" aria-label="Breadcrumb"><Link to="/apps">Apps</Link> / {app.data?.name ?? '…'}</nav>
          <h1>{app.data?.name ?? 'App'}</h1>
          <p>Keys start with <code>{app.data?.keyPrefix}_live_</code> or <code>{app.data?.keyPrefix}_test_</code>. <Link to={`/apps/${appId}/vault`}>Vault</Link> · <Link to={`/apps/${appId}/settings`}>Gateway rules</Link> · <Link to={`/apps/${appId}/overrides`}>Overrides</Link></p>
        </div>
        <Button kind="primary" onClick={() => setCreating(true)}>Create API key</Button>
      </div>
      <ErrorNote error={app.error ?? keys.error} />
      <div className="card">
        <div className="toolbar" role="search">
          <input aria-label="Search keys" placeholder="Search name, start, owner…" value={typed} onChange={(e) => setTyped(e.target.value)} style={{ flex: 1, minWidth: 160 }} />
          <select aria-label="Status" value={status} onChange={(e) => { setStatus(e.target.value); setPage(1); }}>
            <option value="">All statuses</option><option value="active">Active</option><option value="disabled">Disabled</option><option value="revoked">Revoked</option>
          </select>
          <select aria-label="Environment" value={environment} onChange={(e) => { setEnvironment(e.target.value); setPage(1); }}>
            <option value="">All environments</option><option value="live">live</option><option value="test">test</option>
          </select>
        </div>
        {keys.data && keys.data.total === 0 && !q && !status && !environment ? (
          <Empty title="No keys yet"><p>Create a key and give it to your customer or service.</p><Button kind="primary" onClick={() => setCreating(true)}>Create API key</Button></Empty>
        ) : (
          <>
            {/* Wide screens: a table whose columns fit the box; every action one click or one menu away. */}
            <div className="table-wrap table-fits hide-sm">
              <table className="keys-table">
                <thead><tr>
                  <SortHeader field="name" sort={sort} onSort={sortBy}>Key</SortHeader>
                  <th>Status</th><th>Permissions</th>
                  <SortHeader field="expiresAt" sort={sort} onSort={sortBy}>Expires</SortHeader>
                  <SortHeader field="lastUsedAt" sort={sort} onSort={sortBy} firstDescending>Last used</SortHeader>
                  <SortHeader field="createdAt" sort={sort} onSort={sortBy} className="hide-md" firstDescending>Created</SortHeader>
                  <th><span className="sr-only">Actions</span></th>
                </tr></thead>
                <tbody>
                  {list.map((k) => (
                    <tr key={k.id} data-testid={`key-row-${k.id}`}>
                      <td>
                        <Link to={`/keys/${k.id}`}>{k.name}</Link>{k.kind === 'integration' && <> <Badge tone="blue">integration</Badge></>}{k.imported && <> <Badge tone="grey">imported</Badge></>}
                        <div className="key-sub"><code>{k.start}…</code> · {k.environment}{k.ownerId && <> · owner {k.ownerId}</>}</div>
                      </td>
                      <td><Badge tone={statusTone(k.status)}>{k.status}</Badge></td>
                      <td className="perm-cell">{k.permissions.length ? k.permissions.map((p) => <span className="chip" key={p}>{p}</span>) : <span className="muted">any</span>}</td>
                      <td className="nowrap">{k.expiresAt ? day(k.expiresAt) : 'never'}</td>
                      <td className="nowrap">{relative(k.lastUsedAt)}</td>
                      <td className="nowrap hide-md">{day(k.createdAt)}</td>
                      <td className="actions-cell">{k.status !== 'revoked' && <RowMenu label={`Actions for ${k.name}`}>{actions.buttons(k)}</RowMenu>}</td>
                    </tr>
                  ))}
                  {keys.data && list.length === 0 && <tr><td colSpan={7}><Empty title="No keys match" /></td></tr>}
                </tbody>
              </table>
            </div>
            {/* Phones: one card per key, its actions in full beneath it. */}
            <ul className="key-cards show-sm" aria-label="Keys">
              {list.map((k) => (
                <li key={k.id} data-testid={`key-card-${k.id}`}>
                  <div className="row" style={{ justifyContent: 'space-between' }}>
                    <span><Link to={`/keys/${k.id}`}>{k.name}</Link>{k.imported && <> <Badge tone="grey">imported</Badge></>}</span><Badge tone={statusTone(k.status)}>{k.status}</Badge>
                  </div>
                  <div className="key-sub"><code>{k.start}…</code> · {k.environment}{k.ownerId && <> · owner {k.ownerId}</>}</div>
                  <div className="key-sub">Last used {relative(k.lastUsedAt)} · expires {k.expiresAt ? day(k.expiresAt) : 'never'}</div>
                  {k.status !== 'revoked' && <div className="row key-card-actions">{actions.buttons(k)}</div>}
                </li>
              ))}
              {keys.data && list.length === 0 && <li><Empty title="No keys match" /></li>}
            </ul>
          </>
        )}
        <div className="pager">
          <span>{keys.data?.total ?? 0} {keys.data?.total === 1 ? 'key' : 'keys'}</span>
          <Button disabled={page <= 1} onClick={() => setPage(page - 1)}>Previous</Button>
          <span>Page {page} of {pages}</span>
          <Button disabled={page >= pages} onClick={() => setPage(page + 1)}>Next</Button>
        </div>
      </div>

      {creating && (
        <KeyForm appId={appId} onClose={() => setCreating(false)} onSaved={(k) => { reloadKeys(); setCreating(false); actions.show(k.key ?? k.secret ?? '', 'key'); }} />
      )}
      {actions.dialogs}
    </>
  );
}
