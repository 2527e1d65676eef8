// Verify connections served from the socket. Node's HTTP server spends about as much JavaScript per
// request on its request and response objects, streams and events as verify spends deciding
// (README, design notes: a constant answer costs 16 µs of CPU this way against 30 µs through
// node:http). So a connection whose first request is `POST /v1/keys/verify` is read here: the
// request is parsed under a strict subset of HTTP/1.1, answered by the same code as the node:http
// fast path, and written as one buffer. The first request that is not exactly that — another
// route or method, HTTP/1.0, Transfer-Encoding, Expect, Upgrade, a query string, another content
// type, a header this subset does not accept, a body over the limit, a closing server — hands the
// connection, at that request's first byte, to node:http for good; it answers as it always does
// (400, 413, 431, Fastify's routes). Nothing is parsed here that node:http would parse otherwise.
import { STATUS_CODES, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { answerHeaders, JSON_TYPE } from '../verify/fastpath.js';
import type { VerifyAnswer, VerifyAnswerer } from '../verify/answer.js';
import { readInto, readIntoEnd } from './socket-read.js';

const REQUEST_LINE = 'POST /v1/keys/verify HTTP/1.1\r\n';
const REQUEST_BYTES = Buffer.from(REQUEST_LINE, 'latin1');
/**
 * Header lines as RFC 9110/9112 allow them, minus obs-fold: a token, a colon, then visible ASCII,
 * obs-text, spaces and tabs, each line ending in CRLF. Anything else is node:http's to refuse.
 */
const HEADER_LINES = /^(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*\r\n)*$/;
const DIGITS = /^[0-9]{1,15}$/;
/** Requests answered out of one connection before its later ones wait (pipelining, slow store). */
const MAX_IN_FLIGHT = 32;
/** How often, at most, partial requests are checked against the server's headersTimeout. */
const SWEEP_MS = 1_000;
/** What node:http answers a request that took longer than headersTimeout, before it closes. */
const TIMED_OUT = 'HTTP/1.1 408 Request Timeout\r\nconnection: close\r\n\r\n';

export interface WireOptions {
  bodyLimit: number;
  isClosing: () => boolean;
  /** Node's own limit on a request's header block (http.maxHeaderSize). */
  maxHeaderSize: number;
  /** After its first read, a verify connection reads into one buffer shared by all (src/http/socket-read.ts). */
  sharedReads: boolean;
}

/** What the header block says, or null when this connection must go to node:http. */
interface Head {
  length: number;
  authorization: string | undefined;
  close: boolean;
}

/** The parts of a header block verify needs; null for anything outside the subset. */
function readHead(block: string, bodyLimit: number): Head | null {
  if (!HEADER_LINES.test(block)) return null;
  let length: string | undefined;
  let type: string | undefined;
  let authorization: string | undefined;
  let host = false;
  let close = false;
  for (let at = 0; at < block.length;) {
    const eol = block.indexOf('\r\n', at);
    const colon = block.indexOf(':', at);
    const n = colon - at;
    // Only names of these lengths matter; the rest are read past without building a string.
    if (n === 4 || n === 6 || n === 7 || n === 10 || n === 12 || n === 13 || n === 14 || n === 17) {
      const name = block.slice(at, colon).toLowerCase();
      const value = block.slice(colon + 1, eol).trim();
      switch (name) {
        case 'host':
          if (host) return null;
          host = true;
          break;
        case 'content-length':
          if (length !== undefined || !DIGITS.test(value)) return null;
          length = value;
          break;
        case 'content-type':
          if (type !== undefined) return null;
          type = value;
          break;
        case 'authorization':
          if (authorization !== undefined) return null;
          authorization = value;
          break;
        case 'connection': {
          const tokens = value.toLowerCase().split(',').map((t) => t.trim());
          if (tokens.includes('upgrade')) return null;
          if (tokens.includes('close')) close = true;
          break;
        }
        case 'transfer-encoding':
        case 'expect':
        case 'upgrade':
          return null;
      }
    }
    at = eol + 2;
  }
  if (!host || length === undefined || type === undefined || !JSON_TYPE.test(type)) return null;
  const bytes = Number(length);
  if (bytes > bodyLimit) return null;
  return { length: bytes, authorization, close };
}

let dateSecond = -1;
let dateText = '';
/** The Date header's value, formatted once a second (as node:http does). */
function httpDate(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(second * 1000).toUTCString();
  }
  return dateText;
}

/** An answer as bytes on the wire: status line, the fast path's headers, node:http's own, body. */
function wireAnswer(a: VerifyAnswer, close: boolean, keepAliveSec: number): string {
  const headers = answerHeaders(a);
  let s = `HTTP/1.1 ${a.status} ${STATUS_CODES[a.status] ?? ''}\r\n`;
  for (let i = 0; i < headers.length; i += 2) s += headers[i] + ': ' + headers[i + 1] + '\r\n';
  s += 'date: ' + httpDate() + '\r\n';
  if (!a.close) s += close ? 'connection: close\r\n' : 'connection: keep-alive\r\nkeep-alive: timeout=' + keepAliveSec + '\r\n';
  return s + '\r\n' + a.body;
}

