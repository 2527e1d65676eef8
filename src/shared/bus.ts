// The invalidation bus: tells every node which keys changed, so cached copies are dropped at once.
import { EventEmitter } from 'node:events';

export interface KeyChange {
  keyId: string;
  workspaceId: string;
}

/**
 * A credential's rights changed: a session ended, a member was removed or given another role in
 * `workspaceId`, a root key was revoked. `target` is the session, user or root key id.
 */
export interface AccessChange {
  kind: 'session' | 'member' | 'root_key';
  target: string;
  workspaceId: string;
}

/** Every key of an app changed at once: the app was deleted, or its gateway rules changed. */
export interface AppChange {
  appId: string;
  workspaceId: string;
}

/** What change listeners hear. */
export type ChangeEvent = KeyChange | AppChange;

/** What the bus invalidates: the verify cache implements it. */
export interface Invalidatable {
  invalidateKey(keyId: string): void;
  /** Every cached key of an app (its gateway rules or importKeys changed). */
  invalidateApp(appId: string): void;
  /** Keys were imported into an app (on another node): its imported values are read again. */
  importsChanged?(appId: string): void;
  invalidateHash(hash: string): void;
  /** The identity of `externalId` changed (created, limits or meta, deleted): its keys are read again. */
  invalidateIdentity?(workspaceId: string, externalId: string): void;
  /** A workspace's rate-limit overrides changed: they are read again. */
  overridesChanged?(workspaceId: string): void;
  /** A credential's rights changed: cached root keys are dropped, open change streams end or recheck. */
  invalidateAccess?(change: AccessChange): void;
  clear(): void;
}

export interface InvalidationBus {
  /** A key changed (update, disable, roll, revoke): every node forgets its cached copies. */
  keyChanged(keyId: string, workspaceId: string): void;
  /** A new value exists (create, roll): a node that cached it as unknown forgets that. */
  valueAdded(hash: string): void;
  /** Every key of an app changed (deleted, gateway rules): every node forgets that app's cached keys. */
  appChanged(appId: string, workspaceId: string): void;
  /** An identity changed: every node forgets the cached keys of that owner in the workspace. */
  identityChanged(workspaceId: string, externalId: string): void;
  /** A workspace's rate-limit overrides changed: every node reads them again. */
  overridesChanged(workspaceId: string): void;
  /** Every key and app change seen by this node, its own and other nodes'; returns the unsubscribe. */
  onKeyChange(listener: (change: ChangeEvent) => void): () => void;
  /** A credential's rights changed (written to the change feed in the same transaction): every node hears it. */
  accessChanged(change: AccessChange): void;
  /** Every access change seen by this node, from itself, Redis or the change feed (maybe more than once). */
  onAccessChange(listener: (change: AccessChange) => void): () => void;
  close(): Promise<void>;
}

/** Listeners of key changes, shared by the bus implementations. */
export class KeyChangeListeners {
  private readonly events = new EventEmitter();

  constructor() {
    this.events.setMaxListeners(0);
  }

  emit(change: ChangeEvent): void {
    this.events.emit('change', change);
  }

  add(listener: (change: ChangeEvent) => void): () => void {
    this.events.on('change', listener);
    return () => this.events.off('change', listener);
  }

  emitAccess(change: AccessChange): void {
    this.events.emit('access', change);
  }

  addAccess(listener: (change: AccessChange) => void): () => void {
    this.events.on('access', listener);
    return () => this.events.off('access', listener);
  }
}

/** One node, no Redis: invalidation is local (other processes on the store follow the change feed). */
export function localBus(cache: Invalidatable, listeners: KeyChangeListeners): InvalidationBus {
  return {
    keyChanged: (keyId, workspaceId) => {
      cache.invalidateKey(keyId);
      listeners.emit({ keyId, workspaceId });
    },
    valueAdded: (hash) => cache.invalidateHash(hash),
    appChanged: (appId, workspaceId) => {
      cache.invalidateApp(appId);
      listeners.emit({ appId, workspaceId });
    },
    identityChanged: (workspaceId, externalId) => cache.invalidateIdentity?.(workspaceId, externalId),
    overridesChanged: (workspaceId) => cache.overridesChanged?.(workspaceId),
    onKeyChange: (listener) => listeners.add(listener),
    accessChanged: (change) => cache.invalidateAccess?.(change),
    onAccessChange: (listener) => listeners.addAccess(listener),
    close: async () => {},
  };
}
