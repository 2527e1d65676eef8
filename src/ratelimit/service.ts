// Rate-limit overrides of a workspace (named limits and standalone namespaces), and the standalone
// limiter: POST /v1/ratelimit for anything that is not a key.
import { notFound } from '../errors.js';
import type { Clock } from '../lib/clock.js';
import { newId } from '../lib/random.js';
import { iso } from '../lib/time.js';
import type { InvalidationBus } from '../shared/bus.js';
import type { Store } from '../store/db.js';
import type { Actor } from '../store/repos/index.js';
import type { PageOf, PageRequest } from '../store/repos/sql.js';
import type { RatelimitOverridesTable } from '../store/schema.js';
import type { BucketLimiter } from './buckets.js';
import type { WorkspaceOverrides } from './overrides.js';

type Kind = RatelimitOverridesTable['kind'];

export interface OverrideInput {
  name: string;
  identifier: string;
  limit: number;
  durationMs: number;
}

export function overrideView(row: RatelimitOverridesTable) {
  return {
    id: row.id, workspaceId: row.workspace_id, kind: row.kind, name: row.name, identifier: row.identifier,
    limit: Number(row.limit), durationMs: Number(row.duration_ms), createdAt: iso(Number(row.created_at)), updatedAt: iso(Number(row.updated_at)),
  };
}

export class OverrideService {
  constructor(private readonly store: Store, private readonly clock: Clock, private readonly bus: Pick<InvalidationBus, 'overridesChanged'>) {}

  list(workspaceId: string, kind: Kind, name: string | undefined, page: PageRequest): Promise<PageOf<RatelimitOverridesTable>> {
    return this.store.repos.overrides.list(workspaceId, kind, name, page);
  }

  /** Creates or replaces the override of (name, identifier); every node applies it within a second. */
  async set(workspaceId: string, kind: Kind, actor: Actor, input: OverrideInput): Promise<RatelimitOverridesTable> {
    const now = this.clock.now();
    const row = await this.store.transaction(async (r) => {
      const row = await r.overrides.upsert({ id: newId('override'), workspace_id: workspaceId, kind, name: input.name, identifier: input.identifier, limit: input.limit, duration_ms: input.durationMs, created_at: now, updated_at: now });
      await r.changes.record('overrides', workspaceId, workspaceId, now);
      await r.audit.record(actor, { workspaceId, action: 'ratelimit_override.set', targetType: 'ratelimit_override', targetId: row.id, meta: { kind, name: input.name, identifier: input.identifier, limit: input.limit, durationMs: input.durationMs } }, now);
      return row;
    });
    this.bus.overridesChanged(workspaceId);
    return row;
  }

  async delete(workspaceId: string, kind: Kind, actor: Actor, name: string, identifier: string): Promise<void> {
    const now = this.clock.now();
    await this.store.transaction(async (r) => {
      const row = await r.overrides.find(workspaceId, kind, name, identifier);
      if (!row) throw notFound('Override');
      await r.overrides.delete(workspaceId, kind, name, identifier);
      await r.changes.record('overrides', workspaceId, workspaceId, now);
      await r.audit.record(actor, { workspaceId, action: 'ratelimit_override.delete', targetType: 'ratelimit_override', targetId: row.id, meta: { kind, name, identifier } }, now);
    });
    this.bus.overridesChanged(workspaceId);
  }
}

export interface LimitRequest {
  namespace: string;
  identifier: string;
  limit: number;
  durationMs: number;
  cost?: number | undefined;
}

export interface LimitResult {
  success: boolean;
  limit: number;
  remaining: number;
  reset: number;
}

/** The standalone limiter: a namespace's window per identifier, overrides applied, exact across nodes. */
export class StandaloneLimiter {
  constructor(
    private readonly buckets: BucketLimiter,
    private readonly overrides: { get(workspaceId: string): WorkspaceOverrides | Promise<WorkspaceOverrides> },
    private readonly now: () => number,
    /** Every answer, for /metrics (the route writes no access line). */
    private readonly counted: (admitted: boolean) => void = () => {},
  ) {}

  async limit(workspaceId: string, req: LimitRequest): Promise<LimitResult> {
    const o = await this.overrides.get(workspaceId);
    const spec = o.resolve('namespace', req.namespace, req.identifier) ?? req;
    // Namespaces and identifiers are the workspace's own: the window's name says whose.
    const bucket = { id: `ns:${workspaceId}:${req.namespace}:${req.identifier}`, limit: spec.limit, durationMs: spec.durationMs, cost: req.cost ?? 1 };
    const r = await this.buckets.reserve([bucket], this.now(), true);
    const d = r.decisions[0]!;
    this.counted(r.allowed);
    return { success: r.allowed, limit: d.limit, remaining: d.remaining, reset: d.resetAt };
  }
}
