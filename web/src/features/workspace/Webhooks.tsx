// Webhooks of the workspace: endpoints with their events, the signing secret shown once, and each
// endpoint's deliveries with status, response and latency, retry, rotate, disable.
import { useState } from 'react';
import { api, type Page } from '../../api';
import type * as Api from '../../../../src/api/types';
import { WEBHOOK_EVENTS, WEBHOOK_EVENT_TYPES } from '../../../../src/webhooks/events';
import { invalidate, useApi } from '../../query';
import { Link, navigate } from '../../router';
import { useSession } from '../../state';
import { Badge, Button, CopyButton, Empty, ErrorNote, Field, Modal, relative, when } from '../../ui';
import { ShownOnce } from '../keys/KeyForm';

const SECRET_STORED = 'it is stored encrypted, and you can rotate it at any time';

function StatusBadge({ hook }: { hook: Api.Webhook }) {
  return hook.status === 'active' ? <Badge tone="green">active</Badge> : <Badge tone="amber">disabled</Badge>;
}

export function Webhooks() {
  const { workspace } = useSession();
  const hooks = useApi(['webhooks', workspace?.id], () => api<{ data: Api.Webhook[] }>('GET', `/v1/workspaces/${workspace!.id}/webhooks`).then((r) => r.data));
  const [creating, setCreating] = useState(false);
  const [shown, setShown] = useState<string | null>(null);
  const list = hooks.data ?? [];
  return (
    <>
      <div className="page-head">
        <div><h1>Webhooks</h1><p>Keyward tells your systems when keys are created, change, expire, run low or leak. Each delivery is signed (Standard Webhooks), retried with backoff, and kept in order per key.</p></div>
        <Button kind="primary" onClick={() => setCreating(true)}>New webhook</Button>
      </div>
      <ErrorNote error={hooks.error} />
      {list.filter((h) => h.status === 'disabled' && h.disabledReason).map((h) => (
        <div key={h.id} className="note note-warn" role="status">
          <strong>{h.url}</strong> was disabled by Keyward: {h.disabledReason}. Fix the endpoint, then <Link to={`/webhooks/${h.id}`}>enable it</Link>; deliveries left pending go out then.
        </div>
      ))}
      {hooks.data && list.length === 0 ? (
        <Empty title="No webhooks yet">Add an endpoint to hear about expiring keys before requests start failing.</Empty>
      ) : (
        <div className="card"><div className="table-wrap"><table>
          <thead><tr><th>Endpoint</th><th className="hide-sm">Events</th><th>Status</th><th className="hide-sm">Created</th></tr></thead>
          <tbody>{list.map((h) => (
            <tr key={h.id}>
              <td><Link to={`/webhooks/${h.id}`} className="mono">{h.url}</Link>{h.description && <div className="hint">{h.description}</div>}</td>
              <td className="hide-sm">{h.events.length === WEBHOOK_EVENT_TYPES.length ? 'all events' : h.events.join(', ')}</td>
              <td><StatusBadge hook={h} /></td>
              <td className="hide-sm">{when(h.createdAt)}</td>
            </tr>
          ))}</tbody>
        </table></div></div>
      )}
      {creating && <CreateWebhook workspaceId={workspace!.id} onClose={() => setCreating(false)} onCreated={(secret) => { setCreating(false); setShown(secret); void invalidate('webhooks'); }} />}
      {shown && <ShownOnce title="Webhook created" value={shown} secretLabel="signing secret" stored={SECRET_STORED} onClose={() => setShown(null)} />}
    </>
  );
}

function EventPicker({ value, onChange }: { value: Api.WebhookEventType[]; onChange: (v: Api.WebhookEventType[]) => void }) {
  return (
    <fieldset className="stack" style={{ border: 0, padding: 0 }}>
      <legend>Events</legend>
      <label className="row"><input type="checkbox" checked={value.length === WEBHOOK_EVENT_TYPES.length} onChange={(e) => onChange(e.target.checked ? [...WEBHOOK_EVENT_TYPES] : [])} /> <strong>All events</strong></label>
      {WEBHOOK_EVENT_TYPES.map((t) => (
        <label key={t} className="row"><input type="checkbox" aria-label={t} checked={value.includes(t)} onChange={(e) => onChange(e.target.checked ? [...value, t] : value.filter((v) => v !== t))} /> <code>{t}</code> <span className="hint">{WEBHOOK_EVENTS[t]}</span></label>
      ))}
    </fieldset>
  );
}

