// Every page of the console and the path it answers, in one table.
import type { ReactNode } from 'react';
import { Apps } from './features/apps/Apps';
import { AppSettings } from './features/apps/AppSettings';
import { RootKeys } from './features/workspace/RootKeys';
import { WebhookDetail, Webhooks } from './features/workspace/Webhooks';
import { AppKeys } from './features/keys/AppKeys';
import { KeyDetail } from './features/keys/KeyDetail';
import { Audit, Members, Vault } from './features/workspace/Workspace';
import { Playground } from './features/developers/Playground';
import { Reference } from './features/developers/Reference';
import { Identities } from './features/identities/Identities';
import { IdentityDetail } from './features/identities/IdentityDetail';
import { Overrides } from './features/identities/Overrides';

export interface PageRoute {
  path: string;
  render(params: Record<string, string | undefined>): ReactNode;
}

/** Signed-in pages, shown inside the layout. Setup, login and accepting an invitation are outside it. */
export const ROUTES: readonly PageRoute[] = [
  { path: '/apps/:appId/vault', render: (p) => <Vault appId={p.appId!} /> },
  { path: '/apps/:appId/settings', render: (p) => <AppSettings appId={p.appId!} /> },
  { path: '/apps/:appId/overrides', render: (p) => <Overrides appId={p.appId!} /> },
  { path: '/apps/:appId', render: (p) => <AppKeys appId={p.appId!} /> },
  { path: '/apps', render: () => <Apps /> },
  { path: '/keys/:keyId', render: (p) => <KeyDetail keyId={p.keyId!} /> },
  { path: '/identities/:identityId', render: (p) => <IdentityDetail identityId={p.identityId!} /> },
  { path: '/identities', render: () => <Identities /> },
  { path: '/audit', render: () => <Audit /> },
  { path: '/members', render: () => <Members /> },
  { path: '/root-keys', render: () => <RootKeys /> },
  { path: '/webhooks/:webhookId', render: (p) => <WebhookDetail webhookId={p.webhookId!} /> },
  { path: '/webhooks', render: () => <Webhooks /> },
  { path: '/playground', render: () => <Playground /> },
  { path: '/reference', render: () => <Reference /> },
];
