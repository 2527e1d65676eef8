// The values imported into apps that accept them (importKeys), by SHA-256, in memory: verify asks the
// store about a value outside Keyward's format only when it is one of these, in the call's scope, so
// garbage sent to any app is still refused as MALFORMED without a query.
import type { Logger } from 'pino';
import type { VerifyScope } from './scope.js';

/** An imported value of an import-enabled app. */
export interface ImportedValue {
  hash: string;
  appId: string;
  workspaceId: string;
}

/** Where the index reads from: every imported value of import-enabled apps, or those of one app. */
export type ImportedLoader = (appId?: string) => Promise<ImportedValue[]>;

interface Owner {
  appId: string;
  workspaceId: string;
}

/** How soon a refresh that failed (the store away) is tried again. */
const RETRY_MS = 1000;

export class ImportedKeys {
  private readonly byHash = new Map<string, Owner>();
  /** One owner object per app, shared by all its values. */
  private readonly owners = new Map<string, Owner>();
  /** Bumped by every local add: a refresh that started before one merges instead of replacing. */
  private readonly generation = new Map<string, number>();
  /** Apps whose refresh failed and is tried again. */
  private readonly retry = new Set<string>();
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly load: ImportedLoader, private readonly logger: Logger) {}

  get size(): number {
    return this.byHash.size;
  }

  /** Whether this value was imported into an import-enabled app inside the scope of the call. */
  has(hash: string, scope: VerifyScope): boolean {
    const owner = this.byHash.get(hash);
    return owner !== undefined && (scope.appId === undefined || owner.appId === scope.appId) && (scope.workspaceId === undefined || owner.workspaceId === scope.workspaceId);
  }

  /** At start, once the change feed has its place: later imports reach this node through the feed. */
  async loadAll(): Promise<void> {
    for (const v of await this.load()) this.put(v.hash, v.appId, v.workspaceId);
  }

  /** Values this node just imported (committed): known here before the import is answered. */
  add(appId: string, workspaceId: string, hashes: readonly string[]): void {
    this.generation.set(appId, (this.generation.get(appId) ?? 0) + 1);
    for (const hash of hashes) this.put(hash, appId, workspaceId);
  }

  /**
   * Reads an app's imported values again (an import on any node, importKeys switched, the app
   * deleted): empty when the app no longer accepts them. Resolves once the index holds the result.
   */
  async refreshApp(appId: string): Promise<void> {
    const started = this.generation.get(appId) ?? 0;
    let values: ImportedValue[];
    try {
      values = await this.load(appId);
    } catch (err) {
      this.retryLater(appId, err);
      return;
    }
    this.retry.delete(appId);
    // A local import that committed while this read ran may be missing from it: keep what is held.
    if ((this.generation.get(appId) ?? 0) === started) {
      for (const [hash, owner] of this.byHash) if (owner.appId === appId) this.byHash.delete(hash);
    }
    for (const v of values) this.put(v.hash, v.appId, v.workspaceId);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
  }

  private put(hash: string, appId: string, workspaceId: string): void {
    let owner = this.owners.get(appId);
    if (owner === undefined) this.owners.set(appId, (owner = Object.freeze({ appId, workspaceId })));
    this.byHash.set(hash, owner);
  }

  private retryLater(appId: string, err: unknown): void {
    if (this.closed) return;
    if (this.retry.size === 0) this.logger.warn({ err: (err as Error).message, appId }, 'imported keys could not be read; trying again');
    this.retry.add(appId);
    if (this.retryTimer !== undefined) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      for (const id of [...this.retry]) void this.refreshApp(id);
    }, RETRY_MS);
    this.retryTimer.unref();
  }
}
