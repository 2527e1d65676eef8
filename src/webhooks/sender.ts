// One attempt at one delivery: a POST with the Standard Webhooks headers, bounded by a timeout,
// to an address checked after DNS resolution (the address connected to is the one checked), with
// no redirect followed. What it answers is kept short and never names an address a name resolved to.
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { isLocalName, literalHost, refusedAddress } from './ssrf.js';

export interface Attempt {
  url: string;
  /** webhook-id: the event's id, the same on every attempt. */
  id: string;
  timestampSec: number;
  body: string;
  signature: string;
}

export interface AttemptResult {
  ok: boolean;
  /** The HTTP status, when an answer came. */
  status: number | null;
  /** Why it failed, in words: never the response body, never a resolved address. */
  error: string | null;
  /** The first RESPONSE_KEPT_BYTES of the answer's body, when an answer came. */
  body: string | null;
  latencyMs: number;
}

/** What is kept of a response body. */
const RESPONSE_KEPT_BYTES = 1024;
/** Most of a response a receiver may send back; the connection is dropped after that. */
const MAX_RESPONSE_BYTES = 64 * 1024;

class Refused extends Error {}

/** Resolves a name to every address it has (dns.lookup by default; tests give names their own answers). */
export type Resolve = (hostname: string, family: number) => Promise<{ address: string; family: number }[]>;

const systemResolve: Resolve = (hostname, family) => dns.promises.lookup(hostname, { all: true, family: family as 0 | 4 | 6 });

export interface SenderOptions {
  timeoutMs: number;
  allowPrivate: boolean;
  userAgent: string;
  resolve?: Resolve;
}

export class WebhookSender {
  private readonly lookup: LookupFunction;

  constructor(private readonly opts: SenderOptions) {
    const resolve = opts.resolve ?? systemResolve;
    // Every address the name resolves to must be allowed, not only the one tried first.
    this.lookup = (hostname, options, callback) => {
      resolve(hostname, options.family === 4 || options.family === 6 ? options.family : 0).then((list) => {
        if (!opts.allowPrivate) {
          for (const a of list) {
            const why = refusedAddress(a.address);
            if (why) return callback(new Refused(`refused: ${why}`), '', 0);
          }
        }
        if (options.all) return (callback as unknown as (e: null, a: { address: string; family: number }[]) => void)(null, list);
        const first = list[0];
        if (!first) return callback(Object.assign(new Error('no address'), { code: 'ENOTFOUND' }), '', 0);
        callback(null, first.address, first.family);
      }, (err: NodeJS.ErrnoException) => callback(err, '', 0));
    };
  }

  /**
   * Why this URL may not receive webhooks, judged without DNS, or null. At creation `localhost`
   * names are refused by name; at send time they go through the resolver like any name and are
   * refused by the address they resolve to.
   */
  static refusedUrl(url: URL, allowPrivate: boolean, byName = true): string | null {
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return 'only http and https URLs receive webhooks';
    if (url.username || url.password) return 'credentials in the URL are not sent; put them in the path or query instead';
    if (allowPrivate) return null;
    if (byName && isLocalName(url.hostname)) return 'a name of this machine (localhost)';
    const literal = literalHost(url);
    return literal === null ? null : refusedAddress(literal);
  }

  send(attempt: Attempt): Promise<AttemptResult> {
    const started = performance.now();
    const done = (ok: boolean, status: number | null, error: string | null, body: string | null = null): AttemptResult =>
      ({ ok, status, error, body, latencyMs: Math.round(performance.now() - started) });
    let url: URL;
    try {
      url = new URL(attempt.url);
    } catch {
      return Promise.resolve(done(false, null, 'the URL is not valid'));
    }
    const refused = WebhookSender.refusedUrl(url, this.opts.allowPrivate, false);
    if (refused) return Promise.resolve(done(false, null, `refused: ${refused}`));
    const client = url.protocol === 'https:' ? https : http;
    return new Promise<AttemptResult>((resolve) => {
      let settled = false;
      const finish = (r: AttemptResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(r);
      };
      const req = client.request(url, {
        method: 'POST',
        lookup: this.lookup,
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(attempt.body),
          'user-agent': this.opts.userAgent,
          'webhook-id': attempt.id,
          'webhook-timestamp': String(attempt.timestampSec),
          'webhook-signature': attempt.signature,
        },
      }, (res) => {
        const status = res.statusCode ?? 0;
        const kept: Buffer[] = [];
        let keptBytes = 0;
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (keptBytes < RESPONSE_KEPT_BYTES) {
            const part = chunk.subarray(0, RESPONSE_KEPT_BYTES - keptBytes);
            kept.push(part);
            keptBytes += part.length;
          }
          if (read > MAX_RESPONSE_BYTES) res.destroy();
        });
        const settle = () => {
          const body = read === 0 ? null : Buffer.concat(kept).toString('utf8');
          if (status >= 200 && status < 300) finish(done(true, status, null, body));
          else if (status >= 300 && status < 400) finish(done(false, status, 'redirects are not followed; use the final URL', body));
          else finish(done(false, status, `answered ${status}`, body));
        };
        res.on('end', settle);
        res.on('close', settle);
        res.on('error', settle);
      });
      const timer = setTimeout(() => {
        req.destroy();
        finish(done(false, null, `no answer within ${this.opts.timeoutMs} ms`));
      }, this.opts.timeoutMs);
      req.on('error', (err) => finish(done(false, null, err instanceof Refused ? err.message : describe(err))));
      req.end(attempt.body);
    });
  }
}

const NETWORK_ERRORS: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection closed while sending',
  ETIMEDOUT: 'connection timed out',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
  ENOTFOUND: 'the name does not resolve',
  EAI_AGAIN: 'the name could not be resolved (temporary DNS failure)',
  EAI_FAIL: 'the name could not be resolved',
  ENODATA: 'the name has no address',
  HPE_INVALID_CONSTANT: 'the answer is not HTTP',
};

/**
 * A failed request in words. Node's messages quote the address connected to ("connect ECONNREFUSED
 * 10.1.2.3:443") and TLS messages quote certificate names and addresses: only the code is kept.
 */
function describe(err: Error): string {
  const code = (err as { code?: string }).code;
  if (code === undefined) return 'the request failed';
  const known = NETWORK_ERRORS[code];
  if (known) return known;
  if (/^(ERR_TLS_|ERR_SSL_|CERT_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_|HOSTNAME_MISMATCH)/.test(code) || code.startsWith('EPROTO')) return `TLS failed (${code})`;
  if (code.startsWith('HPE_')) return `the answer is not valid HTTP (${code})`;
  return `the request failed (${code})`;
}
