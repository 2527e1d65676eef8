// Public entry of the keyward package: the typed client and the verify middleware.
export { KeywardClient, KeywardError } from './client.js';
export type { App, ClientOptions, CreateKeyInput, Key, ListKeysInput, NewKey, Page, SecretInfo, UpdateKeyInput, UsageBucket, VerifyInput, VerifyResult, Workspace } from './client.js';
export { verifySignature as verifyWebhookSignature } from '../webhooks/receiver.js';
export type { CreatedWebhook, CreateWebhookInput, UpdateWebhookInput, Webhook, WebhookAttempt, WebhookDelivery, WebhookDeliveryDetail, WebhookEventType, WebhookReplayInput, WebhookReplayResult } from '../api/types.js';
export { KeyGuard, keywardExpress, keywardFastify, statusFor } from './middleware.js';
export type { ExpressGuardOptions, FastifyGuardOptions, GuardOptions, Verdict } from './middleware.js';
