// Differential fuzzing of the verify connections read from the socket (src/verify/transports/wire.ts): the same
// bytes go to a server with them and to one without (KEYWARD_VERIFY_WIRE=0, node:http alone), and
// the answers and what becomes of the connection must not differ. Both servers share one store, so
// ids match; what may differ is normalised away: the Date header, request ids, header-name case.
//
// A case is a few requests, most of them valid verify requests, some mutated where a strict
// subset could read bytes differently from llhttp (whitespace, lengths, line ends, header names,
// counts and duplicates, connection tokens, stray bytes), written in one to four pieces, optionally
// after a first verify on the same connection (the connection then reads into the shared buffer),
// and always followed by a sentinel `GET /healthz`. A case ends when the sentinel is answered or the
// server closes; else, after a silence, the client sends its FIN and the server's answer to that is
// part of the outcome (a request left waiting, a 400 for a cut-short one).
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { generateKey } from '../../src/lib/key-format.js';
import { createKey, startServer, world, type TestServer } from './harness.js';

/** What a case may refer to: the app, and keys of each kind verify answers differently. */
export interface FuzzWorld {
  appId: string;
  /** A valid key without a rate limit or usage cap (its answers do not change with use). */
  valid: string;
  /** A well-formed key the store does not have: its answer waits for the store. */
  unknown: string;
  /** A root key with keys:verify: a verify without appId is scoped to its workspace. */
  root: string;
}

export interface FuzzCase {
  /** What was done to the requests (printed with a failure). */
  notes: string[];
  /**
   * An Upgrade (Connection: upgrade) or a Transfer-Encoding in the case:
   * node:http's parser lets answers out at points the hand-over does not find for those, so when
   * node refuses bytes later in the same read, which earlier answers precede its 400 may differ
   * (docs/verify-wire.md). The 400 and the connection's fate must still be the same.
   */
  flushUncertain: boolean;
  warm: boolean;
  pieces: Buffer[];
}

/** A server under test: its URL, and its end of each connection by the client's port. */
export interface FuzzServer {
  url: string;
  sockets: Map<number, net.Socket>;
}

/** Follows a server's connections (for the reads each piece waits for). */
export function fuzzServer(url: string, server: import('node:http').Server): FuzzServer {
  const sockets = new Map<number, net.Socket>();
  server.on('connection', (s: net.Socket) => {
    const port = s.remotePort!;
    sockets.set(port, s);
    s.once('close', () => sockets.delete(port));
  });
  return { url, sockets };
}

export interface Outcome {
  answers: string[];
  fate: string;
}

const SENTINEL = Buffer.from('GET /healthz HTTP/1.1\r\nhost: fuzz\r\n\r\n', 'latin1');
const SENTINEL_ANSWER = '{"status":"ok"}';

/** mulberry32: small, fast, and the same sequence for a seed on every runtime. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The generator of case `index` under `seed`: each case can be run again alone. */
export function caseRandom(seed: number, index: number): () => number {
  return prng(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35));
}

type Rand = () => number;
const int = (r: Rand, n: number) => Math.floor(r() * n);
const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)]!;

interface Request {
  line: string;
  headers: [string, string][];
  body: Buffer;
  /** Raw bytes when a mutation works below header lines; else built from the parts. */
  raw?: Buffer;
}

function bodies(w: FuzzWorld): { body: string; auth?: string }[] {
  return [
    { body: JSON.stringify({ key: w.valid, appId: w.appId }) },
    { body: JSON.stringify({ key: w.valid, appId: w.appId }) },
    { body: JSON.stringify({ key: w.unknown, appId: w.appId }) },
    { body: JSON.stringify({ key: 'not a key', appId: w.appId }) },
    { body: JSON.stringify({ key: w.valid }), auth: `Bearer ${w.root}` },
    { body: JSON.stringify({ key: w.valid }) },
    { body: JSON.stringify({ key: w.valid, appId: w.appId, permissions: ['a'] }) },
    { body: JSON.stringify({ key: 5, appId: w.appId }) },
    { body: '{"key":' },
    { body: '' },
    { body: `{"key":"${w.valid}","appId":"${w.appId}","x":"é€"}` },
  ];
}

