// Verify connections read from the socket (src/verify/transports/wire.ts), over raw TCP so that every byte is the
// test's: pipelining, requests split anywhere, hand-over to node:http at a request boundary, the
// strict subset (everything outside it is answered exactly as node:http answers it with the socket
// path off), Connection: close, slow requests, shutdown.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readInto } from '../../src/verify/transports/socket-read.js';
import { generateKey } from '../../src/lib/key-format.js';
import { createKey, startServer, world, type TestServer, type World } from '../support/harness.js';

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** A client on one TCP connection: writes bytes, reads answers as they come (Content-Length framed). */
class RawClient {
  private data = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  ended = false;
  closed: Promise<void>;

  constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.data = Buffer.concat([this.data, d]);
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', () => {});
    this.closed = new Promise((resolve) => socket.on('close', () => resolve()));
  }

  static async open(url: string): Promise<RawClient> {
    const { hostname, port } = new URL(url);
    const socket = net.connect(Number(port), hostname);
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new RawClient(socket);
  }

  private wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  write(bytes: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => this.socket.write(bytes, (err) => (err ? reject(err) : resolve())));
  }

  /** The next complete answer, null when the server closed first, 'silent' after waitMs without either. */
  async within(waitMs: number): Promise<RawAnswer | null | 'silent'> {
    let timer: NodeJS.Timeout | undefined;
    const silent = new Promise<'silent'>((resolve) => (timer = setTimeout(() => resolve('silent'), waitMs)));
    try {
      return await Promise.race([this.next(), silent]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** The next complete answer, or null when the server closed first. */
  async next(): Promise<RawAnswer | null> {
    for (;;) {
      const end = this.data.indexOf('\r\n\r\n');
      if (end >= 0) {
        const lines = this.data.toString('latin1', 0, end).split('\r\n');
        const status = Number(lines[0]!.split(' ')[1]);
        const headers: Record<string, string> = {};
        for (const line of lines.slice(1)) {
          const colon = line.indexOf(':');
          headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
        }
        const length = Number(headers['content-length'] ?? 0);
        if (this.data.length >= end + 4 + length) {
          const body = this.data.toString('utf8', end + 4, end + 4 + length);
          this.data = this.data.subarray(end + 4 + length);
          return { status, headers, body };
        }
      }
      if (this.ended) return null;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  close() {
    this.socket.destroy();
  }
}

const request = (body: string, headers: Record<string, string> = {}, line = 'POST /v1/keys/verify HTTP/1.1') => {
  const all: Record<string, string> = { host: '127.0.0.1', 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers };
  return `${line}\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${body}`;
};

describe('verify connections read from the socket', () => {
  let s: TestServer;
  let off: TestServer;
  let w: World;
  let wOff: World;
  let cached: string;
  let fresh: string[];
  beforeAll(async () => {
    s = await startServer({ listen: true });
    off = await startServer({ listen: true, env: { KEYWARD_VERIFY_WIRE: '0' } });
    w = await world(s);
    wOff = await world(off);
    cached = (await createKey(s, w)).key;
    fresh = [];
    for (let i = 0; i < 3; i++) fresh.push((await createKey(s, w)).key);
  });
  afterAll(async () => {
    await s.close();
    await off.close();
  });

  const verifyBody = (key: string, appId = w.appId) => JSON.stringify({ key, appId });

  it('answers pipelined requests in order, whether the store is asked (later) or not (at once)', async () => {
    const c = await RawClient.open(s.url);
    expect((await c.write(request(verifyBody(cached))), await c.next())?.status).toBe(200);
    // Uncached keys wait for the store; the cached one and an unknown value are answered at once.
    const unknown = generateKey('acme', 'live').plaintext;
    const keys = [fresh[0]!, cached, unknown, fresh[1]!, 'not a key', fresh[2]!];
    await c.write(keys.map((k) => request(verifyBody(k))).join(''));
    const answers = [];
    for (const _ of keys) answers.push(await c.next());
    expect(answers.map((a) => JSON.parse(a!.body).code)).toEqual(['VALID', 'VALID', 'NOT_FOUND', 'VALID', 'MALFORMED', 'VALID']);
    const ids = answers.map((a) => JSON.parse(a!.body).keyId);
    expect(new Set(ids.filter(Boolean)).size).toBe(4);
    for (const a of answers) {
      expect(a!.headers).toMatchObject({ 'content-type': 'application/json; charset=utf-8', connection: 'keep-alive' });
      expect(a!.headers['keep-alive']).toMatch(/^timeout=\d+$/);
      expect(Number.isNaN(Date.parse(a!.headers.date!))).toBe(false);
    }
    c.close();
  });

  it('reads a request in any pieces, and two hundred pipelined ones that wait on the store', async () => {
    const c = await RawClient.open(s.url);
    const bytes = Buffer.from(request(verifyBody(cached)));
    for (const cut of [3, 20, 40, bytes.length - 5]) {
      // Each piece is on the wire before the next is written.
      await c.write(bytes.subarray(0, cut));
      await c.write(bytes.subarray(cut));
      expect(JSON.parse((await c.next())!.body).code).toBe('VALID');
    }
    // Unknown, well-formed values: each is looked up in the store, so answers queue behind the
    // 32 in flight and must still come back in order.
    const values = Array.from({ length: 200 }, (_, i) => (i % 2 ? cached : generateKey('acme', 'live').plaintext));
    await c.write(values.map((v) => request(verifyBody(v))).join(''));
    for (const [i] of values.entries()) expect(JSON.parse((await c.next())!.body).code, `answer ${i}`).toBe(i % 2 ? 'VALID' : 'NOT_FOUND');
    c.close();
  });

  it('reads into one buffer shared by every connection, and keeps each connection\'s unfinished request its own', async () => {
    const [a, b] = [await RawClient.open(s.url), await RawClient.open(s.url)];
    // After a first verify, each connection reads into the Wire's shared buffer.
    for (const c of [a, b]) expect((await c.write(request(verifyBody(cached))), await c.next())?.status).toBe(200);
    const ids = new Map<string, string>();
    for (const k of fresh) ids.set(k, JSON.parse((await a.write(request(verifyBody(k))), await a.next())!.body).keyId);
    for (let round = 0; round < 3; round++) {
      // One read brings a whole request and half of the next: the half stays behind once the read is over.
      const [mine, theirs] = [fresh[round]!, fresh[(round + 1) % fresh.length]!];
      const next = Buffer.from(request(verifyBody(mine)));
      // Cut inside the key, where the two connections' bytes differ.
      const cut = next.indexOf(mine) + 20 + round * 5;
      await a.write(Buffer.concat([Buffer.from(request(verifyBody(cached))), next.subarray(0, cut)]));
      expect(JSON.parse((await a.next())!.body).code).toBe('VALID');
      // Another connection's read (two requests of the same length, the second for another key)
      // fills the shared buffer over where that half was read.
      await b.write(request(verifyBody(cached)) + request(verifyBody(theirs)));
      expect(JSON.parse((await b.next())!.body).code).toBe('VALID');
      expect(JSON.parse((await b.next())!.body).keyId).toBe(ids.get(theirs));
      await a.write(next.subarray(cut));
      expect(JSON.parse((await a.next())!.body).keyId, `round ${round}`).toBe(ids.get(mine));
    }
    a.close();
    b.close();
  });

  it('hands the connection to node:http at the first other request; that one and later ones are answered there', async () => {
    const c = await RawClient.open(s.url);
    await c.write(request(verifyBody(fresh[0]!)) + 'GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n' + request(verifyBody(cached)));
    const [first, health, last] = [await c.next(), await c.next(), await c.next()];
    expect(JSON.parse(first!.body).code).toBe('VALID');
    expect(health!.status).toBe(200);
    expect(JSON.parse(health!.body)).toEqual({ status: 'ok' });
    // Fastify's answers carry the security headers; the fast path on node:http answers the rest.
    expect(health!.headers['referrer-policy']).toBe('no-referrer');
    expect(JSON.parse(last!.body).code).toBe('VALID');
    // The same after the connection has read into the shared buffer, the other request split over two reads.
    const e = await RawClient.open(s.url);
    expect((await e.write(request(verifyBody(cached))), await e.next())?.status).toBe(200);
    await e.write('GET /heal');
    await e.write('thz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n' + request(verifyBody(fresh[1]!)));
    expect(JSON.parse((await e.next())!.body)).toEqual({ status: 'ok' });
    expect(JSON.parse((await e.next())!.body).code).toBe('VALID');
    e.close();
    // A connection that starts elsewhere never comes back.
    const d = await RawClient.open(s.url);
    await d.write('GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n' + request(verifyBody(cached)));
    expect((await d.next())!.status).toBe(200);
    expect(JSON.parse((await d.next())!.body).code).toBe('VALID');
    c.close();
    d.close();
  });

  it('answers whatever lies outside its subset exactly as node:http does without it', async () => {
    const valid = (appId: string) => JSON.stringify({ key: 'acme_live_nothing', appId });
    const cases: [string, (appId: string) => string][] = [
      ['chunked', (a) => `POST /v1/keys/verify HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n${valid(a).length.toString(16)}\r\n${valid(a)}\r\n0\r\n\r\n`],
      ['chunked and a length', (a) => `POST /v1/keys/verify HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n`],
      ['two lengths', (a) => request(valid(a), { 'Content-Length': String(valid(a).length) })],
      ['a signed length', (a) => request(valid(a), { 'content-length': `+${valid(a).length}` })],
      ['no host', (a) => `POST /v1/keys/verify HTTP/1.1\r\ncontent-type: application/json\r\ncontent-length: ${valid(a).length}\r\n\r\n${valid(a)}`],
      ['two hosts', (a) => request(valid(a), { Host: 'other' })],
      ['a folded header', (a) => request(valid(a)).replace('\r\ncontent-type:', '\r\nx-note: a\r\n  folded\r\ncontent-type:')],
      ['a space before the colon', (a) => request(valid(a)).replace('content-type:', 'content-type :')],
      ['bare LF line ends', (a) => request(valid(a)).replaceAll('\r\n', '\n')],
      ['a control character in a value', (a) => request(valid(a), { 'x-note': 'a\u0001b' })],
      ['HTTP/1.0', (a) => request(valid(a), {}, 'POST /v1/keys/verify HTTP/1.0')],
      ['lower-case method', (a) => request(valid(a), {}, 'post /v1/keys/verify HTTP/1.1')],
      ['a query string', (a) => request(valid(a), {}, 'POST /v1/keys/verify?x=1 HTTP/1.1')],
      ['Expect: 100-continue', (a) => request(valid(a), { expect: '100-continue' })],
      ['text/plain', (a) => request(valid(a), { 'content-type': 'text/plain' })],
      ['a body over the limit', () => request('{"key":"' + 'x'.repeat(300 * 1024) + '"}')],
      ['an empty body', () => request('')],
      ['not JSON', () => request('{"key":')],
      ['a schema violation', (a) => request(JSON.stringify({ key: 5, appId: a }))],
      ['no scope', () => request(JSON.stringify({ key: 'acme_live_x' }))],
      ['Connection: close', (a) => request(valid(a), { connection: 'close' })],
      ['a large header', (a) => request(valid(a), { 'x-big': 'y'.repeat(20_000) })],
    ];
    // Each case first as a connection's first request, then after a verify on the same connection
    // (by then the connection reads into the shared buffer, src/verify/transports/socket-read.ts).
    for (const [name, make, warmed] of cases.flatMap(([n, m]) => [[n, m, false], [`${n}, after a verify`, m, true]] as const)) {
      const answers: (RawAnswer | null)[] = [];
      const after: string[] = [];
      for (const [server, appId] of [[s, w.appId], [off, wOff.appId]] as const) {
        const c = await RawClient.open(server.url);
        if (warmed) {
          await c.write(request(valid(appId)));
          expect((await c.next())?.status, `${name}: first`).toBe(200);
        }
        await c.write(make(appId)).catch(() => {});
        const a = await c.next();
        answers.push(a);
        // What the connection does next: a second, well-formed request finds out (answered, closed,
        // or neither while the server still waits on the first request's bytes).
        await c.write(request(valid(appId))).catch(() => {});
        const second = await c.within(1000);
        after.push(second === null ? 'closed' : second === 'silent' ? 'silent' : String(second.status));
        c.close();
      }
      const [wire, nodeHttp] = answers;
      expect(wire?.status, name).toBe(nodeHttp?.status);
      if (wire && nodeHttp) {
        expect(wire.headers['content-type'], name).toBe(nodeHttp.headers['content-type']);
        const code = (a: RawAnswer) => (a.body.startsWith('{') ? JSON.parse(a.body).code : a.body);
        expect(code(wire), name).toBe(code(nodeHttp));
      }
      expect(after[0], `${name}: then`).toBe(after[1]);
    }
  });

  it('a request that never completes gets a 408 after headersTimeout, and the connection closes', async () => {
    const timeout = s.app.server.headersTimeout;
    s.app.server.headersTimeout = 200;
    try {
      const c = await RawClient.open(s.url);
      await c.write(request(verifyBody(cached)).slice(0, 60));
      const answer = await c.next();
      expect(answer?.status).toBe(408);
      await c.closed;
    } finally {
      s.app.server.headersTimeout = timeout;
    }
  });

  it('an idle connection is closed after keepAliveTimeout, as node:http closes its own', async () => {
    const keepAlive = s.app.server.keepAliveTimeout;
    s.app.server.keepAliveTimeout = 300;
    try {
      const c = await RawClient.open(s.url);
      await c.write(request(verifyBody(cached)));
      expect((await c.next())!.headers['keep-alive']).toBe('timeout=0');
      await c.closed;
      expect(c.ended || c.socket.destroyed).toBe(true);
    } finally {
      s.app.server.keepAliveTimeout = keepAlive;
    }
  });

  it('a client that ends after sending gets its answers, then the end', async () => {
    const c = await RawClient.open(s.url);
    c.socket.end(request(verifyBody(fresh[1]!)) + request(verifyBody(cached)));
    expect(JSON.parse((await c.next())!.body).code).toBe('VALID');
    expect(JSON.parse((await c.next())!.body).code).toBe('VALID');
    expect(await c.next()).toBeNull();
  });

  it('shutdown ends idle verify connections, and new ones are no longer read here', async () => {
    const own = await startServer({ listen: true });
    const ow = await world(own);
    const c = await RawClient.open(own.url);
    await c.write(request(JSON.stringify({ key: 'nothing', appId: ow.appId })));
    expect(JSON.parse((await c.next())!.body).code).toBe('MALFORMED');
    await own.close();
    await c.closed;
    expect(c.ended).toBe(true);
  });
});

describe('reading a server socket into a shared buffer (src/verify/transports/socket-read.ts)', () => {
  it('delivers every read through the one buffer, then the end, with no data events', async () => {
    const shared = Buffer.alloc(1024);
    let text = '';
    const buffers = new Set<Buffer>();
    let dataEvents = 0;
    let enabled: boolean | undefined;
    let wake = () => {};
    let ended = false;
    const server = net.createServer((socket) => {
      socket.once('data', (first: Buffer) => {
        text += first.toString();
        enabled = readInto(socket, shared, (bytes, buffer) => {
          buffers.add(buffer);
          text += buffer.toString('latin1', 0, bytes);
          wake();
        });
        socket.on('data', () => dataEvents++);
        socket.on('end', () => {
          ended = true;
          wake();
        });
        wake();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const until = (done: () => boolean) => new Promise<void>((resolve) => {
      wake = () => done() && resolve();
      wake();
    });
    const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    // Each piece is read before the next is sent, so each is a read of its own.
    for (const piece of ['first', 'second', 'third']) {
      const want = text + piece;
      client.write(piece);
      await until(() => text === want);
    }
    expect(enabled).toBe(true);
    client.end();
    await until(() => ended);
    expect(text).toBe('firstsecondthird');
    expect(buffers.size).toBe(1);
    expect(buffers.has(shared)).toBe(true);
    expect(dataEvents).toBe(0);
    client.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
});
