// Webhooks: endpoints of a workspace, their secrets and their deliveries.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { IdOf, withErrors, setPageLinks } from '../http/common.js';
import { Page, PageQuery } from '../http/schema.js';
import { iso } from '../lib/time.js';
import type { Guard } from '../auth/guard.js';
import type { Idempotency } from '../http/idempotency.js';
import { invalid } from '../errors.js';
import { parseInstant } from '../lib/time.js';
import { CreatedWebhook, CreateWebhookBody, DeliveryDetail, DeliveryStatus, DeliveryView, PatchWebhookBody, ReplayBody, ReplayResult, RotatedSecret, WebhookView } from './schemas.js';
import { deliveryView, REPLAY_MAX, webhookView, type WebhookService } from './service.js';
import { OPERATIONAL_EVENTS, WEBHOOK_EVENTS } from './events.js';

const WsParams = Type.Object({ id: IdOf('workspace') });
const HookParams = Type.Object({ webhookId: IdOf('webhook') });
const DeliveryParams = Type.Object({ webhookId: IdOf('webhook'), deliveryId: IdOf('delivery') });

export interface WebhookRouteServices {
  webhooks: WebhookService;
  guard: Guard;
  idempotency: Idempotency;
}

const EVENTS_DOC = Object.entries(WEBHOOK_EVENTS).map(([name, what]) => `- \`${name}\`: ${what}`).join('\n');
const OPERATIONAL_DOC = Object.entries(OPERATIONAL_EVENTS).map(([name, what]) => `- \`${name}\`: ${what}`).join('\n');

