// Webhook event types and what each means: pure data, shared with the console and the SDK.
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
