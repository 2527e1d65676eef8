// A workspace's rate-limit overrides, held in memory on every node: read from the store the first
// time a verify (or the standalone limiter) of that workspace needs them, dropped when the change
// feed (or Redis) says they changed, so an override applies on every node within a second.
import type { RatelimitOverridesTable } from '../store/schema.js';
import type { LimitSpec } from './decide.js';

type Kind = RatelimitOverridesTable['kind'];

/** The overrides of one workspace, by kind and name: exact identifiers, then prefixes longest first. */
export class WorkspaceOverrides {
  private readonly exact = new Map<string, Map<string, LimitSpec>>();
  private readonly prefixes = new Map<string, { prefix: string; spec: LimitSpec }[]>();

  constructor(rows: readonly Pick<RatelimitOverridesTable, 'kind' | 'name' | 'identifier' | 'limit' | 'duration_ms'>[]) {
    for (const r of rows) {
      const at = `${r.kind}\u0000${r.name}`;
      const spec = { limit: Number(r.limit), durationMs: Number(r.duration_ms) };
      if (r.identifier.endsWith('*')) {
        let list = this.prefixes.get(at);
        if (list === undefined) this.prefixes.set(at, (list = []));
        list.push({ prefix: r.identifier.slice(0, -1), spec });
      } else {
        let map = this.exact.get(at);
        if (map === undefined) this.exact.set(at, (map = new Map()));
        map.set(r.identifier, spec);
      }
    }
    for (const list of this.prefixes.values()) list.sort((a, b) => b.prefix.length - a.prefix.length);
  }

  get empty(): boolean {
    return this.exact.size === 0 && this.prefixes.size === 0;
  }

  /** The most specific override of `name` for `identifier`: an exact one, else the longest matching prefix. */
  resolve(kind: Kind, name: string, identifier: string): LimitSpec | undefined {
    if (this.exact.size === 0 && this.prefixes.size === 0) return undefined;
    const at = `${kind}\u0000${name}`;
    const hit = this.exact.get(at)?.get(identifier);
    if (hit !== undefined) return hit;
    const list = this.prefixes.get(at);
    if (list === undefined) return undefined;
    for (const p of list) if (identifier.startsWith(p.prefix)) return p.spec;
    return undefined;
  }
}

const NONE = new WorkspaceOverrides([]);

/**
 * Degraded mode: a workspace whose overrides cannot be read (the store is away) is decided with the
 * overrides last held, if any, else with none (the limits as set), so verify keeps answering;
 * nothing read in failure is kept, the next verify asks again (the store's circuit keeps that cheap).
 */
export class OverrideCache {
  private readonly held = new Map<string, WorkspaceOverrides>();
  /** What a workspace held before its last change: answers while the store cannot be read. */
  private readonly stale = new Map<string, WorkspaceOverrides>();
  private readonly loading = new Map<string, Promise<WorkspaceOverrides>>();
  /** Bumped by every change of a workspace: a load that began before one does not fill the cache. */
  private readonly epochs = new Map<string, number>();
  private epoch = 0;

  constructor(private readonly load: (workspaceId: string) => Promise<RatelimitOverridesTable[]>, private readonly maxWorkspaces = 100_000) {}

  /** The workspace's overrides: at once when held, else after one read (shared by every caller meanwhile). */
  get(workspaceId: string): WorkspaceOverrides | Promise<WorkspaceOverrides> {
    const held = this.held.get(workspaceId);
    if (held !== undefined) return held;
    const pending = this.loading.get(workspaceId);
    if (pending !== undefined) return pending;
    const epoch = this.epochOf(workspaceId);
    const all = this.epoch;
    const loaded = this.load(workspaceId).then((rows) => {
      const o = rows.length === 0 ? NONE : new WorkspaceOverrides(rows);
      if (epoch === this.epochOf(workspaceId) && all === this.epoch) {
        if (this.held.size >= this.maxWorkspaces) this.held.clear();
        this.held.set(workspaceId, o);
        this.stale.delete(workspaceId);
      }
      return o;
    }, () => this.stale.get(workspaceId) ?? NONE).finally(() => this.loading.delete(workspaceId));
    this.loading.set(workspaceId, loaded);
    return loaded;
  }

  private epochOf(workspaceId: string): number {
    return this.epochs.get(workspaceId) ?? 0;
  }

  invalidate(workspaceId: string): void {
    this.epochs.set(workspaceId, this.epochOf(workspaceId) + 1);
    const held = this.held.get(workspaceId);
    if (held !== undefined) {
      if (this.stale.size >= this.maxWorkspaces) this.stale.clear();
      this.stale.set(workspaceId, held);
    }
    this.held.delete(workspaceId);
    this.loading.delete(workspaceId);
  }

  clear(): void {
    this.epoch++;
    for (const [workspaceId, held] of this.held) this.stale.set(workspaceId, held);
    this.held.clear();
    this.loading.clear();
  }
}
