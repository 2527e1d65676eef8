// API playground: try any endpoint of the spec with the console session or a pasted API key,
// see the answer, copy it as cURL, and keep a replayable history in this browser.
import { useEffect, useMemo, useRef, useState } from 'react';
import { api, raw, session, type App, type Key, type Raw, type Verdict } from '../../api';
import { VERIFY_EXPLANATIONS } from '../../../../src/verify/steps';
import { useSession } from '../../state';
import { useApi } from '../../query';
import { Badge, Button, CopyButton, ErrorNote, Field, Md } from '../../ui';
import { exampleOf, operations, type Operation, type Spec } from './spec';

interface HistoryItem {
  at: string;
  method: string;
  url: string;
  body: string;
  status: number;
  ms: number;
  /** Which credential the request was sent with (never the credential itself). */
  as?: 'session' | 'key' | 'none';
}

const HISTORY = 'keyward.playground.history';
/** What each verdict means: the server's own table, typed by verdict code. */
const EXPLAIN = VERIFY_EXPLANATIONS;

function loadHistory(): HistoryItem[] {
  try {
    return JSON.parse(localStorage.getItem(HISTORY) ?? '[]') as HistoryItem[];
  } catch {
    return [];
  }
}

/** Fields that hold credentials or secret values: never written to this browser's storage. */
const SECRET_FIELD = /^(key|secret|password|value|token|authorization)$/i;
const NOT_STORED = '<not stored>';

/** The body as history keeps it: every secret-looking field replaced, so replay asks for it again. */
function redactBody(text: string): string {
  if (!text.trim()) return '';
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return '';
  }
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, SECRET_FIELD.test(k) && typeof x === 'string' ? NOT_STORED : walk(x)]));
    return v;
  };
  return JSON.stringify(walk(parsed));
}

/** The operation a sent URL was made from, with its path and query parameters filled back in. */
function matchOperation(ops: readonly Operation[], method: string, url: string): { op: Operation; params: Record<string, string> } | null {
  const [path = '', qs = ''] = url.split('?');
  for (const op of ops) {
    if (op.method !== method) continue;
    const names: string[] = [];
    const pattern = new RegExp('^' + op.path.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{(\w+)\\?\}/g, (_m, n: string) => {
      names.push(n);
      return '([^/]+)';
    }) + '$');
    const m = pattern.exec(path);
    if (!m) continue;
    const params: Record<string, string> = {};
    names.forEach((n, i) => { params[n] = decodeURIComponent(m[i + 1]!); });
    for (const [k, v] of new URLSearchParams(qs)) if (op.parameters.some((p) => p.in === 'query' && p.name === k)) params[k] = v;
    return { op, params };
  }
  return null;
}

/**
 * Verify's first body: the pasted key, else the spec's example key (well-formed: its checksum holds,
 * so the answer says what a real refusal says), scoped to an app of this workspace.
 */
function verifyExample(spec: Spec, op: Operation, pasted: string, appId: string | undefined): unknown {
  const example = exampleOf(spec, op.body) as Record<string, unknown> | undefined;
  return { key: pasted || example?.key, ...(appId ? { appId } : {}) };
}

/** Endpoints an app key has no business calling: everything but verify and the public ones. */
const managementOp = (op: Operation | undefined) => Boolean(op && !op.public && op.path !== '/v1/keys/verify' && op.path !== '/v1/ratelimit');

const shellQuote = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;

