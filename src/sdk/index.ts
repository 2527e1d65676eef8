// Public entry of the keyward package: the typed client, the verify guard with its Express
// middleware, and the webhook signature check. Nothing here needs a framework's types; the Fastify
// plugin is `@keyward/sdk/fastify`.
export { KeywardClient, KeywardError } from './client.js';
export type { App, ClientOptions, CreateKeyInput, Identity, ImportKeyInput, ImportKeysResult, Key, LimitRequest, LimitResult, ListKeysInput, NamedLimit, NewKey, Page, RatelimitOverride, SecretInfo, UpdateKeyInput, UsageBucket, VerifyInput, VerifyResult, Workspace } from './client.js';
export { verifySignature as verifyWebhookSignature } from '../webhooks/receiver.js';
export type { CreatedWebhook, CreateWebhookInput, UpdateWebhookInput, Webhook, WebhookAttempt, WebhookDelivery, WebhookDeliveryDetail, WebhookEventType, WebhookReplayInput, WebhookReplayResult } from '../api/types.js';
export { KeyGuard, keywardExpress, statusFor } from './middleware.js';
export type { ExpressGuardOptions, ExpressLikeRequest, ExpressLikeResponse, GuardOptions, Verdict } from './middleware.js';
