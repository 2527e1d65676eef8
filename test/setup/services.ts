// Global setup of `npm test`: finds PostgreSQL and Redis on their default local ports when the
// environment does not name them, switches their suites on, and says plainly what it skipped and why.
import net from 'node:net';
import pg from 'pg';

const PG_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PROBE_MS = 1500;

async function pgReachable(): Promise<string | null> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: PROBE_MS });
  try {
    await client.connect();
    await client.query('select 1');
    return null;
  } catch (err) {
    return (err as Error).message || String(err);
  } finally {
    await client.end().catch(() => {});
  }
}

function redisReachable(): Promise<string | null> {
  const url = new URL(REDIS_URL);
  return new Promise((resolve) => {
    const socket = net.connect({ host: url.hostname, port: Number(url.port || 6379) });
    const done = (why: string | null) => {
      socket.destroy();
      resolve(why);
    };
    socket.setTimeout(PROBE_MS, () => done('no answer'));
    socket.on('error', (err) => done(err.message));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => done(d.toString().startsWith('+PONG') ? null : `unexpected answer ${JSON.stringify(d.toString().slice(0, 40))}`));
  });
}

const skipped: string[] = [];

export async function setup(): Promise<void> {
  if (process.env.TEST_DIALECTS === undefined) {
    const why = await pgReachable();
    process.env.TEST_DIALECTS = why === null ? 'sqlite,postgres' : 'sqlite';
    if (why === null) process.env.TEST_PG_URL = PG_URL;
    else skipped.push(`PostgreSQL runs of every store suite (no PostgreSQL at ${new URL(PG_URL).host}: ${why})`);
  }
  if (process.env.TEST_REDIS_URL === undefined) {
    const why = await redisReachable();
    if (why === null) process.env.TEST_REDIS_URL = REDIS_URL;
    else skipped.push(`the Redis and scale-out suites (no Redis at ${new URL(REDIS_URL).host}: ${why})`);
  }
  if (process.env.KEYWARD_TEST_QUICK === '1') skipped.push('the chaos, child-process, browser and real-gateway suites and PostgreSQL runs (test:quick; `npm test` runs them)');
  const lines = [
    `keyward tests: stores ${process.env.TEST_DIALECTS}; Redis ${process.env.TEST_REDIS_URL ?? 'none'}`,
    ...skipped.map((s) => `  skipping ${s}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

export function teardown(): void {
  if (skipped.length === 0) return;
  const missing = process.env.KEYWARD_TEST_QUICK === '1' ? skipped.length > 1 : true;
  const hint = missing ? 'Start PostgreSQL and Redis on their default local ports (or set TEST_PG_URL / TEST_REDIS_URL) to run everything.\n' : '';
  process.stdout.write(`\nSkipped, and why:\n${skipped.map((s) => `  - ${s}`).join('\n')}\n${hint}`);
}
