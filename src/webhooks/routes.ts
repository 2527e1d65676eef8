// Webhooks: endpoints of a workspace, their secrets and their deliveries.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { IdOf, withErrors, setPageLinks } from '../http/common.js';
import { Page, PageQuery } from '../http/schema.js';
import { iso } from '../lib/time.js';
import type { Guard } from '../auth/guard.js';
import type { Idempotency } from '../http/idempotency.js';
import { CreatedWebhook, CreateWebhookBody, DeliveryStatus, DeliveryView, PatchWebhookBody, RotatedSecret, WebhookView } from './schemas.js';
import { deliveryView, webhookView, type WebhookService } from './service.js';
import { WEBHOOK_EVENTS } from './events.js';

const WsParams = Type.Object({ id: IdOf('workspace') });
const HookParams = Type.Object({ webhookId: IdOf('webhook') });

export interface WebhookRouteServices {
  webhooks: WebhookService;
  guard: Guard;
  idempotency: Idempotency;
}

const EVENTS_DOC = Object.entries(WEBHOOK_EVENTS).map(([name, what]) => `- \`${name}\`: ${what}`).join('\n');

export const webhookRoutes = ({ webhooks, guard, idempotency }: WebhookRouteServices) => async (fastify: FastifyInstance) => {
  const r = fastify.withTypeProvider<TypeBoxTypeProvider>();

  r.post('/v1/workspaces/:id/webhooks', {
    schema: {
      tags: ['webhooks'], summary: 'Create a webhook endpoint (its signing secret is shown once)',
      description: `Deliveries follow the Standard Webhooks specification (\`webhook-id\`, \`webhook-timestamp\`, \`webhook-signature\`), at least once, in order per key. The URL is never probed at creation; loopback and private targets are refused unless the server allows them.\n\nEvents:\n${EVENTS_DOC}`,
      params: WsParams, body: CreateWebhookBody, response: withErrors({ 201: CreatedWebhook }),
    },
  }, async (req, reply) => {
    const access = await guard.workspace(req, req.params.id, 'webhooks:write');
    const { row, secret } = await idempotency.run(req, () => webhooks.create(req.params.id, access.actor, req.body));
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
      tags: ['webhooks'], summary: 'Deliveries of an endpoint (paginated, newest first)', params: HookParams,
      querystring: Type.Object({ ...PageQuery, status: Type.Optional(DeliveryStatus) }, { additionalProperties: false }),
      response: withErrors({ 200: Page(DeliveryView) }),
    },
  }, async (req, reply) => {
    const { target } = await guard.webhook(req, req.params.webhookId, 'webhooks:read');
    const { page = 1, limit = 20, status } = req.query;
    const { rows, total } = await webhooks.deliveries(target, status, { page, limit });
    setPageLinks(req, reply, page, limit, total);
    return { data: rows.map(deliveryView), total };
  });

  r.post('/v1/webhooks/:webhookId/deliveries/:deliveryId/retry', {
    schema: {
      tags: ['webhooks'], summary: 'Send a delivery again now (same webhook-id)',
      params: Type.Object({ webhookId: IdOf('webhook'), deliveryId: IdOf('delivery') }), response: withErrors({ 202: DeliveryView }),
    },
  }, async (req, reply) => {
    const { target, access } = await guard.webhook(req, req.params.webhookId, 'webhooks:write');
    const row = await webhooks.retry(target, req.params.deliveryId, access.actor);
    reply.code(202);
    return deliveryView(row);
  });
};
