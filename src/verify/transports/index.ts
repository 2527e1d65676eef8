// The ways POST /v1/keys/verify reaches the answerer without Fastify, attached to the HTTP server
// in one place: connections whose first request is verify are read from the socket (./wire.ts),
// and on connections node:http reads, a plain JSON verify is answered ahead of Fastify
// (./fastpath.ts). Anything else, and every request these decline, goes on to Fastify, whose
// verify route (../routes.ts) calls the same answerer.
import http, { type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { VerifyAnswerer } from '../answer.js';
import { verifyFastPath } from './fastpath.js';
import { Wire } from './wire.js';

export interface VerifyTransportOptions {
  bodyLimit: number;
  isClosing: () => boolean;
  /** Read verify connections from the socket (KEYWARD_VERIFY_WIRE). */
  wire: boolean;
  /** Those connections read into one buffer shared by all (KEYWARD_VERIFY_SHARED_READS). */
  sharedReads: boolean;
}

export interface VerifyTransports {
  /** Answers a verify request node:http read and returns true, or returns false to pass it on. */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** Stops reading verify connections (shutdown). */
  stop(): void;
}

export function attachVerifyTransports(server: Server, answerer: VerifyAnswerer, opts: VerifyTransportOptions): VerifyTransports {
  const handle = verifyFastPath(answerer, { bodyLimit: opts.bodyLimit, isClosing: opts.isClosing });
  const wire = opts.wire
    ? new Wire(server, answerer, { bodyLimit: opts.bodyLimit, isClosing: opts.isClosing, maxHeaderSize: http.maxHeaderSize, sharedReads: opts.sharedReads })
    : undefined;
  return { handle, stop: () => wire?.stop() };
}
