// Apps of the workspace, and creating one.
import { useState } from 'react';
import { api, type App } from '../../api';
import { Link, navigate } from '../../router';
import { useSession } from '../../state';
import { invalidate, useApi } from '../../query';
import { Button, Empty, ErrorNote, Field, Modal, when } from '../../ui';

export function Apps() {
  const { workspace, can } = useSession();
  const apps = useApi(['apps', workspace?.id], () => api<{ data: App[] }>('GET', `/v1/apps?workspaceId=${workspace!.id}`).then((r) => r.data));
  const [creating, setCreating] = useState(false);
  return (
    <>
      <div className="page-head">
        <div>
          <h1>Apps</h1>
          <p>Each app holds keys for one product or environment family, with its own key prefix and defaults.</p>
        </div>
        {can('apps:write') && <Button kind="primary" onClick={() => setCreating(true)}>New app</Button>}
      </div>
      <ErrorNote error={apps.error} />
      <div className="card">
        {apps.data && apps.data.length === 0 ? (
          <Empty title="No apps yet">{can('apps:write') ? <><p>Create an app to start issuing keys.</p><Button kind="primary" onClick={() => setCreating(true)}>Create your first app</Button></> : <p>An owner or admin of this workspace creates apps.</p>}</Empty>
        ) : (
          <div className="table-wrap">
            <table>
              <thead><tr><th>Name</th><th>Key prefix</th><th className="hide-sm">Default limit</th><th className="hide-sm">Created</th></tr></thead>
              <tbody>
                {(apps.data ?? []).map((a) => (
                  <tr key={a.id}>
                    <td><Link to={`/apps/${a.id}`}>{a.name}</Link><div className="mono muted">{a.id}</div></td>
                    <td><code>{a.keyPrefix}_</code></td>
                    <td className="hide-sm">{a.defaults.ownerRatelimit ? `${a.defaults.ownerRatelimit.limit} / ${a.defaults.ownerRatelimit.durationMs / 1000}s per owner` : 'none'}</td>
                    <td className="hide-sm">{when(a.createdAt)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </div>
      {creating && <CreateApp workspaceId={workspace!.id} onClose={() => setCreating(false)} />}
    </>
  );
}

function CreateApp({ workspaceId, onClose }: { workspaceId: string; onClose: () => void }) {
  const [name, setName] = useState('');
  const [prefix, setPrefix] = useState('');
  const [error, setError] = useState<unknown>();
  const submit = async () => {
    try {
      const app = await api<App>('POST', '/v1/apps', { workspaceId, name, ...(prefix ? { keyPrefix: prefix } : {}) });
      onClose();
      void invalidate('apps');
      navigate(`/apps/${app.id}`);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Modal title="New app" onClose={onClose} footer={<><Button onClick={onClose}>Cancel</Button><Button kind="primary" onClick={() => void submit()} disabled={!name}>Create app</Button></>}>
      <Field label="Name" htmlFor="app-name"><input id="app-name" value={name} onChange={(e) => setName(e.target.value)} placeholder="Acme API" /></Field>
      <Field label="Key prefix" htmlFor="app-prefix" hint="Lowercase letters and digits; keys look like acme_live_…; derived from the name when empty">
        <input id="app-prefix" value={prefix} onChange={(e) => setPrefix(e.target.value.toLowerCase())} placeholder="acme" />
      </Field>
      <ErrorNote error={error} />
    </Modal>
  );
}
