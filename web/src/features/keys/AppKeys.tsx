// An app's keys: table with search, filters and pages; create, edit, disable, roll, revoke.
import { useEffect, useState, type ReactNode } from 'react';
import { api, type App, type Key, type Page } from '../../api';
import { Link } from '../../router';
import { useSession } from '../../state';
import { invalidate, useApi } from '../../query';
import { Badge, Button, day, Empty, ErrorNote, Field, Modal, relative, statusTone } from '../../ui';
import { KeyForm, ShownOnce } from './KeyForm';

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
  const { toast } = useSession();
  const [typed, setTyped] = useState('');
  const [q, setQ] = useState('');
  const [sort, setSort] = useState<Sort>('-createdAt');
  useEffect(() => {
    const t = setTimeout(() => {
      setQ(typed.trim());
      setPage(1);
    }, SEARCH_DEBOUNCE_MS);
    return () => clearTimeout(t);
  }, [typed]);
  const [status, setStatus] = useState('');
  const [environment, setEnvironment] = useState('');
  const [page, setPage] = useState(1);
  const [modal, setModal] = useState<{ kind: 'create' } | { kind: 'edit' | 'roll' | 'revoke'; key: Key } | { kind: 'shown'; value: string; label: string } | null>(null);
  const app = useApi(['app', appId], () => api<App>('GET', `/v1/apps/${appId}`));
  const query = new URLSearchParams({ page: String(page), limit: String(LIMIT), ...(q ? { q } : {}), ...(status ? { status } : {}), ...(environment ? { environment } : {}), ...(sort !== '-createdAt' ? { sort } : {}) });
  const keys = useApi(['keys', appId, query.toString()], () => api<Page<Key>>('GET', `/v1/apps/${appId}/keys?${query}`));
  const reloadKeys = () => void invalidate('keys', appId);
  const pages = Math.max(1, Math.ceil((keys.data?.total ?? 0) / LIMIT));

  const setEnabled = async (key: Key, enabled: boolean) => {
    await api('PATCH', `/v1/keys/${key.id}`, { status: enabled ? 'active' : 'disabled' });
    toast(`${key.name} ${enabled ? 'enabled' : 'disabled'}`);
    reloadKeys();
  };

  return (
    <>
      <div className="page-head">
        <div>
          <div className="crumbs"><Link to="/apps">Apps</Link> / {app.data?.name ?? '…'}</div>
          <h1>{app.data?.name ?? 'App'}</h1>
          <p>Keys start with <code>{app.data?.keyPrefix}_live_</code> or <code>{app.data?.keyPrefix}_test_</code>. <Link to={`/apps/${appId}/vault`}>Vault →</Link> <Link to={`/apps/${appId}/settings`}>Gateway rules →</Link></p>
        </div>
        <Button kind="primary" onClick={() => setModal({ kind: 'create' })}>Create API key</Button>
      </div>
      <ErrorNote error={app.error ?? keys.error} />
      <div className="card">
        <div className="toolbar" role="search">
          <input aria-label="Search keys" placeholder="Search name, start, owner…" value={typed} onChange={(e) => setTyped(e.target.value)} style={{ flex: 1, minWidth: 180 }} />
          <select aria-label="Status" value={status} onChange={(e) => { setStatus(e.target.value); setPage(1); }}>
            <option value="">All statuses</option><option value="active">Active</option><option value="disabled">Disabled</option><option value="revoked">Revoked</option>
          </select>
          <select aria-label="Environment" value={environment} onChange={(e) => { setEnvironment(e.target.value); setPage(1); }}>
            <option value="">All environments</option><option value="live">live</option><option value="test">test</option>
          </select>
        </div>
        {keys.data && keys.data.total === 0 && !q && !status && !environment ? (
          <Empty title="No keys yet"><p>Create a key and give it to your customer or service.</p><Button kind="primary" onClick={() => setModal({ kind: 'create' })}>Create API key</Button></Empty>
        ) : (
          <div className="table-wrap">
            <table>
              <thead><tr>
                <SortHeader field="name" sort={sort} onSort={(v) => { setSort(v); setPage(1); }}>Key</SortHeader>
                <th className="hide-sm">Owner</th><th>Status</th><th className="hide-sm">Permissions</th>
                <SortHeader field="expiresAt" sort={sort} onSort={(v) => { setSort(v); setPage(1); }} className="hide-sm">Expires</SortHeader>
                <SortHeader field="lastUsedAt" sort={sort} onSort={(v) => { setSort(v); setPage(1); }} className="hide-sm" firstDescending>Last used</SortHeader>
                <SortHeader field="createdAt" sort={sort} onSort={(v) => { setSort(v); setPage(1); }} className="hide-sm" firstDescending>Created</SortHeader>
                <th><span className="sr-only">Actions</span></th>
              </tr></thead>
              <tbody>
                {(keys.data?.data ?? []).map((k) => (
                  <tr key={k.id} data-testid={`key-row-${k.id}`}>
                    <td>
                      <Link to={`/keys/${k.id}`}>{k.name}</Link>{k.kind === 'integration' && <> <Badge tone="blue">integration</Badge></>}
                      <div style={{ whiteSpace: 'nowrap', color: 'var(--muted)' }}><code>{k.start}…</code> · {k.environment}</div>
                    </td>
                    <td className="hide-sm">{k.ownerId ?? '—'}</td>
                    <td><Badge tone={statusTone(k.status)}>{k.status}</Badge></td>
                    <td className="hide-sm">{k.permissions.length ? k.permissions.map((p) => <span className="chip" key={p}>{p}</span>) : <span style={{ color: 'var(--muted)' }}>any</span>}</td>
                    <td className="hide-sm" style={{ whiteSpace: 'nowrap' }}>{k.expiresAt ? day(k.expiresAt) : 'never'}</td>
                    <td className="hide-sm" style={{ whiteSpace: 'nowrap' }}>{relative(k.lastUsedAt)}</td>
                    <td className="hide-sm" style={{ whiteSpace: 'nowrap' }}>{day(k.createdAt)}</td>
                    <td>
                      {k.status !== 'revoked' && (() => {
                        const actions = (
                          <>
                            <Button kind="ghost" onClick={() => setModal({ kind: 'edit', key: k })} aria-label={`Edit ${k.name}`}>Edit</Button>
                            <Button kind="ghost" onClick={() => void setEnabled(k, k.status !== 'active')}>{k.status === 'active' ? 'Disable' : 'Enable'}</Button>
                            <Button kind="ghost" onClick={() => setModal({ kind: 'roll', key: k })}>Roll</Button>
                            <Button kind="ghost" onClick={() => setModal({ kind: 'revoke', key: k })} aria-label={`Revoke ${k.name}`} style={{ color: 'var(--danger)' }}>Revoke</Button>
                          </>
                        );
                        return (
                          <>
                            <div className="row hide-sm" style={{ justifyContent: 'flex-end', flexWrap: 'nowrap' }}>{actions}</div>
                            {/* Phones: the same actions behind one menu button, so the row fits the screen. */}
                            <details className="row-menu show-sm" onClick={(e) => { if ((e.target as HTMLElement).closest('button')) (e.currentTarget as HTMLDetailsElement).open = false; }}>
                              <summary aria-label={`Actions for ${k.name}`}>⋯</summary>
                              <div className="row-menu-items">{actions}</div>
                            </details>
                          </>
                        );
                      })()}
                    </td>
                  </tr>
                ))}
                {keys.data && keys.data.data.length === 0 && <tr><td colSpan={8}><Empty title="No keys match" /></td></tr>}
              </tbody>
            </table>
          </div>
        )}
        <div className="pager">
          <span>{keys.data?.total ?? 0} {keys.data?.total === 1 ? 'key' : 'keys'}</span>
          <Button disabled={page <= 1} onClick={() => setPage(page - 1)}>Previous</Button>
          <span>Page {page} of {pages}</span>
          <Button disabled={page >= pages} onClick={() => setPage(page + 1)}>Next</Button>
        </div>
      </div>

      {modal?.kind === 'create' && (
        <KeyForm appId={appId} onClose={() => setModal(null)} onSaved={(k) => { reloadKeys(); setModal({ kind: 'shown', value: k.key ?? k.secret ?? '', label: 'key' }); }} />
      )}
      {modal?.kind === 'edit' && <KeyForm appId={appId} keyToEdit={modal.key} onClose={() => setModal(null)} onSaved={() => { reloadKeys(); setModal(null); toast('Key saved'); }} />}
      {modal?.kind === 'roll' && <RollDialog keyToRoll={modal.key} onClose={() => setModal(null)} onRolled={(value) => { reloadKeys(); setModal({ kind: 'shown', value, label: 'new key' }); }} />}
      {modal?.kind === 'revoke' && <RevokeDialog keyToRevoke={modal.key} onClose={() => setModal(null)} onRevoked={() => { reloadKeys(); setModal(null); toast('Key revoked'); }} />}
      {modal?.kind === 'shown' && <ShownOnce title="Your API key" value={modal.value} secretLabel={modal.label} onClose={() => setModal(null)} />}
    </>
  );
}