export function Playground() {
  const spec = useApi(['openapi'], () => fetch('/openapi.json').then((r) => r.json() as Promise<Spec>));
  const ops = useMemo(() => (spec.data ? operations(spec.data) : []), [spec.data]);
  const [opId, setOpId] = useState('POST /v1/keys/verify');
  const op: Operation | undefined = ops.find((o) => `${o.method} ${o.path}` === opId);
  const [params, setParams] = useState<Record<string, string>>({});
  const [body, setBody] = useState('');
  const [apiKey, setApiKey] = useState('');
  const [keyInfo, setKeyInfo] = useState<Verdict | null>(null);
  const [keySettings, setKeySettings] = useState<Key | null>(null);
  const { workspace } = useSession();
  const apps = useApi(['apps', workspace?.id], () => api<{ data: App[] }>('GET', `/v1/apps?workspaceId=${workspace!.id}`).then((r) => r.data), Boolean(workspace));
  const firstApp = apps.data?.[0];
  const [auth, setAuth] = useState<'session' | 'key' | 'none'>('session');
  const [sending, setSending] = useState(false);
  const [result, setResult] = useState<Raw | null>(null);
  const [error, setError] = useState<unknown>();
  const [history, setHistory] = useState<HistoryItem[]>(loadHistory);
  const [notice, setNotice] = useState<string | null>(null);
  /** A history item being put back in the form: applied once its operation is selected. */
  const restoring = useRef<{ opId: string; params: Record<string, string>; body: string } | null>(null);

  useEffect(() => {
    if (!op || !spec.data) return;
    const restore = restoring.current;
    if (restore && restore.opId === opId) {
      restoring.current = null;
      setParams(restore.params);
      setBody(restore.body ? JSON.stringify(JSON.parse(restore.body), null, 2) : '');
      return;
    }
    setParams({});
    setBody(op.body ? JSON.stringify(op.path === '/v1/keys/verify' ? verifyExample(spec.data, op, apiKey, firstApp?.id) : exampleOf(spec.data, op.body), null, 2) : '');
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [opId, spec.data, firstApp?.id]);

  const bodyError = useMemo(() => {
    if (!body.trim()) return null;
    try {
      const parsed = JSON.parse(body) as unknown;
      const required = (op?.body?.required ?? []).filter((r) => parsed === null || typeof parsed !== 'object' || !(r in (parsed as object)));
      return required.length ? `Missing required field${required.length > 1 ? 's' : ''}: ${required.join(', ')}` : null;
    } catch (err) {
      return `Invalid JSON: ${(err as Error).message}`;
    }
  }, [body, op]);

  const url = useMemo(() => {
    if (!op) return '';
    let path = op.path;
    const query = new URLSearchParams();
    for (const p of op.parameters) {
      const v = params[p.name];
      // An unfilled parameter stays readable as {name} in the preview (it is not sent like that).
      if (p.in === 'path') path = path.replace(`{${p.name}}`, v ? encodeURIComponent(v) : `{${p.name}}`);
      else if (p.in === 'query' && v) query.set(p.name, v);
    }
    const qs = query.toString();
    return qs ? `${path}?${qs}` : path;
  }, [op, params]);

  const headers = (): Record<string, string> => {
    if (auth === 'session' && session.token) return { authorization: `Bearer ${session.token}` };
    if (auth === 'key' && apiKey) return { authorization: `Bearer ${apiKey}` };
    return {};
  };
  const hasBody = op && op.method !== 'GET' && op.method !== 'DELETE' && body.trim();

  const send = async (method = op?.method ?? 'GET', target = url, payload = hasBody ? body : '') => {
    setSending(true);
    setError(undefined);
    try {
      const res = await raw(method, target, payload || undefined, headers());
      setResult(res);
      const item: HistoryItem = { at: new Date().toISOString(), method, url: target, body: redactBody(payload), status: res.status, ms: res.ms, as: auth };
      const next = [item, ...history].slice(0, 50);
      setHistory(next);
      localStorage.setItem(HISTORY, JSON.stringify(next));
    } catch (err) {
      setError(err);
    } finally {
      setSending(false);
    }
  };

  /** Puts a history item back in the form (endpoint, parameters, body, credential) and sends it again, unless a secret must be typed first. */
  const replay = (h: HistoryItem) => {
    const found = matchOperation(ops, h.method, h.url);
    if (!found) {
      setNotice(`${h.method} ${h.url.split('?')[0]} is no longer in the API`);
      return;
    }
    const id = `${found.op.method} ${found.op.path}`;
    if (h.as) setAuth(h.as === 'key' && !apiKey ? 'session' : h.as);
    if (id === opId) {
      setParams(found.params);
      setBody(h.body ? JSON.stringify(JSON.parse(h.body), null, 2) : '');
    } else {
      restoring.current = { opId: id, params: found.params, body: h.body };
      setOpId(id);
    }
    if (h.body.includes(NOT_STORED)) {
      setNotice(`Fill in the fields marked ${NOT_STORED} (secrets are never kept in history), then send.`);
      return;
    }
    setNotice(null);
    void send(h.method, h.url, h.body);
  };

  const curl = () => {
    const h = headers();
    // In session mode the token comes from the shell: double quotes, so $KEYWARD_TOKEN is filled in
    // (export it from the "token" of POST /v1/auth/login, or use a root key).
    const auths = h.authorization ? [auth === 'session' ? ' -H "authorization: Bearer $KEYWARD_TOKEN"' : ` -H ${shellQuote(`authorization: ${h.authorization}`)}`] : [];
    return [`curl -X ${op?.method} ${shellQuote(location.origin + url)}`, ...auths, ...(hasBody ? [` -H 'content-type: application/json'`, ` -d ${shellQuote(JSON.stringify(JSON.parse(body)))}`] : [])].join(' \\\n');
  };

  /**
   * A dry run: nothing is charged or counted (usage cap, rate limits, analytics). Verify is scoped to
   * an app: key prefixes are unique, so the app is the workspace's app with this key's prefix.
   */
  const checkKey = async () => {
    const value = apiKey.trim();
    setKeyInfo(null);
    setKeySettings(null);
    const prefix = value.split('_')[0];
    const apps = workspace ? await api<{ data: App[] }>('GET', `/v1/apps?workspaceId=${workspace.id}`) : { data: [] };
    const app = apps.data.find((a) => a.keyPrefix === prefix);
    if (!app) {
      setKeyInfo({ valid: false, code: 'NOT_FOUND' });
      return;
    }
    const res = await raw('POST', '/v1/keys/verify', JSON.stringify({ key: value, appId: app.id, dryRun: true }));
    const verdict = res.json as Verdict;
    setKeyInfo(verdict);
    // The key's own settings, whatever the verdict: an IP allowlist must not hide the scope.
    if (verdict.keyId) setKeySettings(await api<Key>('GET', `/v1/keys/${verdict.keyId}`).catch(() => null));
  };

  const scope = keySettings ?? keyInfo;
  const scoped = scope && (scope.permissions?.length || scope.resources?.length || keySettings?.ipAllowlist.length);
  const statusClass = result ? `status-${String(result.status)[0]}` : '';
  const verdict = result && op?.path === '/v1/keys/verify' ? (result.json as Verdict | undefined) : undefined;
  const problem = result && !result.ok ? (result.json as { code?: string; detail?: string } | undefined) : undefined;

  return (
    <>
      <div className="page-head"><div><h1>API playground</h1><p>Send real requests to this Keyward. Requests run as you unless you choose the pasted key.</p></div></div>
      <ErrorNote error={spec.error} />
      <div className="playground">
        <div className="stack">
          <section className="card card-pad stack">
            <Field label="API key to inspect" htmlFor="pg-key" hint="Paste a key: it is verified and its settings are shown">
              <div className="row"><input id="pg-key" className="mono" style={{ flex: 1 }} value={apiKey} onChange={(e) => { setApiKey(e.target.value); setKeyInfo(null); setKeySettings(null); }} placeholder="acme_live_…" /><Button onClick={() => void checkKey()} disabled={!apiKey.trim()}>Check key</Button></div>
            </Field>
            {keyInfo && (
              <div data-testid="key-info" className={`note ${keyInfo.valid ? 'note-info' : 'note-error'}`}>
                <strong>{keyInfo.code}</strong> — {EXPLAIN[keyInfo.code] ?? ''}
                {keyInfo.keyId && <div>{keyInfo.name} · <span className="mono">{keyInfo.keyId}</span> · owner {keyInfo.ownerId ?? '—'} · {keyInfo.environment}</div>}
                {keyInfo.code === 'IP_NOT_ALLOWED' && <div style={{ marginTop: 8 }}>The check was made without a caller address; this key accepts only the addresses of its allowlist.</div>}
                {scoped ? <div className="note note-warn" style={{ marginTop: 8 }}>This key is scoped: permissions [{scope?.permissions?.join(', ') || 'any'}], resources [{scope?.resources?.join(', ') || 'all'}]{keySettings?.ipAllowlist.length ? `, addresses [${keySettings.ipAllowlist.join(', ')}]` : ''}. Requests outside that scope are refused.</div> : null}
                <div className="hint" style={{ marginTop: 8 }}>A dry run: nothing was charged or counted.</div>
              </div>
            )}
          </section>
          <section className="card card-pad stack">
            <div className="grid-2">
              <Field label="Endpoint" htmlFor="pg-op">
                <select id="pg-op" value={opId} onChange={(e) => setOpId(e.target.value)}>
                  {[...new Set(ops.map((o) => o.tag))].map((tag) => (
                    <optgroup key={tag} label={tag}>
                      {ops.filter((o) => o.tag === tag).map((o) => <option key={`${o.method} ${o.path}`} value={`${o.method} ${o.path}`}>{o.method} {o.path}</option>)}
                    </optgroup>
                  ))}
                </select>
              </Field>
              <Field label="Send as" htmlFor="pg-auth">
                <select id="pg-auth" value={auth} onChange={(e) => setAuth(e.target.value as typeof auth)}>
                  <option value="session">Me (console session)</option><option value="key">The pasted key</option><option value="none">No credentials</option>
                </select>
              </Field>
            </div>
            {op?.description && <p className="hint" style={{ margin: 0 }}><Md text={op.description} /></p>}
            {auth === 'key' && managementOp(op) && apiKey.trim() && !apiKey.trim().startsWith('kwroot_') && <p className="note note-info" data-testid="key-on-management" style={{ margin: 0 }}>App keys are checked with <code>POST /v1/keys/verify</code>; they do not call management endpoints. Send this as yourself, or with a root key pasted above.</p>}
            {auth === 'session' && <p className="hint" style={{ margin: 0 }}>Copy cURL sends <code>$KEYWARD_TOKEN</code>: set it to the <code>token</code> that <code>POST /v1/auth/login</code> answers, or to a root key (Root keys page).</p>}
            {op && op.parameters.filter((p) => p.in !== 'header').length > 0 && (
              <div className="grid-2">
                {op.parameters.filter((p) => p.in !== 'header').map((p) => (
                  <Field key={p.name} label={`${p.name}${p.required ? ' *' : ''} (${p.in})`} htmlFor={`pg-p-${p.name}`} hint={p.description}>
                    <input id={`pg-p-${p.name}`} value={params[p.name] ?? ''} onChange={(e) => setParams({ ...params, [p.name]: e.target.value })} />
                  </Field>
                ))}
              </div>
            )}
            {op?.body && (
              <Field label="JSON body" htmlFor="pg-body" error={bodyError ?? undefined}>
                <textarea id="pg-body" className="mono" rows={8} value={body} onChange={(e) => setBody(e.target.value)} spellCheck={false} />
              </Field>
            )}
            <div className="row">
              <code data-testid="request-preview" className="request-preview"><span className={`method m-${op?.method.toLowerCase()}`}>{op?.method}</span> {url}{Object.keys(headers()).map((h) => `\n${h}: ${h === 'authorization' ? 'Bearer …' : headers()[h]}`).join('')}{hasBody ? `\ncontent-type: application/json\n\n${body}` : ''}</code>
              <span className="spacer" />
              <CopyButton text={curl} label="Copy cURL" testId="copy-curl" />
              <Button kind="primary" onClick={() => void send()} disabled={sending || Boolean(hasBody && bodyError?.startsWith('Invalid'))}>{sending ? 'Sending…' : 'Send'}</Button>
            </div>
          </section>
          {result && (
            <section className="card card-pad stack" aria-live="polite">
              <div className="row">
                <strong className={statusClass} data-testid="response-status">{result.status}</strong>
                <span style={{ color: 'var(--muted)' }}>{result.ms} ms</span>
                {verdict?.code && <Badge tone={verdict.valid ? 'green' : 'red'}>{verdict.code}</Badge>}
                <span className="spacer" />
                <CopyButton text={result.text} label="Copy response" />
              </div>
              {verdict?.code && !verdict.valid && <div className="note note-warn" data-testid="explain">Why: {EXPLAIN[verdict.code]}</div>}
              {!result.ok && problem?.detail && <div className="note note-warn" data-testid="explain">{problem.code ? <strong>{problem.code}: </strong> : null}{problem.detail}</div>}
              <pre className="json" tabIndex={0} data-testid="response-body">{result.json !== undefined ? JSON.stringify(result.json, null, 2) : result.text}</pre>
            </section>
          )}
          {notice && <div className="note note-warn" role="status" data-testid="replay-notice">{notice}</div>}
          <ErrorNote error={error} />
        </div>
        <aside className="card card-pad stack" aria-label="Request history">
          <div className="row"><h3 style={{ margin: 0 }}>History</h3><span className="spacer" /><Button kind="ghost" onClick={() => { setHistory([]); localStorage.removeItem(HISTORY); }}>Clear</Button></div>
          {history.length === 0 ? <p className="hint">Requests you send appear here.</p> : (
            <div className="history" data-testid="history">
              {history.map((h) => (
                <button type="button" key={h.at + h.url} title="Put back in the form and send again" onClick={() => replay(h)}>
                  <span className={`method m-${h.method.toLowerCase()}`}>{h.method}</span> <span className={`status-${String(h.status)[0]}`}>{h.status}</span>{h.as && <span className="hint"> · as {h.as === 'session' ? 'me' : h.as === 'key' ? 'the pasted key' : 'nobody'}</span>}
                  <div className="mono" style={{ overflow: 'hidden', textOverflow: 'ellipsis', whiteSpace: 'nowrap' }}>{h.url}</div>
                </button>
              ))}
            </div>
          )}
        </aside>
      </div>
    </>
  );
}
