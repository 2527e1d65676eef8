// `keyward gateway check <url>`: sends the known forward-auth attacks through a running gateway
// (nginx, Caddy, Traefik, Envoy or a custom config) and reports which ones got through. Each
// attack is a request for a path that a gateway rule protects with a permission the given key
// lacks, spelled or dressed so that a gateway config or a router could read it differently.
import http from 'node:http';
import https from 'node:https';
import type { Command } from 'commander';
import { UsageError, printTable } from './format.js';

export interface CheckOptions {
  /** The gateway's base URL (scheme, host, port). */
  url: string;
  /** A valid key that lacks the permission protecting `path`. */
  key: string;
  /** A path a gateway rule protects from `key`, e.g. /admin/x. */
  path: string;
  /** A method that rule covers (GET by default). */
  method: string;
  /** A path `key` may reach (the decoy of spoofed headers). */
  publicPath: string;
  /** Optional: an upstream path that answers with the request headers it received. */
  echoPath?: string | undefined;
  timeoutMs: number;
}

export interface CheckResult {
  attack: string;
  method: string;
  target: string;
  status: number;
  /** X-Keyward-Code on the answer, when Keyward refused it. */
  code: string | null;
  outcome: 'refused' | 'got through' | 'error';
  detail?: string;
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request with the target sent byte for byte (fetch would normalize it). */
function send(base: URL, method: string, target: string, headers: Record<string, string>, timeoutMs: number): Promise<Answer> {
  const client = base.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = client.request({
      host: base.hostname, port: base.port || undefined, method, path: target, headers: { ...headers, connection: 'close' },
      timeout: timeoutMs, rejectUnauthorized: true,
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.length < 64 && chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

const refusedStatus = (s: number) => s === 400 || s === 401 || s === 403 || s === 414;

interface Attack {
  name: string;
  method: string;
  target: string;
  headers?: Record<string, string>;
  /** No key: the request must be refused for lack of one. */
  anonymous?: boolean;
}

/** The attacks on a protected path such as /admin/x (first segment `admin`). */
function attacksOn(o: Pick<CheckOptions, 'path' | 'method' | 'publicPath'>): Attack[] {
  const p = o.path;
  const slash = p.indexOf('/', 1);
  const first = slash === -1 ? p.slice(1) : p.slice(1, slash);
  const rest = slash === -1 ? '' : p.slice(slash);
  const encodedFirst = first.length > 0 ? `%${first.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}${first.slice(1)}` : first;
  const swapped = first.length > 0 ? (first[0] === first[0]!.toUpperCase() ? first.toLowerCase() : first.toUpperCase()) : first;
  const list: Attack[] = [
    { name: 'spoofed X-Forwarded-Method/-Uri', method: o.method, target: p, headers: { 'x-forwarded-method': 'GET', 'x-forwarded-uri': o.publicPath } },
    { name: 'spoofed X-Original-Method/-URI', method: o.method, target: p, headers: { 'x-original-method': 'GET', 'x-original-uri': o.publicPath } },
    { name: 'case', method: o.method, target: `/${swapped}${rest}` },
    { name: 'percent-encoded letter', method: o.method, target: `/${encodedFirst}${rest}` },
    { name: 'dot segment', method: o.method, target: `/x/..${p}` },
    { name: 'dot segment, encoded', method: o.method, target: `/x/%2e%2e${p}` },
    { name: 'current-directory segment', method: o.method, target: `/.${p}` },
    { name: 'public path, then ..', method: o.method, target: `${o.publicPath.replace(/\/$/, '')}/..${p}` },
    { name: 'empty segment', method: o.method, target: `/${p}` },
    { name: 'matrix parameter', method: o.method, target: `/${first};x=1${rest}` },
    { name: 'encoded slash', method: o.method, target: rest ? `/${first}%2F${rest.slice(1)}` : `/${first}%2F` },
    { name: 'backslash', method: o.method, target: rest ? `/${first}\\${rest.slice(1)}` : `/${first}\\` },
    { name: 'NUL', method: o.method, target: `${p}%00` },
    { name: 'fragment', method: o.method, target: `${o.publicPath}#/..${p}` },
  ];
  if (o.method === 'GET') list.push({ name: 'HEAD for a GET rule', method: 'HEAD', target: p });
  list.push({ name: 'client-sent identity headers, no key', method: 'GET', target: o.publicPath, anonymous: true, headers: { 'x-keyward-code': 'VALID', 'x-keyward-key-id': 'key_00000000000000000000', 'x-keyward-owner-id': 'spoofed-owner', 'x-keyward-environment': 'live' } });
  return list;
}

async function gatewayCheck(o: CheckOptions): Promise<{ results: CheckResult[]; gotThrough: number; notes: string[] }> {
  let base: URL;
  try {
    base = new URL(o.url);
  } catch {
    throw new UsageError(`"${o.url}" is not a URL`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new UsageError('the gateway URL must be http or https');
  if (!o.path.startsWith('/') || !o.publicPath.startsWith('/')) throw new UsageError('--path and --public-path must start with "/"');
  const auth = { authorization: `Bearer ${o.key}` };
  // The two requests the attacks are measured against: the key is good, and the rule holds.
  const open = await send(base, 'GET', o.publicPath, auth, o.timeoutMs);
  if (open.status === 401) throw new UsageError(`the key is refused on ${o.publicPath} (401 ${open.headers['x-keyward-code'] ?? ''}): give a valid key of the gateway's app`);
  const closed = await send(base, o.method, o.path, auth, o.timeoutMs);
  if (closed.status < 400) {
    throw new UsageError(`${o.method} ${o.path} answered ${closed.status}: give a path that a gateway rule protects with a permission the key lacks`);
  }
  const notes: string[] = [];
  // Keyward refuses every request of a config that does not send the original request: safe, but
  // such a config may still pass a client's own X-Forwarded-* headers, which the attacks try.
  if (open.headers['x-keyward-code'] === 'MISSING_FORWARDED_REQUEST') notes.push('the gateway does not send X-Forwarded-Method and X-Forwarded-Uri: Keyward refuses every request (400 MISSING_FORWARDED_REQUEST)');
  else if (open.status >= 400) notes.push(`the key was refused on ${o.publicPath} (${open.status}): the attacks show less than they could`);
  const results: CheckResult[] = [];
  for (const attack of attacksOn(o)) {
    const headers = { ...(attack.anonymous ? {} : auth), ...attack.headers };
    try {
      const a = await send(base, attack.method, attack.target, headers, o.timeoutMs);
      const code = typeof a.headers['x-keyward-code'] === 'string' ? a.headers['x-keyward-code'] : null;
      // Refused by Keyward: a refusal status carrying Keyward's verdict; or refused by nginx itself
      // (its own 400 page) before any location ran. Anything else may have reached the API.
      const refused = (refusedStatus(a.status) && code !== null && code !== 'VALID') || (a.status === 400 && refusedByNginx(a));
      results.push({ attack: attack.name, method: attack.method, target: attack.target, status: a.status, code, outcome: refused ? 'refused' : 'got through' });
    } catch (err) {
      results.push({ attack: attack.name, method: attack.method, target: attack.target, status: 0, code: null, outcome: 'error', detail: (err as Error).message });
    }
  }
  if (o.echoPath) results.push(await echoCheck(base, o, auth));
  return { results, gotThrough: results.filter((r) => r.outcome === 'got through').length, notes };
}

/** nginx answers some malformed targets itself (400 with its own page) before any location runs. */
const refusedByNginx = (a: Answer): boolean => /<center>nginx/.test(a.body);

/** With a key, client-sent identity headers must not reach the API: the echo path shows what did. */
async function echoCheck(base: URL, o: CheckOptions, auth: Record<string, string>): Promise<CheckResult> {
  const spoof = { 'x-keyward-code': 'VALID', 'x-keyward-key-id': 'key_spoofedspoofedspoof', 'x-keyward-owner-id': 'spoofed-owner', 'x-keyward-environment': 'spoofed-env', 'x-keyward-root-key': 'spoofed-root-key' };
  const target = o.echoPath!;
  try {
    const a = await send(base, 'GET', target, { ...auth, ...spoof }, o.timeoutMs);
    const leaked = Object.values(spoof).filter((v) => a.body.includes(v));
    return { attack: 'client-sent identity headers, with the key (echo)', method: 'GET', target, status: a.status, code: null, outcome: leaked.length === 0 && a.status < 400 ? 'refused' : 'got through', ...(leaked.length ? { detail: `the API received ${leaked.join(', ')}` } : a.status >= 400 ? { detail: 'the echo path did not answer 2xx' } : {}) };
  } catch (err) {
    return { attack: 'client-sent identity headers, with the key (echo)', method: 'GET', target, status: 0, code: null, outcome: 'error', detail: (err as Error).message };
  }
}

export function registerGatewayCommand(program: Command): void {
  const gateway = program.command('gateway').description('gateway forward auth: check a running gateway');
  gateway.command('check <url>')
    .description('send the known forward-auth attacks through a running gateway and report which got through (exit 1 if any did)')
    .requiredOption('--path <path>', 'a path a gateway rule protects with a permission the key lacks, e.g. /admin/x')
    .option('--key <key>', 'a valid key of the app that lacks that permission (default: KEYWARD_CHECK_KEY)')
    .option('--method <method>', 'a method that rule covers', 'GET')
    .option('--public-path <path>', 'a path the key may reach', '/')
    .option('--echo-path <path>', 'an API path that answers with the request headers it received (checks identity headers)')
    .option('--timeout <ms>', 'per request', '5000')
    .action(async (url: string, opts: { path: string; key?: string; method: string; publicPath: string; echoPath?: string; timeout: string }) => {
      const key = opts.key ?? process.env.KEYWARD_CHECK_KEY;
      if (!key) throw new UsageError('give --key (or KEYWARD_CHECK_KEY): a valid key that lacks the permission protecting --path');
      const report = await gatewayCheck({ url, key, path: opts.path, method: opts.method.toUpperCase(), publicPath: opts.publicPath, echoPath: opts.echoPath, timeoutMs: Number(opts.timeout) || 5000 });
      if (program.opts<{ json?: boolean }>().json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      else {
        printTable(report.results.map((r) => ({ ...r, target: JSON.stringify(r.target), status: r.status || '—', code: r.code ?? '—', detail: r.detail ?? '' })), ['attack', 'method', 'target', 'status', 'code', 'outcome', 'detail']);
        for (const note of report.notes) process.stdout.write(`note: ${note}\n`);
        const errors = report.results.filter((r) => r.outcome === 'error').length;
        process.stdout.write(report.gotThrough === 0 && errors === 0
          ? `all ${report.results.length} attacks were refused\n`
          : `${report.gotThrough} of ${report.results.length} attacks got through${errors ? `, ${errors} could not be sent` : ''}: see docs/forward-auth.md\n`);
      }
      if (report.gotThrough > 0 || report.results.some((r) => r.outcome === 'error')) process.exitCode = 1;
    });
}
