// Apps: create, change, delete (which revokes every key of the app). Each change and its audit
// entry commit together.
import { AppError, invalid, notFound } from '../errors.js';
import { newId } from '../lib/random.js';
import type { Clock } from '../lib/clock.js';
import type { InvalidationBus } from '../shared/bus.js';
import type { WebhookOutbox } from '../webhooks/outbox.js';
import { made, type IdempotencyClaim, type Store } from '../store/db.js';
import type { Actor } from '../store/repos/index.js';
import type { AppsTable } from '../store/schema.js';
import { ROOT_KEY_PREFIX } from '../lib/key-format.js';
import { checkGatewayRules, type GatewayRule } from './gateway-rules.js';
import { DEFAULTS, appDefaults, appView, prefixFromName, type AppDefaults } from './model.js';
import { diff } from '../lib/diff.js';

export interface AppInput {
  name?: string | undefined;
  keyPrefix?: string | undefined;
  defaults?: Partial<AppDefaults> | undefined;
  gatewayRules?: GatewayRule[] | null | undefined;
  importKeys?: boolean | undefined;
}

const PREFIX_MAX = 16;
const MAX_PREFIX_ATTEMPTS = 50;

const prefixTaken = () => new AppError('PREFIX_TAKEN', 'Another app already uses this key prefix; prefixes are unique across the instance so that a key names one tenant');

function checkPrefix(prefix: string | undefined): void {
  if (prefix === ROOT_KEY_PREFIX) throw invalid('body/keyPrefix', `"${ROOT_KEY_PREFIX}" is reserved for root keys`);
}

export class AppService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly bus: InvalidationBus,
    private readonly outbox: WebhookOutbox,
    /** Resolves once this node's set of the app's imported values follows its importKeys setting. */
    private readonly importsChanged: (appId: string) => Promise<void> = async () => {},
  ) {}

  list(workspaceId: string): Promise<AppsTable[]> {
    return this.store.repos.apps.listByWorkspace(workspaceId);
  }

  async get(appId: string): Promise<AppsTable> {
    const app = await this.store.repos.apps.find(appId);
    if (!app) throw notFound('App');
    return app;
  }

  /**
   * A prefix asked for must be free (409 PREFIX_TAKEN); one derived from the name takes the first
   * free variant (acme, acme2, acme3 …), so creating an app never fails on another tenant's choice.
   */
  async create(workspaceId: string, actor: Actor, input: AppInput & { name: string }, claim?: IdempotencyClaim): Promise<AppsTable> {
    checkPrefix(input.keyPrefix);
    checkGatewayRules(input.gatewayRules);
    const now = this.clock.now();
    const base = input.keyPrefix ?? prefixFromName(input.name);
    for (let attempt = 1; ; attempt++) {
      const prefix = attempt === 1 ? base : `${base.slice(0, PREFIX_MAX - String(attempt).length)}${attempt}`;
      if (prefix === ROOT_KEY_PREFIX) continue;
      const row: AppsTable = {
        id: newId('app'), workspace_id: workspaceId, name: input.name, key_prefix: prefix,
        defaults: JSON.stringify({ ...DEFAULTS, ...input.defaults }), created_at: now, updated_at: now, deleted_at: null,
        gateway_rules: input.gatewayRules?.length ? JSON.stringify(input.gatewayRules) : null,
        import_keys: input.importKeys ? 1 : 0,
      };
      try {
        await this.store.transaction(async (r) => {
          await r.apps.insert(row);
          await r.audit.record(actor, { workspaceId, action: 'app.create', targetType: 'app', targetId: row.id, meta: { name: row.name } }, now);
        }, { idempotency: made(claim, row.id) });
        return row;
      } catch (err) {
        if (!this.store.isUniqueViolation(err)) throw err;
        if (input.keyPrefix !== undefined || attempt >= MAX_PREFIX_ATTEMPTS) throw prefixTaken();
      }
    }
  }

  async update(app: AppsTable, actor: Actor, input: AppInput): Promise<AppsTable> {
    checkPrefix(input.keyPrefix);
    checkGatewayRules(input.gatewayRules);
    const now = this.clock.now();
    const next: AppsTable = {
      ...app,
      name: input.name ?? app.name,
      key_prefix: input.keyPrefix ?? app.key_prefix,
      defaults: JSON.stringify({ ...appDefaults(app), ...input.defaults }),
      updated_at: now,
      gateway_rules: input.gatewayRules === undefined ? app.gateway_rules : input.gatewayRules?.length ? JSON.stringify(input.gatewayRules) : null,
      import_keys: input.importKeys === undefined ? app.import_keys : input.importKeys ? 1 : 0,
    };
    const rulesChanged = next.gateway_rules !== app.gateway_rules;
    const importChanged = next.import_keys !== app.import_keys;
    try {
      await this.store.transaction(async (r) => {
        await r.apps.update(app.id, { name: next.name, key_prefix: next.key_prefix, defaults: next.defaults, updated_at: now, gateway_rules: next.gateway_rules, import_keys: next.import_keys });
        // Rules and importKeys travel with every cached key of the app: each node drops those, like
        // a key change (and reads the app's imported values again).
        if (rulesChanged || importChanged) await r.changes.record('app', app.id, app.workspace_id, now);
        await r.audit.record(actor, { workspaceId: app.workspace_id, action: 'app.update', targetType: 'app', targetId: app.id, meta: { changes: Object.keys(input), ...diff(appView(app), appView(next)) } }, now);
      });
    } catch (err) {
      if (this.store.isUniqueViolation(err)) throw prefixTaken();
      throw err;
    }
    if (rulesChanged || importChanged) this.bus.appChanged(app.id, app.workspace_id);
    if (importChanged) await this.importsChanged(app.id);
    return next;
  }

  /**
   * Deletes the app and revokes its keys in a few statements whatever their number, with one change
   * row that has every node drop every cached key of the app. An app found deleted already (by an
   * earlier request whose answer was lost) has every node told again, and nothing else written.
   */
  async delete(app: AppsTable, actor: Actor): Promise<void> {
    const now = this.clock.now();
    await this.store.transaction(async (r) => {
      // The app's row first: a key being created in it waits, then finds the app gone.
      const deleted = await r.apps.deleteIfLive(app.id, now);
      await r.changes.record('app', app.id, app.workspace_id, now);
      if (!deleted) return;
      // Each key's key.revoked carries that key as revoked: read back only when someone listens.
      const hooks = await this.outbox.takers(r, app.workspace_id, app.id, 'key.revoked');
      let revokedKeys: number;
      if (hooks.length === 0) revokedKeys = await r.keys.revokeAllOfApp(app.id, now);
      else {
        const revoked = await r.keys.revokeAllOfAppReturning(app.id, now);
        await this.outbox.keys(r, 'key.revoked', app.workspace_id, app.id, revoked, now, hooks);
        revokedKeys = revoked.length;
      }
      await r.audit.record(actor, { workspaceId: app.workspace_id, action: 'app.delete', targetType: 'app', targetId: app.id, meta: { revokedKeys } }, now);
    });
    this.bus.appChanged(app.id, app.workspace_id);
  }
}
