// A TCP proxy a test can cut and restore, to take a real dependency "down" without stopping it.
import net from 'node:net';

export interface TcpProxy {
  port: number;
  down(): Promise<void>;
  up(): Promise<void>;
  /** Connections stay open (and new ones are accepted) but nothing is forwarded: a hung dependency. */
  blackhole(): void;
  close(): Promise<void>;
}

/** Sees every chunk forwarded, by direction and connection (to count what a client sends). */
export type ProxyTap = (from: 'client' | 'server', chunk: Buffer, connection: number) => void;

export async function startTcpProxy(targetHost: string, targetPort: number, tap?: ProxyTap): Promise<TcpProxy> {
  const sockets = new Set<net.Socket>();
  let connections = 0;
  let server: net.Server | undefined;
  let port = 0;
  let hung = false;
  const listen = () =>
    new Promise<void>((resolve, reject) => {
      hung = false;
      server = net.createServer((client) => {
        if (hung) {
          sockets.add(client);
          client.on('error', () => client.destroy());
          return;
        }
        const upstream = net.connect(targetPort, targetHost);
        sockets.add(client).add(upstream);
        if (tap) {
          const id = connections++;
          client.on('data', (chunk: Buffer) => tap('client', chunk, id));
          upstream.on('data', (chunk: Buffer) => tap('server', chunk, id));
        }
        const drop = () => {
          client.destroy();
          upstream.destroy();
          sockets.delete(client);
          sockets.delete(upstream);
        };
        client.on('error', drop).on('close', drop);
        upstream.on('error', drop).on('close', drop);
        client.pipe(upstream).pipe(client);
      });
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        port = (server!.address() as net.AddressInfo).port;
        resolve();
      });
    });
  await listen();
  const down = async () => {
    for (const s of sockets) s.destroy();
    sockets.clear();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  };
  const blackhole = () => {
    hung = true;
    for (const sock of sockets) {
      sock.unpipe();
      sock.pause();
    }
  };
  return { get port() { return port; }, down, up: listen, blackhole, close: down };
}
