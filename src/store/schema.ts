import type { Generated } from 'kysely';

// Row types of every table, shared by both dialects. Timestamps are epoch milliseconds; JSON is text.
export interface UsersTable {
  id: string;
  email: string;
  name: string;
  password_hash: string;
  created_at: number;
}

export interface SessionsTable {
  id: string;
  user_id: string;
  token_hash: string;
  created_at: number;
  expires_at: number;
  ip: string | null;
}

/** A network (IPv4 address or IPv6 /64) an account proved itself from: setup, invitation, login. */
export interface LoginAddressesTable {
  user_id: string;
  network: string;
  created_at: number;
  last_seen_at: number;
}

export interface WorkspacesTable {
  id: string;
  name: string;
  created_at: number;
}

export interface MembersTable {
  workspace_id: string;
  user_id: string;
  role: 'owner' | 'admin' | 'member';
  created_at: number;
}

export interface AppsTable {
  id: string;
  workspace_id: string;
  name: string;
  key_prefix: string;
  /** JSON: { environment, ratelimit, ownerRatelimit } */
  defaults: string;
  created_at: number;
  updated_at: number;
  deleted_at: number | null;
  /** JSON: [{ methods?, path, permissions }] for /v1/forward-auth; null = none. */
  gateway_rules: string | null;
  /** 1: verify accepts this app's imported values whatever their format (POST …/keys/import). */
  import_keys: number;
}

export interface KeysTable {
  id: string;
  app_id: string;
  workspace_id: string;
  kind: 'bearer' | 'integration';
  start: string;
  name: string;
  owner_id: string | null;
  environment: 'live' | 'test';
  permissions: string;
  resources: string;
  ip_allowlist: string;
  expires_at: number | null;
  ratelimit: string | null;
  owner_ratelimit: string | null;
  remaining: number | null;
  refill_amount: number | null;
  refill_interval: 'daily' | 'monthly' | null;
  last_refill_at: number | null;
  meta: string;
  status: 'active' | 'disabled' | 'revoked';
  created_at: number;
  updated_at: number;
  revoked_at: number | null;
  last_used_at: number | null;
  created_by: string | null;
  /** Webhook notices sent for the current expires_at: null, 'expiring', 'expired'. */
  expiry_notice: 'expiring' | 'expired' | null;
  /** key.usage_low: 'due' once a charge takes remaining to 10% or less, 'sent' once emitted; a refill clears it. */
  usage_low: 'due' | 'sent' | null;
  /** What `remaining` was last set to (without a refill, the 10% of key.usage_low is of this). */
  remaining_base: number | null;
  /** 1: brought in through POST /v1/apps/{id}/keys/import (its value was not generated here). */
  imported: number;
  /** The credit period: bumped by each refill and each change of remaining or refill (units of an older one are void). */
  credit_epoch: number;
  /** JSON: the key's named limits, [{ name, limit, durationMs, autoApply }]. */
  ratelimits: string;
}

/** The customer behind the keys whose owner_id is external_id in the workspace. */
export interface IdentitiesTable {
  id: string;
  workspace_id: string;
  external_id: string;
  /** JSON object, returned by verify with every key of this identity. */
  meta: string;
  /** JSON: [{ name, limit, durationMs, autoApply }], windows shared by every key of the identity. */
  ratelimits: string;
  created_at: number;
  updated_at: number;
}

/** A workspace's override of a named limit ('limit') or of a standalone namespace ('namespace'). */
export interface RatelimitOverridesTable {
  id: string;
  workspace_id: string;
  kind: 'limit' | 'namespace';
  /** The named limit, or the namespace. */
  name: string;
  /** Exact, or a prefix ending in '*'. */
  identifier: string;
  limit: number;
  duration_ms: number;
  created_at: number;
  updated_at: number;
}

/** Every value a key has had: the current one (expires_at null) and rolled ones in their grace period. */
export interface KeyHashesTable {
  hash: string;
  key_id: string;
  created_at: number;
  expires_at: number | null;
  /** Integration keys only: this value's secret, sealed with the master key. */
  secret_enc: string | null;
}

export interface VaultSecretsTable {
  app_id: string;
  name: string;
  value_enc: string;
  created_at: number;
  updated_at: number;
  updated_by: string | null;
}

export interface RootKeysTable {
  id: string;
  workspace_id: string;
  name: string;
  hash: string;
  start: string;
  permissions: string;
  created_at: number;
  created_by: string | null;
  revoked_at: number | null;
  last_used_at: number | null;
}

export interface AuditTable {
  id: string;
  workspace_id: string;
  actor_type: 'user' | 'root_key' | 'system' | 'chat';
  actor_id: string;
  action: string;
  target_type: string;
  target_id: string;
  ip: string | null;
  user_agent: string | null;
  meta: string;
  created_at: number;
}

export interface UsageTable {
  key_id: string;
  bucket: number;
  code: string;
  count: number;
}

