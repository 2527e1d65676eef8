// What becomes of a verify connection read from the socket (src/verify/transports/wire.ts), next to the same
// bytes on node:http alone (KEYWARD_VERIFY_WIRE=0): after an answer that closes, at each timeout,
// when the client half-closes, at shutdown. Each test asserts states, counts and bytes; the
// servers' timeouts are set short so that each state is reached in a fraction of a second.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateKey } from '../../src/lib/key-format.js';
import { createKey, startServer, world, type StartOptions, type TestServer, type World } from '../support/harness.js';
import { startProcess } from '../support/process.js';

const request = (body: string, headers: Record<string, string> = {}) => {
  const all: Record<string, string> = { host: '127.0.0.1', 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers };
  return `POST /v1/keys/verify HTTP/1.1\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n${body}`;
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A client that sees everything: the answers' status lines and bodies, the server's FIN, a reset. It never closes by itself. */
class Client {
  data = '';
  ended = false;
  error: string | undefined;
  closed = false;
  private wake = () => {};

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.data += d.toString('latin1');
      this.wake();
    });
    socket.on('end', () => {
      this.ended = true;
      this.wake();
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      this.error = e.code;
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
  }

  static async open(url: string): Promise<Client> {
    const { hostname, port } = new URL(url);
    const socket = net.connect({ host: hostname, port: Number(port), allowHalfOpen: true });
    await new Promise((resolve, reject) => socket.once('connect', resolve).once('error', reject));
    return new Client(socket);
  }

  /** Waits until `done`, or `ms` (then it is false). */
  async until(done: () => boolean, ms = 10_000): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!done() && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    return done();
  }

  /** The answers so far, as `status code-or-body`, and how the connection ended. */
  story(): string[] {
    const out: string[] = [];
    for (const m of this.data.matchAll(/HTTP\/1\.1 (\d{3})[^\r]*\r\n(?:[^\r]+\r\n)*\r\n(\{[^]*?\}(?=HTTP\/1\.1|$)|0\r\n\r\n|)/g)) {
      const body = m[2]!.startsWith('{') ? JSON.parse(m[2]!) : {};
      out.push(`${m[1]} ${body.code ?? body.message ?? ''}`.trim());
    }
    if (this.ended) out.push('end');
    return out;
  }

  /** Writes 64 KiB chunks until the server refuses them (EPIPE, reset) or `limit` bytes: what it accepted. */
  async flood(limit: number): Promise<number> {
    const chunk = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    while (sent < limit && !this.closed) {
      const ok = await new Promise<boolean>((resolve) => this.socket.write(chunk, (err) => resolve(!err)));
      if (!ok) break;
      sent += chunk.length;
    }
    return sent;
  }

  close() {
    this.socket.destroy();
  }
}

/** A server with the wire path and one without, with the same node:http settings. */
async function pair(server: StartOptions['server'] = {}) {
  // KEYWARD_VERIFY_SHARED_READS=0 in the environment runs the wire path without shared reads.
  const shared = { KEYWARD_VERIFY_SHARED_READS: process.env.KEYWARD_VERIFY_SHARED_READS ?? '1' };
  const [wire, nodeHttp] = [await startServer({ listen: true, server, env: shared }), await startServer({ listen: true, server, env: { KEYWARD_VERIFY_WIRE: '0' } })];
  const worlds = [await world(wire), await world(nodeHttp)];
  const keys = [(await createKey(wire, worlds[0]!)).key, (await createKey(nodeHttp, worlds[1]!)).key];
  return {
    servers: [wire, nodeHttp] as const,
    /** A valid verify request on each server. */
    valid: (i: number) => request(JSON.stringify({ key: keys[i], appId: worlds[i]!.appId })),
    worlds,
    close: async () => {
      await wire.close();
      await nodeHttp.close();
    },
  };
}

/** The same scenario on both servers at once: what each client saw, for the wire path and for node:http. */
async function both(p: Awaited<ReturnType<typeof pair>>, scenario: (c: Client, i: number) => Promise<void>): Promise<[string[], string[]]> {
  const stories = await Promise.all(p.servers.map(async (s, i) => {
    const c = await Client.open(s.url);
    try {
      await scenario(c, i);
      return c.story();
    } finally {
      c.close();
    }
  }));
  return [stories[0]!, stories[1]!];
}

const connections = (s: TestServer) => new Promise<number>((resolve, reject) => s.app.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));

