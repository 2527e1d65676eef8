// Faults for the bench's degraded-mode rows: a TCP proxy in front of the store that can blackhole
// the link (connections stay open, nothing is answered), and a Redis of the bench's own that can
// be stalled with SIGSTOP. Both on 127.0.0.1.
import { spawn } from 'node:child_process';
import net from 'node:net';

export async function startBlackholeProxy(targetHost, targetPort) {
  const sockets = new Set();
  let hung = false;
  const server = net.createServer((client) => {
    client.on('error', () => client.destroy());
    sockets.add(client);
    if (hung) return;
    const upstream = net.connect(targetPort, targetHost);
    upstream.on('error', () => upstream.destroy());
    sockets.add(upstream);
    client.pipe(upstream).pipe(client);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    /** From now on nothing is forwarded either way; new connections are accepted and left hanging. */
    blackhole() {
      hung = true;
      for (const s of sockets) {
        s.unpipe();
        s.pause();
      }
    },
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}

export async function startOwnRedis() {
  const port = await new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port: p } = probe.address();
      probe.close(() => resolve(p));
    });
  });
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    const up = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (i > 100) throw new Error('redis-server did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  const signal = (sig) => {
    try {
      process.kill(child.pid, sig);
    } catch {
      // already gone
    }
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    pid: child.pid,
    /** A stalled Redis: its connections stay open and nothing is answered. */
    stall: () => signal('SIGSTOP'),
    stop: () => new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      signal('SIGCONT');
      signal('SIGKILL');
    }),
  };
}
