// The API reference, built from the running server's /openapi.json: every operation by tag with
// its auth, parameters, body and answers, and a form to try it. Two places show it: /reference
// inside the console (requests run as the signed-in user) and /docs, a page of its own for anyone
// with the link (requests run with the credential given to Authorize).
import { useEffect, useMemo, useState } from 'react';
import { raw, session, type Raw } from '../../api';
import { useApi } from '../../query';
import { Badge, Button, CopyButton, ErrorNote, Field, Md } from '../../ui';
import { exampleOf, operations, resolve, typeLabel, type Operation, type Schema, type Spec } from './spec';

function Props({ spec, schema }: { spec: Spec; schema: Schema | undefined }) {
  const s = resolve(spec, schema);
  if (!s?.properties) return <p className="hint">{typeLabel(spec, s)}</p>;
  return (
    <div className="table-wrap">
      <table className="props">
        <thead><tr><th>Field</th><th>Type</th><th className="hide-sm">Description</th></tr></thead>
        <tbody>
          {Object.entries(s.properties).map(([name, p]) => (
            <tr key={name}><td><code>{name}</code>{s.required?.includes(name) && <> <Badge tone="amber">required</Badge></>}</td><td className="mono wrap-anywhere">{typeLabel(spec, p)}</td><td className="hide-sm"><Md text={resolve(spec, p)?.description ?? ''} /></td></tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** Sends one operation with the given credential (none for public operations). */
function TryIt({ spec, op, token }: { spec: Spec; op: Operation; token: string | null }) {
  const [params, setParams] = useState<Record<string, string>>({});
  const [body, setBody] = useState(() => (op.body ? JSON.stringify(exampleOf(spec, op.body), null, 2) : ''));
  const [result, setResult] = useState<Raw | null>(null);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const fields = op.parameters.filter((p) => p.in !== 'header');
  const id = (name: string) => `try-${op.operationId}-${name}`;
  const send = async () => {
    let path = op.path;
    const query = new URLSearchParams();
    for (const p of fields) {
      const v = params[p.name] ?? '';
      if (p.in === 'path') path = path.replace(`{${p.name}}`, encodeURIComponent(v));
      else if (v) query.set(p.name, v);
    }
    setBusy(true);
    setError(undefined);
    try {
      const hasBody = op.body && op.method !== 'GET' && op.method !== 'DELETE' && body.trim();
      setResult(await raw(op.method, query.size ? `${path}?${query}` : path, hasBody ? body : undefined, token && !op.public ? { authorization: `Bearer ${token}` } : {}));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const missing = fields.some((p) => p.in === 'path' && !params[p.name]);
  return (
    <div className="try-it stack">
      <h4>Try it</h4>
      {!op.public && !token && <p className="hint">Authorize first (a session token or a root key), or this answers 401.</p>}
      {fields.length > 0 && (
        <div className="grid-2">
          {fields.map((p) => (
            <Field key={p.name} label={`${p.name}${p.required ? ' (required)' : ''}, ${p.in}`} htmlFor={id(p.name)}>
              <input id={id(p.name)} value={params[p.name] ?? ''} onChange={(e) => setParams({ ...params, [p.name]: e.target.value })} />
            </Field>
          ))}
        </div>
      )}
      {op.body && (
        <Field label="Body (JSON)" htmlFor={id('body')}>
          <textarea id={id('body')} className="mono" rows={Math.min(10, body.split('\n').length + 1)} value={body} onChange={(e) => setBody(e.target.value)} spellCheck={false} />
        </Field>
      )}
      <div className="row"><Button kind="primary" disabled={busy || missing} onClick={() => void send()}>{busy ? 'Sending…' : `Send ${op.method}`}</Button></div>
      <ErrorNote error={error} />
      {result && (
        <div className="stack" aria-live="polite">
          <div><strong className={`status-${String(result.status)[0]}`} data-testid="try-status">{result.status}</strong> <span className="muted">{result.ms} ms</span></div>
          <pre className="json" tabIndex={0} data-testid="try-body">{result.json !== undefined ? JSON.stringify(result.json, null, 2) : result.text || '(no content)'}</pre>
        </div>
      )}
    </div>
  );
}

function OperationEntry({ spec, op, token }: { spec: Spec; op: Operation; token: string | null }) {
  const [open, setOpen] = useState(() => location.hash === `#${op.operationId}`);
  // A link to this operation opens it, also when followed from this page.
  useEffect(() => {
    const follow = () => { if (location.hash === `#${op.operationId}`) setOpen(true); };
    window.addEventListener('hashchange', follow);
    return () => window.removeEventListener('hashchange', follow);
  }, [op.operationId]);
  const ok = Object.entries(op.responses).find(([code]) => code.startsWith('2'));
  const okSchema = ok?.[1].content?.['application/json']?.schema;
  const errors = Object.keys(op.responses).filter((code) => /^[45]/.test(code));
  return (
    <details className="endpoint" id={op.operationId} open={open} onToggle={(e) => setOpen(e.currentTarget.open)}>
      <summary><span className={`method m-${op.method.toLowerCase()}`}>{op.method}</span><code className="endpoint-path">{op.path}</code><span className="endpoint-summary">{op.summary}</span></summary>
      {open && (
        <div className="stack endpoint-body">
          {op.description && <p style={{ margin: 0 }}><Md text={op.description} /></p>}
          <div className="row"><span>Auth:</span> {op.public ? <Badge tone="green">public</Badge> : <Badge tone="grey">Bearer session token or root key</Badge>} <span className="muted">operationId</span> <code>{op.operationId}</code></div>
          {op.parameters.length > 0 && (
            <div><h4>Parameters</h4><div className="table-wrap"><table className="props"><tbody>{op.parameters.map((p) => <tr key={p.in + p.name}><td><code>{p.name}</code></td><td>{p.in}{p.required ? ', required' : ''}</td><td className="mono wrap-anywhere">{typeLabel(spec, p.schema)}</td></tr>)}</tbody></table></div></div>
          )}
          {op.body && (<div><h4>Request body</h4><Props spec={spec} schema={op.body} /><pre className="json" tabIndex={0}>{JSON.stringify(exampleOf(spec, op.body), null, 2)}</pre></div>)}
          <div><h4>Response {ok?.[0]}</h4>{okSchema ? <Props spec={spec} schema={okSchema} /> : <p className="hint">{ok?.[1].description ?? 'No content'}</p>}</div>
          <p className="hint" style={{ margin: 0 }}>Errors{errors.length ? ` (${errors.join(', ')})` : ''}: <code>application/problem+json</code> with a stable <code>code</code>.</p>
          <TryIt spec={spec} op={op} token={token} />
        </div>
      )}
    </details>
  );
}

const fetchText = (path: string) => () => fetch(path).then((r) => r.text());

function CopyAsync({ label, load, testId }: { label: string; load: () => Promise<string>; testId: string }) {
  const text = useApi(['copy', testId], load);
  return <CopyButton label={label} text={() => text.data ?? ''} testId={testId} />;
}

/** Every operation of the spec, by tag. */
function OperationList({ spec, token }: { spec: Spec; token: string | null }) {
  const ops = useMemo(() => operations(spec), [spec]);
  const tags = spec.tags?.map((t) => t.name) ?? [...new Set(ops.map((o) => o.tag))];
  return (
    <>
      {tags.map((tag) => {
        const list = ops.filter((o) => o.tag === tag);
        if (!list.length) return null;
        return (
          <section key={tag} className="card card-pad ref-section" id={`tag-${tag.replaceAll(' ', '-')}`} aria-labelledby={`tag-h-${tag.replaceAll(' ', '-')}`}>
            <h2 id={`tag-h-${tag.replaceAll(' ', '-')}`} className="tag-title">{tag}</h2>
            <p className="hint" style={{ marginTop: 0 }}>{spec.tags?.find((t) => t.name === tag)?.description}</p>
            {list.map((o) => <OperationEntry key={o.method + o.path} spec={spec} op={o} token={token} />)}
          </section>
        );
      })}
    </>
  );
}

const useSpec = () => useApi(['openapi'], () => fetch('/openapi.json').then((r) => r.json() as Promise<Spec>));

/** Inside the console: requests run as the signed-in user. */
export function Reference() {
  const spec = useSpec();
  return (
    <>
      <div className="page-head">
        <div><h1>API docs</h1><p>Generated from this server&apos;s OpenAPI document. Try any operation here as yourself; the <a href="/docs">public reference page</a> works with a root key.</p></div>
        <div className="row">
          <CopyAsync label="Copy LLM.txt" load={fetchText('/llms.txt')} testId="copy-llms" />
          <CopyAsync label="Copy openapi.json" load={fetchText('/openapi.json')} testId="copy-openapi" />
        </div>
      </div>
      <ErrorNote error={spec.error} />
      {spec.data && <OperationList spec={spec.data} token={session.token} />}
    </>
  );
}

const DOCS_TOKEN = 'keyward.docs.token';

/** /docs: the reference as a page of its own, for anyone with the link; Authorize holds a credential for this tab. */
export function DocsPage() {
  const spec = useSpec();
  const [token, setToken] = useState<string | null>(() => sessionStorage.getItem(DOCS_TOKEN));
  const [typed, setTyped] = useState('');
  useEffect(() => {
    document.title = 'Keyward API reference';
  }, []);
  // Scroll to a deep-linked operation once the list is there.
  useEffect(() => {
    if (spec.data && location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
  }, [spec.data]);
  const active = token ?? session.token;
  const authorize = () => {
    const value = typed.trim();
    if (!value) return;
    sessionStorage.setItem(DOCS_TOKEN, value);
    setToken(value);
    setTyped('');
  };
  const tags = spec.data ? spec.data.tags?.map((t) => t.name) ?? [] : [];
  return (
    <div className="docs-shell">
      <header className="docs-top">
        <a className="logo" href="/"><span className="logo-mark" aria-hidden="true">K</span>Keyward</a>
        <span className="docs-title">API reference{spec.data ? ` · v${spec.data.info.version}` : ''}</span>
        <span className="spacer" />
        <nav className="docs-links" aria-label="Files">
          <a href="/openapi.json">openapi.json</a>
          <a href="/llms.txt">llms.txt</a>
          <a href="/">Console</a>
        </nav>
      </header>
      <div className="docs-body">
        <nav className="docs-nav" aria-label="Sections">
          {tags.map((t) => <a key={t} href={`#tag-${t.replaceAll(' ', '-')}`}>{t}</a>)}
        </nav>
        <main className="docs-main stack">
          <div>
            <h1>{spec.data?.info.title ?? 'Keyward API'}</h1>
            {spec.data?.info.description && <p className="lead"><Md text={spec.data.info.description} /></p>}
            <p className="muted">Base URL: <code>{spec.data?.servers?.[0]?.url === '/' || !spec.data?.servers?.length ? location.origin : spec.data.servers[0]!.url}</code>{spec.data?.info.license && <> · License {spec.data.info.license.name}</>}</p>
          </div>
          <section className="card card-pad stack" aria-labelledby="authorize-h">
            <h2 id="authorize-h">Authorize</h2>
            <p style={{ margin: 0 }}>Management endpoints take <code>Authorization: Bearer &lt;token&gt;</code>: a root key (Root keys page of the console) or a session token from <code>POST /v1/auth/login</code>. It is kept in this tab only.</p>
            {token ? (
              <div className="row"><span data-testid="authorized">Authorized with <code>{token.slice(0, 12)}…</code></span><Button onClick={() => { sessionStorage.removeItem(DOCS_TOKEN); setToken(null); }}>Forget it</Button></div>
            ) : (
              <>
                {session.token && <p className="hint" style={{ margin: 0 }}>You are signed in to the console: requests run as you unless you authorize with another credential.</p>}
                <div className="row">
                  <label htmlFor="docs-token" className="sr-only">Token or root key</label>
                  <input id="docs-token" type="password" autoComplete="off" placeholder="kwroot_live_… or kws_…" value={typed} onChange={(e) => setTyped(e.target.value)} onKeyDown={(e) => { if (e.key === 'Enter') authorize(); }} style={{ flex: 1, minWidth: 0 }} />
                  <Button kind="primary" disabled={!typed.trim()} onClick={authorize}>Authorize</Button>
                </div>
              </>
            )}
          </section>
          <ErrorNote error={spec.error} />
          {spec.data ? <OperationList spec={spec.data} token={active} /> : !spec.error && <p>Loading…</p>}
        </main>
      </div>
    </div>
  );
}
