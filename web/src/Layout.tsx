// The frame around every signed-in page: sidebar with workspace switcher and navigation.
import { useState, type ReactNode } from 'react';
import { api, type App } from './api';
import { Link, navigate } from './router';
import { useSession } from './state';
import { Button, ErrorNote, Field, Modal } from './ui';
import { useApi } from './query';

export function Layout({ children }: { children: ReactNode }) {
  const { me, workspace, setWorkspace, signOut } = useSession();
  const [open, setOpen] = useState(false);
  const [creating, setCreating] = useState(false);
  const apps = useApi(['apps', workspace?.id], () => api<{ data: App[] }>('GET', `/v1/apps?workspaceId=${workspace!.id}`).then((r) => r.data), Boolean(workspace));
  return (
    <div className="shell">
      <aside className={`sidebar${open ? ' open' : ''}`} aria-label="Navigation">
        <div className="logo"><span className="logo-mark" aria-hidden="true">K</span>Keyward</div>
        {me && me.workspaces.length > 0 && (
          <label>
            <span className="sr-only">Workspace</span>
            <select aria-label="Workspace" value={workspace?.id} onChange={(e) => { setWorkspace(e.target.value); navigate('/apps'); }}>
              {me.workspaces.map((w) => <option key={w.id} value={w.id}>{w.name}</option>)}
            </select>
          </label>
        )}
        <button type="button" className="btn btn-ghost new-ws" onClick={() => setCreating(true)}>+ New workspace</button>
        <nav className="nav" onClick={() => setOpen(false)}>
          <Link to="/apps">Apps</Link>
          {(apps.data ?? []).map((a) => <Link key={a.id} to={`/apps/${a.id}`}>· {a.name}</Link>)}
          <div className="nav-label">Workspace</div>
          <Link to="/identities">Identities</Link>
          <Link to="/audit">Audit log</Link>
          <Link to="/members">Members</Link>
          <Link to="/root-keys">Root keys</Link>
          <Link to="/webhooks">Webhooks</Link>
          <div className="nav-label">Developers</div>
          <Link to="/playground">API playground</Link>
          <Link to="/reference">API docs</Link>
        </nav>
        <div className="sidebar-foot">
          <span>{me?.user.email}</span>
          <button type="button" className="btn" onClick={() => void signOut().then(() => navigate('/login'))}>Log out</button>
        </div>
      </aside>
      {creating && <NewWorkspace onClose={() => setCreating(false)} />}
      <main className="main">
        <button type="button" className="btn menu-btn" aria-expanded={open} onClick={() => setOpen(!open)}>☰ Menu</button>
        {children}
      </main>
    </div>
  );
}

/** A workspace of one's own: the creator is its owner. */
function NewWorkspace({ onClose }: { onClose: () => void }) {
  const { refresh, setWorkspace, toast } = useSession();
  const [name, setName] = useState('');
  const [error, setError] = useState<unknown>();
  const submit = async () => {
    try {
      const ws = await api<{ id: string }>('POST', '/v1/workspaces', { name });
      await refresh();
      setWorkspace(ws.id);
      onClose();
      navigate('/apps');
      toast('Workspace created');
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Modal title="New workspace" onClose={onClose} footer={<><Button onClick={onClose}>Cancel</Button><Button kind="primary" disabled={!name.trim()} onClick={() => void submit()}>Create workspace</Button></>}>
      <ErrorNote error={error} />
      <Field label="Workspace name" htmlFor="ws-name"><input id="ws-name" value={name} onChange={(e) => setName(e.target.value)} /></Field>
    </Modal>
  );
}
