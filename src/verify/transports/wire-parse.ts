// How the wire path (src/verify/transports/wire.ts) reads bytes: the strict subset of HTTP/1.1 it answers itself,
// checked as llhttp would read the same bytes, and where node:http's parser would let queued work
// run in bytes it hands over (docs/verify-wire.md).
import { JSON_TYPE } from './fastpath.js';

export const REQUEST_LINE = 'POST /v1/keys/verify HTTP/1.1\r\n';
export const REQUEST_BYTES = Buffer.from(REQUEST_LINE, 'latin1');
/**
 * Header lines as RFC 9110/9112 allow them, minus obs-fold: a token, a colon, then visible ASCII,
 * obs-text, spaces and tabs, each line ending in CRLF. Anything else is node:http's to refuse.
 */
const HEADER_LINES = /^(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+:[\t\x20-\x7e\x80-\xff]*\r\n)*$/;
const DIGITS = /^[0-9]{1,15}$/;
/** Token characters of a header name (RFC 9110 tchar), for header blocks that arrive in pieces. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;
/** node:http keeps the first 2000 entries of a request's header list: 1000 names and values. */
export const NODE_HEADER_PAIRS = 2000;

/** What the header block says, or null when this connection must go to node:http. */
export interface Head {
  length: number;
  authorization: string | undefined;
}

/**
 * A header value as node:http reads it: llhttp skips the spaces and tabs before it. One that ends
 * in a space or tab is left to node:http (llhttp drops those, and refuses a tab after a length),
 * so nothing here trims: `String.prototype.trim` would also strip NBSP (0xA0) and other text that
 * HTTP does not count as whitespace.
 */
function headerValue(block: string, from: number, to: number): string | null {
  let c = block.charCodeAt(from);
  while (from < to && (c === 0x20 || c === 0x09)) c = block.charCodeAt(++from);
  if (from === to) return '';
  c = block.charCodeAt(to - 1);
  return c === 0x20 || c === 0x09 ? null : block.slice(from, to);
}

/** The headers of a request that verify reads, as its lines are read. */
class HeadReader {
  length: string | undefined;
  type: string | undefined;
  authorization: string | undefined;
  host = false;
  lines = 0;

  /** Reads one header line (`block` from `at`, its colon, its CRLF); false when the request is node:http's. */
  line(block: string, at: number, colon: number, eol: number, maxHeaders: number): boolean {
    // node:http ignores the headers past its cap: a Host or Authorization there would read differently.
    if (++this.lines > maxHeaders) return false;
    const n = colon - at;
    // Only names of these lengths matter; the rest are read past without building a string.
    if (n !== 4 && n !== 6 && n !== 7 && n !== 10 && n !== 12 && n !== 13 && n !== 14 && n !== 16 && n !== 17) return true;
    switch (block.slice(at, colon).toLowerCase()) {
      case 'host':
        if (this.host) return false;
        this.host = true;
        return true;
      case 'content-length': {
        const value = headerValue(block, colon + 1, eol);
        if (this.length !== undefined || value === null || !DIGITS.test(value)) return false;
        this.length = value;
        return true;
      }
      case 'content-type': {
        const value = headerValue(block, colon + 1, eol);
        if (this.type !== undefined || value === null) return false;
        this.type = value;
        return true;
      }
      case 'authorization': {
        const value = headerValue(block, colon + 1, eol);
        if (this.authorization !== undefined || value === null) return false;
        this.authorization = value;
        return true;
      }
      // Keep-alive is all this subset reads; llhttp parses any other token list (close, upgrade,
      // both, Proxy-Connection's too) and node:http answers it: pipelined bytes after a close, say.
      case 'connection':
        return headerValue(block, colon + 1, eol)?.toLowerCase() === 'keep-alive';
      case 'proxy-connection':
      case 'transfer-encoding':
      case 'expect':
      case 'upgrade':
        return false;
      default:
        return true;
    }
  }

