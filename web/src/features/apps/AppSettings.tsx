// An app's settings: its gateway rules (which permissions a forwarded request needs, by method and
// path), used by /v1/forward-auth. A change applies on every node at once.
import { useState } from 'react';
import { api, type App } from '../../api';
import { Link } from '../../router';
import { invalidate, useApi } from '../../query';
import { useSession } from '../../state';
import { Button, ErrorNote, Field } from '../../ui';

type Rule = App['gatewayRules'][number];
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

interface RuleRow {
  methods: string;
  path: string;
  permissions: string;
}

const toRow = (r: Rule): RuleRow => ({ methods: (r.methods ?? []).join(', '), path: r.path, permissions: r.permissions.join(', ') });
const list = (text: string) => text.split(',').map((s) => s.trim()).filter(Boolean);

/** A row as the API takes it, or the first problem with it. */
function toRule(row: RuleRow, i: number): Rule | string {
  const methods = list(row.methods).map((m) => m.toUpperCase());
  const bad = methods.find((m) => !(METHODS as readonly string[]).includes(m));
  if (bad) return `Rule ${i + 1}: "${bad}" is not a method (${METHODS.join(', ')})`;
  if (!row.path.startsWith('/')) return `Rule ${i + 1}: the path starts with /`;
  return { ...(methods.length ? { methods: methods as Rule['methods'] } : {}), path: row.path.trim(), permissions: list(row.permissions) };
}

export function AppSettings({ appId }: { appId: string }) {
  const { toast, can } = useSession();
  const editable = can('apps:write');
  const app = useApi(['app', appId], () => api<App>('GET', `/v1/apps/${appId}`));
  const [rows, setRows] = useState<RuleRow[] | null>(null);
  const [error, setError] = useState<unknown>();
  // The form shows the saved rules until the first edit; from then on a background refresh must not
  // wipe what is typed.
  const loaded = rows ?? app.data?.gatewayRules.map(toRow) ?? null;
  const current = loaded ?? [];
  const save = async () => {
    const rules = current.map(toRule);
    const problem = rules.find((r): r is string => typeof r === 'string');
    if (problem) return setError(new Error(problem));
    try {
      setError(undefined);
      await api('PATCH', `/v1/apps/${appId}`, { gatewayRules: rules });
      await invalidate('app', appId);
      toast('Gateway rules saved');
    } catch (err) {
      setError(err);
    }
  };
  const set = (i: number, patch: Partial<RuleRow>) => setRows(current.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  return (
    <>
      <div className="page-head">
        <div>
          <nav className="crumbs" aria-label="Breadcrumb"><Link to="/apps">Apps</Link> / <Link to={`/apps/${appId}`}>{app.data?.name ?? '…'}</Link> / settings</nav>
          <h1>Gateway rules</h1>
          <p>When a gateway (nginx, Caddy, Traefik, Envoy) asks <code>/v1/forward-auth</code>, every rule matching the request&apos;s method and path adds its permissions. Paths match without regard to case and without the query string; <code>*</code> matches anything, <code>/</code> included (at most 8 in a rule, 100 rules); a GET rule covers HEAD.</p>
        </div>
      </div>
      <ErrorNote error={error ?? app.error} />
      {!editable && <p className="note note-info">Owners and admins change these rules; you can read them.</p>}
      <fieldset className="card card-pad stack plain-fieldset" data-testid="gateway-rules" disabled={!editable} aria-label="Gateway rules">
        {current.length === 0 && <p className="hint">No rules: every request needs only the permissions the gateway asks for.</p>}
        {current.map((r, i) => (
          <div className="grid-3" key={i}>
            <Field label={`Rule ${i + 1} methods`} htmlFor={`gr-m-${i}`} hint="Empty = any method"><input id={`gr-m-${i}`} value={r.methods} placeholder="POST, DELETE" onChange={(e) => set(i, { methods: e.target.value })} /></Field>
            <Field label={`Rule ${i + 1} path`} htmlFor={`gr-p-${i}`}><input id={`gr-p-${i}`} className="mono" value={r.path} placeholder="/orders/*" onChange={(e) => set(i, { path: e.target.value })} /></Field>
            <Field label={`Rule ${i + 1} permissions`} htmlFor={`gr-s-${i}`}>
              <div className="row"><input id={`gr-s-${i}`} style={{ flex: 1 }} value={r.permissions} placeholder="orders.write" onChange={(e) => set(i, { permissions: e.target.value })} /><Button kind="ghost" aria-label={`Remove rule ${i + 1}`} onClick={() => setRows(current.filter((_, j) => j !== i))}>Remove</Button></div>
            </Field>
          </div>
        ))}
        <div className="row">
          <Button disabled={loaded === null} onClick={() => setRows([...current, { methods: '', path: '/', permissions: '' }])}>Add rule</Button>
          <span className="spacer" />
          <Button kind="primary" onClick={() => void save()}>Save rules</Button>
        </div>
      </fieldset>
    </>
  );
}
