// Identities of the workspace: the customers behind keys (a key's owner), with their meta and named
// limits; searched by externalId, paged.
import { useEffect, useState } from 'react';
import { api, type Page } from '../../api';
import type * as Api from '../../../../src/api/types';
import { Link, navigate } from '../../router';
import { invalidate, useApi } from '../../query';
import { useSession } from '../../state';
import { Button, Empty, ErrorNote, Field, Modal, day } from '../../ui';
import { limitText, NamedLimitsEditor, toLimits, type LimitRow } from './NamedLimits';

const LIMIT = 20;

export function Identities() {
  const { workspace, can } = useSession();
  const [typed, setTyped] = useState('');
  const [q, setQ] = useState('');
  const [page, setPage] = useState(1);
  const [creating, setCreating] = useState(false);
  useEffect(() => {
    const t = setTimeout(() => {
      setQ(typed.trim());
      setPage(1);
    }, 250);
    return () => clearTimeout(t);
  }, [typed]);
  const query = new URLSearchParams({ page: String(page), limit: String(LIMIT), ...(q ? { q } : {}) });
  const list = useApi(['identities', workspace?.id, query.toString()], () => api<Page<Api.Identity>>('GET', `/v1/workspaces/${workspace!.id}/identities?${query}`), Boolean(workspace));
  const pages = Math.max(1, Math.ceil((list.data?.total ?? 0) / LIMIT));
  const rows = list.data?.data ?? [];
  return (
    <>
      <div className="page-head">
        <div><h1>Identities</h1><p>The customers behind your keys: a key&apos;s <code>ownerId</code> names its identity in this workspace, in any app. Its meta comes back with every verify of its keys, and its named limits are shared by all of them.</p></div>
        {can('identities:write') && <Button kind="primary" onClick={() => setCreating(true)}>New identity</Button>}
      </div>
      <ErrorNote error={list.error} />
      <div className="card">
        <div className="toolbar" role="search">
          <input aria-label="Search identities" placeholder="Search externalId…" value={typed} onChange={(e) => setTyped(e.target.value)} style={{ flex: 1, minWidth: 160 }} />
        </div>
        {list.data && list.data.total === 0 && !q ? (
          <Empty title="No identities yet"><p>A key created with an owner makes its identity; you can also make one ahead, with limits.</p></Empty>
        ) : (
          <div className="table-wrap"><table>
            <thead><tr><th>External id</th><th>Named limits</th><th className="hide-sm">Created</th></tr></thead>
            <tbody>
              {rows.map((i) => (
                <tr key={i.id}>
                  <td className="wrap-anywhere"><Link to={`/identities/${i.id}`}>{i.externalId}</Link></td>
                  <td>{i.ratelimits.length ? i.ratelimits.map((l) => <span className="chip" key={l.name}>{limitText(l)}</span>) : <span className="muted">none</span>}</td>
                  <td className="hide-sm nowrap">{day(i.createdAt)}</td>
                </tr>
              ))}
              {list.data && rows.length === 0 && <tr><td colSpan={3}><Empty title="No identities match" /></td></tr>}
            </tbody>
          </table></div>
        )}
        <div className="pager">
          <span>{list.data?.total ?? 0} {list.data?.total === 1 ? 'identity' : 'identities'}</span>
          <Button disabled={page <= 1} onClick={() => setPage(page - 1)}>Previous</Button>
          <span>Page {page} of {pages}</span>
          <Button disabled={page >= pages} onClick={() => setPage(page + 1)}>Next</Button>
        </div>
      </div>
      {creating && <CreateIdentity workspaceId={workspace!.id} onClose={() => setCreating(false)} />}
    </>
  );
}

function CreateIdentity({ workspaceId, onClose }: { workspaceId: string; onClose: () => void }) {
  const { toast } = useSession();
  const [externalId, setExternalId] = useState('');
  const [rows, setRows] = useState<LimitRow[]>([]);
  const [error, setError] = useState<unknown>();
  const submit = async () => {
    const ratelimits = toLimits(rows);
    if (typeof ratelimits === 'string') return setError(new Error(ratelimits));
    try {
      const made = await api<Api.Identity>('POST', `/v1/workspaces/${workspaceId}/identities`, { externalId: externalId.trim(), ratelimits });
      await invalidate('identities');
      toast('Identity created');
      onClose();
      navigate(`/identities/${made.id}`);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Modal wide title="New identity" onClose={onClose} footer={<><Button onClick={onClose}>Cancel</Button><Button kind="primary" disabled={!externalId.trim()} onClick={() => void submit()}>Create identity</Button></>}>
      <ErrorNote error={error} />
      <Field label="External id" htmlFor="idt-ext" hint="Your own id of the customer: the ownerId of its keys"><input id="idt-ext" value={externalId} onChange={(e) => setExternalId(e.target.value)} placeholder="cust_42" /></Field>
      <fieldset className="stack plain-fieldset"><legend>Named limits</legend><NamedLimitsEditor idPrefix="idt-new" rows={rows} onChange={setRows} /></fieldset>
    </Modal>
  );
}