function build(req: Request): Buffer {
  if (req.raw) return req.raw;
  const head = req.line + '\r\n' + req.headers.map(([k, v]) => `${k}:${v}`).join('\r\n') + '\r\n\r\n';
  return Buffer.concat([Buffer.from(head, 'latin1'), req.body]);
}

const SPACES = [' ', '\t', '\xa0', '\x0b', '\x0c', '  ', ' \t', '\t ', '\x85'];
const EXTRA: [string, string][] = [
  ['Connection', ' close'], ['Connection', ' keep-alive'], ['Connection', ' Keep-Alive'], ['Connection', ' keep-alive, close'],
  ['Connection', ' upgrade'], ['Connection', ' foo'], ['Connection', ''], ['Proxy-Connection', ' close'], ['Proxy-Connection', ' keep-alive'],
  ['Transfer-Encoding', ' chunked'], ['Transfer-Encoding', ' identity'], ['Expect', ' 100-continue'], ['Upgrade', ' websocket'],
  ['Keep-Alive', ' timeout=1'], ['X-Forwarded-For', ' 10.0.0.1'], ['Accept', ' */*'], ['User-Agent', ' fuzz/1.0'], ['TE', ' trailers'],
  ['Content-Encoding', ' gzip'], ['Host', ' other'], ['Content-Type', ' text/plain'], ['Content-Length', ' 0'], ['Authorization', ' Bearer x'],
];
const STRAY = [0x00, 0x01, 0x09, 0x0a, 0x0b, 0x0d, 0x20, 0x3a, 0x7f, 0x80, 0xa0, 0xff, 0x22, 0x2c];
const LINES = [
  'POST /v1/keys/verify HTTP/1.0', 'post /v1/keys/verify HTTP/1.1', 'POST /v1/keys/verify?x=1 HTTP/1.1', 'POST  /v1/keys/verify HTTP/1.1',
  'POST /v1/keys/verify/ HTTP/1.1', 'POST /v1/keys/verify HTTP/1.1 ', 'POST /v1/keys/Verify HTTP/1.1', 'PUT /v1/keys/verify HTTP/1.1',
  'POST http://fuzz/v1/keys/verify HTTP/1.1', 'POST /v1/keys/verify HTTP/2.0', '\r\nPOST /v1/keys/verify HTTP/1.1',
];

/** One request: valid, or with one to three mutations of the kinds where a subset may read differently. */
function request(r: Rand, w: FuzzWorld, notes: string[], mutate: boolean): Request {
  const { body, auth } = pick(r, bodies(w));
  const bytes = Buffer.from(body, 'utf8');
  const headers: [string, string][] = [['host', ' 127.0.0.1'], ['content-type', ' application/json'], ['content-length', ` ${bytes.length}`]];
  if (auth) headers.push(['authorization', ` ${auth}`]);
  if (r() < 0.3) headers.push(['connection', ' keep-alive']);
  if (r() < 0.3) headers.splice(int(r, headers.length + 1), 0, ['user-agent', ' fuzz']);
  if (r() < 0.3) headers.reverse();
  const req: Request = { line: 'POST /v1/keys/verify HTTP/1.1', headers, body: bytes };
  if (!mutate) return req;
  for (let n = 1 + int(r, 3); n > 0; n--) mutation(r, req, w, notes);
  return req;
}

