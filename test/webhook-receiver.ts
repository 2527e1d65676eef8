// A real HTTP endpoint that receives webhooks: records every request and answers with the
// statuses a test queues (200 when none is queued).
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  json: any;
  at: number;
}

export interface Receiver {
  url: string;
  port: number;
  received: Received[];
  /** Statuses for the next requests, in order (then 200 again). */
  respond(...statuses: number[]): void;
  /** Holds every answer this long (timeouts). */
  holdMs: number;
  /** Requests read but not answered yet. */
  pending(): number;
  /** Polls until at least n requests arrived; throws after `withinMs`. */
  waitFor(n: number, withinMs?: number): Promise<Received[]>;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const received: Received[] = [];
  const queue: number[] = [];
  let waiting = 0;
  const rx: Receiver = {
    url: '', port: 0, received, holdMs: 0,
    pending: () => waiting,
    respond: (...statuses) => void queue.push(...statuses),
    async waitFor(n, withinMs = 10_000) {
      const deadline = Date.now() + withinMs;
      while (received.length < n) {
        if (Date.now() > deadline) throw new Error(`expected ${n} webhook requests, got ${received.length}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return received;
    },
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
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
      const status = queue.shift() ?? 200;
      waiting++;
      const answer = () => {
        waiting--;
        received.push({ headers: req.headers, body, json, at: Date.now() });
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'not now');
      };
      if (rx.holdMs > 0) setTimeout(answer, rx.holdMs);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  rx.port = (server.address() as AddressInfo).port;
  rx.url = `http://127.0.0.1:${rx.port}/hooks`;
  return rx;
}
