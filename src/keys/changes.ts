// GET /v1/keys/changes: a server-sent event stream of key ids that changed in a workspace, so
// verify middleware can drop its short-lived cache entries at once instead of waiting for a TTL.
// A stream lives only as long as the right to read it: a logout, a removal from the workspace or a
// revoked root key reaches every node like a key change does (the change feed, sped up by Redis)
// and ends the credential's streams there at once.
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { AppError, conflict, invalid } from '../errors.js';
import { IdOf, withErrors } from '../http/common.js';
import type { Clock } from '../lib/clock.js';
import type { Guard } from '../auth/guard.js';
import type { Principal } from '../auth/service.js';
import type { StreamLease, StreamSlots } from '../auth/streams.js';
import type { AccessChange, ChangeEvent, InvalidationBus } from '../shared/bus.js';

const HEARTBEAT_MS = 15_000;
/** setTimeout's ceiling: a session expiring later than this is caught by the recheck instead. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface KeyChangeRouteServices {
  guard: Guard;
  clock: Clock;
  bus: Pick<InvalidationBus, 'onKeyChange' | 'onAccessChange'>;
  /** Open streams per session or root key, and how many each may hold. */
  streams: StreamSlots;
  streamLimits: { session: number; rootKey: number };
  /** A safety net beside the pushed changes: how often a stream re-checks its credential. */
  streamRecheckMs: number;
}

/** Whether an access change takes this stream's right away. */
function ends(change: AccessChange, principal: Principal, workspaceId: string): boolean {
  if (principal.kind === 'root') return change.kind === 'root_key' && change.target === principal.rootKeyId;
  if (change.kind === 'session') return change.target === principal.sessionId;
  return change.kind === 'member' && change.target === principal.userId && change.workspaceId === workspaceId;
}

export const keyChangesRoute = ({ guard, clock, bus, streams, streamLimits, streamRecheckMs }: KeyChangeRouteServices) => async (fastify: FastifyInstance) => {
  const open = new Set<{ end(): void }>();
  // Streams never finish on their own: end them first so shutdown is not held up.
  fastify.addHook('preClose', async () => {
    for (const res of open) res.end();
  });
  fastify.withTypeProvider<TypeBoxTypeProvider>().get('/v1/keys/changes', {
    schema: {
      tags: ['keys'], summary: 'Stream of changed key ids (text/event-stream)',
      description: 'Each change (update, disable, roll, revoke) is an event `key.changed` with data `{"keyId"}`; a change of every key of an app at once (the app deleted, its gateway rules changed) is an event `app.changed` with data `{"appId"}`. A comment line every 15 s keeps the stream open. Root keys may omit `workspaceId`. The stream ends when its credential loses the right to read it (logout, removal from the workspace, root key revoked). At most `KEYWARD_STREAMS_PER_SESSION` (default 5) open streams per session and `KEYWARD_STREAMS_PER_ROOT_KEY` (default 100) per root key, 409 beyond.',
      querystring: Type.Object({ workspaceId: Type.Optional(IdOf('workspace')) }, { additionalProperties: false }),
      response: withErrors({ 200: Type.String({ description: 'text/event-stream' }) }),
    },
  }, async (req, reply) => {
    // Access changes are heard from before the credential is checked: one that lands between the
    // check and the stream's start still ends it.
    const early: AccessChange[] = [];
    let onAccess = (change: AccessChange) => {
      early.push(change);
    };
    const offAccess = bus.onAccessChange((change) => onAccess(change));
    let principal: Principal;
    let workspaceId: string;
    let lease: StreamLease | null;
    try {
      principal = await guard.principal(req);
      const wanted = req.query.workspaceId ?? (principal.kind === 'root' ? principal.workspaceId : undefined);
      if (!wanted) throw invalid('query/workspaceId', 'is required for a user session');
      workspaceId = wanted;
      await guard.workspace(req, workspaceId, 'keys:read');
      const max = principal.kind === 'user' ? streamLimits.session : streamLimits.rootKey;
      lease = await streams.acquire(principal.kind === 'user' ? principal.sessionId : principal.rootKeyId, max);
      if (!lease) throw conflict(`This credential already has ${max} change streams open; close one first`);
      if (early.some((change) => ends(change, principal, workspaceId))) {
        lease.release();
        throw new AppError('UNAUTHORIZED', 'Credential is invalid, expired or revoked');
      }
    } catch (err) {
      offAccess();
      throw err;
    }
    const held = lease;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no', 'x-content-type-options': 'nosniff' });
    res.write(': keyward key changes\n\n');
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      res.end();
    };
    onAccess = (change) => {
      if (ends(change, principal, workspaceId)) end();
    };
    const offKeys = bus.onKeyChange((change: ChangeEvent) => {
      if (ended || change.workspaceId !== workspaceId) return;
      if ('appId' in change) res.write(`event: app.changed\ndata: ${JSON.stringify({ appId: change.appId })}\n\n`);
      // Root keys change on the same bus; middleware caches hold app keys only.
      else if (change.keyId.startsWith('key_')) res.write(`event: key.changed\ndata: ${JSON.stringify({ keyId: change.keyId })}\n\n`);
    });
    open.add(res);
    const heartbeat = setInterval(() => {
      res.write(': ping\n\n');
      held.renew();
    }, HEARTBEAT_MS);
    const expiry = principal.kind === 'user' ? setTimeout(end, Math.min(MAX_TIMER_MS, Math.max(0, principal.expiresAt - clock.now()))) : undefined;
    // The safety net: the same check as at the start, now and then.
    let checking = false;
    const recheck = setInterval(() => {
      if (checking) return;
      checking = true;
      guard.workspace(req, workspaceId, 'keys:read').then(() => {
        checking = false;
      }, end);
    }, streamRecheckMs);
    const stop = () => {
      clearInterval(heartbeat);
      clearInterval(recheck);
      clearTimeout(expiry);
      offKeys();
      offAccess();
      held.release();
      open.delete(res);
    };
    req.raw.on('close', stop);
    res.on('close', stop);
  });
};