function CreateWebhook({ workspaceId, onClose, onCreated }: { workspaceId: string; onClose: () => void; onCreated: (secret: string) => void }) {
  const apps = useApi(['apps', workspaceId], () => api<{ data: Api.App[] }>('GET', `/v1/apps?workspaceId=${workspaceId}`).then((r) => r.data));
  const [url, setUrl] = useState('');
  const [description, setDescription] = useState('');
  const [appId, setAppId] = useState('');
  const [events, setEvents] = useState<Api.WebhookEventType[]>(['key.expiring', 'key.expired', 'key.usage_low', 'key.leaked', 'key.revoked']);
  const [error, setError] = useState<unknown>();
  const submit = async () => {
    try {
      const created = await api<Api.CreatedWebhook>('POST', `/v1/workspaces/${workspaceId}/webhooks`, { url: url.trim(), events, ...(appId ? { appId } : {}), ...(description.trim() ? { description: description.trim() } : {}) });
      onCreated(created.secret);
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Modal title="New webhook" onClose={onClose} wide footer={<><Button onClick={onClose}>Cancel</Button><Button kind="primary" disabled={!url.trim() || events.length === 0} onClick={() => void submit()}>Create webhook</Button></>}>
      <ErrorNote error={error} />
      <Field label="Endpoint URL" htmlFor="wh-url" hint="https://… on a public address; Keyward never calls it until an event happens"><input id="wh-url" type="url" value={url} placeholder="https://hooks.example.com/keyward" onChange={(e) => setUrl(e.target.value)} /></Field>
      <Field label="Description" htmlFor="wh-desc" hint="Optional: what receives it"><input id="wh-desc" value={description} onChange={(e) => setDescription(e.target.value)} /></Field>
      <Field label="Keys of" htmlFor="wh-app" hint="Root-key events go only to endpoints for every app">
        <select id="wh-app" value={appId} onChange={(e) => setAppId(e.target.value)}>
          <option value="">every app</option>
          {(apps.data ?? []).map((a) => <option key={a.id} value={a.id}>{a.name}</option>)}
        </select>
      </Field>
      <EventPicker value={events} onChange={setEvents} />
    </Modal>
  );
}

const DELIVERY_TONE = { delivered: 'green', pending: 'blue', failed: 'red' } as const;

export function WebhookDetail({ webhookId }: { webhookId: string }) {
  const { toast } = useSession();
  const hook = useApi(['webhooks', 'one', webhookId], () => api<Api.Webhook>('GET', `/v1/webhooks/${webhookId}`));
  const [status, setStatus] = useState<'' | Api.WebhookDelivery['status']>('');
  const [page, setPage] = useState(1);
  const deliveries = useApi(['webhooks', 'deliveries', webhookId, status, page], () =>
    api<Page<Api.WebhookDelivery>>('GET', `/v1/webhooks/${webhookId}/deliveries?page=${page}&limit=20${status ? `&status=${status}` : ''}`));
  const [editing, setEditing] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [secret, setSecret] = useState<string | null>(null);
  const [error, setError] = useState<unknown>();
  const act = async (fn: () => Promise<unknown>, done: string) => {
    setError(undefined);
    try {
      await fn();
      await invalidate('webhooks');
      toast(done);
    } catch (err) {
      setError(err);
    }
  };
  const remove = async () => {
    try {
      await api('DELETE', `/v1/webhooks/${webhookId}`);
      navigate('/webhooks');
      await invalidate('webhooks');
      toast('Webhook deleted');
    } catch (err) {
      setConfirmDelete(false);
      setError(err);
    }
  };
  const h = hook.data;
  if (hook.error) return <ErrorNote error={hook.error} />;
  if (!h) return <p aria-busy="true">Loading…</p>;
  const total = deliveries.data?.total ?? 0;
  return (
    <>
      <nav className="crumbs"><Link to="/webhooks">Webhooks</Link> / <span className="mono">{h.url}</span></nav>
      <div className="page-head">
        <div>
          <h1 className="mono" style={{ wordBreak: 'break-all', fontSize: 20 }}>{h.url}</h1>
          <p><StatusBadge hook={h} /> {h.description} {h.secretRotatedUntil && <span className="hint">Signing with the previous secret too until {when(h.secretRotatedUntil)}.</span>}</p>
        </div>
        <div className="row wrap">
          <Button onClick={() => setEditing(true)}>Edit</Button>
          <Button onClick={() => void act(async () => setSecret((await api<Api.RotatedSecret>('POST', `/v1/webhooks/${h.id}/rotate-secret`)).secret), 'Secret rotated')}>Rotate secret</Button>
          {h.status === 'active'
            ? <Button onClick={() => void act(() => api('PATCH', `/v1/webhooks/${h.id}`, { status: 'disabled' }), 'Webhook disabled')}>Disable</Button>
            : <Button kind="primary" onClick={() => void act(() => api('PATCH', `/v1/webhooks/${h.id}`, { status: 'active' }), 'Webhook enabled')}>Enable</Button>}
          <Button kind="danger" onClick={() => setConfirmDelete(true)}>Delete</Button>
        </div>
      </div>
      <ErrorNote error={error} />
      {h.status === 'disabled' && h.disabledReason && <div className="note note-warn" role="status">Disabled by Keyward: {h.disabledReason}. Deliveries wait until you enable it again.</div>}
      <div className="card" style={{ padding: 16 }}>
        <dl className="kv">
          <dt>Id</dt><dd className="mono">{h.id} <CopyButton text={h.id} /></dd>
          <dt>Events</dt><dd>{h.events.map((e) => <Badge key={e} tone="grey">{e}</Badge>)}</dd>
          <dt>Keys of</dt><dd>{h.appId ?? 'every app'}</dd>
          <dt>Failures in a row</dt><dd>{h.consecutiveFailures}</dd>
        </dl>
      </div>
      <div className="page-head" style={{ marginTop: '1.5rem' }}>
        <h2>Deliveries</h2>
        <label className="row">Show <select aria-label="Delivery status" value={status} onChange={(e) => { setStatus(e.target.value as typeof status); setPage(1); }}>
          <option value="">all</option><option value="pending">pending</option><option value="delivered">delivered</option><option value="failed">failed</option>
        </select></label>
      </div>
      <ErrorNote error={deliveries.error} />
      {deliveries.data && total === 0 ? <Empty title="No deliveries yet">They appear here as events happen.</Empty> : (
        <div className="card"><div className="table-wrap"><table>
          <thead><tr><th>Event</th><th>Outcome</th><th className="hide-sm">Latency</th><th className="hide-sm">Attempts</th><th className="hide-sm">When</th><th><span className="sr-only">Actions</span></th></tr></thead>
          <tbody>{(deliveries.data?.data ?? []).map((d) => (
            <tr key={d.id} data-testid="delivery">
              <td><code>{d.type}</code><div className="hint mono" style={{ overflowWrap: 'anywhere' }}>{d.eventId}</div></td>
              <td>
                <Badge tone={DELIVERY_TONE[d.status]}>{d.status}</Badge> {d.responseStatus !== null && <span className="mono" title="HTTP status of the last answer">{d.responseStatus}</span>}
                {d.error && d.error !== `answered ${d.responseStatus}` && <div className="hint">{d.error}</div>}
                {d.status === 'pending' && d.nextAttemptAt && <div className="hint">next attempt {relative(d.nextAttemptAt)}</div>}
              </td>
              <td className="hide-sm">{d.latencyMs === null ? '—' : `${d.latencyMs} ms`}</td>
              <td className="hide-sm">{d.attempts} / {d.maxAttempts}</td>
              <td className="hide-sm">{when(d.lastAttemptAt ?? d.createdAt)}</td>
              <td><Button kind="ghost" onClick={() => void act(() => api('POST', `/v1/webhooks/${h.id}/deliveries/${d.id}/retry`), 'Delivery queued again')}>Retry</Button></td>
            </tr>
          ))}</tbody>
        </table></div></div>
      )}
      {total > 20 && (
        <div className="row" style={{ marginTop: '.5rem' }}>
          <Button disabled={page <= 1} onClick={() => setPage(page - 1)}>Newer</Button>
          <span className="hint">page {page} of {Math.ceil(total / 20)}</span>
          <Button disabled={page * 20 >= total} onClick={() => setPage(page + 1)}>Older</Button>
        </div>
      )}
      {editing && <EditWebhook hook={h} onClose={() => setEditing(false)} onSaved={() => { setEditing(false); void invalidate('webhooks'); toast('Webhook saved'); }} />}
      {confirmDelete && (
        <Modal title="Delete webhook" onClose={() => setConfirmDelete(false)} footer={<><Button onClick={() => setConfirmDelete(false)}>Cancel</Button><Button kind="danger" onClick={() => void remove()}>Delete</Button></>}>
          <p>Deliveries to <code>{h.url}</code> stop, including those still pending.</p>
        </Modal>
      )}
      {secret && <ShownOnce title="New signing secret" value={secret} secretLabel="signing secret" stored={SECRET_STORED} onClose={() => setSecret(null)} />}
    </>
  );
}

function EditWebhook({ hook, onClose, onSaved }: { hook: Api.Webhook; onClose: () => void; onSaved: () => void }) {
  const [url, setUrl] = useState(hook.url);
  const [description, setDescription] = useState(hook.description);
  const [events, setEvents] = useState<Api.WebhookEventType[]>(hook.events);
  const [error, setError] = useState<unknown>();
  const submit = async () => {
    try {
      await api('PATCH', `/v1/webhooks/${hook.id}`, { url: url.trim(), description, events });
      onSaved();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Modal title="Edit webhook" onClose={onClose} wide footer={<><Button onClick={onClose}>Cancel</Button><Button kind="primary" disabled={!url.trim() || events.length === 0} onClick={() => void submit()}>Save</Button></>}>
      <ErrorNote error={error} />
      <Field label="Endpoint URL" htmlFor="wh-edit-url"><input id="wh-edit-url" type="url" value={url} onChange={(e) => setUrl(e.target.value)} /></Field>
      <Field label="Description" htmlFor="wh-edit-desc"><input id="wh-edit-desc" value={description} onChange={(e) => setDescription(e.target.value)} /></Field>
      <EventPicker value={events} onChange={setEvents} />
    </Modal>
  );
}
