// Reading the OpenAPI document for the playground and the docs page.
export interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  description?: string;
  examples?: unknown[];
  example?: unknown;
  $ref?: string;
  format?: string;
  pattern?: string;
  default?: unknown;
}
export interface Param {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  description?: string;
  schema?: Schema;
}
export interface Operation {
  /** The name a generated client gives it; also the anchor of its entry on the reference page. */
  operationId: string;
  method: string;
  path: string;
  tag: string;
  summary?: string;
  description?: string;
  public: boolean;
  parameters: Param[];
  body?: Schema;
  responses: Record<string, { description?: string; content?: Record<string, { schema?: Schema }> }>;
}
export interface Spec {
  info: { title: string; version: string; description?: string; license?: { name: string } };
  servers?: { url: string; description?: string }[];
  tags?: { name: string; description?: string }[];
  components?: { schemas?: Record<string, Schema> };
  paths: Record<string, Record<string, { operationId?: string; tags?: string[]; summary?: string; description?: string; security?: unknown[]; parameters?: Param[]; requestBody?: { content?: Record<string, { schema?: Schema }> }; responses?: Operation['responses'] }>>;
}

export function operations(spec: Spec): Operation[] {
  return Object.entries(spec.paths).flatMap(([path, methods]) =>
    Object.entries(methods).map(([method, op]) => ({
      operationId: op.operationId ?? `${method}${path}`.replace(/[^A-Za-z0-9]+/g, '-'),
      method: method.toUpperCase(),
      path,
      tag: op.tags?.[0] ?? 'other',
      summary: op.summary,
      description: op.description,
      public: Array.isArray(op.security) && op.security.length === 0,
      parameters: op.parameters ?? [],
      body: op.requestBody?.content?.['application/json']?.schema ?? op.requestBody?.content?.['application/x-www-form-urlencoded']?.schema,
      responses: op.responses ?? {},
    })),
  );
}

export function resolve(spec: Spec, schema: Schema | undefined): Schema | undefined {
  if (!schema?.$ref) return schema;
  return spec.components?.schemas?.[schema.$ref.split('/').pop()!];
}

export function typeLabel(spec: Spec, s: Schema | undefined): string {
  const r = resolve(spec, s);
  if (!r) return 'any';
  if (r.const !== undefined) return JSON.stringify(r.const);
  if (r.enum) return r.enum.map((v) => JSON.stringify(v)).join(' | ');
  if (r.anyOf) return r.anyOf.map((x) => typeLabel(spec, x)).join(' | ');
  if (r.type === 'array') return `${typeLabel(spec, r.items)}[]`;
  if (Array.isArray(r.type)) return r.type.join(' | ');
  return r.type ?? (r.properties ? 'object' : 'any');
}

/** An example body built from examples, defaults and required fields. */
export function exampleOf(spec: Spec, s: Schema | undefined, depth = 0): unknown {
  const r = resolve(spec, s);
  if (!r || depth > 4) return undefined;
  if (r.examples?.length) return r.examples[0];
  if (r.example !== undefined) return r.example;
  if (r.default !== undefined) return r.default;
  if (r.const !== undefined) return r.const;
  if (r.enum) return r.enum[0];
  if (r.anyOf) return exampleOf(spec, r.anyOf[0], depth + 1);
  const type = Array.isArray(r.type) ? r.type[0] : r.type;
  if (type === 'object' || r.properties) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(r.properties ?? {})) {
      if (depth === 0 || r.required?.includes(k)) {
        const ex = exampleOf(spec, v, depth + 1);
        if (ex !== undefined && (r.required?.includes(k) || v.examples)) out[k] = ex;
      }
    }
    return out;
  }
  if (type === 'array') return [];
  if (type === 'integer' || type === 'number') return 1;
  if (type === 'boolean') return true;
  if (type === 'string') return r.format === 'date-time' ? new Date(Date.now() + 86_400_000).toISOString() : 'string';
  return undefined;
}
