// nginx in front of an API for the benchmark: plain proxying, or the shipped forward-auth config
// (deploy/nginx/keyward.conf). One process (master_process off), so its CPU is one /proc entry.
import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export function nginxVersion() {
  try {
    return execFileSync('nginx', ['-v'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) || 'nginx';
  } catch (err) {
    return err.status === 0 ? 'nginx' : fs.existsSync('/usr/sbin/nginx') ? 'nginx' : null;
  }
}

const freePort = () => new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const { port } = s.address();
    s.close(() => resolve(port));
  });
});

export async function startNginx({ upstream, keyward, appId }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-bench-nginx-'));
  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  const server = keyward
    ? fs.readFileSync('deploy/nginx/keyward.conf', 'utf8').replaceAll('__LISTEN__', listen).replaceAll('__KEYWARD__', keyward).replaceAll('__APP_ID__', appId).replaceAll('__UPSTREAM__', upstream)
    : `upstream api { server ${upstream}; keepalive 32; }\nserver { listen ${listen}; location / { proxy_http_version 1.1; proxy_set_header Connection ""; proxy_pass http://api; } }`;
  fs.writeFileSync(path.join(dir, 'nginx.conf'), `daemon off;\nmaster_process off;\npid ${dir}/nginx.pid;\nerror_log ${dir}/error.log crit;\nevents { worker_connections 4096; }\nhttp {\n  access_log off;\n  client_body_temp_path ${dir}/b; proxy_temp_path ${dir}/p; fastcgi_temp_path ${dir}/f; uwsgi_temp_path ${dir}/u; scgi_temp_path ${dir}/s;\n${server}\n}\n`);
  const child = spawn('/usr/sbin/nginx', ['-p', dir, '-c', path.join(dir, 'nginx.conf')], { stdio: 'ignore' });
  const url = `http://${listen}`;
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(url);
      break;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    pid: child.pid,
    stop: () => new Promise((resolve) => {
      child.once('exit', () => {
        fs.rmSync(dir, { recursive: true, force: true });
        resolve();
      });
      child.kill('SIGTERM');
    }),
  };
}
