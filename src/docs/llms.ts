// Renders an OpenAPI document as llms.txt: a compact Markdown digest of every operation.
interface Operation {
  summary?: string;
  description?: string;
  tags?: string[];
  security?: unknown[];
  parameters?: { name: string; in: string; required?: boolean; schema?: { type?: unknown } }[];
  requestBody?: { content?: Record<string, { schema?: Schema }> };
}
interface Schema {
  type?: unknown;
  properties?: Record<string, Schema>;
  required?: string[];
  description?: string;
  anyOf?: Schema[];
  const?: unknown;
  enum?: unknown[];
}
interface Spec {
  info: { title: string; description?: string; version: string };
  paths: Record<string, Record<string, Operation>>;
}

function typeOf(s: Schema | undefined): string {
  if (!s) return 'any';
  if (s.const !== undefined) return JSON.stringify(s.const);
  if (s.anyOf) return s.anyOf.map(typeOf).join(' | ');
  if (Array.isArray(s.type)) return s.type.join(' | ');
  return String(s.type ?? 'object');
}

export function renderLlmsTxt(spec: Spec): string {
  const lines = [`# ${spec.info.title} ${spec.info.version}`, '', `> ${spec.info.description ?? ''}`, '',
    'Auth: `Authorization: Bearer <session token | root key>` unless marked public. Full spec: /openapi.json', ''];
  const byTag = new Map<string, string[]>();
  for (const [path, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const tag = op.tags?.[0] ?? 'other';
      const label = op.security?.length === 0 ? ' (public)' : path === '/v1/keys/verify' ? ' (appId, or a root key with keys:verify)' : op.security?.some((r) => Object.keys(r as object).length === 0) ? ' (credential optional)' : '';
      const out: string[] = [`### ${method.toUpperCase()} ${path}${label}`];
      if (op.summary) out.push(op.summary);
      if (op.description) out.push(op.description);
      for (const p of op.parameters ?? []) out.push(`- ${p.in} \`${p.name}\`${p.required ? ' (required)' : ''}: ${typeOf(p.schema as Schema)}`);
      const body = op.requestBody?.content?.['application/json']?.schema;
      for (const [name, prop] of Object.entries(body?.properties ?? {})) {
        out.push(`- body \`${name}\`${body?.required?.includes(name) ? ' (required)' : ''}: ${typeOf(prop)}${prop.description ? ` — ${prop.description}` : ''}`);
      }
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag)!.push(out.join('\n'), '');
    }
  }
  for (const [tag, ops] of byTag) lines.push(`## ${tag}`, '', ...ops);
  return lines.join('\n');
}