class VerifyConnection {
  private buffer: Buffer | null = null;
  /** When the buffered partial request began (0: none): bounded by the server's headersTimeout. */
  partialSince = 0;
  /** Answers in request order; a slot is filled when its (possibly asynchronous) answer is ready. */
  private readonly slots: (string | null)[] = [];
  private first = 0;
  /** A later request was for node:http: hand over once every earlier answer is written. */
  private handOver = false;
  /** No more requests are read: an answer closes the connection, or the server is stopping. */
  private finishing = false;
  /** End the connection once every answer is written. */
  private closeAfter = false;
  /** The client sent its last byte: answer what came in full, then end. */
  private ended = false;
  /** Reading stopped with MAX_IN_FLIGHT answers outstanding. */
  private blocked = false;

  constructor(private readonly wire: Wire, readonly socket: Socket) {
    this.lastActive = wire.clock;
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('drain', this.onDrain);
    socket.on('close', this.onClose);
  }

  get idle(): boolean {
    return this.buffer === null && this.first === this.slots.length;
  }

  /** Shutdown: a connection with no answer outstanding ends now (a partial request with it), a busy one after its answers. */
  stop(): void {
    this.finishing = true;
    this.closeAfter = true;
    if (this.first === this.slots.length) this.socket.end();
  }

  /** When bytes last came, by the sweeper's coarse clock (no timer per connection to refresh). */
  lastActive: number;

  /** Reads land in the Wire's shared buffer (src/http/socket-read.ts) rather than a Buffer each. */
  private shared = false;

  private readonly onData = (chunk: Buffer): void => {
    this.take(chunk);
    // A connection still here after its first verify reads into the shared buffer from now on.
    if (!this.shared && !this.handOver && !this.finishing && this.wire.readBuffer !== null) {
      this.shared = readInto(this.socket, this.wire.readBuffer, this.onRead);
    }
  };

  /** A read into the shared buffer: its bytes are parsed now, and what is left of them copied (parse). */
  private readonly onRead = (bytes: number, shared: Buffer): void => this.take(shared.subarray(0, bytes));

  private take(chunk: Buffer): void {
    this.lastActive = this.wire.clock;
    this.buffer = this.buffer === null ? chunk : Buffer.concat([this.buffer, chunk]);
    this.parse();
  }

  private parse(): void {
    const { answerer, options } = this.wire;
    let out = '';
    let buf = this.buffer;
    while (buf !== null && !this.finishing && !this.handOver) {
      if (this.slots.length - this.first >= MAX_IN_FLIGHT) {
        this.blocked = true;
        this.socket.pause();
        break;
      }
      // The request line first: anything else goes to node:http without waiting for its headers.
      const prefix = Math.min(buf.length, REQUEST_LINE.length);
      if (buf.compare(REQUEST_BYTES, 0, prefix, 0, prefix) !== 0 || options.isClosing()) {
        this.handOver = true;
        break;
      }
      const end = buf.indexOf('\r\n\r\n', REQUEST_LINE.length - 2);
      if (end < 0) {
        if (buf.length > options.maxHeaderSize) this.handOver = true;
        break;
      }
      const head = end + 4 > options.maxHeaderSize ? null : readHead(buf.toString('latin1', REQUEST_LINE.length, end + 2), options.bodyLimit);
      if (head === null) {
        this.handOver = true;
        break;
      }
      const bodyEnd = end + 4 + head.length;
      if (buf.length < bodyEnd) break;
      const text = buf.toString('utf8', end + 4, bodyEnd);
      buf = bodyEnd === buf.length ? null : buf.subarray(bodyEnd);
      this.partialSince = 0;
      const answer = answerer.answer(text, head.authorization);
      const close = head.close || (!(answer instanceof Promise) && answer.close);
      if (close) this.finishing = this.closeAfter = true;
      if (!(answer instanceof Promise) && this.first === this.slots.length) {
        out += wireAnswer(answer, close, this.keepAliveSec());
        continue;
      }
      if (out) {
        this.socket.write(out);
        out = '';
      }
      const slot = this.slots.push(null) - 1;
      if (answer instanceof Promise) {
        void answer.then((a) => {
          if (a.close) this.finishing = this.closeAfter = true;
          this.fill(slot, wireAnswer(a, head.close || a.close, this.keepAliveSec()));
        });
      } else {
        this.fill(slot, wireAnswer(answer, close, this.keepAliveSec()));
      }
    }
    // Bytes still in the shared buffer are copied: the next read, on any connection, overwrites them.
    this.buffer = buf !== null && buf.buffer === this.wire.readBuffer?.buffer ? Buffer.from(buf) : buf;
    this.partialSince = buf === null || this.handOver ? 0 : this.partialSince || Date.now();
    if (out && !this.socket.write(out)) this.socket.pause();
    this.settle();
  }

  private keepAliveSec(): number {
    return Math.floor(this.wire.server.keepAliveTimeout / 1000);
  }

