// Workspace pages: the vault of an app, the audit log, members.
import { useState } from 'react';
import { api, type App, type AuditEntry, type Page } from '../../api';
import { Link } from '../../router';
import type * as Api from '../../../../src/api/types';
import { useSession } from '../../state';
import { invalidate, useApi } from '../../query';
import { AuditChanges, Badge, Button, Confirm, CopyButton, Empty, ErrorNote, Field, Modal, when } from '../../ui';

type SecretInfo = Api.SecretInfo;

export function Vault({ appId }: { appId: string }) {
  const { toast, can } = useSession();
  const app = useApi(['app', appId], () => api<App>('GET', `/v1/apps/${appId}`));
  const allowed = can('vault:read');
  const list = useApi(['vault', appId], () => api<{ data: SecretInfo[] }>('GET', `/v1/apps/${appId}/vault`).then((r) => r.data), allowed);
  const [editing, setEditing] = useState<{ name: string; isNew: boolean } | null>(null);
  const [revealed, setRevealed] = useState<{ name: string; value: string } | null>(null);
  const [confirm, setConfirm] = useState<{ name: string; action: 'reveal' | 'delete' } | null>(null);
  const act = async () => {
    if (!confirm) return;
    if (confirm.action === 'reveal') setRevealed(await api<{ name: string; value: string }>('GET', `/v1/apps/${appId}/vault/${encodeURIComponent(confirm.name)}`));
    else {
      await api('DELETE', `/v1/apps/${appId}/vault/${encodeURIComponent(confirm.name)}`);
      toast(`${confirm.name} deleted`);
      void list.refetch();
    }
    setConfirm(null);
  };
  return (
    <>
      <div className="page-head">
        <div>
          <nav className="crumbs" aria-label="Breadcrumb"><Link to="/apps">Apps</Link> / <Link to={`/apps/${appId}`}>{app.data?.name ?? '…'}</Link> / vault</nav>
          <h1>Vault</h1>
          <p>Secrets of this app, encrypted with AES-256-GCM. Revealing one is recorded in the audit log.</p>
        </div>
        {can('vault:write') && <Button kind="primary" onClick={() => setEditing({ name: '', isNew: true })}>Add secret</Button>}
      </div>
      <ErrorNote error={list.error} />
      {!allowed ? <p className="note note-info">The vault is open to owners and admins of this workspace.</p> : <div className="card">
        {list.data?.length === 0 ? <Empty title="No secrets yet" /> : (
          <div className="table-wrap">
            <table>
              <thead><tr><th>Name</th><th className="hide-sm">Updated</th><th><span className="sr-only">Actions</span></th></tr></thead>
              <tbody>
                {(list.data ?? []).map((s) => (
                  <tr key={s.name}>
                    <td><code>{s.name}</code></td>
                    <td className="hide-sm">{when(s.updatedAt)}</td>
                    <td><div className="row" style={{ justifyContent: 'flex-end' }}>
                      <Button kind="ghost" onClick={() => setConfirm({ name: s.name, action: 'reveal' })}>Reveal</Button>
                      <Button kind="ghost" onClick={() => setEditing({ name: s.name, isNew: false })}>Update</Button>
                      <Button kind="ghost" className="btn btn-ghost btn-ghost-danger" onClick={() => setConfirm({ name: s.name, action: 'delete' })}>Delete</Button>
                    </div></td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </div>}
      {editing && <SecretForm appId={appId} initialName={editing.name} isNew={editing.isNew} onClose={() => setEditing(null)} onSaved={() => { setEditing(null); void list.refetch(); toast('Secret saved'); }} />}
      {confirm && (
        <Modal title={confirm.action === 'reveal' ? `Reveal ${confirm.name}?` : `Delete ${confirm.name}?`} onClose={() => setConfirm(null)}
          footer={<><Button onClick={() => setConfirm(null)}>Cancel</Button><Button kind={confirm.action === 'delete' ? 'danger' : 'primary'} onClick={() => void act()}>{confirm.action === 'reveal' ? 'Reveal' : 'Delete'}</Button></>}>
          <p style={{ margin: 0 }}>{confirm.action === 'reveal' ? 'The value will be shown on screen and the reveal is recorded in the audit log.' : 'The secret is removed for good.'}</p>
        </Modal>
      )}
      {revealed && (
        <Modal title={revealed.name} onClose={() => setRevealed(null)} footer={<Button onClick={() => setRevealed(null)}>Done</Button>}>
          <div className="secret-box"><code>{revealed.value}</code><CopyButton text={revealed.value} /></div>
        </Modal>
      )}
    </>
  );
}

function SecretForm({ appId, initialName, isNew, onClose, onSaved }: { appId: string; initialName: string; isNew: boolean; onClose: () => void; onSaved: () => void }) {
  const [name, setName] = useState(initialName);
  const [value, setValue] = useState('');
  const [error, setError] = useState<unknown>();
  const valid = /^[A-Za-z0-9_.-]{1,128}$/.test(name);
  const save = async () => {
    try {
      await api('PUT', `/v1/apps/${appId}/vault/${encodeURIComponent(name)}`, { value });
      onSaved();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Modal title={isNew ? 'Add secret' : `Update ${initialName}`} onClose={onClose} footer={<><Button onClick={onClose}>Cancel</Button><Button kind="primary" disabled={!valid || !value} onClick={() => void save()}>Save</Button></>}>
      <Field label="Name" htmlFor="s-name" error={name && !valid ? 'Letters, digits, _ . - only' : undefined}><input id="s-name" value={name} disabled={!isNew} onChange={(e) => setName(e.target.value)} placeholder="STRIPE_SECRET_KEY" /></Field>
      <Field label="Value" htmlFor="s-value"><textarea id="s-value" rows={3} value={value} onChange={(e) => setValue(e.target.value)} /></Field>
      <ErrorNote error={error} />
    </Modal>
  );
}

export function Audit() {
  const { workspace, can } = useSession();
  const allowed = can('audit:read');
  const [page, setPage] = useState(1);
  const [action, setAction] = useState('');
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const query = new URLSearchParams({ page: String(page), limit: '25' });
  if (action.trim()) query.set('action', action.trim());
  // Dates from the pickers are local days: from the start of the first to the end of the last.
  if (from) query.set('since', new Date(`${from}T00:00:00`).toISOString());
  if (to) query.set('until', new Date(new Date(`${to}T00:00:00`).getTime() + 86_400_000).toISOString());
  const log = useApi(['audit', workspace?.id, query.toString()], () => api<Page<AuditEntry>>('GET', `/v1/workspaces/${workspace!.id}/audit?${query}`), allowed);
  const pages = Math.max(1, Math.ceil((log.data?.total ?? 0) / 25));
  return (
    <>
      <div className="page-head"><div><h1>Audit log</h1><p>Every change in this workspace: who, what, when and from where.</p></div></div>
      <ErrorNote error={log.error} />
      {!allowed ? <p className="note note-info">The audit log is open to owners and admins of this workspace.</p> : <div className="card">
        <div className="toolbar">
          <input aria-label="Filter by action" placeholder="Action or its start, e.g. vault or key.revoke" value={action} onChange={(e) => { setAction(e.target.value); setPage(1); }} />
          <label className="row">From <input type="date" aria-label="From day" value={from} onChange={(e) => { setFrom(e.target.value); setPage(1); }} /></label>
          <label className="row">To <input type="date" aria-label="To day" value={to} onChange={(e) => { setTo(e.target.value); setPage(1); }} /></label>
        </div>
        <div className="table-wrap">
          <table className="audit-table">
            <thead><tr><th>When</th><th>Action</th><th>Actor</th><th className="hide-sm">Target</th><th className="hide-sm">From</th></tr></thead>
            <tbody>
              {(log.data?.data ?? []).map((a) => (
                <tr key={a.id}>
                  <td>{when(a.at)}</td><td><Badge tone="blue">{a.action}</Badge><AuditChanges meta={a.meta} /></td><td>{a.actor.email ?? <>{a.actor.type} <span className="mono">{a.actor.id}</span></>}</td>
                  <td className="hide-sm"><span className="mono">{a.target.type === 'key' ? <Link to={`/keys/${a.target.id}`}>{a.target.id}</Link> : a.target.id}</span></td><td className="hide-sm">{a.ip ?? '—'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <div className="pager"><span>{log.data?.total ?? 0} entries</span><Button disabled={page <= 1} onClick={() => setPage(page - 1)}>Previous</Button><span>Page {page} of {pages}</span><Button disabled={page >= pages} onClick={() => setPage(page + 1)}>Next</Button></div>
      </div>}
    </>
  );
}

type Member = Api.Member;
type Invitation = Api.Invitation;

export function Members() {
  const { workspace, me, toast, can } = useSession();
  // Inviting, removing and the pending invitations are for owners and admins; a member sees who is in.
  const manages = can('*');
  const isOwner = workspace?.role === 'owner';
  const list = useApi(['members', workspace?.id], () => api<{ data: Member[] }>('GET', `/v1/workspaces/${workspace!.id}/members`).then((r) => r.data));
  const pending = useApi(['invitations', workspace?.id], () => api<{ data: Invitation[] }>('GET', `/v1/workspaces/${workspace!.id}/invitations`).then((r) => r.data), manages);
  const [inviting, setInviting] = useState(false);
  const [form, setForm] = useState({ email: '', role: 'member' });
  const [link, setLink] = useState<string | null>(null);
  const [error, setError] = useState<unknown>();
  const [removing, setRemoving] = useState<Member | null>(null);
  const [revoking, setRevoking] = useState<Invitation | null>(null);
  const invite = async () => {
    try {
      setError(undefined);
      const created = await api<Invitation & { url: string }>('POST', `/v1/workspaces/${workspace!.id}/invitations`, form);
      setLink(created.url.startsWith('/') ? location.origin + created.url : created.url);
      setInviting(false);
      setForm({ email: '', role: 'member' });
      void pending.refetch();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <>
      <div className="page-head">
        <div><h1>Members</h1><p>Owners and admins run the workspace; members work with keys. People join by invitation and choose their own password.</p></div>
        {manages && <Button kind="primary" onClick={() => setInviting(true)}>Invite member</Button>}
      </div>
      <div className="stack">
      <ErrorNote error={list.error} />
      {!manages && <p className="note note-info">You are a member of {workspace?.name}: owners and admins invite and remove people.</p>}
      {link && (
        <div className="note note-info stack" data-testid="invite-link">
          <strong>Invitation created. Send this link to the person you invited: it works once, for 7 days, and is not shown again.</strong>
          <div className="row"><code className="mono" style={{ flex: 1, overflowWrap: 'anywhere' }} data-testid="invite-url">{link}</code><CopyButton text={link} label="Copy link" testId="copy-invite" /></div>
          <div><Button onClick={() => setLink(null)}>Done</Button></div>
        </div>
      )}
      <div className="card"><div className="table-wrap"><table>
        <thead><tr><th>Email</th><th>Role</th><th className="hide-sm">Since</th>{manages && <th><span className="sr-only">Actions</span></th>}</tr></thead>
        <tbody>{(list.data ?? []).map((m) => (
          <tr key={m.userId}><td className="wrap-anywhere">{m.email}{m.userId === me?.user.id && ' (you)'}</td><td><Badge tone={m.role === 'owner' ? 'blue' : 'grey'}>{m.role}</Badge></td><td className="hide-sm">{when(m.createdAt)}</td>
            {manages && <td>{m.userId !== me?.user.id && (m.role !== 'owner' || isOwner) && <Button kind="ghost" className="btn btn-ghost btn-ghost-danger" aria-label={`Remove ${m.email}`} onClick={() => setRemoving(m)}>Remove</Button>}</td>}</tr>
        ))}</tbody>
      </table></div></div>
      {manages && <h2 style={{ margin: '8px 0 0' }}>Pending invitations</h2>}
      {manages && ((pending.data ?? []).length === 0 ? <p className="hint">No pending invitations.</p> : (
        <div className="card"><div className="table-wrap"><table data-testid="pending-invitations">
          <thead><tr><th>Email</th><th>Role</th><th className="hide-sm">Expires</th><th><span className="sr-only">Actions</span></th></tr></thead>
          <tbody>{(pending.data ?? []).map((i) => (
            <tr key={i.id}><td className="wrap-anywhere">{i.email}</td><td><Badge tone="grey">{i.role}</Badge></td><td className="hide-sm">{when(i.expiresAt)}</td>
              <td><Button kind="ghost" className="btn btn-ghost btn-ghost-danger" aria-label={`Revoke invitation for ${i.email}`} onClick={() => setRevoking(i)}>Revoke</Button></td></tr>
          ))}</tbody>
        </table></div></div>
      ))}
      </div>
      {inviting && (
        <Modal title="Invite member" onClose={() => setInviting(false)} footer={<><Button onClick={() => setInviting(false)}>Cancel</Button><Button kind="primary" onClick={() => void invite()}>Create invitation</Button></>}>
          <ErrorNote error={error} />
          <Field label="Email" htmlFor="m-email"><input id="m-email" type="email" value={form.email} onChange={(e) => setForm({ ...form, email: e.target.value })} /></Field>
          <Field label="Role" htmlFor="m-role"><select id="m-role" value={form.role} onChange={(e) => setForm({ ...form, role: e.target.value })}><option value="member">member</option><option value="admin">admin</option>{isOwner && <option value="owner">owner</option>}</select></Field>
        </Modal>
      )}
      {removing && (
        <Confirm title={`Remove ${removing.email}?`} action="Remove member" onClose={() => setRemoving(null)}
          onConfirm={async () => { await api('DELETE', `/v1/workspaces/${workspace!.id}/members/${removing.userId}`); await list.refetch(); toast(`${removing.email} removed`); }}>
          They lose access to {workspace?.name} at once: its apps, keys and settings. Their account stays; they can be invited again.
        </Confirm>
      )}
      {revoking && (
        <Confirm title={`Revoke the invitation for ${revoking.email}?`} action="Revoke invitation" onClose={() => setRevoking(null)}
          onConfirm={async () => { await api('DELETE', `/v1/workspaces/${workspace!.id}/invitations/${revoking.id}`); await pending.refetch(); toast('Invitation revoked'); }}>
          The link stops working now. You can invite them again later.
        </Confirm>
      )}
    </>
  );
}
