// Completes every operation of the generated OpenAPI document in one place, so a route added later
// needs nothing of its own: a stable operationId (the method name a generated client gets), and the
// problem+json error answer when the route declares no 4xx.

interface Operation {
  operationId?: string;
  responses?: Record<string, unknown>;
  [field: string]: unknown;
}

interface Document {
  paths?: Record<string, Record<string, Operation>>;
  [field: string]: unknown;
}

const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

/** Names that read better than the derived ones (the derived name is the fallback for everything else). */
const OVERRIDES: Record<string, string> = {
  'GET /healthz': 'getHealth',
  'GET /readyz': 'getReadiness',
  'GET /metrics': 'getMetrics',
  'GET /v1/setup': 'getSetupStatus',
  'POST /v1/setup': 'setup',
  'POST /v1/auth/login': 'login',
  'POST /v1/auth/logout': 'logout',
  'GET /v1/auth/me': 'getSession',
  'POST /v1/keys/verify': 'verifyKey',
  'DELETE /v1/keys/{keyId}': 'revokeKey',
  'GET /v1/keys/{keyId}/usage': 'getKeyUsage',
  'GET /v1/keys/changes': 'streamKeyChanges',
  'DELETE /v1/root-keys/{id}': 'revokeRootKey',
  'DELETE /v1/workspaces/{id}/members/{userId}': 'removeWorkspaceMember',
  'POST /v1/workspaces/{id}/members': 'addWorkspaceMember',
  'DELETE /v1/workspaces/{id}/invitations/{invitationId}': 'revokeWorkspaceInvitation',
  'GET /v1/workspaces/{id}/audit': 'listAuditEntries',
  'GET /v1/apps/{appId}/vault': 'listVaultSecrets',
  'GET /v1/apps/{appId}/vault/{name}': 'revealVaultSecret',
  'PUT /v1/apps/{appId}/vault/{name}': 'setVaultSecret',
  'DELETE /v1/apps/{appId}/vault/{name}': 'deleteVaultSecret',
  'POST /v1/leaks': 'reportLeak',
  'POST /v1/integrations/slash': 'runSlashCommand',
  'POST /v1/ratelimit': 'limit',
  // The rest of the identity and limiter routes read well as derived (createWorkspaceIdentity,
  // listIdentityKeys, setWorkspaceRatelimitOverride …); these deletes take no id in the path.
  'DELETE /v1/workspaces/{id}/ratelimit-overrides': 'deleteWorkspaceRatelimitOverride',
  'DELETE /v1/ratelimit/overrides': 'deleteRatelimitOverride',
};

const words = (segment: string) => segment.split(/[^A-Za-z0-9]+/).filter(Boolean);
const pascal = (word: string) => word.charAt(0).toUpperCase() + word.slice(1).toLowerCase();
const singular = (word: string) => (/ies$/i.test(word) ? word.slice(0, -3) + 'y' : /[^s]s$/i.test(word) ? word.slice(0, -1) : word);
const plural = (word: string) => /[^s]s$/i.test(word) || /ies$/i.test(word);
const isParam = (segment: string) => segment.startsWith('{');

/**
 * `verbObject` from the method and the path: a collection is listed (`listAppKeys`) or added to
 * (`createAppKey`), an item is read, changed or deleted (`getKey`, `updateKey`, `deleteApp`), and a
 * last segment that is no noun is the action (`POST …/keys/{keyId}/roll` → `rollKey`).
 */
export function deriveOperationId(method: string, path: string): string {
  const override = OVERRIDES[`${method.toUpperCase()} ${path}`];
  if (override) return override;
  const segments = path.split('/').filter((s) => s && s !== 'v1');
  const statics = segments.filter((s) => !isParam(s));
  const last = segments[segments.length - 1] ?? '';
  const m = method.toLowerCase();
  const object = (list: string[]) => list.flatMap(words).map((w) => pascal(singular(w))).join('');
  // Many methods on one path (a gateway's catch-all): the method tells them apart.
  if (path.includes('forward-auth')) return 'forwardAuth' + pascal(m) + (segments.some(isParam) ? 'ForApp' : '');
  if (isParam(last)) {
    const verb = { get: 'get', patch: 'update', put: 'set', delete: 'delete' }[m] ?? m;
    return verb + statics.map((s) => words(s).map((w) => pascal(singular(w))).join('')).join('');
  }
  const tail = words(statics[statics.length - 1] ?? 'root');
  const lastWord = tail[tail.length - 1] ?? '';
  if (m === 'get') return (plural(lastWord) ? 'list' : 'get') + statics.flatMap(words).map((w, i, all) => (i === all.length - 1 ? pascal(w) : pascal(singular(w)))).join('');
  if ((m === 'post' || m === 'put') && plural(lastWord)) return (m === 'post' ? 'create' : 'set') + object(statics);
  if (m === 'post') {
    // The last segment is an action: its first word is the verb, its other words follow the object.
    const [verb = 'post', ...rest] = tail;
    return verb.toLowerCase() + object(statics.slice(0, -1)) + rest.map(pascal).join('');
  }
  return m + statics.flatMap(words).map(pascal).join('');
}

/** The unmistakable fallback: every segment, parameters as `By<Name>`. */
function fullName(method: string, path: string): string {
  return method.toLowerCase() + path.split('/').filter(Boolean).flatMap((s) => (isParam(s) ? ['By', ...words(s)] : words(s))).map(pascal).join('');
}

const ERROR_ANSWER = {
  description: 'Refused: application/problem+json with a stable `code` (see the Problem schema)',
  content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
};

export function completeOperations<T extends Document>(doc: T): T {
  const taken = new Set<string>();
  for (const path of Object.keys(doc.paths ?? {}).sort()) {
    const item = doc.paths![path]!;
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      // One route with several methods shares one object: each method gets its own copy.
      const copy: Operation = { ...op };
      if (!copy.operationId) {
        let id = deriveOperationId(method, path);
        if (taken.has(id)) id = fullName(method, path);
        copy.operationId = id;
      }
      taken.add(copy.operationId);
      const responses = { ...(copy.responses ?? {}) };
      if (!Object.keys(responses).some((code) => code.startsWith('4'))) responses['4XX'] = ERROR_ANSWER;
      copy.responses = responses;
      item[method] = copy;
    }
  }
  return doc;
}
