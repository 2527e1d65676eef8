// TypeBox schemas of webhooks, their deliveries and attempts (pure: shared with the console and SDK).
import { Type } from '@sinclair/typebox';
import { IdOf, Nullable, StringEnum, Timestamp } from '../http/schema.js';
import { DELIVERED_EVENT_TYPES, WEBHOOK_EVENT_TYPES } from './events.js';

const WebhookEventName = StringEnum(WEBHOOK_EVENT_TYPES);
const DeliveredEventName = StringEnum(DELIVERED_EVENT_TYPES);
const Events = Type.Array(WebhookEventName, { minItems: 1, maxItems: WEBHOOK_EVENT_TYPES.length, uniqueItems: true });
const Url = Type.String({ minLength: 1, maxLength: 2048, examples: ['https://hooks.example.com/keyward'] });
const Description = Type.String({ maxLength: 500 });

export const CreateWebhookBody = Type.Object({
  url: Url,
  events: Events,
  appId: Type.Optional(IdOf('app', 'Only events of this app\'s keys (root-key events are not sent)')),
  description: Type.Optional(Description),
}, { additionalProperties: false });

export const PatchWebhookBody = Type.Object({
  url: Type.Optional(Url),
  events: Type.Optional(Events),
  description: Type.Optional(Description),
  status: Type.Optional(StringEnum(['active', 'disabled'] as const, { description: 'A disabled endpoint keeps receiving events, held; enabling it sends them, in order per key' })),
}, { additionalProperties: false, minProperties: 1 });

export const WebhookView = Type.Object({
  id: Type.String(), workspaceId: Type.String(), appId: Nullable(Type.String()),
  url: Type.String(), description: Type.String(), events: Type.Array(WebhookEventName),
  status: StringEnum(['active', 'disabled'] as const),
  disabledReason: Nullable(Type.String({ description: 'Why Keyward disabled it (after failing for KEYWARD_WEBHOOK_DISABLE_AFTER_HOURS without a success); null when disabled by hand' })),
  consecutiveFailures: Type.Integer({ description: 'Failed attempts since the last success' }),
  failingSince: Nullable(Type.String({ format: 'date-time', description: 'The first failure after the last success; null while it succeeds' })),
  secretRotatedUntil: Nullable(Type.String({ description: 'Until then deliveries carry a signature with the previous secret too' })),
  createdAt: Timestamp, updatedAt: Timestamp, createdBy: Nullable(Type.String()),
});

export const CreatedWebhook = Type.Composite([WebhookView, Type.Object({
  secret: Type.String({ description: 'The signing secret (`whsec_…`). Shown only in this response.' }),
})]);

export const RotatedSecret = Type.Object({
  secret: Type.String({ description: 'The new signing secret. Shown only in this response.' }),
  previousValidUntil: Timestamp,
});

export const DeliveryStatus = StringEnum(['pending', 'held', 'delivered', 'failed'] as const, {
  description: '`pending`: to be sent (retried until it succeeds); `held`: its endpoint is disabled, sent once enabled; `delivered`; `failed`: given up by an earlier version that limited attempts (retry it by hand)',
});

export const AttemptView = Type.Object({
  number: Type.Integer({ description: '1 for the first attempt' }),
  attemptedAt: Timestamp,
  outcome: StringEnum(['delivered', 'failed'] as const),
  responseStatus: Nullable(Type.Integer({ description: 'HTTP status of the answer; null when none came' })),
  responseBody: Nullable(Type.String({ description: 'The first 1 KB of the answer\'s body' })),
  error: Nullable(Type.String({ description: 'Why it failed, in words' })),
  latencyMs: Type.Integer(),
});

export const DeliveryView = Type.Object({
  id: Type.String(), webhookId: Type.String(),
  eventId: Type.String({ description: 'Sent as `webhook-id`; the same on every attempt' }),
  type: DeliveredEventName, status: DeliveryStatus,
  attempts: Type.Integer({ description: 'Attempts so far' }),
  nextAttemptAt: Nullable(Timestamp), lastAttemptAt: Nullable(Timestamp),
  responseStatus: Nullable(Type.Integer()), error: Nullable(Type.String()), latencyMs: Nullable(Type.Integer()),
  createdAt: Timestamp, deliveredAt: Nullable(Timestamp),
  attemptLog: Type.Array(AttemptView, { description: 'Attempts, newest first: the last 5 in a list, every one in the delivery\'s own read' }),
});

export const DeliveryDetail = Type.Composite([DeliveryView, Type.Object({
  payload: Type.String({ description: 'The body sent, byte for byte (what the signature covers)' }),
})]);

export const ReplayBody = Type.Object({
  since: Type.String({ format: 'date-time', description: 'Events this endpoint was sent since then are sent again' }),
  newIds: Type.Optional(Type.Boolean({ description: 'Give each a new `webhook-id` (a receiver processes it again) instead of its own (a receiver drops what it already has)', default: false })),
}, { additionalProperties: false });

export const ReplayResult = Type.Object({
  replayed: Type.Integer({ description: 'Events queued again' }),
  nextSince: Nullable(Type.String({ format: 'date-time', description: 'More events remain: replay again from here' })),
});
