// The server: config → deps → buildApp → listen; drains and closes cleanly on SIGTERM/SIGINT.
// Started by src/main.ts (and `keyward serve`), which run it after holdTickObjectShape().
import cluster from 'node:cluster';
import { buildApp } from './app.js';
import { ConfigError, loadConfig, type Config } from './config.js';
import { createDeps, createLogger, type Deps } from './deps.js';
import { isStoreUnavailable, migrate, openStore } from './store/db.js';
import { loadMasterKey } from './lib/secretbox.js';
import { missingServerFlags } from './lib/node-flags.js';
import { tickShapeHeld } from './lib/tick-shape.js';

function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`keyward: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}

/** Cluster primary: migrates once, then runs workers that share the port and replaces any that die. */
async function runPrimary(config: Config): Promise<void> {
  const logger = createLogger(config.logLevel);
  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, sqliteSync: config.sqliteSync });
  await migrate(store.db);
  await store.close();
  // Created here, once, so workers never race to generate different master keys.
  loadMasterKey(config.masterKey, config.dataDir);
  let stopping = false;
  // Each worker accepts its own connections (the OS spreads them). With Node's default round-robin
  // the primary accepts and hands each socket over, and keeps its copy until the worker says it took
  // it: a worker killed in between leaves that client hanging forever. Here a dying worker's
  // connections die with it (the client sees a reset at once) and the primary starts another.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  const fork = () => cluster.fork();
  for (let i = 0; i < config.workers; i++) fork();
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    logger.error({ worker: worker.id, code, signal }, 'worker died; starting another');
    setTimeout(fork, 500);
  });
  const stop = (signal: NodeJS.Signals) => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGTERM'));
}

/** What a stuck shutdown is given after the drain (closing the store, the last writes) before the process exits with 1. */
const AFTER_DRAIN_MS = 5_000;

function installShutdown(close: () => Promise<void>, drainMs: number, logger: { info(o: object, m: string): void; error(o: object, m: string): void }): void {
  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'shutting down: draining requests');
    const force = setTimeout(() => process.exit(1), drainMs + AFTER_DRAIN_MS);
    force.unref();
    try {
      await close();
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

/**
 * A node started before its store (a restart of the whole stack, say) waits for it with backoff,
 * saying so in one line per attempt, instead of exiting with a stack trace. It listens only once
 * ready, so nothing routes traffic to it before.
 */
async function depsOnceTheStoreAnswers(config: Config): Promise<Deps> {
  const logger = createLogger(config.logLevel);
  const deadline = Date.now() + config.storeWaitMs;
  for (let attempt = 1, delay = 250; ; attempt++, delay = Math.min(delay * 2, 5000)) {
    try {
      return await createDeps(config);
    } catch (err) {
      if (!isStoreUnavailable(err) || Date.now() + delay > deadline) throw err;
      logger.warn({ attempt, retryInMs: delay, reason: (err as Error).message }, 'store unavailable; waiting for it');
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

export interface ServeOptions {
  /** The benchmark's control row starts without the tick-shape hold on purpose. */
  withoutTickHold?: boolean;
}

export async function serve(options: ServeOptions = {}): Promise<void> {
  // Without the hold every request pays a generic runtime call per tick (src/lib/tick-shape.ts):
  // an entry point that forgot it is a bug, not a slower server.
  if (!options.withoutTickHold && !tickShapeHeld()) throw new Error('the entry point must call holdTickObjectShape() before loading the server');
  const config = configOrExit();
  if (config.workers > 1 && cluster.isPrimary) return runPrimary(config);
  const deps = await depsOnceTheStoreAnswers(config);
  // A dependency's client may drop a promise it made (a connection closing mid-command): log it and
  // keep serving, rather than let Node end the process over a request nobody waits for any more.
  process.on('unhandledRejection', (err) => deps.logger.error({ err }, 'unhandled rejection'));
  // One process speaks for the node: the only one, or the first cluster worker.
  const speaks = !cluster.isWorker || cluster.worker?.id === 1;
  if (speaks) for (const warning of config.warnings) deps.logger.warn(warning);
  const missing = missingServerFlags();
  if (missing.length > 0 && speaks) {
    deps.logger.warn({ missing }, `Node was started without ${missing.join(' ')}: after an idle spell verify's tail latency grows (src/lib/node-flags.ts); \`npm start\` and \`keyward serve\` pass it, or run node ${missing.join(' ')} dist/main.js`);
  }
  const app = await buildApp(deps.services);
  installShutdown(async () => {
    // node:http's server.close() waits for every connection: idle ones close at once, busy ones
    // after their answers and keep-alive timer, but one that sent part of a request (or nothing)
    // keeps it waiting for ever. Those left after the drain are closed.
    const drain = setTimeout(() => app.server.closeAllConnections(), config.shutdownDrainMs);
    try {
      await app.close();
    } finally {
      clearTimeout(drain);
    }
    await deps.close();
  }, config.shutdownDrainMs, deps.logger);
  const address = await app.listen({ port: config.port, host: config.host });
  if (!speaks) return;
  const url = config.publicUrl ?? address.replace('127.0.0.1', 'localhost');
  const { needsSetup } = await app.inject({ method: 'GET', url: '/v1/setup' }).then((r) => r.json() as { needsSetup: boolean });
  deps.logger.info({ url, store: deps.store.dialect, workers: config.workers }, 'keyward listening');
  const lines = [
    '',
    `Keyward is running at ${url}${config.workers > 1 ? ` (${config.workers} workers)` : ''}`,
    ...(needsSetup ? [`First run: open ${url}/ to create your account (or POST ${url}/v1/setup).`] : []),
    `API docs: ${url}/docs`,
    '',
  ];
  process.stdout.write(lines.join('\n') + '\n');
}