function mutation(r: Rand, req: Request, w: FuzzWorld, notes: string[]): void {
  const h = req.headers;
  const k = int(r, 16);
  const at = int(r, h.length);
  switch (k) {
    case 0: {
      const name = h[at]![0];
      h[at]![0] = [...name].map((c) => (r() < 0.5 ? c.toUpperCase() : c)).join('');
      notes.push(`name case ${h[at]![0]}`);
      break;
    }
    case 1:
    case 2: {
      const before = r() < 0.5 ? pick(r, SPACES) : '';
      const after = r() < 0.7 ? pick(r, SPACES) : '';
      h[at]![1] = ' ' + before + h[at]![1].trimStart() + after;
      notes.push(`whitespace ${JSON.stringify(h[at])}`);
      break;
    }
    case 3: {
      const i = h.findIndex(([n]) => n.toLowerCase() === 'content-length');
      if (i < 0) break;
      const n = req.body.length;
      h[i]![1] = ' ' + pick(r, [`${n + 1}`, `${Math.max(0, n - 1)}`, `+${n}`, `0${n}`, `${n} `, `${n}\t`, `\t${n}`, `${n},${n}`, `${n}, ${n}`, '', 'abc', '-1', `${n}x`, '99999999999999999999', `${n}\xa0`, `${n + 40}`, ` ${n}`]);
      notes.push(`length ${JSON.stringify(h[i]![1])}`);
      break;
    }
    case 4:
    case 5: {
      const extra = pick(r, EXTRA);
      h.splice(int(r, h.length + 1), 0, [extra[0], extra[1]]);
      notes.push(`extra ${extra.join(':')}`);
      break;
    }
    case 6: {
      const dup = h[at]!;
      h.splice(int(r, h.length + 1), 0, [dup[0], dup[1]]);
      notes.push(`duplicate ${dup[0]}`);
      break;
    }
    case 7: {
      req.line = pick(r, LINES);
      notes.push(`line ${JSON.stringify(req.line)}`);
      break;
    }
    case 8: {
      // Around node:http's cap of 1000 headers, with the ones verify reads after the junk.
      const junk = 995 + int(r, 10);
      const moved = h.splice(0, h.length).sort(() => r() - 0.5);
      h.push(...Array.from({ length: junk }, (_, i) => [`x${i % 7}`, ''] as [string, string]), ...moved);
      notes.push(`${junk} junk headers first`);
      break;
    }
    case 9: {
      h.splice(at, 0, ['x-fold', ' a\r\n b']);
      notes.push('folded line');
      break;
    }
    case 10: {
      // Obs-text and other bytes in a value verify reads.
      const c = String.fromCharCode(pick(r, STRAY));
      h[at]![1] = h[at]![1].slice(0, 2) + c + h[at]![1].slice(2);
      notes.push(`byte in value ${JSON.stringify(h[at])}`);
      break;
    }
    case 11: {
      const auth = h.findIndex(([n]) => n.toLowerCase() === 'authorization');
      const value = ' ' + pick(r, ['\xa0', '\t', '', '  ']) + `Bearer ${w.root}` + pick(r, ['', ' ', '\t', '\xa0']);
      if (auth >= 0) h[auth]![1] = value;
      else h.push(['authorization', value]);
      notes.push(`authorization ${JSON.stringify(value)}`);
      break;
    }
    default: {
      // Below header lines: a line end, a stray byte, a byte gone, the body cut or grown.
      const raw = build({ ...req, raw: undefined });
      const headEnd = raw.indexOf('\r\n\r\n');
      const kind = int(r, 5);
      let out: Buffer;
      if (kind === 0) {
        const ends: number[] = [];
        for (let i = raw.indexOf('\r\n'); i >= 0 && i <= headEnd + 2; i = raw.indexOf('\r\n', i + 1)) ends.push(i);
        const i = pick(r, ends);
        const to = pick(r, ['\n', '\r', '\r\r\n', '\n\r', '\r\n ']);
        out = Buffer.concat([raw.subarray(0, i), Buffer.from(to, 'latin1'), raw.subarray(i + 2)]);
        notes.push(`line end ${i} -> ${JSON.stringify(to)}`);
      } else if (kind === 1) {
        const i = 1 + int(r, headEnd + 3);
        const b = pick(r, STRAY);
        out = Buffer.concat([raw.subarray(0, i), Buffer.from([b]), raw.subarray(i)]);
        notes.push(`byte ${b} at ${i}`);
      } else if (kind === 2) {
        const i = int(r, headEnd + 4);
        out = Buffer.concat([raw.subarray(0, i), raw.subarray(i + 1)]);
        notes.push(`byte gone at ${i}`);
      } else if (kind === 3) {
        const cut = int(r, Math.min(raw.length, 12) + 1);
        out = raw.subarray(0, raw.length - cut);
        notes.push(`last ${cut} bytes gone`);
      } else {
        out = Buffer.concat([raw, Buffer.from(pick(r, ['\r\n', '\n', 'x', '}', '  ', '\r\n\r\n']), 'latin1')]);
        notes.push('bytes after the body');
      }
      req.raw = out;
    }
  }
}

