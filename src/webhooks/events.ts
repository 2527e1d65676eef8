// Webhook event types and what each means: pure data, shared with the console and the SDK.

/** Events an endpoint subscribes to by name. */
export const WEBHOOK_EVENTS = {
  'key.created': 'A key was created',
  'key.updated': 'A key was changed (anything but its status)',
  'key.disabled': 'A key was disabled',
  'key.enabled': 'A disabled key was enabled again',
  'key.rolled': 'A key got a new value (the old one works until its grace period ends)',
  'key.revoked': 'A key was revoked (also when its app was deleted)',
  'key.expiring': 'A key expires within the notice window (once per expiry date)',
  'key.expired': 'A key has expired',
  'key.leaked': 'A key was reported as leaked',
  'key.usage_low': 'A key has 10% or less of its usage cap left (once per refill)',
  'rootkey.created': 'A root key was created',
  'rootkey.revoked': 'A root key was revoked',
} as const;

export type WebhookEventType = keyof typeof WEBHOOK_EVENTS;

export const WEBHOOK_EVENT_TYPES = Object.keys(WEBHOOK_EVENTS) as WebhookEventType[];

/** Events about the endpoints themselves: sent whatever an endpoint subscribed to. */
export const OPERATIONAL_EVENTS = {
  'webhook.test': 'A test event, sent on request to one endpoint',
  'webhook.disabled': 'Keyward disabled another endpoint of the workspace after it failed for too long (sent to the other endpoints)',
} as const;

export type OperationalEventType = keyof typeof OPERATIONAL_EVENTS;

/** Every type a delivery can carry. */
export type DeliveredEventType = WebhookEventType | OperationalEventType;

export const DELIVERED_EVENT_TYPES = [...WEBHOOK_EVENT_TYPES, ...Object.keys(OPERATIONAL_EVENTS)] as DeliveredEventType[];
