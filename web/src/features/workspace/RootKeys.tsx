// Root keys of the workspace: credentials for automation (CLI, SDK, CI, a gateway verifying keys),
// each with only the permissions it needs. The value is shown once.
import { useState } from 'react';
import { api } from '../../api';
import type * as Api from '../../../../src/api/types';
import { invalidate, useApi } from '../../query';
import { useSession } from '../../state';
import { Badge, Button, Confirm, ErrorNote, Field, Modal, relative, when } from '../../ui';
import { ShownOnce } from '../keys/KeyForm';

const PERMISSIONS: [string, string][] = [
  ['keys:verify', 'verify keys (SDK, middleware, gateways)'],
  ['keys:read', 'read keys and their usage'],
  ['keys:write', 'create, change, roll and revoke keys'],
  ['keys:import', 'import keys issued elsewhere'],
  ['apps:read', 'read apps'],
  ['apps:write', 'create and change apps'],
  ['vault:read', 'reveal vault secrets'],
  ['vault:write', 'write vault secrets'],
  ['audit:read', 'read the audit log'],
  ['webhooks:read', 'read webhooks'],
  ['webhooks:write', 'manage webhooks'],
  ['identities:read', 'read identities and overrides'],
  ['identities:write', 'manage identities, their limits and overrides'],
  ['ratelimit:limit', 'the standalone limiter (POST /v1/ratelimit) and its overrides'],
  ['*', 'everything'],
];

export function RootKeys() {
  const { workspace, toast, can } = useSession();
  // Root keys act for the whole workspace: only owners and admins see or make them.
  const allowed = can('*');
  const keys = useApi(['root-keys', workspace?.id], () => api<{ data: Api.RootKey[] }>('GET', `/v1/workspaces/${workspace!.id}/root-keys`).then((r) => r.data), allowed);
  const [creating, setCreating] = useState(false);
  const [shown, setShown] = useState<string | null>(null);
  const [revoking, setRevoking] = useState<Api.RootKey | null>(null);
  return (
    <>
      <div className="page-head">
        <div><h1>Root keys</h1><p>Credentials for automation. Send one as <code>Authorization: Bearer &lt;root key&gt;</code>; give each only what it needs (a service that only verifies needs <code>keys:verify</code>).</p></div>
        {allowed && <Button kind="primary" onClick={() => setCreating(true)}>New root key</Button>}
      </div>
      {!allowed ? (
        <p className="note note-info" data-testid="root-keys-role">Root keys are managed by owners and admins of {workspace?.name}. Ask one of them for a key with the permissions your automation needs.</p>
      ) : (
        <>
          <ErrorNote error={keys.error} />
          <div className="card"><div className="table-wrap"><table>
            <thead><tr><th>Name</th><th>Permissions</th><th className="hide-sm">Created</th><th className="hide-sm">Last used</th><th><span className="sr-only">Actions</span></th></tr></thead>
            <tbody>{(keys.data ?? []).map((k) => (
              <tr key={k.id}>
                <td className="wrap-anywhere">{k.name}<div className="mono muted">{k.start}…</div></td>
                <td>{k.permissions.map((p) => <Badge key={p} tone="grey">{p}</Badge>)}</td>
                <td className="hide-sm">{when(k.createdAt)}</td>
                <td className="hide-sm">{relative(k.lastUsedAt)}</td>
                <td>{k.revokedAt ? <Badge tone="red">revoked</Badge> : <Button kind="ghost" className="btn btn-ghost btn-ghost-danger" aria-label={`Revoke ${k.name}`} onClick={() => setRevoking(k)}>Revoke</Button>}</td>
              </tr>
            ))}</tbody>
          </table></div></div>
        </>
      )}
      {creating && <CreateRootKey workspaceId={workspace!.id} onClose={() => setCreating(false)} onCreated={(value) => { setCreating(false); setShown(value); void invalidate('root-keys'); }} />}
      {shown && <ShownOnce title="Root key created" value={shown} secretLabel="root key" onClose={() => setShown(null)} />}
      {revoking && (
        <Confirm title={`Revoke ${revoking.name}?`} action="Revoke root key" onClose={() => setRevoking(null)}
          onConfirm={async () => { await api('DELETE', `/v1/root-keys/${revoking.id}`); await invalidate('root-keys'); toast('Root key revoked'); }}>
          Every request made with <code>{revoking.start}…</code> is refused from now on: whatever uses it (CI, a gateway, the CLI) stops working until it gets a new key. This cannot be undone.
        </Confirm>
      )}
    </>
  );
}

function CreateRootKey({ workspaceId, onClose, onCreated }: { workspaceId: string; onClose: () => void; onCreated: (value: string) => void }) {
  const [name, setName] = useState('');
  const [granted, setGranted] = useState<string[]>(['keys:verify']);
  const [error, setError] = useState<unknown>();
  const submit = async () => {
    try {
      const created = await api<Api.RootKey & { key: string }>('POST', `/v1/workspaces/${workspaceId}/root-keys`, { name, permissions: granted });
      onCreated(created.key);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Modal title="New root key" onClose={onClose} footer={<><Button onClick={onClose}>Cancel</Button><Button kind="primary" disabled={!name.trim() || granted.length === 0} onClick={() => void submit()}>Create root key</Button></>}>
      <ErrorNote error={error} />
      <Field label="Name" htmlFor="rk-name" hint="What uses it, e.g. “CI deploys” or “nginx gateway”"><input id="rk-name" value={name} onChange={(e) => setName(e.target.value)} /></Field>
      <fieldset className="stack" style={{ border: 0, padding: 0 }}>
        <legend>Permissions</legend>
        {PERMISSIONS.map(([p, what]) => (
          <label key={p} className="row"><input type="checkbox" checked={granted.includes(p)} onChange={(e) => setGranted(e.target.checked ? [...granted, p] : granted.filter((g) => g !== p))} /> <code>{p}</code> <span className="hint">{what}</span></label>
        ))}
      </fieldset>
    </Modal>
  );
}