/** A case: one to three requests (a mutated one in most cases), split into pieces, the sentinel last. */
export function fuzzCase(r: Rand, w: FuzzWorld): FuzzCase {
  const notes: string[] = [];
  const count = 1 + int(r, 3);
  const mutated = r() < 0.85 ? int(r, count) : -1;
  const parts: Buffer[] = [];
  for (let i = 0; i < count; i++) parts.push(build(request(r, w, notes, i === mutated)));
  parts.push(SENTINEL);
  const all = Buffer.concat(parts);
  const cuts = Array.from({ length: int(r, 4) }, () => 1 + int(r, all.length - 1)).sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const c of [...cuts, all.length]) {
    if (c > from) pieces.push(all.subarray(from, c));
    from = Math.max(from, c);
  }
  const text = all.toString('latin1');
  const flushUncertain = /\r\n(?:connection:[^\r]*upgrade|transfer-encoding:)/i.test(text);
  return { notes: [`${count} request(s)`, ...notes, `${pieces.length} piece(s)`], flushUncertain, warm: r() < 0.5, pieces };
}

/** The answers in a byte stream: status line, headers (names lower-cased, Date dropped), body. */
function answers(data: Buffer): { texts: string[]; ends: number[]; rest: number } {
  const texts: string[] = [];
  const ends: number[] = [];
  let at = 0;
  for (;;) {
    const end = data.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const lines = data.toString('latin1', at, end).split('\r\n');
    const headers = lines.slice(1).map((l) => {
      const colon = l.indexOf(':');
      const name = l.slice(0, colon).toLowerCase();
      return `${name}:${name === 'date' ? '*' : l.slice(colon + 1).trim()}`;
    });
    const length = headers.find((x) => x.startsWith('content-length:'));
    let bodyEnd: number;
    let body: string;
    if (length) {
      bodyEnd = end + 4 + Number(length.slice('content-length:'.length));
      if (data.length < bodyEnd) break;
      body = data.toString('utf8', end + 4, bodyEnd);
    } else if (headers.includes('transfer-encoding:chunked')) {
      const last = data.indexOf('0\r\n\r\n', end + 4);
      if (last < 0) break;
      bodyEnd = last + 5;
      body = data.toString('utf8', end + 4, bodyEnd);
    } else {
      bodyEnd = end + 4;
      body = '';
    }
    texts.push([lines[0], ...headers, '', body.replace(/req_[0-9A-Za-z]+/g, 'req_*')].join('\n'));
    ends.push(bodyEnd);
    at = bodyEnd;
  }
  return { texts, ends, rest: data.length - at };
}

