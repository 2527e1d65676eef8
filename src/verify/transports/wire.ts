// Verify connections served from the socket. Node's HTTP server spends about as much JavaScript per
// request on its request and response objects, streams and events as verify spends deciding
// (docs/design/verify-path.md: a constant answer costs 16 µs of CPU this way against 30 µs through
// node:http). So a connection whose first request is `POST /v1/keys/verify` is read here: the
// request is parsed under a strict subset of HTTP/1.1, answered by the same code as the node:http
// fast path, and written as one buffer. The first request that is not exactly that — another
// route or method, HTTP/1.0, Transfer-Encoding, Expect, Upgrade, Connection other than keep-alive,
// Proxy-Connection, a query string, another content type, a header value this subset does not read
// exactly as llhttp does, more headers than node:http keeps, a body over the limit, a closing
// server — hands the connection, from the first byte of the read that holds it, to node:http for good; it answers
// as it always does (400, 413, 431, Fastify's routes). Nothing is parsed here that node:http would
// parse otherwise (src/verify/transports/wire-parse.ts), and a connection's fate follows node:http's own
// (docs/verify-wire.md): the same timeouts and 408, half-close, destroy after a closing answer,
// shutdown.
import { STATUS_CODES, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { answerHeaders } from './fastpath.js';
import type { VerifyAnswer, VerifyAnswerer } from '../answer.js';
import { readInto, readIntoEnd } from './socket-read.js';
import { NODE_HEADER_PAIRS, PartialHead, parserTicks, readHead, REQUEST_BYTES, REQUEST_LINE, type Head } from './wire-parse.js';


/** Requests answered out of one connection before its later ones wait (pipelining, slow store). */
const MAX_IN_FLIGHT = 32;
/** How often, at most, connections are checked against the server's timeouts. */
const SWEEP_MS = 1_000;
export interface WireOptions {
  bodyLimit: number;
  isClosing: () => boolean;
  /** Node's own limit on a request's header block (http.maxHeaderSize). */
  maxHeaderSize: number;
  /** After its first read, a verify connection reads into one buffer shared by all (src/verify/transports/socket-read.ts). */
  sharedReads: boolean;
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
function wireAnswer(a: VerifyAnswer, keepAliveMs: number): string {
  const headers = answerHeaders(a);
  let s = `HTTP/1.1 ${a.status} ${STATUS_CODES[a.status] ?? ''}\r\n`;
  for (let i = 0; i < headers.length; i += 2) s += headers[i] + ': ' + headers[i + 1] + '\r\n';
  s += 'date: ' + httpDate() + '\r\n';
  if (!a.close) s += keepAliveMs > 0 ? 'connection: keep-alive\r\nkeep-alive: timeout=' + Math.floor(keepAliveMs / 1000) + '\r\n' : 'connection: keep-alive\r\n';
  return s + '\r\n' + a.body;
}

/** A client error as node:http reports it to the server's 'clientError' listeners (Fastify's answers it). */
function clientError(message: string, code: string): Error {
  return Object.assign(new Error(message), { code });
}

/** What node:http writes for a client error when nobody listens for 'clientError'. */
const DEFAULT_CLIENT_ERROR: Record<string, string> = {
  ERR_HTTP_REQUEST_TIMEOUT: `HTTP/1.1 408 ${STATUS_CODES[408]}\r\nConnection: close\r\n\r\n`,
};
const BAD_REQUEST = `HTTP/1.1 400 ${STATUS_CODES[400]}\r\nConnection: close\r\n\r\n`;
const noop = (): void => {};

/** Where the complete requests of one read lie (reused: a read is framed, then answered, synchronously). */
const FRAMES = { begins: [] as number[], starts: [] as number[], ends: [] as number[], authorizations: [] as (string | undefined)[] };

/** An answer waiting for the ones before it: its bytes once ready, and whether it closes the connection. */
interface Slot {
  text: string | null;
  close: boolean;
}

const enum State {
  /** Reading requests. */
  Reading,
  /** A closing answer is written: later bytes are read and dropped until the socket is destroyed. */
  Closing,
  /** The client ended its side and the server ended its own (node:http's httpAllowHalfOpen = false). */
  Ended,
  /** Handed to node:http, or destroyed. */
  Gone,
}

class VerifyConnection {
  private state = State.Reading;
  /** The unfinished request's bytes so far, copied out of the reads (its own buffer, grown by doubling). */
  private held: Buffer | null = null;
  private heldLength = 0;
  /** The unfinished request's header block once read, and where its body starts within it. */
  private head: Head | null = null;
  private bodyStart = 0;
  /** How far into the unfinished request the header block's end was searched for. */
  private searched = 0;
  /** The unfinished header block, checked as its bytes come. */
  private partial: PartialHead | null = null;
  /** Answers in request order; a slot is filled when its (possibly asynchronous) answer is ready. */
  private readonly slots: Slot[] = [];
  private first = 0;
  /** A later request was for node:http: hand over once every earlier answer is written. */
  private handOver = false;
  /** A closing answer waits for earlier ones: no later byte is read as a request. */
  private lastQueued = false;
  /** Reading stopped with MAX_IN_FLIGHT answers outstanding. */
  private blocked = false;
  /** Reads land in the Wire's shared buffer (src/verify/transports/socket-read.ts) rather than a Buffer each. */
  private shared = false;
  /**
   * When the current request began (its first byte; a new connection counts as one from its
   * start, as node:http's do), 0 between requests: headersTimeout and requestTimeout run from it.
   */
  messageStart: number;
  /** A byte of the current request has come (node's parser restarts the clock at a message's first byte). */
  private begun = false;
  headersDone = false;
  /** node:http's keep-alive timer: set once every answer is written, cleared by the next request's headers. */
  keepAlive = false;
  /** When bytes last came or went: the keep-alive timer runs from it (as a socket timeout does). */
  lastActive: number;

  constructor(private readonly wire: Wire, readonly socket: Socket) {
    this.messageStart = this.lastActive = Date.now();
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('end', this.onEnd);
    socket.on('error', this.onError);
    socket.on('drain', this.onDrain);
    socket.on('close', this.onClose);
  }

  /** What node:http's closeIdleConnections closes: no request begun and none unanswered. */
  get idle(): boolean {
    return this.state === State.Reading && this.messageStart === 0 && this.first === this.slots.length && !this.handOver && !this.lastQueued;
  }

  private readonly onData = (chunk: Buffer): void => {
    this.take(chunk);
    // A connection still here after its first verify reads into the shared buffer from now on.
    if (!this.shared && this.state === State.Reading && !this.handOver && this.wire.readBuffer !== null) {
      this.shared = readInto(this.socket, this.wire.readBuffer, this.onRead);
    }
  };

  /** A read into the shared buffer: its bytes are parsed now, and what is left of them copied (keep). */
  private readonly onRead = (bytes: number, shared: Buffer): void => this.take(shared.subarray(0, bytes));

  private take(chunk: Buffer): void {
    // After a closing answer node:http goes on reading (and drops) until the socket is destroyed.
    if (this.state !== State.Reading || this.lastQueued) return;
    this.lastActive = Date.now();
    if (!this.begun) {
      this.begun = true;
      this.messageStart = this.lastActive;
      this.headersDone = false;
    }
    if (this.heldLength === 0) {
      const used = this.parse(chunk);
      // A read's bytes (maybe the shared buffer, overwritten by the next read on any connection) are copied.
      if (used < chunk.length && this.state === State.Reading && !this.lastQueued) {
        if (this.head !== null) this.held = Buffer.allocUnsafeSlow(this.bodyStart + this.head.length);
        this.append(chunk.subarray(used));
      }
    } else {
      this.append(chunk);
      this.consumeHeld(this.parse(this.held!.subarray(0, this.heldLength)));
    }
    this.settle();
  }

  /** Drops the first `used` bytes of the unfinished request's buffer (they were complete requests). */
  private consumeHeld(used: number): void {
    if (used === this.heldLength || this.state !== State.Reading || this.lastQueued) {
      this.held = null;
      this.heldLength = 0;
    } else if (used > 0) {
      this.held!.copyWithin(0, used, this.heldLength);
      this.heldLength -= used;
    }
  }

  /** Appends a read to the unfinished request: each byte is copied once (a slow client costs no more per byte). */
  private append(chunk: Buffer): void {
    const need = this.heldLength + chunk.length;
    if (this.held === null || need > this.held.length) {
      const grown = Buffer.allocUnsafeSlow(Math.max(need, 2 * (this.held?.length ?? 0), 1024));
      this.held?.copy(grown, 0, 0, this.heldLength);
      this.held = grown;
    }
    chunk.copy(this.held, this.heldLength);
    this.heldLength = need;
  }

  /**
   * Answers every complete request in `bytes`; returns how many bytes it used (all of them once the
   * connection closes). The rest is an unfinished request, or node:http's.
   *
   * Every complete request of the read is framed before any is answered: node:http parses a whole
   * read at once and writes answers only where its parser lets queued work run (parserTicks), so
   * when it meets bytes it refuses, the answers due since are never written, only its 400. A read
   * with a request that is node:http's is therefore node:http's from its first byte: it answers the
   * verify requests before that one itself, exactly when it would have.
   */
  private parse(bytes: Buffer): number {
    const { answerer, options } = this.wire;
    let count = 0;
    let at = 0;
    let handOver = false;
    frames: while (at < bytes.length) {
      // What an earlier read learnt of the unfinished request it left (always at the start).
      let head = at === 0 ? this.head : null;
      let bodyStart = at + this.bodyStart;
      if (head === null) {
        // The request line first: anything else goes to node:http without waiting for its headers.
        const prefix = Math.min(bytes.length - at, REQUEST_LINE.length);
        if (bytes.compare(REQUEST_BYTES, 0, prefix, at, at + prefix) !== 0 || options.isClosing()) {
          handOver = true;
          break frames;
        }
        const end = bytes.indexOf('\r\n\r\n', at + Math.max(REQUEST_LINE.length - 2, this.searched));
        if (end < 0) {
          // Node refuses some bytes as soon as they arrive (a bare LF, a control character): so does this.
          if (bytes.length - at > options.maxHeaderSize || !(this.partial ??= new PartialHead()).accepts(bytes, at, this.wire.maxHeaders)) handOver = true;
          else this.searched = Math.max(0, bytes.length - at - 3);
          break frames;
        }
        head = end + 4 - at > options.maxHeaderSize ? null : readHead(bytes.toString('latin1', at + REQUEST_LINE.length, end + 2), options.bodyLimit, this.wire.maxHeaders);
        if (head === null) {
          handOver = true;
          break frames;
        }
        bodyStart = end + 4;
        // node:http clears the keep-alive timer once a request's headers are in; requestTimeout governs the body.
        this.headersDone = true;
        this.keepAlive = false;
      }
      const bodyEnd = bodyStart + head.length;
      if (bytes.length < bodyEnd) {
        this.head = head;
        this.bodyStart = bodyStart - at;
        break;
      }
      FRAMES.begins[count] = at;
      FRAMES.starts[count] = bodyStart;
      FRAMES.ends[count] = bodyEnd;
      FRAMES.authorizations[count++] = head.authorization;
      at = bodyEnd;
      this.forgetUnfinished();
      this.headersDone = false;
      this.begun = at < bytes.length;
      this.messageStart = this.begun ? this.lastActive : 0;
    }
    if (handOver) {
      // The whole read is node:http's, replayed as its parser would have met it (handOver below).
      this.forgetUnfinished();
      this.handOver = true;
      this.socket.pause();
      return 0;
    }
    let out = '';
    for (let i = 0; i < count; i++) {
      if (this.slots.length - this.first >= MAX_IN_FLIGHT) {
        // The rest waits in the connection's buffer and is framed again once answers go out.
        this.blocked = true;
        this.socket.pause();
        this.forgetUnfinished();
        at = FRAMES.begins[i]!;
        break;
      }
      const answer = answerer.answer(bytes.toString('utf8', FRAMES.starts[i], FRAMES.ends[i]), FRAMES.authorizations[i]);
      if (!(answer instanceof Promise) && this.first === this.slots.length) {
        out += wireAnswer(answer, this.wire.server.keepAliveTimeout);
        if (answer.close) {
          this.closeSoon(out);
          return bytes.length;
        }
        continue;
      }
      if (out) {
        this.write(out);
        out = '';
      }
      const slot = this.slots.push({ text: null, close: false }) - 1;
      if (answer instanceof Promise) {
        void answer.then((a) => this.fill(slot, a));
      } else {
        this.fill(slot, answer);
        // A closing answer ends the connection: nothing after it is read as a request.
        if (answer.close) {
          this.lastQueued = true;
          return bytes.length;
        }
      }
    }
    FRAMES.authorizations.fill(undefined, 0, count);
    if (out) this.write(out);
    return at;
  }

  /** What was learnt of an unfinished request: gone once it is complete, or is node:http's. */
  private forgetUnfinished(): void {
    this.head = null;
    this.bodyStart = 0;
    this.searched = 0;
    this.partial = null;
  }

  private write(text: string): void {
    this.lastActive = Date.now();
    if (!this.socket.write(text)) this.socket.pause();
    // node:http starts the keep-alive timer when the last answer is written and no request is being read.
    if (this.first === this.slots.length && !this.headersDone) this.keepAlive = true;
  }

  /** Writes every answer that is ready and has no unanswered request before it; a closing one ends the connection. */
  private fill(slot: number, a: VerifyAnswer): void {
    // Answers that come after the connection ended or closed are dropped, as node:http drops them.
    if (this.state !== State.Reading) return;
    const s = this.slots[slot]!;
    s.text = wireAnswer(a, this.wire.server.keepAliveTimeout);
    s.close = a.close;
    let out = '';
    while (this.first < this.slots.length && this.slots[this.first]!.text !== null) {
      const ready = this.slots[this.first++]!;
      out += ready.text!;
      if (ready.close) {
        this.slots.length = this.first = 0;
        this.closeSoon(out);
        return;
      }
    }
    if (this.first === this.slots.length) this.slots.length = this.first = 0;
    if (out) this.write(out);
    this.settle();
  }

  /** Once every answer so far is written: read on, or hand over; the keep-alive timer starts. */
  private settle(): void {
    if (this.first !== this.slots.length || this.state !== State.Reading || this.lastQueued) return;
    if (this.blocked) {
      this.blocked = false;
      this.socket.resume();
      if (this.heldLength > 0) {
        this.consumeHeld(this.parse(this.held!.subarray(0, this.heldLength)));
        this.settle();
      }
      return;
    }
    if (this.handOver) {
      this.wire.handOver(this, this.heldLength === 0 ? null : this.held!.subarray(0, this.heldLength));
      return;
    }
    if (this.socket.isPaused() && !this.socket.writableNeedDrain) this.socket.resume();
  }

  /** What node:http does after an answer that closes: end once it is written, then destroy (socket.destroySoon). */
  private closeSoon(last: string): void {
    this.state = State.Closing;
    this.release();
    this.wire.forget(this);
    const socket = this.socket;
    socket.resume();
    socket.end(last);
    if (socket.writableFinished) socket.destroy();
    else socket.once('finish', () => socket.destroy());
  }

  private readonly onDrain = (): void => this.settle();

  /**
   * The client ended its side. node:http (httpAllowHalfOpen = false) ends the connection at once;
   * answers not yet written are dropped. A request cut short is a parse error: its clientError
   * (Fastify: a 400) and destroy.
   */
  private readonly onEnd = (): void => {
    if (this.state !== State.Reading) return;
    if (this.heldLength > 0 && !this.handOver) {
      this.fail(clientError('Parse Error: Invalid EOF state', 'HPE_INVALID_EOF_STATE'));
      return;
    }
    this.state = State.Ended;
    this.release();
    this.wire.forget(this);
    this.socket.end();
  };

  private readonly onClose = (): void => {
    this.state = State.Gone;
    this.release();
    this.wire.forget(this);
  };

  private readonly onError = (): void => {
    this.wire.forget(this);
    this.socket.destroy();
  };

  /** Drops what this connection holds: the unfinished request and the answers not yet written. */
  private release(): void {
    this.held = null;
    this.heldLength = 0;
    this.head = null;
    this.slots.length = this.first = 0;
  }

  /** Detaches every listener of this connection from its socket (before node:http takes it). */
  detach(): void {
    const s = this.socket;
    this.state = State.Gone;
    if (this.shared) readIntoEnd(s);
    s.removeListener('data', this.onData);
    s.removeListener('end', this.onEnd);
    s.removeListener('error', this.onError);
    s.removeListener('drain', this.onDrain);
    s.removeListener('close', this.onClose);
  }

  /** A request past headersTimeout or requestTimeout: node:http's 408, through the server's clientError listeners. */
  timedOut(): void {
    this.fail(clientError('Request timeout', 'ERR_HTTP_REQUEST_TIMEOUT'));
  }

  /** A client error as node:http handles one (socketOnError): the server's listeners answer and destroy, else node's default. */
  private fail(err: Error & { code?: string }): void {
    this.wire.forget(this);
    this.release();
    this.detach();
    const socket = this.socket;
    socket.on('error', noop);
    if (!this.wire.server.emit('clientError', err, socket)) {
      if (socket.writable) socket.write(DEFAULT_CLIENT_ERROR[err.code ?? ''] ?? BAD_REQUEST);
      socket.destroy(err);
    }
  }

  /** The deadline node:http's connection check applies to a request in progress (a new connection counts as one). */
  expired(now: number, headersTimeout: number, requestTimeout: number): boolean {
    if (this.messageStart === 0 || this.state !== State.Reading) return false;
    const age = now - this.messageStart;
    return (headersTimeout > 0 && !this.headersDone && age > headersTimeout) || (requestTimeout > 0 && age > requestTimeout);
  }
}

/** A finite, non-negative setting of node's HTTP server, else its default (as node reads them). */
function setting(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : fallback;
}

/**
 * Takes the server's new connections; those that do not start with a verify request, and the rest
 * of those that stop doing so, go to node:http's own connection handler. The server's
 * closeIdleConnections() and closeAllConnections() cover the connections read here too.
 */
export class Wire {
  private readonly connections = new Set<VerifyConnection>();
  private readonly nodeHttp: (socket: Socket) => void;
  private sweeper: NodeJS.Timeout | undefined;
  /** After server.close(), node:http no longer checks its connections' request deadlines; nor does this. */
  private stopping = false;
  /** Handed-over sockets whose keep-alive timer runs until node:http reads their next request's headers. */
  private readonly keepAliveHandedOver = new Set<Socket>();
  /** The one buffer every verify connection reads into, used and released within each read. */
  readonly readBuffer: Buffer | null;
  /** node:http reads this many headers of a request and ignores the rest (server.maxHeadersCount). */
  readonly maxHeaders: number;

  constructor(readonly server: Server, readonly answerer: VerifyAnswerer, readonly options: WireOptions) {
    this.readBuffer = !options.sharedReads ? null : Buffer.allocUnsafe(64 * 1024);
    const listeners = server.listeners('connection') as ((socket: Socket) => void)[];
    const own = listeners.find((l) => l.name === 'connectionListener');
    if (listeners.length !== 1 || own === undefined) throw new Error('node:http connection handler not found where expected');
    this.nodeHttp = own;
    const pairs = typeof server.maxHeadersCount === 'number' ? server.maxHeadersCount << 1 : NODE_HEADER_PAIRS;
    this.maxHeaders = pairs > 0 ? Math.ceil(pairs / 2) : Infinity;
    server.removeListener('connection', own);
    server.on('connection', (socket: Socket) => this.connections.add(new VerifyConnection(this, socket)));
    server.on('request', (req: { socket: Socket }) => {
      if (this.keepAliveHandedOver.size !== 0 && this.keepAliveHandedOver.delete(req.socket)) req.socket.setTimeout(server.timeout || 0);
    });
    server.once('listening', () => this.scheduleSweep());
    server.once('close', () => clearTimeout(this.sweeper));
    const closeIdle = server.closeIdleConnections.bind(server);
    const closeAll = server.closeAllConnections.bind(server);
    server.closeIdleConnections = () => {
      for (const c of this.connections) if (c.idle) this.destroy(c);
      closeIdle();
    };
    server.closeAllConnections = () => {
      for (const c of this.connections) this.destroy(c);
      closeAll();
    };
  }

  /** The keep-alive timer's length: keepAliveTimeout plus node's grace (keepAliveTimeoutBuffer, 1 s). */
  get keepAliveMs(): number {
    const timeout = setting(this.server.keepAliveTimeout, 0);
    return timeout === 0 ? 0 : timeout + setting((this.server as { keepAliveTimeoutBuffer?: unknown }).keepAliveTimeoutBuffer, 1000);
  }

  handOver(conn: VerifyConnection, rest: Buffer | null): void {
    this.forget(conn);
    conn.detach();
    const socket = conn.socket;
    // Nothing more is read off the socket until node:http has parsed what was read already.
    socket.pause();
    this.nodeHttp.call(this.server, socket);
    // node:http would still run this connection's keep-alive timer until the next request's headers.
    if (conn.keepAlive && this.keepAliveMs > 0) {
      socket.setTimeout(this.keepAliveMs);
      this.keepAliveHandedOver.add(socket);
      socket.once('close', () => this.keepAliveHandedOver.delete(socket));
    }
    const cuts = rest === null ? [] : parserTicks(rest);
    const handle = cuts.length === 0 ? null : (socket as unknown as { _handle: { reading?: boolean; readStop?: () => number } | null })._handle;
    if (handle && typeof handle.readStop === 'function') {
      // While the parts are replayed nothing more is read off the socket. node:http's parser reads
      // the handle itself (not through the stream), so the handle stops, marked as reading so that
      // neither the stream (reading ahead) nor node:http (resuming the socket to read a body) starts
      // it again; the last part ends that, and node:http's resume starts reading, as its own do.
      handle.readStop();
      handle.reading = true;
      socket.resume = () => socket;
    }
    const replay = (from: number, cut: number): void => {
      if (socket.destroyed) return;
      if (cut === cuts.length) {
        if (handle) {
          handle.reading = false;
          delete (socket as { resume?: unknown }).resume;
        }
        // The last part goes back to the front of the socket's stream, where node:http reads first.
        if (rest !== null && from < rest.length) socket.unshift(from === 0 ? rest : rest.subarray(from));
        socket.resume();
        return;
      }
      // A part is parsed now, as one read; the event loop turns before the next (setImmediate runs
      // after every queued tick and promise), as it does where node's parser calls back.
      try {
        socket.emit('data', rest!.subarray(from, cuts[cut]));
      } catch {
        // node:http stopped reading (its answers wait for the client): it reads the rest when it resumes.
        if (handle) handle.reading = false;
        delete (socket as { resume?: unknown }).resume;
        socket.unshift(rest!.subarray(from));
        return;
      }
      setImmediate(replay, cuts[cut]!, cut + 1);
    };
    replay(0, 0);
  }

  forget(conn: VerifyConnection): void {
    this.connections.delete(conn);
  }

  private destroy(conn: VerifyConnection): void {
    this.forget(conn);
    conn.socket.destroy();
  }

  /** Shutdown, as node:http's server.close(): idle connections close now, the others as they would have. */
  stop(): void {
    this.stopping = true;
    for (const c of this.connections) if (c.idle) this.destroy(c);
  }

  private scheduleSweep(): void {
    const s = this.server;
    const every = Math.min(SWEEP_MS, setting((s as { connectionsCheckingInterval?: unknown }).connectionsCheckingInterval, 30_000) || SWEEP_MS, (setting(s.headersTimeout, 0) || Infinity) / 4, (setting(s.requestTimeout, 0) || Infinity) / 4, (this.keepAliveMs || Infinity) / 4);
    this.sweeper = setTimeout(() => {
      this.sweep();
      this.scheduleSweep();
    }, Math.max(10, every));
    this.sweeper.unref();
  }

  /**
   * node:http's timers: an idle connection past its keep-alive timer is destroyed; a request not
   * complete within headersTimeout (its headers) or requestTimeout (all of it) gets the server's 408.
   */
  private sweep(): void {
    const now = Date.now();
    const keepAlive = this.keepAliveMs;
    const headersTimeout = setting(this.server.headersTimeout, 0);
    const requestTimeout = setting(this.server.requestTimeout, 0);
    for (const c of this.connections) {
      if (c.keepAlive && keepAlive > 0 && now - c.lastActive > keepAlive) this.destroy(c);
      else if (!this.stopping && c.expired(now, headersTimeout, requestTimeout)) c.timedOut();
    }
  }
}
