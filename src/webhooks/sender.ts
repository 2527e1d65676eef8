// One attempt at one delivery: a POST with the Standard Webhooks headers, bounded by a timeout,
// to an address checked after DNS resolution (the address connected to is the one checked), with
// no redirect followed.
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
  /** Why it failed, in words (never the response body). */
  error: string | null;
  latencyMs: number;
}

/** Most of a response a receiver may send back; the rest is dropped unread. */
const MAX_RESPONSE_BYTES = 64 * 1024;

class Refused extends Error {}

export interface SenderOptions {
  timeoutMs: number;
  allowPrivate: boolean;
  userAgent: string;
}

export class WebhookSender {
  private readonly lookup: LookupFunction;

  constructor(private readonly opts: SenderOptions) {
    // Every address the name resolves to must be allowed, not only the one tried first.
    this.lookup = (hostname, options, callback) => {
      dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
        if (err) return callback(err, '', 0);
        const list = addresses as dns.LookupAddress[];
        if (!opts.allowPrivate) {
          for (const a of list) {
            const why = refusedAddress(a.address);
            if (why) return callback(new Refused(`refused: ${hostname} resolves to ${why}`), '', 0);
          }
        }
        if ((options as { all?: boolean }).all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list);
        const first = list[0];
        if (!first) return callback(new Error(`${hostname} has no address`), '', 0);
        callback(null, first.address, first.family);
      });
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
    if (byName && isLocalName(url.hostname)) return `${url.hostname} is this machine`;
    const literal = literalHost(url);
    return literal === null ? null : refusedAddress(literal);
  }

  send(attempt: Attempt): Promise<AttemptResult> {
    const started = performance.now();
    const done = (ok: boolean, status: number | null, error: string | null): AttemptResult => ({ ok, status, error, latencyMs: Math.round(performance.now() - started) });
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
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > MAX_RESPONSE_BYTES) res.destroy();
        });
        const settle = () => {
          if (status >= 200 && status < 300) finish(done(true, status, null));
          else if (status >= 300 && status < 400) finish(done(false, status, 'redirects are not followed; use the final URL'));
          else finish(done(false, status, `answered ${status}`));
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

function describe(err: Error): string {
  const code = (err as { code?: string }).code;
  return code ? `${code}: ${err.message}` : err.message;
}