export const webhookRoutes = ({ webhooks, guard, idempotency }: WebhookRouteServices) => async (fastify: FastifyInstance) => {
  const r = fastify.withTypeProvider<TypeBoxTypeProvider>();

  r.post('/v1/workspaces/:id/webhooks', {
    schema: {
      tags: ['webhooks'], summary: 'Create a webhook endpoint (its signing secret is shown once)',
      description: `Deliveries follow the Standard Webhooks specification (\`webhook-id\`, \`webhook-timestamp\`, \`webhook-signature\`), at least once, in order per key, retried with exponential backoff (at most an hour apart) until they succeed or the endpoint is disabled. The URL is never probed at creation; loopback and private targets are refused unless the server allows them.\n\nEvents:\n${EVENTS_DOC}\n\nSent whatever the endpoint subscribed to:\n${OPERATIONAL_DOC}`,
      params: WsParams, body: CreateWebhookBody, response: withErrors({ 201: CreatedWebhook }),
    },
  }, async (req, reply) => {
    const access = await guard.workspace(req, req.params.id, 'webhooks:write');
    const { row, secret } = await idempotency.run(req, (claim) => webhooks.create(req.params.id, access.actor, req.body, claim));
    reply.code(201).header('cache-control', 'no-store');
    return { ...webhookView(row, webhooks.now()), secret };
  });

  r.get('/v1/workspaces/:id/webhooks', {
    schema: { tags: ['webhooks'], summary: 'Webhook endpoints of a workspace (never their secrets)', params: WsParams, response: withErrors({ 200: Type.Object({ data: Type.Array(WebhookView) }) }) },
  }, async (req) => {
    await guard.workspace(req, req.params.id, 'webhooks:read');
    const now = webhooks.now();
    return { data: (await webhooks.list(req.params.id)).map((w) => webhookView(w, now)) };
  });

  r.get('/v1/webhooks/:webhookId', {
    schema: { tags: ['webhooks'], summary: 'Read a webhook endpoint', params: HookParams, response: withErrors({ 200: WebhookView }) },
  }, async (req) => webhookView((await guard.webhook(req, req.params.webhookId, 'webhooks:read')).target, webhooks.now()));

  r.patch('/v1/webhooks/:webhookId', {
    schema: { tags: ['webhooks'], summary: 'Change, disable or enable a webhook endpoint', params: HookParams, body: PatchWebhookBody, response: withErrors({ 200: WebhookView }) },
  }, async (req) => {
    const { target, access } = await guard.webhook(req, req.params.webhookId, 'webhooks:write');
    return webhookView(await webhooks.update(target, access.actor, req.body), webhooks.now());
  });

  r.delete('/v1/webhooks/:webhookId', {
    schema: { tags: ['webhooks'], summary: 'Delete a webhook endpoint and its deliveries', params: HookParams, response: withErrors({ 204: Type.Null() }) },
  }, async (req, reply) => {
    const { target, access } = await guard.webhook(req, req.params.webhookId, 'webhooks:write');
    await webhooks.delete(target, access.actor);
    return reply.code(204).send();
  });

  r.post('/v1/webhooks/:webhookId/rotate-secret', {
    schema: {
      tags: ['webhooks'], summary: 'Rotate the signing secret (the old one keeps signing for 24 hours)',
      description: 'Until `previousValidUntil`, each delivery carries two signatures in `webhook-signature`, one per secret, so receivers can switch without dropping a delivery.',
      params: HookParams, response: withErrors({ 200: RotatedSecret }),
    },
  }, async (req, reply) => {
    const { target, access } = await guard.webhook(req, req.params.webhookId, 'webhooks:write');
    const { secret, previousValidUntil } = await webhooks.rotateSecret(target, access.actor);
    reply.header('cache-control', 'no-store');
    return { secret, previousValidUntil: iso(previousValidUntil) };
  });

  r.get('/v1/webhooks/:webhookId/deliveries', {
    schema: {
      tags: ['webhooks'], summary: 'Deliveries of an endpoint with their latest attempts (paginated, newest first)', params: HookParams,
      querystring: Type.Object({ ...PageQuery, status: Type.Optional(DeliveryStatus) }, { additionalProperties: false }),
      response: withErrors({ 200: Page(DeliveryView) }),
    },
  }, async (req, reply) => {
    const { target } = await guard.webhook(req, req.params.webhookId, 'webhooks:read');
    const { page = 1, limit = 20, status } = req.query;
    const { rows, total } = await webhooks.deliveries(target, status, { page, limit });
    setPageLinks(req, reply, page, limit, total);
    return { data: rows.map((d) => deliveryView(d.row, d.attempts)), total };
  });

  r.get('/v1/webhooks/:webhookId/deliveries/:deliveryId', {
    schema: {
      tags: ['webhooks'], summary: 'One delivery: every attempt (time, status, latency, the first 1 KB of the answer or the error) and the body sent',
      params: DeliveryParams, response: withErrors({ 200: DeliveryDetail }),
    },
  }, async (req) => {
    const { target } = await guard.webhook(req, req.params.webhookId, 'webhooks:read');
    const { row, attempts, payload } = await webhooks.delivery(target, req.params.deliveryId);
    return { ...deliveryView(row, attempts), payload };
  });

  r.post('/v1/webhooks/:webhookId/deliveries/:deliveryId/retry', {
    schema: {
      tags: ['webhooks'], summary: 'Send a delivery again now (same webhook-id)',
      params: DeliveryParams, response: withErrors({ 202: DeliveryView }),
    },
  }, async (req, reply) => {
    const { target, access } = await guard.webhook(req, req.params.webhookId, 'webhooks:write');
    const { row, attempts } = await webhooks.retry(target, req.params.deliveryId, access.actor);
    reply.code(202);
    return deliveryView(row, attempts);
  });

  r.post('/v1/webhooks/:webhookId/test', {
    schema: {
      tags: ['webhooks'], summary: 'Send a `webhook.test` event to this endpoint',
      description: 'A delivery like any other: signed, retried, listed with its attempts. While the endpoint is disabled it is held until it is enabled.',
      params: HookParams, response: withErrors({ 202: DeliveryView }),
    },
  }, async (req, reply) => {
    const { target, access } = await guard.webhook(req, req.params.webhookId, 'webhooks:write');
    const { row, attempts } = await webhooks.test(target, access.actor);
    reply.code(202);
    return deliveryView(row, attempts);
  });

  r.post('/v1/webhooks/:webhookId/replay', {
    schema: {
      tags: ['webhooks'], summary: 'Send again the events this endpoint was sent since a time',
      description: `Each event keeps its own \`webhook-id\`, so a receiver that deduplicates on it drops what it already has and takes what it lost (\`newIds: true\` gives each a new one instead). Events still waiting to be sent are not doubled. Oldest first, in order per key, at most ${REPLAY_MAX} a call: \`nextSince\` says where to go on.`,
      params: HookParams, body: ReplayBody, response: withErrors({ 202: ReplayResult }),
    },
  }, async (req, reply) => {
    const { target, access } = await guard.webhook(req, req.params.webhookId, 'webhooks:write');
    const since = parseInstant(req.body.since);
    if (since === null) throw invalid('body/since', 'is not a date-time');
    const { replayed, nextSince } = await webhooks.replay(target, access.actor, since, req.body.newIds ?? false);
    reply.code(202);
    return { replayed, nextSince: nextSince === null ? null : iso(nextSince) };
  });
};