/** node:http's answer to bytes it refuses (Fastify's clientError handler). */
const CLIENT_ERROR = /^HTTP\/1\.1 4\d\d [^\n]*\ncontent-length:\d+\ncontent-type:application\/json\n\n\{"error"/;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const turn = () => new Promise((resolve) => setImmediate(resolve));

/** A warm-up verify: valid, and answered before the case's bytes are sent. */
export function warmRequest(w: FuzzWorld): Buffer {
  const body = JSON.stringify({ key: w.valid, appId: w.appId });
  return Buffer.from(`POST /v1/keys/verify HTTP/1.1\r\nhost: fuzz\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
}

/**
 * Plays a case on one server: what was answered (and whether before or after the client's FIN),
 * and how the connection ended. `silenceMs`: how long without a byte before the client gives up
 * waiting and sends its FIN (the server is waiting for more).
 */
export async function play(server: FuzzServer, c: FuzzCase, warm: Buffer, silenceMs: number): Promise<Outcome> {
  const { hostname, port } = new URL(server.url);
  const socket = net.connect({ host: hostname, port: Number(port), allowHalfOpen: true });
  let data = Buffer.alloc(0);
  let lastData = Date.now();
  let ended = false;
  let closed = false;
  let wake = () => {};
  socket.setNoDelay(true);
  socket.on('data', (d: Buffer) => {
    data = Buffer.concat([data, d]);
    lastData = Date.now();
    wake();
  });
  socket.on('end', () => {
    ended = true;
    wake();
  });
  socket.on('error', () => {});
  socket.on('close', () => {
    closed = true;
    wake();
  });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  // The server's end of this connection: each piece is written once it has read the one before, so
  // both servers see the same reads (node:http writes answers between its parser's callbacks, so
  // how bytes fall into reads is part of what it answers).
  let theirs: net.Socket | undefined;
  for (let i = 0; i < 1000 && !(theirs = server.sockets.get(socket.localPort!)); i++) await turn();
  let sent = 0;
  const read = async () => {
    for (let i = 0; i < 2000 && theirs && !theirs.destroyed && theirs.bytesRead < sent; i++) await (i < 100 ? turn() : sleep(1));
  };
  const until = async (done: () => boolean, quietMs: number): Promise<boolean> => {
    for (;;) {
      if (done()) return true;
      const since = Date.now() - lastData;
      if (since >= quietMs) {
        // Quiet by the clock is not enough on a busy machine (a late timer fires before the I/O that
        // was due; a server may be some turns of the loop from its answer): the loop must also
        // turn a number of times with nothing coming.
        for (let i = 0; i < 30 && !done(); i++) await turn();
        if (done()) return true;
        if (Date.now() - lastData >= quietMs) return false;
        continue;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, quietMs - since);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  };
  const write = (b: Buffer) => {
    sent += b.length;
    return new Promise<void>((resolve) => (closed ? resolve() : socket.write(b, () => resolve())));
  };
  let skip = 0;
  if (c.warm) {
    await write(warm);
    await until(() => answers(data).texts.length > 0 || closed, 10_000);
    skip = answers(data).ends[0] ?? data.length;
  }
  for (const piece of c.pieces) {
    await read();
    // Bytes sent to a socket the server closed only reset the connection, and with it what the
    // client had not read yet: the rest of the case is not sent.
    if (theirs?.destroyed) break;
    lastData = Date.now();
    await write(piece);
  }
  const answered = () => data.includes(SENTINEL_ANSWER);
  await until(() => answered() || ended || closed, silenceMs);
  let fate = answered() ? 'answered' : ended || closed ? 'closed' : 'waiting';
  let fin = Infinity;
  if (!ended && !closed) {
    fin = data.length;
    socket.end();
    await until(() => ended || closed, 10_000);
    fate += ended || closed ? ', then closed at the FIN' : ', then open after the FIN';
  }
  socket.destroy();
  const got = answers(data.subarray(skip));
  const out = got.texts.map((t, i) => (got.ends[i]! + skip > fin ? `after FIN: ${t}` : t));
  if (got.rest > 0) out.push(`unparsed: ${data.subarray(data.length - got.rest).toString('latin1')}`);
  return { answers: out, fate };
}

export interface FuzzRun {
  seed: number;
  cases: number;
  /** Run only this case (to reproduce a failure). */
  only?: number | undefined;
  concurrency?: number;
  silenceMs?: number;
}

/**
 * Runs the cases against both servers, a few at a time, and returns the differences (at most
 * `limit`), each with what reproduces it.
 */
export async function differences(servers: { wire: FuzzServer; nodeHttp: FuzzServer }, w: FuzzWorld, run: FuzzRun, limit = 5): Promise<string[]> {
  const found: string[] = [];
  const warm = warmRequest(w);
  const indexes = run.only !== undefined ? [run.only] : Array.from({ length: run.cases }, (_, i) => i);
  let next = 0;
  const worker = async () => {
    while (next < indexes.length && found.length < limit) {
      const index = indexes[next++]!;
      const c = fuzzCase(caseRandom(run.seed, index), w);
      const [a, b] = await Promise.all([play(servers.wire, c, warm, run.silenceMs ?? 250), play(servers.nodeHttp, c, warm, run.silenceMs ?? 250)]);
      if (JSON.stringify(a) === JSON.stringify(b)) continue;
      if (c.flushUncertain && a.fate === b.fate && a.answers.at(-1) === b.answers.at(-1) && CLIENT_ERROR.test(a.answers.at(-1) ?? '')) continue;
      found.push([
        `case ${index} of seed ${run.seed} (again: WIRE_FUZZ_SEED=${run.seed} WIRE_FUZZ_CASE=${index})`,
        `  ${c.warm ? 'after a verify; ' : ''}${c.notes.join('; ')}`,
        `  bytes: ${JSON.stringify(c.pieces.map((p) => p.toString('latin1')))}`,
        `  wire path: ${JSON.stringify(a, null, 1)}`,
        `  node:http: ${JSON.stringify(b, null, 1)}`,
      ].join('\n'));
    }
  };
  await Promise.all(Array.from({ length: run.concurrency ?? 8 }, worker));
  return found;
}

/** A server with the wire path and one without, over one store (so ids match), and the world a case refers to. */
export async function fuzzServers(): Promise<{ wire: TestServer; nodeHttp: TestServer; targets: { wire: FuzzServer; nodeHttp: FuzzServer }; w: FuzzWorld; close(): Promise<void> }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-fuzz-'));
  // KEYWARD_VERIFY_SHARED_READS=0 in the environment runs the wire path without shared reads.
  const env = { KEYWARD_USAGE_FLUSH_MS: '60000', KEYWARD_SQLITE_SYNC: 'NORMAL', KEYWARD_VERIFY_SHARED_READS: process.env.KEYWARD_VERIFY_SHARED_READS ?? '1' };
  const wire = await startServer({ listen: true, dataDir, env });
  const nodeHttp = await startServer({ listen: true, dataDir, env: { ...env, KEYWARD_VERIFY_WIRE: '0' } });
  const owner = await world(wire);
  const valid = (await createKey(wire, owner, { ratelimit: null, ownerRatelimit: null })).key;
  const root = await wire.request('POST', `/v1/workspaces/${owner.workspaceId}/root-keys`, { token: owner.token, body: { name: 'verifier', permissions: ['keys:verify'] } });
  if (root.status !== 201) throw new Error(`root key: ${root.status} ${root.text}`);
  return {
    wire,
    nodeHttp,
    targets: { wire: fuzzServer(wire.url, wire.app.server), nodeHttp: fuzzServer(nodeHttp.url, nodeHttp.app.server) },
    w: { appId: owner.appId, valid, unknown: generateKey('acme', 'live').plaintext, root: root.body.key },
    async close() {
      await wire.close();
      await nodeHttp.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** The run the environment asks for: WIRE_FUZZ_SEED, WIRE_FUZZ_CASES, WIRE_FUZZ_CASE (one case, to reproduce a failure). */
export function fuzzRun(seed: number, cases: number): FuzzRun {
  const env = process.env;
  return {
    seed: env.WIRE_FUZZ_SEED === undefined ? seed : Number(env.WIRE_FUZZ_SEED),
    cases: env.WIRE_FUZZ_CASES === undefined ? cases : Number(env.WIRE_FUZZ_CASES),
    only: env.WIRE_FUZZ_CASE === undefined ? undefined : Number(env.WIRE_FUZZ_CASE),
  };
}
