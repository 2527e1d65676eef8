// The API's types, derived from the TypeBox schemas that validate requests and build /openapi.json.
// The console and the SDK import these (types only), so neither can drift from the server.
import type { Static } from '@sinclair/typebox';
import type { AppDefaultsSchema, AppView } from '../apps/schemas.js';
import type { AuditView } from '../audit/schemas.js';
import type { SessionView } from '../auth/schemas.js';
import type { Problem as ProblemSchema } from '../errors.js';
import type { CreateKeyBody, CreatedKey as CreatedKeySchema, KeyView, ListKeysQuery, PatchKeyBody } from '../keys/schemas.js';
import type { VerifyAnswer, VerifyBody } from '../verify/schemas.js';
import type { InvitationView, MemberView, RootKeyView, WorkspaceView } from '../workspaces/schemas.js';
import type { UsageView } from '../usage/schemas.js';
import type { SecretInfoView } from '../vault/schemas.js';

export type { VerifyCode } from '../verify/steps.js';
export type Problem = ProblemSchema;
export type App = Static<typeof AppView>;
export type AppDefaults = Static<typeof AppDefaultsSchema>;
export type Key = Static<typeof KeyView>;
export type CreatedKey = Static<typeof CreatedKeySchema>;
export type CreateKeyInput = Static<typeof CreateKeyBody>;
export type UpdateKeyInput = Static<typeof PatchKeyBody>;
export type ListKeysParams = Static<typeof ListKeysQuery>;
export type VerifyRequest = Static<typeof VerifyBody>;
export type Verdict = Static<typeof VerifyAnswer>;
export type Session = Static<typeof SessionView>;
export type Workspace = Static<typeof WorkspaceView>;
export type Member = Static<typeof MemberView>;
export type RootKey = Static<typeof RootKeyView>;
export type AuditEntry = Static<typeof AuditView>;
export type Invitation = Static<typeof InvitationView>;
export type Usage = Static<typeof UsageView>;
export type SecretInfo = Static<typeof SecretInfoView>;