describe('after an answer that closes, the connection is gone', () => {
  let p: Awaited<ReturnType<typeof pair>>;
  beforeAll(async () => {
    p = await pair({ headersTimeout: 300, connectionsCheckingInterval: 50 });
  });
  afterAll(async () => p.close());

  // A client that ignores the server's FIN and keeps sending: node:http destroys the socket once
  // its answer is written, so the client is refused after what the socket buffers hold; a socket
  // only half-closed (as before) kept reading and copying everything sent.
  const closers: [string, (i: number) => string][] = [
    ['a body that is not JSON', () => request('{"key":')],
    ['an empty body', () => request('')],
    ['Connection: close', (i) => p.valid(i).replace('host:', 'connection: close\r\nhost:')],
    ['a request not finished within headersTimeout (408)', () => request('{"key":"x"}').slice(0, 40)],
  ];
  for (const [name, bytes] of closers) {
    it(`${name}: the answer, the end, then nothing more is accepted`, async () => {
      const [wire, nodeHttp] = await both(p, async (c, i) => {
        c.socket.write(bytes(i));
        expect(await c.until(() => c.ended), name).toBe(true);
        const accepted = await c.flood(32 * 1024 * 1024);
        expect(c.error, `${name}: refused`).toMatch(/EPIPE|ECONNRESET/);
        expect(accepted, `${name}: bytes accepted after the close`).toBeLessThan(8 * 1024 * 1024);
      });
      expect(wire).toEqual(nodeHttp);
    }, 60_000);
  }

  it('fifty clients that never close after a closing answer hold no connection on the server', async () => {
    const s = p.servers[0];
    const clients = await Promise.all(Array.from({ length: 50 }, () => Client.open(s.url)));
    for (const c of clients) c.socket.write(request('{"key":'));
    for (const c of clients) expect(await c.until(() => c.ended)).toBe(true);
    for (let i = 0; i < 500 && (await connections(s)) > 0; i++) await sleep(10);
    expect(await connections(s)).toBe(0);
    expect(clients.every((c) => !c.closed)).toBe(true);
    for (const c of clients) c.close();
  });
});

describe('timeouts, as node:http keeps them', () => {
  let p: Awaited<ReturnType<typeof pair>>;
  beforeAll(async () => {
    p = await pair({ headersTimeout: 700, requestTimeout: 1800, keepAliveTimeout: 600, connectionsCheckingInterval: 50 });
  });
  afterAll(async () => p.close());

  it('a connection that sends nothing gets the server\'s 408 (with its body) after headersTimeout', async () => {
    const [wire, nodeHttp] = await both(p, async (c) => {
      expect(await c.until(() => c.ended)).toBe(true);
    });
    expect(wire).toEqual(['408 Client Timeout', 'end']);
    expect(wire).toEqual(nodeHttp);
  });

  it('a body that takes longer than headersTimeout but less than requestTimeout is answered', async () => {
    const [wire, nodeHttp] = await both(p, async (c, i) => {
      const bytes = p.valid(i);
      const bodyAt = bytes.indexOf('\r\n\r\n') + 4;
      c.socket.write(bytes.slice(0, bodyAt + 2));
      // The body comes in five pieces over a second: past headersTimeout (700 ms), within requestTimeout (1800 ms).
      for (let k = 1; k <= 5; k++) {
        await sleep(200);
        c.socket.write(bytes.slice(bodyAt + 2 + Math.floor(((bytes.length - bodyAt - 2) * (k - 1)) / 5), bodyAt + 2 + Math.floor(((bytes.length - bodyAt - 2) * k) / 5)));
      }
      expect(await c.until(() => c.story().length > 0)).toBe(true);
    });
    expect(wire).toEqual(['200 VALID']);
    expect(wire).toEqual(nodeHttp);
  });

  it('keep-alive: a request sent after the advertised timeout, within node\'s one-second grace, is answered; then the idle connection closes', async () => {
    const [wire, nodeHttp] = await both(p, async (c, i) => {
      c.socket.write(p.valid(i));
      expect(await c.until(() => c.story().length === 1)).toBe(true);
      expect(c.data).toMatch(/keep-alive: timeout=0\r\n/i);
      // Past the advertised 600 ms, 600 ms before keepAliveTimeout and the grace run out.
      await sleep(1000);
      c.socket.write(p.valid(i));
      expect(await c.until(() => c.story().length === 2)).toBe(true);
      expect(await c.until(() => c.ended)).toBe(true);
    });
    expect(wire).toEqual(['200 VALID', '200 VALID', 'end']);
    expect(wire).toEqual(nodeHttp);
  });

  it('a request begun on a kept-alive connection and never finished gets the 408', async () => {
    const [wire, nodeHttp] = await both(p, async (c, i) => {
      c.socket.write(p.valid(i));
      expect(await c.until(() => c.story().length === 1)).toBe(true);
      c.socket.write(p.valid(i).slice(0, 50));
      expect(await c.until(() => c.ended)).toBe(true);
    });
    expect(wire).toEqual(['200 VALID', '408 Client Timeout', 'end']);
    expect(wire).toEqual(nodeHttp);
  });
});

