// Webhooks of the workspace: endpoints with their events, the signing secret shown once, and each
// endpoint's deliveries with every attempt (status, latency, the answer or the error) and the
// payload sent; retry, test event, replay, rotate, disable and enable (held events then go out).
import { useState } from 'react';
import { api, type Page } from '../../api';
import type * as Api from '../../../../src/api/types';
import { WEBHOOK_EVENTS, WEBHOOK_EVENT_TYPES } from '../../../../src/webhooks/events';
import { invalidate, useApi } from '../../query';
import { Link, navigate } from '../../router';
import { useSession } from '../../state';
import { Badge, Button, CopyButton, Empty, ErrorNote, Field, Modal, when } from '../../ui';
import { ShownOnce } from '../keys/KeyForm';

const SECRET_STORED = 'it is stored encrypted, and you can rotate it at any time';

function StatusBadge({ hook }: { hook: Api.Webhook }) {
  if (hook.status === 'disabled') return <Badge tone="amber">disabled</Badge>;
  return hook.failingSince ? <Badge tone="red">failing</Badge> : <Badge tone="green">active</Badge>;
}

/** "in 4 min" for a time ahead, "now" for one reached. */
function ahead(iso: string): string {
  const s = Math.round((Date.parse(iso) - Date.now()) / 1000);
  if (s <= 0) return 'now';
  if (s < 60) return `in ${s} s`;
  if (s < 3600) return `in ${Math.round(s / 60)} min`;
  return `in ${Math.round(s / 3600)} h`;
}