  /** What the complete block says, or null when the request is node:http's. */
  head(bodyLimit: number): Head | null {
    if (!this.host || this.length === undefined || this.type === undefined || !JSON_TYPE.test(this.type)) return null;
    const bytes = Number(this.length);
    return bytes > bodyLimit ? null : { length: bytes, authorization: this.authorization };
  }
}

/** The parts of a header block verify needs; null for anything outside the subset. */
export function readHead(block: string, bodyLimit: number, maxHeaders: number): Head | null {
  if (!HEADER_LINES.test(block)) return null;
  const reader = new HeadReader();
  for (let at = 0; at < block.length;) {
    const eol = block.indexOf('\r\n', at);
    if (!reader.line(block, at, block.indexOf(':', at), eol, maxHeaders)) return null;
    at = eol + 2;
  }
  return reader.head(bodyLimit);
}

/** A Content-Length value as llhttp reads it: spaces and tabs, digits, spaces. */
const LLHTTP_LENGTH = /^[ \t]*([0-9]{1,15}) *$/;

/** A request line llhttp surely reads (a common method, a plain or absolute target, a version it takes: 0.9, 1.0, 1.1, 2.0). */
const PLAIN_LINE = /^(?:GET|HEAD|POST|PUT|PATCH|DELETE|OPTIONS) +(?:https?:\/\/[A-Za-z0-9.:-]+)?\/[A-Za-z0-9/._~%!$&'()*+,;=:@?-]* HTTP\/(?:1\.[01]|2\.0|0\.9)$/;

/**
 * Where node:http's parser, reading `bytes` off the socket, lets the event loop run queued work
 * (answers due, a socket's end after a closing answer): it hands a request's headers to
 * JavaScript at the 32nd name (and every 31 after), and calls back with each body; the tick queue runs
 * after those callbacks, not after a message completes. Bytes handed over are replayed in parts cut
 * at these points, so node:http writes what it would have written had it read them itself. Only
 * what llhttp surely reads is followed; a part that llhttp refuses ends the replay anyway.
 */
export function parserTicks(bytes: Buffer): number[] {
  const cuts: number[] = [];
  for (let at = 0; at < bytes.length;) {
    // llhttp skips the CRs and LFs between requests.
    while (bytes[at] === 0x0d || bytes[at] === 0x0a) at++;
    const lineEnd = bytes.indexOf('\r\n', at);
    if (lineEnd < 0 || !PLAIN_LINE.test(bytes.toString('latin1', at, lineEnd))) break;
    let names = 0;
    let lengths = 0;
    let length = 0;
    let chunked = false;
    let other = false;
    let upgrade = false;
    let p = lineEnd + 2;
    for (;;) {
      if (p + 1 >= bytes.length) return cuts;
      if (bytes[p] === 0x0d && bytes[p + 1] === 0x0a) break;
      let q = p;
      while (q < bytes.length && TCHAR[bytes[q]!] === 1) q++;
      if (q === p || bytes[q] !== 0x3a) return cuts;
      // Later hand-overs of the same block let nothing more out: no request completes within a head.
      if (++names === 32) cuts.push(p);
      let e = q + 1;
      for (let c = bytes[e]; e < bytes.length && (c === 0x09 || (c! >= 0x20 && c !== 0x7f)); c = bytes[++e]);
      if (bytes[e] !== 0x0d || bytes[e + 1] !== 0x0a) return cuts;
      const name = bytes.toString('latin1', p, q).toLowerCase();
      const value = bytes.toString('latin1', q + 1, e).trim().toLowerCase();
      if (name === 'content-length') {
        const digits = LLHTTP_LENGTH.exec(value);
        if (digits === null) return cuts;
        lengths++;
        length = Number(digits[1]);
      } else if (name === 'transfer-encoding') {
        if (value === 'chunked') chunked = true;
        else other = true;
      } else if (name === 'connection' && /(?:^|,)\s*upgrade\s*(?:,|$)/.test(value)) {
        // node:http reads an upgrade nobody listens for as a request; llhttp stops after it.
        upgrade = true;
      }
      p = e + 2;
    }
    p += 2;
    if (other || lengths > 1 || (chunked && lengths > 0)) break;
    if (chunked) {
      // The first chunk's data is the first body callback; past it this follows no further.
      const sizeEnd = bytes.indexOf('\r\n', p);
      const size = sizeEnd < 0 ? NaN : parseInt(bytes.toString('latin1', p, sizeEnd), 16);
      if (size > 0 && sizeEnd + 2 < bytes.length) cuts.push(sizeEnd + 2);
      break;
    }
    if (length > 0 && p < bytes.length) cuts.push(p);
    if (upgrade) break;
    at = p + length;
  }
  return cuts;
}

/** One byte of a Content-Length value as llhttp takes it: spaces and tabs, digits, then spaces only. */
function lengthByte(conn: { lengthValue: number }, c: number): boolean {
  const digit = c >= 0x30 && c <= 0x39;
  switch (conn.lengthValue) {
    case 1:
      if (digit) conn.lengthValue = 2;
      return digit || c === 0x20 || c === 0x09;
    case 2:
      if (c === 0x20) conn.lengthValue = 3;
      return digit || c === 0x20;
    default:
      return c === 0x20;
  }
}

const enum LineState {
  /** At the start of a header line (or of the empty line that ends the block). */
  Start,
  Name,
  Value,
  /** A CR in a line: LF must follow. */
  Cr,
  /** A CR at a line's start: the block's last line. */
  LastCr,
}

/**
 * An unfinished header block, checked as its bytes come: node:http refuses some bytes as soon as
 * they arrive (a bare LF, a control character, a letter in a length, Transfer-Encoding after a
 * length), and a complete line can make the request node:http's; either hands it over at once.
 */
export class PartialHead {
  private state = LineState.Start;
  /** Offsets from the request's first byte: how far it is checked, where the current line starts. */
  private checked = REQUEST_LINE.length;
  private lineStart = REQUEST_LINE.length;
  /** Within a Content-Length line's value: 0 not one, 1 before its digits, 2 in them, 3 after. */
  lengthValue = 0;
  /** The block's complete lines, read as they come. */
  private reader: HeadReader | null = null;

  /**
   * Whether the unfinished header block of the request at `at` can still become one this subset
   * reads. Checks only the bytes not checked before, so a client sending a byte at a time costs a
   * byte's work.
   */
  accepts(bytes: Buffer, at: number, maxHeaders: number): boolean {
    let state = this.state;
    let i = at + this.checked;
    for (; i < bytes.length; i++) {
      const c = bytes[i]!;
      switch (state) {
        case LineState.Start:
          if (c === 0x0d) state = LineState.LastCr;
          else if (TCHAR[c] === 1) state = LineState.Name;
          else return false;
          break;
        case LineState.Name:
          if (c === 0x3a) {
            state = LineState.Value;
            const name = bytes.toString('latin1', at + this.lineStart, i).toLowerCase();
            // llhttp checks some of these as soon as it has the name (Transfer-Encoding after a length).
            if (name === 'transfer-encoding' || name === 'proxy-connection' || name === 'expect' || name === 'upgrade') return false;
            if (name === 'content-length' && this.reader?.length !== undefined) return false;
            this.lengthValue = name === 'content-length' ? 1 : 0;
          } else if (TCHAR[c] !== 1) {
            return false;
          }
          break;
        case LineState.Value:
          if (c === 0x0d) state = LineState.Cr;
          else if (c !== 0x09 && (c < 0x20 || c === 0x7f)) return false;
          else if (this.lengthValue !== 0 && !lengthByte(this, c)) return false;
          break;
        case LineState.Cr: {
          if (c !== 0x0a) return false;
          // A complete line: one that makes the request node:http's (a second length, a close) hands it over now.
          const line = bytes.toString('latin1', at + this.lineStart, i - 1);
          this.reader ??= new HeadReader();
          if (!this.reader.line(line, 0, line.indexOf(':'), line.length, maxHeaders)) return false;
          this.lineStart = i + 1 - at;
          state = LineState.Start;
          break;
        }
        case LineState.LastCr:
          // A CRLF here would have ended the block, found by the caller.
          return false;
      }
    }
    this.state = state;
    this.checked = i - at;
    return true;
  }
}
