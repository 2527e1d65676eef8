// Typed client for the Keyward API, built on the same TypeBox schemas that generate /openapi.json.
import type * as Api from '../api/types.js';

export type Key = Api.Key;
export type NewKey = Api.CreatedKey;
export type CreateKeyInput = Api.CreateKeyInput;
export type UpdateKeyInput = Api.UpdateKeyInput;
export type ListKeysInput = Api.ListKeysParams;
export type ImportKeyInput = Api.ImportKeyInput;
export type ImportKeysResult = Api.ImportKeysResult;
export type App = Api.App;
export type AppDefaults = Api.AppDefaults;
export type VerifyInput = Api.VerifyRequest;
export type VerifyResult = Api.Verdict;
export type Problem = Api.Problem;
export type Workspace = Api.Workspace;
export type Identity = Api.Identity;
export type NamedLimit = Api.NamedLimit;
export type RatelimitOverride = Api.RatelimitOverride;
export type LimitRequest = Api.LimitRequest;
export type LimitResult = Api.LimitResult;

export interface Page<T> {
  data: T[];
  total: number;
}

export interface SecretInfo {
  name: string;
  createdAt: string;
  updatedAt: string;
  updatedBy: string | null;
}

export interface UsageBucket {
  at: string;
  total: number;
  counts: Record<string, number>;
}

/** A non-2xx answer, carrying the problem+json body. */
export class KeywardError extends Error {
  readonly status: number;
  readonly code: string;
  readonly problem: Partial<Problem>;

  constructor(status: number, problem: Partial<Problem>) {
    super(problem.detail ?? problem.title ?? `HTTP ${status}`);
    this.name = 'KeywardError';
    this.status = status;
    this.code = problem.code ?? (status >= 500 ? 'INTERNAL' : 'UNKNOWN');
    this.problem = problem;
  }
}

export interface ClientOptions {
  /** e.g. http://127.0.0.1:8787 */
  baseUrl: string;
  /**
   * A root key (or a session token) for the management API. For verify, a root key with the
   * `keys:verify` permission accepts any key of its workspace; without one, give `appId`.
   */
  rootKey?: string;
  /** The app whose keys verify accepts when a call names none. */
  appId?: string;
  fetch?: typeof fetch;
  timeoutMs?: number;
}

type Query = Record<string, string | number | undefined>;