/** The body as sent, indented when it is JSON (it always is; the bytes signed are the unindented ones). */
function pretty(body: string): string {
  try {
    return JSON.stringify(JSON.parse(body), null, 2);
  } catch {
    return body;
  }
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
          <strong>{h.url}</strong> was disabled by Keyward: {h.disabledReason}. Its events are kept; fix the endpoint, then <Link to={`/webhooks/${h.id}`}>enable it</Link> and they go out, in order.
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

const DELIVERY_TONE = { delivered: 'green', pending: 'blue', held: 'amber', failed: 'red' } as const;
const ATTEMPT_TONE = { delivered: 'green', failed: 'red' } as const;

export function WebhookDetail({ webhookId }: { webhookId: string }) {
  const { toast } = useSession();
  const hook = useApi(['webhooks', 'one', webhookId], () => api<Api.Webhook>('GET', `/v1/webhooks/${webhookId}`));
  const [status, setStatus] = useState<'' | Api.WebhookDelivery['status']>('');
  const [page, setPage] = useState(1);
  const deliveries = useApi(['webhooks', 'deliveries', webhookId, status, page], () =>
    api<Page<Api.WebhookDelivery>>('GET', `/v1/webhooks/${webhookId}/deliveries?page=${page}&limit=20${status ? `&status=${status}` : ''}`));
  const [editing, setEditing] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [replaying, setReplaying] = useState(false);
  const [viewing, setViewing] = useState<string | null>(null);
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
          <Button onClick={() => void act(() => api('POST', `/v1/webhooks/${h.id}/test`), h.status === 'active' ? 'Test event sent' : 'Test event held until the webhook is enabled')}>Send test event</Button>
          <Button onClick={() => setReplaying(true)}>Replay…</Button>
          <Button onClick={() => void act(async () => setSecret((await api<Api.RotatedSecret>('POST', `/v1/webhooks/${h.id}/rotate-secret`)).secret), 'Secret rotated')}>Rotate secret</Button>
          {h.status === 'active'
            ? <Button onClick={() => void act(() => api('PATCH', `/v1/webhooks/${h.id}`, { status: 'disabled' }), 'Webhook disabled')}>Disable</Button>
            : <Button kind="primary" onClick={() => void act(() => api('PATCH', `/v1/webhooks/${h.id}`, { status: 'active' }), 'Webhook enabled')}>Enable</Button>}
          <Button kind="danger" onClick={() => setConfirmDelete(true)}>Delete</Button>
        </div>
      </div>
      <ErrorNote error={error} />
      {h.status === 'disabled' && (
        <div className="note note-warn" role="status" data-testid="disabled-note">
          {h.disabledReason ? <>Disabled by Keyward: {h.disabledReason}.</> : <>Disabled.</>} Its events are kept (held) for the retention period and go out, in order per key, when you enable it again.
        </div>
      )}
      {h.status === 'active' && h.failingSince && (
        <div className="note note-warn" role="status">
          Failing since {when(h.failingSince)} ({h.consecutiveFailures} failed attempts): deliveries are retried, at most an hour apart; after 120 hours without a success (the server&apos;s setting) Keyward disables the endpoint and keeps its events.
        </div>
      )}
      <div className="card" style={{ padding: 16 }}>
        <dl className="kv">
          <dt>Id</dt><dd className="mono">{h.id} <CopyButton text={h.id} /></dd>
          <dt>Events</dt><dd>{h.events.map((e) => <Badge key={e} tone="grey">{e}</Badge>)}</dd>
          <dt>Keys of</dt><dd>{h.appId ?? 'every app'}</dd>
          <dt>Failures since the last success</dt><dd>{h.consecutiveFailures}{h.failingSince && <span className="hint"> · failing since {when(h.failingSince)}</span>}</dd>
        </dl>
      </div>
      <div className="page-head" style={{ marginTop: '1.5rem' }}>
        <h2>Deliveries</h2>
        <label className="row">Show <select aria-label="Delivery status" value={status} onChange={(e) => { setStatus(e.target.value as typeof status); setPage(1); }}>
          <option value="">all</option><option value="pending">pending</option><option value="held">held</option><option value="delivered">delivered</option><option value="failed">failed</option>
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
                {d.status === 'pending' && d.nextAttemptAt && d.attempts > 0 && <div className="hint">next attempt {ahead(d.nextAttemptAt)}</div>}
                {d.status === 'held' && <div className="hint">held until the webhook is enabled</div>}
              </td>
              <td className="hide-sm">{d.latencyMs === null ? '—' : `${d.latencyMs} ms`}</td>
              <td className="hide-sm">
                <span title="Attempts so far">{d.attempts}</span>{' '}
                <span aria-label="Latest attempts">{d.attemptLog.map((a) => <span key={a.number} className={`badge badge-${ATTEMPT_TONE[a.outcome]}`} title={`#${a.number} ${when(a.attemptedAt)}: ${a.error ?? a.responseStatus}`} style={{ marginRight: 2 }}>{a.responseStatus ?? '×'}</span>)}</span>
              </td>
              <td className="hide-sm">{when(d.lastAttemptAt ?? d.createdAt)}</td>
              <td>
                <div className="row" style={{ flexWrap: 'nowrap' }}>
                  <Button kind="ghost" onClick={() => setViewing(d.id)}>View</Button>
                  <Button kind="ghost" onClick={() => void act(() => api('POST', `/v1/webhooks/${h.id}/deliveries/${d.id}/retry`), 'Delivery queued again')}>Retry</Button>
                </div>
              </td>
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
      {viewing && <DeliveryDetail webhookId={h.id} deliveryId={viewing} onClose={() => setViewing(null)} />}
      {replaying && <Replay hook={h} onClose={() => setReplaying(false)} onDone={(r) => { setReplaying(false); void invalidate('webhooks'); toast(r.nextSince ? `Queued ${r.replayed} events again; more remain from ${when(r.nextSince)}` : `Queued ${r.replayed} event${r.replayed === 1 ? '' : 's'} again`); }} />}
      {editing && <EditWebhook hook={h} onClose={() => setEditing(false)} onSaved={() => { setEditing(false); void invalidate('webhooks'); toast('Webhook saved'); }} />}
      {confirmDelete && (
        <Modal title="Delete webhook" onClose={() => setConfirmDelete(false)} footer={<><Button onClick={() => setConfirmDelete(false)}>Cancel</Button><Button kind="danger" onClick={() => void remove()}>Delete</Button></>}>
          <p>Deliveries to <code>{h.url}</code> stop, including those still pending or held.</p>
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

/** One delivery: the payload as sent and every attempt with what the endpoint answered. */
function DeliveryDetail({ webhookId, deliveryId, onClose }: { webhookId: string; deliveryId: string; onClose: () => void }) {
  const detail = useApi(['webhooks', 'delivery', webhookId, deliveryId], () => api<Api.WebhookDeliveryDetail>('GET', `/v1/webhooks/${webhookId}/deliveries/${deliveryId}`));
  const d = detail.data;
  return (
    <Modal title="Delivery" onClose={onClose} wide footer={<Button onClick={onClose}>Close</Button>}>
      <ErrorNote error={detail.error} />
      {!d ? <p aria-busy="true">Loading…</p> : (
        <>
          <dl className="kv">
            <dt>Event</dt><dd><code>{d.type}</code></dd>
            <dt>webhook-id</dt><dd className="mono">{d.eventId} <CopyButton text={d.eventId} /></dd>
            <dt>Status</dt><dd><Badge tone={DELIVERY_TONE[d.status]}>{d.status}</Badge>{d.status === 'pending' && d.nextAttemptAt && d.attempts > 0 && <span className="hint"> next attempt {ahead(d.nextAttemptAt)}</span>}</dd>
            <dt>Created</dt><dd>{when(d.createdAt)}</dd>
          </dl>
          <h3 style={{ margin: 0 }}>Attempts</h3>
          {d.attemptLog.length === 0 ? <p className="hint" style={{ margin: 0 }}>No attempt yet.</p> : (
            // Not shrunk by the modal's column: the modal body scrolls instead.
            <div className="table-wrap" style={{ flexShrink: 0 }}><table data-testid="attempts">
              <thead><tr><th>#</th><th>When</th><th>Outcome</th><th>Latency</th><th>Answer</th></tr></thead>
              <tbody>{d.attemptLog.map((a) => (
                <tr key={a.number} data-testid="attempt">
                  <td>{a.number}</td>
                  <td>{when(a.attemptedAt)}</td>
                  <td><Badge tone={ATTEMPT_TONE[a.outcome]}>{a.outcome}</Badge> {a.responseStatus !== null && <span className="mono">{a.responseStatus}</span>}</td>
                  <td>{a.latencyMs} ms</td>
                  <td style={{ overflowWrap: 'anywhere' }}>
                    {a.error && a.error !== `answered ${a.responseStatus}` && <div>{a.error}</div>}
                    {a.responseBody !== null && <code className="hint" style={{ whiteSpace: 'pre-wrap' }}>{a.responseBody}</code>}
                  </td>
                </tr>
              ))}</tbody>
            </table></div>
          )}
          <div className="row"><h3 style={{ margin: 0 }}>Payload</h3><span className="spacer" /><CopyButton text={d.payload} label="Copy body" /></div>
          <pre className="json" data-testid="payload" style={{ flexShrink: 0 }}>{pretty(d.payload)}</pre>
          <p className="hint" style={{ margin: 0 }}>The signature covers the body exactly as sent (without this indentation), with the webhook-id and webhook-timestamp headers.</p>
        </>
      )}
    </Modal>
  );
}

/** Local date-time (as a datetime-local input holds it) an hour ago. */
function anHourAgo(): string {
  const d = new Date(Date.now() - 3_600_000);
  d.setMinutes(d.getMinutes() - d.getTimezoneOffset());
  return d.toISOString().slice(0, 16);
}

function Replay({ hook, onClose, onDone }: { hook: Api.Webhook; onClose: () => void; onDone: (r: Api.WebhookReplayResult) => void }) {
  const [since, setSince] = useState(anHourAgo);
  const [newIds, setNewIds] = useState(false);
  const [error, setError] = useState<unknown>();
  const submit = async () => {
    try {
      const at = new Date(since);
      onDone(await api<Api.WebhookReplayResult>('POST', `/v1/webhooks/${hook.id}/replay`, { since: Number.isNaN(at.getTime()) ? since : at.toISOString(), ...(newIds ? { newIds: true } : {}) }));
    } catch (err) {
      setError(err);
    }
  };
  return (
    <Modal title="Replay events" onClose={onClose} footer={<><Button onClick={onClose}>Cancel</Button><Button kind="primary" disabled={!since} onClick={() => void submit()}>Replay</Button></>}>
      <ErrorNote error={error} />
      <p style={{ margin: 0 }}>Sends again, oldest first and in order per key, the events this endpoint was sent since a time. Events still waiting to be sent are not doubled.{hook.status === 'disabled' && ' The webhook is disabled: they are held until you enable it.'}</p>
      <Field label="Since" htmlFor="wh-replay-since"><input id="wh-replay-since" type="datetime-local" value={since} onChange={(e) => setSince(e.target.value)} /></Field>
      <label className="check"><input type="checkbox" checked={newIds} onChange={(e) => setNewIds(e.target.checked)} /> Give each a new webhook-id</label>
      <p className="hint" style={{ margin: 0 }}>{newIds ? 'Your receiver processes every replayed event again, even those it already has.' : 'Each keeps its own webhook-id: a receiver that deduplicates on it drops what it already has and takes what it lost.'}</p>
    </Modal>
  );
}
