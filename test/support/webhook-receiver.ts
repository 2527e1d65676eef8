// A real HTTP endpoint that receives webhooks: records every request and answers with what a test
// queues (200 "ok" when nothing is queued); can go down (connections refused) and come back on
// the same port.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  json: any;
  at: number;
}

export interface Answer {
  status: number;
  body?: string;
  /** Held this long before answering (a timeout). */
  holdMs?: number;
}

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** Statuses for the next requests, in order (then 200 again). */
  respond(...statuses: number[]): void;
  /** Whole answers for the next requests, in order. */
  answer(...answers: Answer[]): void;
  /** Holds every answer this long (timeouts). */
  holdMs: number;
  /** Requests read but not answered yet. */
  pending(): number;
  /** Polls until at least n requests arrived; throws after `withinMs`. */
  waitFor(n: number, withinMs?: number): Promise<Received[]>;
  /** Stops listening: connections are refused until up(). */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const queue: Answer[] = [];
  let waiting = 0;
  const listen = (port: number) => new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const stop = () => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  });
  const rx: Receiver = {
    url: '', port: 0, received, holdMs: 0,
    pending: () => waiting,
    respond: (...statuses) => void queue.push(...statuses.map((status) => ({ status }))),
    answer: (...answers) => void queue.push(...answers),
    async waitFor(n, withinMs = 10_000) {
      const deadline = Date.now() + withinMs;
      while (received.length < n) {
        if (Date.now() > deadline) throw new Error(`expected ${n} webhook requests, got ${received.length}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return received;
    },
    down: () => (server.listening ? stop() : Promise.resolve()),
    up: () => listen(rx.port),
    close: () => (server.listening ? stop() : Promise.resolve()),
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: unknown = null;
      try {
        json = JSON.parse(body);
      } catch {
        json = null;
      }
      const next = queue.shift() ?? { status: 200 };
      const holdMs = next.holdMs ?? rx.holdMs;
      waiting++;
      const reply = () => {
        waiting--;
        received.push({ headers: req.headers, body, json, at: Date.now() });
        if (res.destroyed) return;
        res.writeHead(next.status, { 'content-type': 'text/plain' }).end(next.body ?? (next.status === 200 ? 'ok' : 'not now'));
      };
      if (holdMs > 0) setTimeout(reply, holdMs);
      else reply();
    });
  });
  await listen(0);
  rx.port = (server.address() as AddressInfo).port;
  rx.url = `http://127.0.0.1:${rx.port}/hooks`;
  return rx;
}