describe('half-close and header parsing, as node:http reads them', () => {
  let p: Awaited<ReturnType<typeof pair>>;
  let roots: string[];
  beforeAll(async () => {
    p = await pair();
    roots = [];
    for (const [i, s] of p.servers.entries()) {
      const w = p.worlds[i] as World;
      roots.push((await s.request('POST', `/v1/workspaces/${w.workspaceId}/root-keys`, { token: w.token, body: { name: 'verifier', permissions: ['keys:verify'] } })).body.key);
    }
  });
  afterAll(async () => p.close());

  const cases: [string, (i: number) => string | Buffer][] = [
    ['a request cut short by the client\'s FIN', (i) => p.valid(i).slice(0, 60)],
    ['a body cut short by the client\'s FIN', (i) => p.valid(i).slice(0, -3)],
    ['NBSP before Bearer: not a root key', (i) => Buffer.from(request(JSON.stringify({ key: generateKey('acme', 'live').plaintext }), { authorization: `\xa0Bearer ${roots[i]}` }), 'latin1')],
    ['a tab after the length', (i) => p.valid(i).replace(/content-length: (\d+)/, 'content-length: $1\t')],
    ['NBSP after the length', (i) => Buffer.from(p.valid(i).replace(/content-length: (\d+)/, 'content-length: $1\xa0'), 'latin1')],
    ['Proxy-Connection: close, then another request', (i) => p.valid(i).replace('host:', 'proxy-connection: close\r\nhost:') + p.valid(i)],
    ['Connection: close, then another request', (i) => p.valid(i).replace('host:', 'connection: close\r\nhost:') + p.valid(i)],
    ['a header block ended by bare LFs', (i) => p.valid(i).replace('\r\n\r\n', '\n\n')],
    ['a control byte in a header still coming', (i) => p.valid(i).slice(0, 50) + '\x01'],
    ['Host after a thousand headers (node keeps the first thousand)', (i) => p.valid(i).replace('host: 127.0.0.1\r\n', 'a:\r\n'.repeat(1000)).replace('\r\n\r\n', '\r\nhost: 127.0.0.1\r\n\r\n')],
    ['Authorization after a thousand headers', (i) => request(JSON.stringify({ key: generateKey('acme', 'live').plaintext }), { ...Object.fromEntries(Array.from({ length: 1000 }, (_, k) => [`x${k}`, ''])), authorization: `Bearer ${roots[i]}` })],
    ['a valid request, then bytes node refuses, in one read', (i) => p.valid(i) + '"garbage'],
  ];
  for (const [name, bytes] of cases) {
    it(`${name}: the same answers and end`, async () => {
      const [wire, nodeHttp] = await both(p, async (c, i) => {
        c.socket.write(bytes(i));
        // Whatever node:http answers at once comes first; the FIN then shows what the server still waited for.
        await c.until(() => c.ended || c.closed, 300);
        if (!c.ended && !c.closed) c.socket.end();
        await c.until(() => c.ended || c.closed);
      });
      expect(wire, name).toEqual(nodeHttp);
    });
  }
});

describe('shutdown', () => {
  it('closes an idle connection at once, as node:http\'s server.close() does, though its client never closes', async () => {
    const s = await startServer({ listen: true, server: { keepAliveTimeout: 60_000 } });
    const w = await world(s);
    const key = (await createKey(s, w)).key;
    const c = await Client.open(s.url);
    c.socket.write(request(JSON.stringify({ key, appId: w.appId })));
    expect(await c.until(() => c.story().length === 1)).toBe(true);
    // With a minute of keep-alive left, a close that waited for it would not finish here.
    const closed = await Promise.race([s.close().then(() => 'closed'), sleep(10_000).then(() => 'still open')]);
    expect(closed).toBe('closed');
    expect(c.ended).toBe(true);
    c.close();
  });

  it('the server process exits 0 with clients that sent half a request, nothing, or went idle', async () => {
    const node = await startProcess({ KEYWARD_DATA_DIR: (await import('node:fs')).mkdtempSync((await import('node:path')).join((await import('node:os')).tmpdir(), 'keyward-shutdown-')), KEYWARD_SHUTDOWN_DRAIN_MS: '300' });
    const silent = await Client.open(node.url);
    const partial = await Client.open(node.url);
    partial.socket.write(request('{"key":"x","appId":"app_x"}').slice(0, 60));
    const idle = await Client.open(node.url);
    idle.socket.write(request('{"key":"x","appId":"app_x"}'));
    expect(await idle.until(() => idle.story().length === 1)).toBe(true);
    // node:http's server.close() would wait for the first two for ever; the drain ends them.
    const code = await node.kill('SIGTERM');
    expect(code).toBe(0);
    for (const c of [silent, partial, idle]) {
      expect(await c.until(() => c.ended || c.closed)).toBe(true);
      c.close();
    }
  }, 30_000);
});
