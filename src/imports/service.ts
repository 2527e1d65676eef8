// Key import: keys issued elsewhere (a hand-rolled table, another key service, another Keyward) brought
// into an app that accepts them, by plaintext or by SHA-256, with the usual key fields. A call is
// all or nothing: one invalid entry and nothing is written. A value this app already has is left as it
// is (a repeat creates nothing); a value held anywhere else is refused like any other invalid entry.
import type { Static } from '@sinclair/typebox';
import { AppError, type FieldError } from '../errors.js';
import { sha256Hex } from '../lib/hash.js';
import { newId } from '../lib/random.js';
import type { Clock } from '../lib/clock.js';
import type { InvalidationBus } from '../shared/bus.js';
import type { WebhookOutbox } from '../webhooks/outbox.js';
import type { Store } from '../store/db.js';
import type { Actor } from '../store/repos/index.js';
import type { AppsTable, KeyHashesTable, KeysTable } from '../store/schema.js';
import { appDefaults } from '../apps/model.js';
import { parseKey } from '../lib/key-format.js';
import { parseIpEntry } from '../lib/ip.js';
import type { ImportKeyEntry, ImportKeysAnswer } from './schemas.js';
import { normalizeLimits, repeatedName } from '../ratelimit/schemas.js';

type Entry = Static<typeof ImportKeyEntry>;
type Answer = Static<typeof ImportKeysAnswer>;

const MAX_META_BYTES = 16 * 1024;
/** What every entry that collides with a value held elsewhere is told: nothing about where. */
export const REFUSED = 'cannot be imported';
/** A value an Authorization header would carry as a JWT (three base64url parts) could not be told from one. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** A SHA-256 given as 64 hex digits or as 32 bytes of (canonical) base64 or base64url: lowercase hex, or null. */
export function sha256FromText(text: string): string | null {
  if (/^[0-9a-fA-F]{64}$/.test(text)) return text.toLowerCase();
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) return null;
  const bare = text.replace(/=$/, '').replace(/-/g, '+').replace(/_/g, '/');
  const bytes = Buffer.from(bare, 'base64');
  // Canonical only: the last character may not carry bits that fall outside the 32 bytes.
  if (bytes.length !== 32 || bytes.toString('base64').replace(/=$/, '') !== bare) return null;
  return bytes.toString('hex');
}

/** Where a node keeps the imported values verify may look up (src/verify/imported.ts). */
export interface ImportedIndex {
  add(appId: string, workspaceId: string, hashes: readonly string[]): void;
}

interface Prepared {
  index: number;
  hash: string;
  row: KeysTable;
}

