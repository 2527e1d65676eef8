// The native peer: HAProxy doing verify's job in its own config language — SHA-256 of X-API-Key,
// a map lookup, a stick-table counter and a JSON answer — on one thread, like Node.
import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export function haproxyVersion() {
  try {
    return execFileSync('haproxy', ['-v'], { encoding: 'utf8' }).split('\n')[0];
  } catch {
    return null;
  }
}

async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export async function startHaproxy(keys) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-haproxy-'));
  const map = path.join(dir, 'keys.map');
  fs.writeFileSync(map, keys.map((k, i) => `${createHash('sha256').update(k).digest('hex')} key_${i}`).join('\n') + '\n');
  const port = await freePort();
  const cfg = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(cfg, `
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout client 30s
  timeout server 30s
  timeout connect 5s
frontend verify
  bind 127.0.0.1:${port}
  http-request set-var(txn.hash) req.hdr(x-api-key),sha2(256),hex,lower
  http-request set-var(txn.keyid) var(txn.hash),map(${map})
  http-request track-sc0 var(txn.hash) table per_key
  http-request return status 200 content-type application/json lf-string '{"valid":true,"code":"VALID","keyId":"%[var(txn.keyid)]","requests":%[sc_http_req_cnt(0)]}' if { var(txn.keyid) -m found }
  http-request return status 200 content-type application/json string '{"valid":false,"code":"NOT_FOUND"}'
backend per_key
  stick-table type string len 64 size 2m expire 60s store http_req_cnt,http_req_rate(60s)
`);
  const child = spawn('haproxy', ['-db', '-f', cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stderr.on('data', (d) => (out += d));
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (ok) break;
    if (child.exitCode !== null) throw new Error(`haproxy exited: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const url = `http://127.0.0.1:${port}`;
  const check = await fetch(`${url}/v1/keys/verify`, { method: 'POST', headers: { 'x-api-key': keys[0] } }).then((r) => r.json());
  if (check.code !== 'VALID') throw new Error(`haproxy answered ${JSON.stringify(check)}`);
  return {
    url,
    pid: child.pid,
    stop: () => new Promise((resolve) => { child.once('exit', () => { fs.rmSync(dir, { recursive: true, force: true }); resolve(); }); child.kill('SIGTERM'); }),
  };
}