export interface SettingsTable {
  name: string;
  value: string;
}

export interface InvitationsTable {
  id: string;
  workspace_id: string;
  email: string;
  role: 'owner' | 'admin' | 'member';
  token_hash: string;
  created_at: number;
  expires_at: number;
  created_by: string | null;
  accepted_at: number | null;
  accepted_by: string | null;
  revoked_at: number | null;
}

export interface ChangesTable {
  /** Generated: monotonic per store. */
  seq: Generated<number>;
  /**
   * `key` (target = key id), `root_key` (target = root key id), `value` (target = value hash),
   * `app` (target = app id), `session` (target = session id, ended), `member` (target = user id:
   * removed from, or given another role in, workspace_id), `imports` (target = app id: keys were
   * imported into it), `identity` (target = external id: the identity of every key with that owner
   * changed), `overrides` (target = workspace id: its rate-limit overrides changed).
   */
  kind: 'key' | 'root_key' | 'value' | 'app' | 'session' | 'member' | 'imports' | 'identity' | 'overrides';
  target: string;
  workspace_id: string;
  created_at: number;
}

export type ChangeKind = ChangesTable['kind'];

/** A change as the feed reads it. */
export interface ChangeRow {
  seq: number;
  kind: ChangeKind;
  target: string;
  workspace_id: string;
  created_at: number;
}

export interface IdempotencyTable {
  /** Who may replay: the credential's workspace and the route, e.g. `ws_…:POST /v1/apps/{appId}/keys`. */
  scope: string;
  key: string;
  request_hash: string;
  resource_id: string;
  created_at: number;
}

export interface NodesTable {
  id: string;
  seen_at: number;
}

export interface WebhooksTable {
  id: string;
  workspace_id: string;
  /** Only this app's key events; null = every event of the workspace. */
  app_id: string | null;
  url: string;
  description: string;
  /** JSON array of event types. */
  events: string;
  secret_enc: string;
  /** After a rotation, the old secret still signs until previous_secret_until. */
  previous_secret_enc: string | null;
  previous_secret_until: number | null;
  status: 'active' | 'disabled';
  disabled_reason: string | null;
  /** Failed attempts since the last success. */
  consecutive_failures: number;
  /** The first failure after the last success (null while it succeeds): Keyward disables it after long enough. */
  failing_since: number | null;
  created_at: number;
  updated_at: number;
  created_by: string | null;
}

export interface WebhookEventsTable {
  id: string;
  workspace_id: string;
  type: string;
  /** The JSON body every delivery of this event sends, byte for byte. */
  payload: string;
  created_at: number;
}

export interface WebhookAttemptsTable {
  delivery_id: string;
  /** 1 for the first attempt of the delivery. */
  number: number;
  attempted_at: number;
  outcome: 'delivered' | 'failed';
  response_status: number | null;
  /** The first 1 KB of the answer's body (secrets of the endpoint masked). */
  response_body: string | null;
  /** Why it failed, in words (never an address the name resolved to). */
  error: string | null;
  latency_ms: number;
}
export interface WebhookDeliveriesTable {
  seq: Generated<number>;
  id: string;
  webhook_id: string;
  event_id: string;
  /** Deliveries with one order key go out one at a time, in seq order. */
  order_key: string;
  /** 'held' while its endpoint is disabled; 'failed' only for deliveries given up before retries were unbounded. */
  status: 'pending' | 'held' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: number;
  /** A node sending it holds it until then; a killed node's claim lapses. */
  locked_until: number | null;
  last_attempt_at: number | null;
  response_status: number | null;
  error: string | null;
  latency_ms: number | null;
  created_at: number;
  delivered_at: number | null;
}

/** Units of a key's cap reserved for one node in one credit period (totals over the period). */
export interface CreditSlicesTable {
  key_id: string;
  node_id: string;
  epoch: number;
  leased: number;
  released: number;
  /** What the node had spent by its last write (it holds leased - released - spent). */
  spent: number;
  seq: number;
  updated_at: number;
}

export interface Database {
  users: UsersTable;
  sessions: SessionsTable;
  login_addresses: LoginAddressesTable;
  workspaces: WorkspacesTable;
  members: MembersTable;
  apps: AppsTable;
  keys: KeysTable;
  key_hashes: KeyHashesTable;
  root_keys: RootKeysTable;
  audit_log: AuditTable;
  usage: UsageTable;
  settings: SettingsTable;
  vault_secrets: VaultSecretsTable;
  invitations: InvitationsTable;
  changes: ChangesTable;
  idempotency: IdempotencyTable;
  nodes: NodesTable;
  webhooks: WebhooksTable;
  webhook_events: WebhookEventsTable;
  webhook_deliveries: WebhookDeliveriesTable;
  webhook_attempts: WebhookAttemptsTable;
  credit_slices: CreditSlicesTable;
  identities: IdentitiesTable;
  ratelimit_overrides: RatelimitOverridesTable;
}
