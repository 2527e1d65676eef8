// API docs inside the console: every endpoint of the spec by tag, with auth, parameters,
// schemas and examples, plus one-click copies of openapi.json and llms.txt.
import { useMemo } from 'react';
import { useApi } from '../../query';
import { Badge, CopyButton, ErrorNote, Md } from '../../ui';
import { exampleOf, operations, resolve, typeLabel, type Schema, type Spec } from './spec';

function Props({ spec, schema }: { spec: Spec; schema: Schema | undefined }) {
  const s = resolve(spec, schema);
  if (!s?.properties) return <p className="hint">{typeLabel(spec, s)}</p>;
  return (
    <table>
      <thead><tr><th>Field</th><th>Type</th><th className="hide-sm">Description</th></tr></thead>
      <tbody>
        {Object.entries(s.properties).map(([name, p]) => (
          <tr key={name}><td><code>{name}</code>{s.required?.includes(name) && <Badge tone="amber">required</Badge>}</td><td className="mono">{typeLabel(spec, p)}</td><td className="hide-sm"><Md text={resolve(spec, p)?.description ?? ''} /></td></tr>
        ))}
      </tbody>
    </table>
  );
}

export function Reference() {
  const spec = useApi(['openapi'], () => fetch('/openapi.json').then((r) => r.json() as Promise<Spec>));
  const ops = useMemo(() => (spec.data ? operations(spec.data) : []), [spec.data]);
  const tags = spec.data?.tags?.map((t) => t.name) ?? [...new Set(ops.map((o) => o.tag))];
  const fetchText = (path: string) => () => fetch(path).then((r) => r.text());
  return (
    <>
      <div className="page-head">
        <div><h1>API docs</h1><p>Generated from the running server's OpenAPI document. Interactive version: <a href="/docs">/docs</a>.</p></div>
        <div className="row">
          <CopyAsync label="Copy LLM.txt" load={fetchText('/llms.txt')} testId="copy-llms" />
          <CopyAsync label="Copy openapi.json" load={fetchText('/openapi.json')} testId="copy-openapi" />
        </div>
      </div>
      <ErrorNote error={spec.error} />
      {spec.data && tags.map((tag) => {
        const list = ops.filter((o) => o.tag === tag);
        if (!list.length) return null;
        return (
          <section key={tag} className="card card-pad" style={{ marginBottom: 16 }} aria-labelledby={`tag-${tag}`}>
            <h2 id={`tag-${tag}`} style={{ textTransform: 'capitalize', marginBottom: 4 }}>{tag}</h2>
            <p className="hint" style={{ marginTop: 0 }}>{spec.data!.tags?.find((t) => t.name === tag)?.description}</p>
            {list.map((o) => {
              const ok = Object.entries(o.responses).find(([code]) => code.startsWith('2'));
              const okSchema = ok?.[1].content?.['application/json']?.schema;
              return (
                <details className="endpoint" key={o.method + o.path}>
                  <summary><span className={`method m-${o.method.toLowerCase()}`}>{o.method}</span><code>{o.path}</code><span style={{ color: 'var(--muted)' }}>{o.summary}</span></summary>
                  <div className="stack" style={{ marginTop: 12 }}>
                    {o.description && <p style={{ margin: 0 }}><Md text={o.description} /></p>}
                    <div>Auth: {o.public ? <Badge tone="green">public</Badge> : <Badge tone="grey">Bearer session token or root key</Badge>}</div>
                    {o.parameters.length > 0 && (<div><h3>Parameters</h3><table><tbody>{o.parameters.map((p) => <tr key={p.in + p.name}><td><code>{p.name}</code></td><td>{p.in}{p.required ? ', required' : ''}</td><td className="mono">{typeLabel(spec.data!, p.schema)}</td></tr>)}</tbody></table></div>)}
                    {o.body && (<div><h3>Request body</h3><Props spec={spec.data!} schema={o.body} /><pre className="json">{JSON.stringify(exampleOf(spec.data!, o.body), null, 2)}</pre></div>)}
                    <div><h3>Response {ok?.[0]}</h3>{okSchema ? <Props spec={spec.data!} schema={okSchema} /> : <p className="hint">{ok?.[1].description ?? 'No content'}</p>}</div>
                    <p className="hint" style={{ margin: 0 }}>Errors: application/problem+json with a stable <code>code</code>.</p>
                  </div>
                </details>
              );
            })}
          </section>
        );
      })}
    </>
  );
}

function CopyAsync({ label, load, testId }: { label: string; load: () => Promise<string>; testId: string }) {
  const text = useApi(['copy', testId], load);
  return <CopyButton label={label} text={() => text.data ?? ''} testId={testId} />;
}
