// The access log: one line per request that goes through Fastify, written when its answer is sent
// (and its duration observed for /metrics).
// Verify and forward auth write none (their counts and latencies by verdict are in /metrics, and a
// line per request would cost the hot path); nothing a caller sent but the method is logged, so no
// header, body, query or path value can carry a secret into it: routes appear as their templates.
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';

/** A management request's duration by method, route template and status (keyward_http_request_duration_seconds). */
export type ObserveRequest = (method: string, route: string, status: number, seconds: number) => void;

export class AccessLog extends LogController {
  constructor(private readonly unlogged: (route: string | undefined) => boolean, private readonly observe: ObserveRequest = () => {}) {
    super({ requestIdLogLabel: 'requestId' });
  }

  override isLogDisabled(request: FastifyRequest): boolean {
    return this.unlogged(request.routeOptions.url);
  }

  /** One line per request: written with its status and duration once it is answered. */
  override incomingRequest(): void {}

  /** The access line says it: status 404, route null. */
  override routeNotFound(): void {}

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply): void {
    if (this.isLogDisabled(request)) return;
    this.observe(request.method, request.routeOptions.url ?? 'none', reply.statusCode, reply.elapsedTime / 1000);
    const line = {
      method: request.method,
      route: request.routeOptions.url ?? null,
      status: reply.statusCode,
      durationMs: Math.round(reply.elapsedTime * 10) / 10,
      ip: request.ip,
    };
    if (error) reply.log.warn({ ...line, err: error }, 'request ended with a connection error');
    else reply.log.info(line, 'request');
  }
}
