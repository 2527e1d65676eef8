// Key lifecycle: create, change, roll, revoke, list. Each change and its audit entry commit
// together, then every cached copy of the key is invalidated before the caller hears back.
import type { Static } from '@sinclair/typebox';
import { conflict, invalid, notFound } from '../errors.js';
import { sha256Hex } from '../lib/hash.js';
import { newId } from '../lib/random.js';
import type { Clock } from '../lib/clock.js';
import { sealContext, type SecretBox } from '../lib/secretbox.js';
import type { InvalidationBus } from '../shared/bus.js';
import type { WebhookOutbox } from '../webhooks/outbox.js';
import { made, type IdempotencyClaim, type Store } from '../store/db.js';
import type { Actor } from '../store/repos/index.js';
import { remainingAt, type KeyFilters } from '../store/repos/keys.js';
import type { PageOf, PageRequest } from '../store/repos/sql.js';
import type { AppsTable, KeysTable } from '../store/schema.js';
import { appDefaults } from '../apps/model.js';
import { generateKey } from '../lib/key-format.js';
import { parseIpEntry } from '../lib/ip.js';
import { keyView, type KeyView } from './model.js';
import { diff } from '../lib/diff.js';
import type { CreateKeyBody, PatchKeyBody } from './schemas.js';
import { normalizeLimits, repeatedName } from '../ratelimit/schemas.js';

type CreateInput = Static<typeof CreateKeyBody>;
type PatchInput = Static<typeof PatchKeyBody>;

const MAX_META_BYTES = 16 * 1024;

function checkInput(input: PatchInput, now: number): void {
  input.ipAllowlist?.forEach((entry, i) => {
    if (!parseIpEntry(entry.trim())) throw invalid(`body/ipAllowlist/${i}`, 'is not an IPv4/IPv6 address or CIDR');
  });
  if (input.expiresAt) {
    const at = Date.parse(input.expiresAt);
    if (!Number.isFinite(at)) throw invalid('body/expiresAt', 'is not a valid date-time');
    if (at <= now) throw invalid('body/expiresAt', 'must be in the future');
  }
  if (input.meta !== undefined && Buffer.byteLength(JSON.stringify(input.meta)) > MAX_META_BYTES) {
    throw invalid('body/meta', `must be at most ${MAX_META_BYTES} bytes of JSON`);
  }
  const repeated = input.ratelimits === undefined ? -1 : repeatedName(input.ratelimits);
  if (repeated >= 0) throw invalid(`body/ratelimits/${repeated}/name`, 'is used by another limit of this key');
}

/** The columns an input sets; shared by create (with defaults filled in) and PATCH. */
function columnsOf(input: PatchInput): Partial<KeysTable> {
  const cols: Partial<KeysTable> = {};
  if (input.name !== undefined) cols.name = input.name;
  if (input.ownerId !== undefined) cols.owner_id = input.ownerId;
  if (input.environment !== undefined) cols.environment = input.environment;
  if (input.permissions !== undefined) cols.permissions = JSON.stringify(input.permissions);
  if (input.resources !== undefined) cols.resources = JSON.stringify(input.resources);
  if (input.ipAllowlist !== undefined) cols.ip_allowlist = JSON.stringify(input.ipAllowlist.map((s) => s.trim()));
  if (input.expiresAt !== undefined) cols.expires_at = input.expiresAt === null ? null : Date.parse(input.expiresAt);
  if (input.ratelimit !== undefined) cols.ratelimit = input.ratelimit === null ? null : JSON.stringify(input.ratelimit);
  if (input.ratelimits !== undefined) cols.ratelimits = JSON.stringify(normalizeLimits(input.ratelimits));
  if (input.ownerRatelimit !== undefined) cols.owner_ratelimit = input.ownerRatelimit === null ? null : JSON.stringify(input.ownerRatelimit);
  if (input.remaining !== undefined) cols.remaining = input.remaining;
  if (input.refill !== undefined) {
    cols.refill_amount = input.refill?.amount ?? null;
    cols.refill_interval = input.refill?.interval ?? null;
  }
  if (input.meta !== undefined) cols.meta = JSON.stringify(input.meta);
  if (input.status !== undefined) cols.status = input.status;
  return cols;
}

