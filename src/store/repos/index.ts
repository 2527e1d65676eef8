// Every repository over one connection or transaction: what services use instead of SQL.
import type { Kysely } from 'kysely';
import type { Database } from '../schema.js';
import { AppRepo } from './apps.js';
import { AuditRepo } from './audit.js';
import { ChangeRepo } from './changes.js';
import { CreditRepo } from './credits.js';
import { IdempotencyRepo } from './idempotency.js';
import { IdentityRepo, OverrideRepo } from './identities.js';
import { InvitationRepo } from './invitations.js';
import { KeyRepo } from './keys.js';
import { NodeRepo } from './nodes.js';
import { RootKeyRepo } from './root-keys.js';
import { SettingsRepo } from './settings.js';
import { UsageRepo } from './usage.js';
import { UserRepo } from './users.js';
import { VaultRepo } from './vault.js';
import { WebhookRepo } from './webhooks.js';
import { WorkspaceRepo } from './workspaces.js';

export class Repos {
  readonly apps: AppRepo;
  readonly audit: AuditRepo;
  readonly changes: ChangeRepo;
  readonly credits: CreditRepo;
  readonly invitations: InvitationRepo;
  readonly idempotency: IdempotencyRepo;
  readonly identities: IdentityRepo;
  readonly overrides: OverrideRepo;
  readonly keys: KeyRepo;
  readonly nodes: NodeRepo;
  readonly rootKeys: RootKeyRepo;
  readonly settings: SettingsRepo;
  readonly usage: UsageRepo;
  readonly users: UserRepo;
  readonly vault: VaultRepo;
  readonly workspaces: WorkspaceRepo;
  readonly webhooks: WebhookRepo;
  /** Run once the transaction these repositories are bound to has committed (at once outside one). */
  private readonly committed: (() => void)[] | null;

  constructor(db: Kysely<Database>, inTransaction = false) {
    this.committed = inTransaction ? [] : null;
    this.webhooks = new WebhookRepo(db);
    this.apps = new AppRepo(db);
    this.audit = new AuditRepo(db);
    this.changes = new ChangeRepo(db);
    this.credits = new CreditRepo(db);
    this.invitations = new InvitationRepo(db);
    this.idempotency = new IdempotencyRepo(db);
    this.identities = new IdentityRepo(db);
    this.overrides = new OverrideRepo(db);
    this.keys = new KeyRepo(db);
    this.nodes = new NodeRepo(db);
    this.rootKeys = new RootKeyRepo(db);
    this.settings = new SettingsRepo(db);
    this.usage = new UsageRepo(db);
    this.users = new UserRepo(db);
    this.vault = new VaultRepo(db);
    this.workspaces = new WorkspaceRepo(db);
  }

  afterCommit(fn: () => void): void {
    if (this.committed === null) fn();
    else if (!this.committed.includes(fn)) this.committed.push(fn);
  }

  /** Called by the store once the transaction committed. */
  runCommitted(): void {
    for (const fn of this.committed?.splice(0) ?? []) fn();
  }
}

export type { Actor, AuditEntry } from './audit.js';