export class ImportService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly bus: InvalidationBus,
    private readonly outbox: WebhookOutbox,
    private readonly index: ImportedIndex,
  ) {}

  async import(app: AppsTable, actor: Actor, entries: readonly Entry[]): Promise<Answer> {
    if (app.import_keys !== 1) throw new AppError('IMPORT_NOT_ENABLED', 'This app does not accept imported keys: set "importKeys": true on it first (PATCH /v1/apps/{appId})');
    const now = this.clock.now();
    const errors: FieldError[] = [];
    const prepared = entries.map((entry, i) => this.prepare(app, actor, entry, i, now, errors));
    if (errors.length > 0) throw invalidEntries(errors, entries.length);
    const rows = prepared.filter((p): p is Prepared => p !== null);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.write(app, actor, rows, now);
      } catch (err) {
        // Two imports of one value racing on PostgreSQL: the second sees the first's row when run again.
        if (attempt >= 2 || !this.store.isUniqueViolation(err)) throw err;
      }
    }
  }

  private async write(app: AppsTable, actor: Actor, entries: readonly Prepared[], now: number): Promise<Answer> {
    const data: Answer['data'] = [];
    const created: Prepared[] = [];
    const madeFor: string[] = [];
    await this.store.transaction(async (r) => {
      const held = await r.keys.holders([...new Set(entries.map((p) => p.hash))]);
      const refused: FieldError[] = [];
      const first = new Map<string, Prepared>();
      for (const p of entries) {
        const holder = held.get(p.hash);
        if (holder !== undefined) {
          if ('keyId' in holder && holder.appId === app.id) data.push({ index: p.index, id: holder.keyId, status: 'existing' });
          else refused.push({ path: `body/keys/${p.index}`, message: REFUSED });
          continue;
        }
        const earlier = first.get(p.hash);
        if (earlier !== undefined) {
          data.push({ index: p.index, id: earlier.row.id, status: 'existing' });
          continue;
        }
        first.set(p.hash, p);
        created.push(p);
        data.push({ index: p.index, id: p.row.id, status: 'created' });
      }
      if (refused.length > 0) throw invalidEntries(refused, entries.length);
      if (created.length === 0) return;
      const keys = created.map((p) => p.row);
      const values: KeyHashesTable[] = created.map((p) => ({ hash: p.hash, key_id: p.row.id, created_at: now, expires_at: null, secret_enc: null }));
      await r.keys.insertMany(keys, values);
      // Every new owner gets its identity, as a key created one by one does.
      for (const owner of new Set(keys.map((k) => k.owner_id).filter((o): o is string => o !== null))) {
        if (await r.identities.ensure(app.workspace_id, owner, now, r.changes)) madeFor.push(owner);
      }
      // A node that had a value cached as unknown forgets that; every node reads the app's imported values again.
      await r.changes.recordMany('value', values.map((v) => v.hash), app.workspace_id, now);
      await r.changes.record('imports', app.id, app.workspace_id, now);
      await r.audit.recordMany(actor, keys.map((k) => ({ workspaceId: app.workspace_id, action: 'key.import', targetType: 'key', targetId: k.id, meta: { appId: app.id, name: k.name } })), now);
      await this.outbox.keys(r, 'key.created', app.workspace_id, app.id, keys, now);
      for (const key of keys) await this.outbox.expiringAtOnce(r, key, now);
    });
    if (created.length > 0) {
      this.index.add(app.id, app.workspace_id, created.map((p) => p.hash));
      for (const p of created) this.bus.valueAdded(p.hash);
      for (const owner of madeFor) this.bus.identityChanged(app.workspace_id, owner);
    }
    data.sort((a, b) => a.index - b.index);
    return { created: created.length, existing: data.length - created.length, data };
  }

  /** The key row an entry makes, or null with its faults added to `errors`. */
  private prepare(app: AppsTable, actor: Actor, e: Entry, index: number, now: number, errors: FieldError[]): Prepared | null {
    const at = `body/keys/${index}`;
    const fail = (field: string | null, message: string): null => {
      errors.push({ path: field === null ? at : `${at}/${field}`, message });
      return null;
    };
    const before = errors.length;
    const defaults = appDefaults(app);
    let hash: string | null = null;
    let start = '';
    let environment = e.environment ?? defaults.environment;
    if ((e.key === undefined) === (e.hash === undefined)) return fail(null, 'give the key as exactly one of `key` (plaintext) or `hash` (its SHA-256)');
    if (e.key !== undefined) {
      if (e.start !== undefined) fail('start', 'is only for hashed keys: a plaintext key shows its first 4 characters');
      if (JWT_SHAPE.test(e.key)) fail('key', 'has the shape of a JWT (three dot-separated base64url parts), which an Authorization header would carry as one');
      const parsed = parseKey(e.key);
      if (parsed !== null) {
        // A value in Keyward's format names its tenant by its prefix (verify, secret scanners).
        if (parsed.prefix !== app.key_prefix) fail('key', `is in Keyward's key format with a prefix other than this app's ("${app.key_prefix}_")`);
        else if (e.environment !== undefined && e.environment !== parsed.environment) fail('environment', `must be "${parsed.environment}": the key's value says so`);
        environment = parsed.environment;
        start = e.key.slice(0, parsed.prefix.length + parsed.environment.length + 2 + 4);
      } else {
        start = e.key.slice(0, 4);
      }
      hash = sha256Hex(e.key);
    } else {
      hash = sha256FromText(e.hash!);
      if (hash === null) fail('hash', 'is not a SHA-256: give 64 hexadecimal digits, or 32 bytes in base64 or base64url');
      start = e.start ?? '';
    }
    e.ipAllowlist?.forEach((entry, i) => {
      if (!parseIpEntry(entry.trim())) fail(`ipAllowlist/${i}`, 'is not an IPv4/IPv6 address or CIDR');
    });
    const expiresAt = e.expiresAt === undefined || e.expiresAt === null ? null : Date.parse(e.expiresAt);
    if (expiresAt !== null && !(expiresAt > now)) fail('expiresAt', 'must be a date-time in the future');
    const createdAt = e.createdAt === undefined ? now : Date.parse(e.createdAt);
    if (!(createdAt <= now)) fail('createdAt', 'must be a date-time that is not in the future');
    if (e.meta !== undefined && Buffer.byteLength(JSON.stringify(e.meta)) > MAX_META_BYTES) fail('meta', `must be at most ${MAX_META_BYTES} bytes of JSON`);
    const repeated = e.ratelimits === undefined ? -1 : repeatedName(e.ratelimits);
    if (repeated >= 0) fail(`ratelimits/${repeated}/name`, 'is used by another limit of this key');
    if (errors.length > before || hash === null) return null;
    const ratelimit = e.ratelimit !== undefined ? e.ratelimit : defaults.ratelimit;
    const ownerRatelimit = e.ownerRatelimit !== undefined ? e.ownerRatelimit : defaults.ownerRatelimit;
    const remaining = e.remaining !== undefined ? e.remaining : e.refill ? e.refill.amount : null;
    const row: KeysTable = {
      id: newId('key'), app_id: app.id, workspace_id: app.workspace_id, kind: 'bearer', start,
      name: e.name ?? 'imported key', owner_id: e.ownerId ?? null, environment,
      permissions: JSON.stringify(e.permissions ?? []), resources: JSON.stringify(e.resources ?? []),
      ip_allowlist: JSON.stringify((e.ipAllowlist ?? []).map((s) => s.trim())), expires_at: expiresAt,
      ratelimit: ratelimit ? JSON.stringify(ratelimit) : null, owner_ratelimit: ownerRatelimit ? JSON.stringify(ownerRatelimit) : null,
      remaining, refill_amount: e.refill?.amount ?? null, refill_interval: e.refill?.interval ?? null,
      last_refill_at: e.refill ? now : null, meta: JSON.stringify(e.meta ?? {}), status: e.status ?? 'active',
      created_at: createdAt, updated_at: now, revoked_at: null, last_used_at: null, created_by: actor.id,
      expiry_notice: null, usage_low: null, remaining_base: remaining, imported: 1, credit_epoch: 0,
      ratelimits: JSON.stringify(normalizeLimits(e.ratelimits ?? [])),
    };
    return { index, hash, row };
  }
}

function invalidEntries(errors: FieldError[], total: number): AppError {
  const entries = new Set(errors.map((e) => e.path.split('/').slice(0, 3).join('/'))).size;
  return new AppError('VALIDATION_FAILED', `${entries} of ${total} entries cannot be imported as given; nothing was imported`, { errors });
}