export class KeywardClient {
  private readonly base: string;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: ClientOptions) {
    this.base = options.baseUrl.replace(/\/+$/, '');
    this.fetchImpl = options.fetch ?? fetch;
  }

  async request<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
    const url = new URL(this.base + path);
    for (const [k, v] of Object.entries(query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.options.rootKey) headers.authorization = `Bearer ${this.options.rootKey}`;
    const res = await this.fetchImpl(url, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000),
    });
    const text = await res.text();
    const parsed = text ? (JSON.parse(text) as unknown) : undefined;
    if (!res.ok) throw new KeywardError(res.status, (parsed ?? {}) as Partial<Problem>);
    return parsed as T;
  }

  /**
   * The hot path: always a verdict (valid or not) unless the request itself is bad. Scoped to
   * `input.appId`, else the client's `appId`, else the root key's workspace (needs `keys:verify`).
   */
  verify(input: VerifyInput): Promise<VerifyResult> {
    const appId = input.appId ?? this.options.appId;
    if (appId === undefined && !this.options.rootKey) {
      return Promise.reject(new KeywardError(400, { code: 'VERIFY_SCOPE_REQUIRED', detail: 'Give the client an appId, or a root key with the "keys:verify" permission' }));
    }
    return this.request('POST', '/v1/keys/verify', appId === undefined ? input : { ...input, appId });
  }

  readonly workspaces = {
    list: () => this.request<{ data: Workspace[] }>('GET', '/v1/workspaces').then((r) => r.data),
    get: (id: string) => this.request<Workspace>('GET', `/v1/workspaces/${id}`),
  };

  readonly rootKeys = {
    list: (workspaceId: string) => this.request<{ data: Api.RootKey[] }>('GET', `/v1/workspaces/${workspaceId}/root-keys`).then((r) => r.data),
    /** The value is in `key`, returned only here. */
    create: (workspaceId: string, input: { name: string; permissions: string[] }) => this.request<Api.RootKey & { key: string }>('POST', `/v1/workspaces/${workspaceId}/root-keys`, input),
    revoke: (id: string) => this.request<void>('DELETE', `/v1/root-keys/${id}`),
  };

  readonly apps = {
    list: (workspaceId: string) => this.request<{ data: App[] }>('GET', '/v1/apps', undefined, { workspaceId }).then((r) => r.data),
    create: (input: { workspaceId: string; name: string; keyPrefix?: string; defaults?: AppDefaults; importKeys?: boolean }) => this.request<App>('POST', '/v1/apps', input),
    get: (appId: string) => this.request<App>('GET', `/v1/apps/${appId}`),
    update: (appId: string, input: { name?: string; keyPrefix?: string; defaults?: AppDefaults; importKeys?: boolean }) => this.request<App>('PATCH', `/v1/apps/${appId}`, input),
    delete: (appId: string) => this.request<void>('DELETE', `/v1/apps/${appId}`),
  };

  readonly keys = {
    create: (appId: string, input: CreateKeyInput) => this.request<NewKey>('POST', `/v1/apps/${appId}/keys`, input),
    list: (appId: string, query: ListKeysInput = {}) => this.request<Page<Key>>('GET', `/v1/apps/${appId}/keys`, undefined, query as Query),
    get: (keyId: string) => this.request<Key>('GET', `/v1/keys/${keyId}`),
    update: (keyId: string, input: UpdateKeyInput) => this.request<Key>('PATCH', `/v1/keys/${keyId}`, input),
    roll: (keyId: string, gracePeriodMs = 0) => this.request<NewKey>('POST', `/v1/keys/${keyId}/roll`, { gracePeriodMs }),
    revoke: (keyId: string) => this.request<Key>('DELETE', `/v1/keys/${keyId}`),
    /** Up to 1,000 keys issued elsewhere (plaintext `key` or SHA-256 `hash`); the app needs `importKeys: true`. */
    import: (appId: string, keys: ImportKeyInput[]) => this.request<ImportKeysResult>('POST', `/v1/apps/${appId}/keys/import`, { keys }),
    usage: (keyId: string, query: { since?: string; until?: string; granularity?: 'minute' | 'hour' | 'day' } = {}) =>
      this.request<{ data: UsageBucket[] }>('GET', `/v1/keys/${keyId}/usage`, undefined, query),
  };

  readonly webhooks = {
    list: (workspaceId: string) => this.request<{ data: Api.Webhook[] }>('GET', `/v1/workspaces/${workspaceId}/webhooks`).then((r) => r.data),
    /** The signing secret is in `secret`, returned only here. */
    create: (workspaceId: string, input: Api.CreateWebhookInput) => this.request<Api.CreatedWebhook>('POST', `/v1/workspaces/${workspaceId}/webhooks`, input),
    get: (id: string) => this.request<Api.Webhook>('GET', `/v1/webhooks/${id}`),
    update: (id: string, input: Api.UpdateWebhookInput) => this.request<Api.Webhook>('PATCH', `/v1/webhooks/${id}`, input),
    delete: (id: string) => this.request<void>('DELETE', `/v1/webhooks/${id}`),
    rotateSecret: (id: string) => this.request<Api.RotatedSecret>('POST', `/v1/webhooks/${id}/rotate-secret`),
    deliveries: (id: string, query: { page?: number; limit?: number; status?: Api.WebhookDelivery['status'] } = {}) =>
      this.request<Page<Api.WebhookDelivery>>('GET', `/v1/webhooks/${id}/deliveries`, undefined, query as Query),
    /** One delivery with every attempt and the body it sends. */
    delivery: (id: string, deliveryId: string) => this.request<Api.WebhookDeliveryDetail>('GET', `/v1/webhooks/${id}/deliveries/${deliveryId}`),
    retry: (id: string, deliveryId: string) => this.request<Api.WebhookDelivery>('POST', `/v1/webhooks/${id}/deliveries/${deliveryId}/retry`),
    /** A `webhook.test` event to this endpoint. */
    test: (id: string) => this.request<Api.WebhookDelivery>('POST', `/v1/webhooks/${id}/test`),
    /** Sends again the events this endpoint was sent since `since` (each keeps its webhook-id unless `newIds`). */
    replay: (id: string, input: Api.WebhookReplayInput) => this.request<Api.WebhookReplayResult>('POST', `/v1/webhooks/${id}/replay`, input),
  };

  /** The customers behind keys (a key's `ownerId` is its identity's `externalId`): meta and named limits. */
  readonly identities = {
    create: (workspaceId: string, input: Api.CreateIdentityInput) => this.request<Identity>('POST', `/v1/workspaces/${workspaceId}/identities`, input),
    list: (workspaceId: string, query: Api.ListIdentitiesParams = {}) => this.request<Page<Identity>>('GET', `/v1/workspaces/${workspaceId}/identities`, undefined, query as Query),
    get: (id: string) => this.request<Identity>('GET', `/v1/identities/${id}`),
    keys: (id: string, query: { page?: number; limit?: number } = {}) => this.request<Page<Key>>('GET', `/v1/identities/${id}/keys`, undefined, query),
    update: (id: string, input: Api.UpdateIdentityInput) => this.request<Identity>('PATCH', `/v1/identities/${id}`, input),
    /** Refused (409) while keys name it, unless `force`. */
    delete: (id: string, opts: { force?: boolean } = {}) => this.request<void>('DELETE', `/v1/identities/${id}`, undefined, opts.force ? { force: 'true' } : {}),
    /** Overrides of named limits: `identifier` exact or ending in `*`; the most specific wins. */
    overrides: {
      set: (workspaceId: string, input: Api.SetOverrideInput) => this.request<RatelimitOverride>('PUT', `/v1/workspaces/${workspaceId}/ratelimit-overrides`, input),
      list: (workspaceId: string, query: { name?: string; page?: number; limit?: number } = {}) => this.request<Page<RatelimitOverride>>('GET', `/v1/workspaces/${workspaceId}/ratelimit-overrides`, undefined, query),
      delete: (workspaceId: string, name: string, identifier: string) => this.request<void>('DELETE', `/v1/workspaces/${workspaceId}/ratelimit-overrides`, undefined, { name, identifier }),
    },
  };

  /** The standalone limiter, for anything that is not a key; needs a root key with `ratelimit:limit`. */
  readonly ratelimit = {
    limit: (input: LimitRequest) => this.request<LimitResult>('POST', '/v1/ratelimit', input),
    overrides: {
      set: (input: Api.SetNamespaceOverrideInput) => this.request<RatelimitOverride>('PUT', '/v1/ratelimit/overrides', input),
      list: (query: { namespace?: string; page?: number; limit?: number } = {}) => this.request<Page<RatelimitOverride>>('GET', '/v1/ratelimit/overrides', undefined, query),
      delete: (namespace: string, identifier: string) => this.request<void>('DELETE', '/v1/ratelimit/overrides', undefined, { namespace, identifier }),
    },
  };

  readonly vault = {
    list: (appId: string) => this.request<{ data: SecretInfo[] }>('GET', `/v1/apps/${appId}/vault`).then((r) => r.data),
    set: (appId: string, name: string, value: string) => this.request<SecretInfo>('PUT', `/v1/apps/${appId}/vault/${encodeURIComponent(name)}`, { value }),
    get: (appId: string, name: string) => this.request<{ name: string; value: string }>('GET', `/v1/apps/${appId}/vault/${encodeURIComponent(name)}`).then((r) => r.value),
    delete: (appId: string, name: string) => this.request<void>('DELETE', `/v1/apps/${appId}/vault/${encodeURIComponent(name)}`),
  };
}