/** The environment is written into the key's value (acme_live_…): changing it is a roll. */
function checkEnvironment(key: Pick<KeysTable, 'environment'>, input: PatchInput): void {
  if (input.environment !== undefined && input.environment !== key.environment) {
    throw invalid('body/environment', `is part of the key's value; roll the key with {"environment": "${input.environment}"} to change it`);
  }
}

/** What a PATCH writes, given the key as it is (locked) when it writes. */
function patchColumns(key: KeysTable, input: PatchInput, now: number): Partial<KeysTable> {
  const cols: Partial<KeysTable> = { ...columnsOf(input), updated_at: now };
  if (input.refill && input.remaining === undefined && key.remaining === null) cols.remaining = input.refill.amount;
  if (input.refill !== undefined || input.remaining !== undefined) {
    cols.last_refill_at = now;
    // A new cap or refill starts a new period for key.usage_low.
    cols.usage_low = null;
    if (cols.remaining !== undefined) cols.remaining_base = cols.remaining;
  }
  // A new expiry date gets its own notices.
  if (input.expiresAt !== undefined) cols.expiry_notice = null;
  return cols;
}

export interface Created {
  /** The key (bearer) or the secret (integration): shown once. */
  value: string;
  view: KeyView;
}

export class KeyService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly box: SecretBox,
    private readonly bus: InvalidationBus,
    /** This node's latest use of a key not yet written to the store. */
    private readonly pendingLastUse: (keyId: string) => number | undefined,
    private readonly outbox: WebhookOutbox,
    /** Units of a key's cap this node holds in credit period `epoch`, unspent (src/credits/slices.ts). */
    private readonly heldCredits: (keyId: string, epoch: number) => number = () => 0,
    /** Runs a read of a key's cap when no lease of it is on its way from this node (src/credits/slices.ts). */
    private readonly steadyCredits: <T>(keyId: string, read: () => Promise<T>) => Promise<T> = (_keyId, read) => read(),
  ) {}

  async get(keyId: string): Promise<KeysTable> {
    const row = await this.store.repos.keys.find(keyId);
    if (!row) throw notFound('Key');
    return row;
  }

  async create(app: AppsTable, actor: Actor, input: CreateInput, claim?: IdempotencyClaim): Promise<Created> {
    const now = this.clock.now();
    checkInput(input, now);
    const defaults = appDefaults(app);
    const environment = input.environment ?? defaults.environment;
    const { plaintext, start } = generateKey(app.key_prefix, environment);
    const hash = sha256Hex(plaintext);
    const remaining = input.remaining !== undefined ? input.remaining : input.refill ? input.refill.amount : null;
    const row: KeysTable = {
      id: newId('key'), app_id: app.id, workspace_id: app.workspace_id, kind: input.kind ?? 'bearer', start,
      name: input.name, owner_id: null, environment, permissions: '[]', resources: '[]', ip_allowlist: '[]',
      expires_at: null,
      ratelimit: defaults.ratelimit ? JSON.stringify(defaults.ratelimit) : null,
      owner_ratelimit: defaults.ownerRatelimit ? JSON.stringify(defaults.ownerRatelimit) : null,
      remaining: null, refill_amount: null, refill_interval: null, last_refill_at: null,
      meta: '{}', status: 'active', created_at: now, updated_at: now, revoked_at: null, last_used_at: null,
      created_by: actor.id, expiry_notice: null, usage_low: null, remaining_base: null, imported: 0, credit_epoch: 0, ratelimits: '[]',
      ...columnsOf(input),
    };
    row.remaining = remaining;
    row.remaining_base = remaining;
    if (row.refill_amount !== null) row.last_refill_at = now;
    let identityMade = false;
    const stored = await this.store.transaction(async (r) => {
      // The app is held until this commits: one deleted meanwhile takes this key with it, or this
      // finds it gone, never a live key in a deleted app.
      if (!(await r.apps.liveForWrite(app.id))) throw notFound('App');
      const stored = await r.keys.create(row, { hash, key_id: row.id, created_at: now, expires_at: null, secret_enc: this.sealFor(row, plaintext) });
      if (row.owner_id !== null) identityMade = await r.identities.ensure(app.workspace_id, row.owner_id, now, r.changes);
      await r.changes.record('value', hash, app.workspace_id, now);
      await r.audit.record(actor, { workspaceId: app.workspace_id, action: 'key.create', targetType: 'key', targetId: row.id, meta: { appId: app.id, name: row.name } }, now);
      await this.outbox.key(r, 'key.created', stored, now);
      await this.outbox.expiringAtOnce(r, stored, now);
      return stored;
    }, { idempotency: made(claim, row.id) });
    this.bus.valueAdded(hash);
    if (identityMade) this.bus.identityChanged(app.workspace_id, row.owner_id!);
    return { value: plaintext, view: keyView(stored) };
  }

  /**
   * The view with the freshest last use and a due refill applied, for reads. `remaining` counts the
   * units this node holds unspent (exact on one node; other nodes' slices are not in it).
   */
  async view(row: KeysTable): Promise<KeyView> {
    const view = keyView(row, this.pendingLastUse(row.id));
    if (row.remaining === null) return view;
    // Read again at a moment no lease of this key is on its way from this node: a lease committed
    // but not yet answered has taken units out of the stored remaining that are not held here yet.
    const cap = await this.steadyCredits(row.id, () => this.store.repos.keys.peekCap(row.id, this.clock.now()));
    if (cap === undefined || cap.remaining === null) return view;
    view.remaining = cap.remaining + this.heldCredits(row.id, cap.epoch);
    return view;
  }

  /**
   * The view of a row a write's transaction returned, with nothing read after its COMMIT: a read
   * that failed there would answer an error for a change that is stored.
   */
  written(row: KeysTable): KeyView {
    const view = keyView(row, this.pendingLastUse(row.id));
    view.remaining = remainingAt(row, this.clock.now());
    if (typeof view.remaining === 'number') view.remaining += this.heldCredits(row.id, row.credit_epoch);
    return view;
  }

  /** Keys of one owner in every live app of a workspace (an identity's keys), newest first. */
  async listByOwner(workspaceId: string, ownerId: string, page: PageRequest): Promise<PageOf<KeyView>> {
    const { rows, total } = await this.store.repos.keys.listByOwner(workspaceId, ownerId, page);
    return { rows: await Promise.all(rows.map((row) => this.view(row))), total };
  }

  async list(appId: string, filters: KeyFilters, page: PageRequest): Promise<PageOf<KeyView>> {
    const { rows, total } = await this.store.repos.keys.list(appId, filters, page);
    return { rows: await Promise.all(rows.map((row) => this.view(row))), total };
  }

  /**
   * A change decided on the key as it is once locked, inside the transaction: what it writes, its
   * audit entry and its event's `data` all come from that row and from what the UPDATE returned,
   * so two changes of one key racing on two nodes each report exactly what they wrote.
   */
  async update(key: KeysTable, actor: Actor, input: PatchInput): Promise<KeyView> {
    // Answered without a transaction when the read that found the key already says so.
    if (key.status === 'revoked') throw conflict('A revoked key cannot be changed');
    checkEnvironment(key, input);
    const now = this.clock.now();
    checkInput(input, now);
    let madeFor: string | undefined;
    const after = await this.store.transaction(async (r) => {
      const before = await r.keys.lockForChange(key.id);
      if (!before || before.status === 'revoked') throw conflict('A revoked key cannot be changed');
      checkEnvironment(before, input);
      const after = await r.keys.change(key.id, patchColumns(before, input, now));
      if (!after) throw conflict('A revoked key cannot be changed');
      if (after.owner_id !== null && after.owner_id !== before.owner_id && (await r.identities.ensure(key.workspace_id, after.owner_id, now, r.changes))) madeFor = after.owner_id;
      const action = input.status && input.status !== before.status ? (input.status === 'disabled' ? 'key.disable' : 'key.enable') : 'key.update';
      await r.changes.record('key', key.id, key.workspace_id, now);
      await r.audit.record(actor, { workspaceId: key.workspace_id, action, targetType: 'key', targetId: key.id, meta: { changes: Object.keys(input), ...diff(keyView(before), keyView(after)) } }, now);
      await this.outbox.key(r, action === 'key.disable' ? 'key.disabled' : action === 'key.enable' ? 'key.enabled' : 'key.updated', after, now);
      if (input.expiresAt !== undefined) await this.outbox.expiringAtOnce(r, after, now);
      return after;
    });
    this.bus.keyChanged(key.id, key.workspace_id);
    if (madeFor !== undefined) this.bus.identityChanged(key.workspace_id, madeFor);
    return this.written(after);
  }

  async roll(key: KeysTable, app: AppsTable, actor: Actor, gracePeriodMs: number, environment = key.environment, claim?: IdempotencyClaim): Promise<Created> {
    if (key.status === 'revoked') throw conflict('A revoked key cannot be rolled');
    const now = this.clock.now();
    const { plaintext, start } = generateKey(app.key_prefix, environment);
    const hash = sha256Hex(plaintext);
    const rolled = await this.store.transaction(async (r) => {
      const rolled = await r.keys.rollIfLive(key.id, { hash, key_id: key.id, created_at: now, expires_at: null, secret_enc: this.sealFor(key, plaintext) }, { start, environment, updated_at: now }, now + gracePeriodMs);
      if (!rolled) throw conflict('A revoked key cannot be rolled');
      await r.changes.record('key', key.id, key.workspace_id, now);
      await r.changes.record('value', hash, key.workspace_id, now);
      await r.audit.record(actor, { workspaceId: key.workspace_id, action: 'key.roll', targetType: 'key', targetId: key.id, meta: { gracePeriodMs, ...(environment !== key.environment ? { environment } : {}) } }, now);
      await this.outbox.key(r, 'key.rolled', rolled, now);
      return rolled;
    }, { idempotency: made(claim, key.id) });
    this.bus.keyChanged(key.id, key.workspace_id);
    this.bus.valueAdded(hash);
    return { value: plaintext, view: this.written(rolled) };
  }

  /**
   * Revoked once, whatever happens: a key found revoked already (by an earlier request, perhaps
   * one whose answer was lost) is answered as it is, and every node is told again; its audit entry
   * and key.revoked event were written by the revoke that did it, and are not written twice.
   */
  async revoke(key: KeysTable, actor: Actor): Promise<KeyView> {
    const now = this.clock.now();
    const stored = await this.store.transaction(async (r) => {
      const revoked = await r.keys.revokeIfLive(key.id, now);
      await r.changes.record('key', key.id, key.workspace_id, now);
      if (!revoked) return (await r.keys.find(key.id)) ?? key;
      await r.audit.record(actor, { workspaceId: key.workspace_id, action: 'key.revoke', targetType: 'key', targetId: key.id }, now);
      await this.outbox.key(r, 'key.revoked', revoked, now);
      return revoked;
    });
    this.bus.keyChanged(key.id, key.workspace_id);
    return this.written(stored);
  }

  /** Integration secrets must stay usable for HMAC: sealed, never stored in clear. */
  private sealFor(key: Pick<KeysTable, 'id' | 'kind'>, secret: string): string | null {
    return key.kind === 'integration' ? this.box.seal(secret, sealContext.keySecret(key.id)) : null;
  }
}
