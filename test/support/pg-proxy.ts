// A TCP proxy in front of PostgreSQL that reads the client's half of the wire protocol, so a test
// can hold one statement of one connection (its COMMIT, an UPDATE) the way a network that stalls
// holds it: that statement and everything after it on that connection wait, in order, while every
// other connection flows. Released, they are delivered as sent, a close included, like a link that
// heals; a client that gave up meanwhile does not get them back.
import net from 'node:net';

export interface HoldSpec {
  /** The statement to hold: the SQL of a simple query or of a Parse message. */
  statement: RegExp;
  /** Only on a connection whose open transaction already ran a statement matching this. */
  after?: RegExp;
}

export interface Hold {
  /** Resolves once a statement matched, and is held. */
  caught: Promise<{ sql: string; connection: number }>;
  /** Delivers what was held, and what followed, to the server: the link has healed. */
  release(): void;
}

export interface PgProxy {
  readonly port: number;
  /** `databaseUrl` with its host and port pointing at this proxy. */
  url(databaseUrl: string): string;
  /** Holds the next statement matching `spec`, on whichever connection sends it first. */
  hold(spec: HoldSpec): Hold;
  /** While on, new connections are closed at once (the node cannot reach the store again). */
  refuseNew(on: boolean): void;
  /** Every statement waits this long before it is sent on (0: none): a slow link. */
  slow(ms: number): void;
  /** Every statement sent through the proxy, in order, with its connection's number. */
  statements(): readonly { connection: number; sql: string }[];
  close(): Promise<void>;
}

const SSL_REQUEST = 80877103;
const GSS_REQUEST = 80877104;

interface Link {
  id: number;
  client: net.Socket;
  server: net.Socket;
  pending: Buffer;
  /** The first message (startup, or an SSL/GSS request before it) has no type byte. */
  untyped: boolean;
  /** Messages waiting while a statement of this link is held; null when flowing. */
  held: Buffer[] | null;
  clientGone: boolean;
  /** Whether the open transaction ran a statement matching the active hold's `after`. */
  sawAfter: boolean;
}

/** The SQL a client message carries: a simple query ('Q') or a Parse ('P'). */
function sqlOf(msg: Buffer): string | undefined {
  const type = String.fromCharCode(msg[0]!);
  if (type === 'Q') return msg.toString('utf8', 5, msg.length - 1);
  if (type === 'P') {
    const nameEnd = msg.indexOf(0, 5);
    const sqlEnd = msg.indexOf(0, nameEnd + 1);
    return msg.toString('utf8', nameEnd + 1, sqlEnd);
  }
  return undefined;
}

export async function startPgProxy(targetHost: string, targetPort: number): Promise<PgProxy> {
  const links = new Set<Link>();
  const log: { connection: number; sql: string }[] = [];
  let refusing = false;
  let slowMs = 0;
  let nextId = 1;
  let active: { spec: HoldSpec; catch: (v: { sql: string; connection: number }) => void; link?: Link } | undefined;

  const flush = (link: Link) => {
    const held = link.held ?? [];
    link.held = null;
    for (const msg of held) if (!link.server.destroyed) link.server.write(msg);
    // A client that left while its statements were held: its close follows them, as on the wire.
    if (link.clientGone) link.server.end();
  };

  const onStatement = (link: Link, sql: string) => {
    log.push({ connection: link.id, sql });
    if (/^\s*(begin|start transaction)\b/i.test(sql)) link.sawAfter = false;
    if (active && !active.link && active.spec.statement.test(sql) && (!active.spec.after || link.sawAfter)) {
      active.link = link;
      link.held ??= [];
      active.catch({ sql, connection: link.id });
    }
    if (active?.spec.after?.test(sql)) link.sawAfter = true;
    if (/^\s*(commit|rollback|end)\b/i.test(sql)) link.sawAfter = false;
    if (slowMs > 0 && !link.held) {
      link.held = [];
      setTimeout(() => {
        if (active?.link !== link) flush(link);
      }, slowMs);
    }
  };

  const onClientData = (link: Link, chunk: Buffer) => {
    link.pending = link.pending.length === 0 ? chunk : Buffer.concat([link.pending, chunk]);
    for (;;) {
      let msg: Buffer;
      if (link.untyped) {
        if (link.pending.length < 8) return;
        const len = link.pending.readInt32BE(0);
        if (link.pending.length < len) return;
        msg = link.pending.subarray(0, len);
        const code = msg.readInt32BE(4);
        link.untyped = code === SSL_REQUEST || code === GSS_REQUEST;
      } else {
        if (link.pending.length < 5) return;
        const len = 1 + link.pending.readInt32BE(1);
        if (link.pending.length < len) return;
        msg = link.pending.subarray(0, len);
        const sql = sqlOf(msg);
        if (sql !== undefined) onStatement(link, sql);
      }
      link.pending = link.pending.subarray(msg.length);
      const copy = Buffer.from(msg);
      if (link.held) link.held.push(copy);
      else link.server.write(copy);
    }
  };

  const server = net.createServer((client) => {
    if (refusing) {
      client.destroy();
      return;
    }
    const upstream = net.connect(targetPort, targetHost);
    const link: Link = { id: nextId++, client, server: upstream, pending: Buffer.alloc(0), untyped: true, held: null, clientGone: false, sawAfter: false };
    links.add(link);
    client.on('data', (chunk: Buffer) => onClientData(link, chunk));
    const clientClosed = () => {
      if (link.clientGone) return;
      link.clientGone = true;
      if (!link.held) upstream.end();
    };
    client.on('error', clientClosed).on('close', clientClosed);
    upstream.on('data', (chunk: Buffer) => {
      if (!link.clientGone) client.write(chunk);
    });
    const serverClosed = () => {
      client.destroy();
      upstream.destroy();
      links.delete(link);
    };
    upstream.on('error', serverClosed).on('close', serverClosed);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;

  return {
    port,
    url(databaseUrl) {
      const u = new URL(databaseUrl);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
    hold(spec) {
      if (active && active.link?.held) throw new Error('a statement is already held');
      let catchIt!: (v: { sql: string; connection: number }) => void;
      const caught = new Promise<{ sql: string; connection: number }>((resolve) => (catchIt = resolve));
      const hold = { spec, catch: catchIt } as NonNullable<typeof active>;
      active = hold;
      return {
        caught,
        release() {
          if (active === hold) active = undefined;
          if (hold.link) flush(hold.link);
        },
      };
    },
    refuseNew(on) {
      refusing = on;
    },
    slow(ms) {
      slowMs = ms;
    },
    statements: () => log,
    async close() {
      for (const link of links) {
        link.client.destroy();
        link.server.destroy();
      }
      links.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