function RollDialog({ keyToRoll, onClose, onRolled }: { keyToRoll: Key; onClose: () => void; onRolled: (value: string) => void }) {
  const [grace, setGrace] = useState('0');
  const [error, setError] = useState<unknown>();
  const roll = async () => {
    try {
      const k = await api<Key>('POST', `/v1/keys/${keyToRoll.id}/roll`, { gracePeriodMs: Number(grace) });
      onRolled(k.key ?? k.secret ?? '');
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Modal title={`Roll ${keyToRoll.name}`} onClose={onClose} footer={<><Button onClick={onClose}>Cancel</Button><Button kind="primary" onClick={() => void roll()}>Roll key</Button></>}>
      <p style={{ margin: 0 }}>The key gets a new value, shown once. Settings, usage and id stay the same.</p>
      <Field label="Grace period for the old value" htmlFor="grace">
        <select id="grace" value={grace} onChange={(e) => setGrace(e.target.value)}>
          <option value="0">None — the old value stops now</option>
          <option value="300000">5 minutes</option><option value="3600000">1 hour</option><option value="86400000">24 hours</option><option value="604800000">7 days</option>
        </select>
      </Field>
      <ErrorNote error={error} />
    </Modal>
  );
}

function RevokeDialog({ keyToRevoke, onClose, onRevoked }: { keyToRevoke: Key; onClose: () => void; onRevoked: () => void }) {
  const [typed, setTyped] = useState('');
  const [error, setError] = useState<unknown>();
  const revoke = async () => {
    try {
      await api('DELETE', `/v1/keys/${keyToRevoke.id}`);
      onRevoked();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Modal title="Revoke key" onClose={onClose} footer={<><Button onClick={onClose}>Cancel</Button><Button kind="danger" disabled={typed !== keyToRevoke.name} onClick={() => void revoke()}>Revoke key</Button></>}>
      <div className="note note-error">Revoking is immediate and cannot be undone. Every request with <code>{keyToRevoke.start}…</code> will be refused.</div>
      <Field label={`Type "${keyToRevoke.name}" to confirm`} htmlFor="confirm"><input id="confirm" value={typed} onChange={(e) => setTyped(e.target.value)} autoComplete="off" /></Field>
      <ErrorNote error={error} />
    </Modal>
  );
}
