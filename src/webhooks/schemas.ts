// TypeBox schemas of webhooks and their deliveries (pure: shared with the console and SDK).
import { Type } from '@sinclair/typebox';
import { IdOf, Nullable, StringEnum, Timestamp } from '../http/schema.js';
import { WEBHOOK_EVENT_TYPES } from './events.js';

export const WebhookEventName = StringEnum(WEBHOOK_EVENT_TYPES);
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
  status: Type.Optional(StringEnum(['active', 'disabled'] as const, { description: 'Enabling again resumes deliveries left pending' })),
}, { additionalProperties: false, minProperties: 1 });

export const WebhookView = Type.Object({
  id: Type.String(), workspaceId: Type.String(), appId: Nullable(Type.String()),
  url: Type.String(), description: Type.String(), events: Type.Array(WebhookEventName),
  status: StringEnum(['active', 'disabled'] as const),
  disabledReason: Nullable(Type.String({ description: 'Why Keyward disabled it (after failed attempts in a row)' })),
  consecutiveFailures: Type.Integer(),
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

export const DeliveryStatus = StringEnum(['pending', 'delivered', 'failed'] as const);

export const DeliveryView = Type.Object({
  id: Type.String(), webhookId: Type.String(),
  eventId: Type.String({ description: 'Sent as `webhook-id`; the same on every attempt' }),
  type: WebhookEventName, status: DeliveryStatus,
  attempts: Type.Integer(), maxAttempts: Type.Integer(),
  nextAttemptAt: Nullable(Timestamp), lastAttemptAt: Nullable(Timestamp),
  responseStatus: Nullable(Type.Integer()), error: Nullable(Type.String()), latencyMs: Nullable(Type.Integer()),
  createdAt: Timestamp, deliveredAt: Nullable(Timestamp),
});