  /** Writes every answer that is ready and has no unanswered request before it. */
  private fill(slot: number, text: string): void {
    this.lastActive = this.wire.clock;
    this.slots[slot] = text;
    let out = '';
    while (this.first < this.slots.length && this.slots[this.first] !== null) out += this.slots[this.first++]!;
    if (this.first === this.slots.length) {
      this.slots.length = 0;
      this.first = 0;
    }
    if (out && !this.socket.destroyed && !this.socket.write(out)) this.socket.pause();
    this.settle();
  }

  /** Once every answer so far is written: read on, close, or hand over. */
  private settle(): void {
    if (this.first !== this.slots.length || this.socket.destroyed) return;
    if (this.blocked) {
      this.blocked = false;
      if (!this.ended) this.socket.resume();
      this.parse();
      return;
    }
    // A client that ended cannot be handed over (its stream is over): what came in full is
    // answered, a partial or handed-over request is dropped with the connection.
    if (this.closeAfter || this.ended) {
      this.wire.forget(this);
      if (!this.socket.writableEnded) this.socket.end();
      return;
    }
    if (this.handOver) {
      this.wire.handOver(this, this.buffer);
      return;
    }
    if (this.socket.isPaused() && !this.socket.writableNeedDrain) this.socket.resume();
  }

  private readonly onDrain = (): void => this.settle();

  private readonly onEnd = (): void => {
    this.ended = true;
    this.parse();
  };

  private readonly onClose = (): void => this.wire.forget(this);

  private readonly onError = (): void => {
    this.wire.forget(this);
    this.socket.destroy();
  };

  /** Detaches every listener of this connection from its socket (before node:http takes it). */
  detach(): void {
    const s = this.socket;
    if (this.shared) readIntoEnd(s);
    s.removeListener('data', this.onData);
    s.removeListener('end', this.onEnd);
    s.removeListener('error', this.onError);
    s.removeListener('drain', this.onDrain);
    s.removeListener('close', this.onClose);
  }

  /** Answers what node:http answers a request that took too long, and closes. */
  timedOut(): void {
    this.finishing = this.closeAfter = true;
    this.buffer = null;
    this.partialSince = 0;
    this.socket.end(TIMED_OUT);
  }

  /** Past the server's headersTimeout with a request still incomplete. */
  stale(now: number, headersTimeoutMs: number): boolean {
    return this.partialSince !== 0 && this.first === this.slots.length && now - this.partialSince > headersTimeoutMs;
  }
}

/**
 * Takes the server's new connections; those that do not start with a verify request, and the rest
 * of those that stop doing so, go to node:http's own connection handler.
 */
export class Wire {
  private readonly connections = new Set<VerifyConnection>();
  private readonly nodeHttp: (socket: Socket) => void;
  private sweeper: NodeJS.Timeout | undefined;
  /** Date.now() as of the last sweep: when connections were last active, to the second. */
  clock = Date.now();
  /** The one buffer every verify connection reads into, used and released within each read. */
  readonly readBuffer: Buffer | null;

  constructor(readonly server: Server, readonly answerer: VerifyAnswerer, readonly options: WireOptions) {
    this.readBuffer = !options.sharedReads ? null : Buffer.allocUnsafe(64 * 1024);
    const listeners = server.listeners('connection') as ((socket: Socket) => void)[];
    const own = listeners.find((l) => l.name === 'connectionListener');
    if (listeners.length !== 1 || own === undefined) throw new Error('node:http connection handler not found where expected');
    this.nodeHttp = own;
    server.removeListener('connection', own);
    server.on('connection', (socket: Socket) => this.connections.add(new VerifyConnection(this, socket)));
    server.once('listening', () => this.scheduleSweep());
    server.once('close', () => clearTimeout(this.sweeper));
  }

  handOver(conn: VerifyConnection, rest: Buffer | null): void {
    this.forget(conn);
    conn.detach();
    const socket = conn.socket;
    // The unread bytes go back to the front of the socket's stream, where node:http reads first.
    socket.pause();
    if (rest !== null) socket.unshift(rest);
    this.nodeHttp.call(this.server, socket);
    socket.resume();
  }

  forget(conn: VerifyConnection): void {
    this.connections.delete(conn);
  }

  /** Shutdown: idle connections end now, busy ones after their answers (as node:http's own do). */
  stop(): void {
    for (const c of this.connections) c.stop();
  }

  private scheduleSweep(): void {
    this.sweeper = setTimeout(() => {
      this.sweep();
      this.scheduleSweep();
    }, Math.max(20, Math.min(SWEEP_MS, this.server.headersTimeout / 4)));
    this.sweeper.unref();
  }

  /** Once a second: idle connections past keepAliveTimeout close; a request left incomplete past headersTimeout gets node:http's 408 and its connection closes (slowloris). */
  private sweep(): void {
    const now = (this.clock = Date.now());
    for (const c of this.connections) {
      // Keep-alive: an idle connection closes after keepAliveTimeout, as node:http's do.
      if (c.idle && now - c.lastActive > this.server.keepAliveTimeout) {
        this.forget(c);
        c.socket.destroy();
        continue;
      }
      if (c.stale(now, this.server.headersTimeout)) {
        this.forget(c);
        c.timedOut();
      }
    }
  }
}
