// What can be done to one key, the same on the keys table and on the key's own page: edit, disable
// or enable, roll (a new value, in the same or the other environment), revoke (typed confirmation).
import { useState, type ReactNode } from 'react';
import { api, type Key } from '../../api';
import { useSession } from '../../state';
import { Button, ErrorNote, Field, Modal } from '../../ui';
import { KeyForm, ShownOnce } from './KeyForm';

type Dialog = { kind: 'edit' | 'roll' | 'revoke'; key: Key } | { kind: 'shown'; value: string; label: string } | null;

/** Buttons for a key and the dialogs they open; `changed` runs after every change. */
export function useKeyActions(changed: () => void): { buttons: (k: Key) => ReactNode; dialogs: ReactNode; show: (value: string, label: string) => void } {
  const { toast } = useSession();
  const [dialog, setDialog] = useState<Dialog>(null);
  const [error, setError] = useState<unknown>();
  const setEnabled = async (key: Key, enabled: boolean) => {
    try {
      setError(undefined);
      await api('PATCH', `/v1/keys/${key.id}`, { status: enabled ? 'active' : 'disabled' });
      toast(`${key.name} ${enabled ? 'enabled' : 'disabled'}`);
      changed();
    } catch (err) {
      setError(err);
    }
  };
  const buttons = (k: Key) => k.status === 'revoked' ? null : (
    <>
      <Button kind="ghost" onClick={() => setDialog({ kind: 'edit', key: k })} aria-label={`Edit ${k.name}`}>Edit</Button>
      <Button kind="ghost" onClick={() => void setEnabled(k, k.status !== 'active')} aria-label={`${k.status === 'active' ? 'Disable' : 'Enable'} ${k.name}`}>{k.status === 'active' ? 'Disable' : 'Enable'}</Button>
      <Button kind="ghost" onClick={() => setDialog({ kind: 'roll', key: k })} aria-label={`Roll ${k.name}`}>Roll</Button>
      <Button kind="ghost" className="btn btn-ghost btn-ghost-danger" onClick={() => setDialog({ kind: 'revoke', key: k })} aria-label={`Revoke ${k.name}`}>Revoke</Button>
    </>
  );
  const close = () => setDialog(null);
  const dialogs = (
    <>
      <ErrorNote error={error} />
      {dialog?.kind === 'edit' && <KeyForm appId={dialog.key.appId} keyToEdit={dialog.key} onClose={close} onSaved={() => { changed(); close(); toast('Key saved'); }} />}
      {dialog?.kind === 'roll' && <RollDialog keyToRoll={dialog.key} onClose={close} onRolled={(value) => { changed(); setDialog({ kind: 'shown', value, label: 'new key' }); }} />}
      {dialog?.kind === 'revoke' && <RevokeDialog keyToRevoke={dialog.key} onClose={close} onRevoked={() => { changed(); close(); toast('Key revoked'); }} />}
      {dialog?.kind === 'shown' && <ShownOnce title="Your API key" value={dialog.value} secretLabel={dialog.label} onClose={close} />}
    </>
  );
  return { buttons, dialogs, show: (value, label) => setDialog({ kind: 'shown', value, label }) };
}

function RollDialog({ keyToRoll, onClose, onRolled }: { keyToRoll: Key; onClose: () => void; onRolled: (value: string) => void }) {
  const [grace, setGrace] = useState('0');
  const [environment, setEnvironment] = useState(keyToRoll.environment);
  const [error, setError] = useState<unknown>();
  const roll = async () => {
    try {
      const k = await api<Key>('POST', `/v1/keys/${keyToRoll.id}/roll`, { gracePeriodMs: Number(grace), ...(environment !== keyToRoll.environment ? { environment } : {}) });
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
      <Field label="Environment of the new value" htmlFor="roll-env" hint="The environment is part of a key's value: rolling is how a key moves between live and test">
        <select id="roll-env" value={environment} onChange={(e) => setEnvironment(e.target.value as Key['environment'])}>
          <option value="live">live</option><option value="test">test</option>
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
