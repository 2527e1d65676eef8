// GET /v1/keys/changes: a server-sent event stream of key ids that changed in a workspace, so
// verify middleware can drop its short-lived cache entries at once instead of waiting for a TTL.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { invalid } from '../errors.js';
import { IdOf, withErrors } from '../http/common.js';
import type { Guard } from '../auth/guard.js';
import type { ChangeEvent, InvalidationBus } from '../shared/bus.js';

const HEARTBEAT_MS = 15_000;

export interface KeyChangeRouteServices {
  guard: Guard;
  bus: Pick<InvalidationBus, 'onKeyChange'>;
  /** How often the stream re-checks its credential (a logout, a removed member, a revoked root key). */
  streamRecheckMs: number;
}

export const keyChangesRoute = ({ guard, bus, streamRecheckMs }: KeyChangeRouteServices) => async (fastify: FastifyInstance) => {
  const open = new Set<{ end(): void }>();
  // Streams never finish on their own: end them first so shutdown is not held up.
  fastify.addHook('preClose', async () => {
    for (const res of open) res.end();
  });
  fastify.withTypeProvider<TypeBoxTypeProvider>().get('/v1/keys/changes', {
    schema: {
      tags: ['keys'], summary: 'Stream of changed key ids (text/event-stream)',
      description: 'Each change (update, disable, roll, revoke) is an event `key.changed` with data `{"keyId"}`; a change of every key of an app at once (the app deleted, its gateway rules changed) is an event `app.changed` with data `{"appId"}`. A comment line every 15 s keeps the stream open. Root keys may omit `workspaceId`.',
      querystring: Type.Object({ workspaceId: Type.Optional(IdOf('workspace')) }, { additionalProperties: false }),
      response: withErrors({ 200: Type.String({ description: 'text/event-stream' }) }),
    },
  }, async (req, reply) => {
    const principal = await guard.principal(req);
    const workspaceId = req.query.workspaceId ?? (principal.kind === 'root' ? principal.workspaceId : undefined);
    if (!workspaceId) throw invalid('query/workspaceId', 'is required for a user session');
    await guard.workspace(req, workspaceId, 'keys:read');
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    res.write(': keyward key changes\n\n');
    const unsubscribe = bus.onKeyChange((change: ChangeEvent) => {
      if (change.workspaceId !== workspaceId) return;
      if ('appId' in change) res.write(`event: app.changed\ndata: ${JSON.stringify({ appId: change.appId })}\n\n`);
      // Root keys change on the same bus; middleware caches hold app keys only.
      else if (change.keyId.startsWith('key_')) res.write(`event: key.changed\ndata: ${JSON.stringify({ keyId: change.keyId })}\n\n`);
    });
    open.add(res);
    const heartbeat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
    // The stream lives only as long as the right to read it: the same check as at the start.
    let checking = false;
    const recheck = setInterval(() => {
      if (checking) return;
      checking = true;
      guard.workspace(req, workspaceId, 'keys:read').then(() => {
        checking = false;
      }, () => res.end());
    }, streamRecheckMs);
    const stop = () => {
      clearInterval(heartbeat);
      clearInterval(recheck);
      unsubscribe();
      open.delete(res);
    };
    req.raw.on('close', stop);
    res.on('close', stop);
  });
};
