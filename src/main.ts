// Entry point: config → deps → buildApp → listen; drains and closes cleanly on SIGTERM/SIGINT.
import { buildApp } from './app.js';
import { ConfigError, loadConfig } from './config.js';
import { createDeps } from './deps.js';

export async function serve(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`keyward: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const deps = await createDeps(config);
  const app = await buildApp(deps);
  const address = await app.listen({ port: config.port, host: config.host });
  const url = config.publicUrl ?? address.replace('127.0.0.1', 'localhost');
  const { needsSetup } = await app.inject({ method: 'GET', url: '/v1/setup' }).then((r) => r.json() as { needsSetup: boolean });
  deps.logger.info({ url, store: deps.store.dialect, dataDir: deps.store.dialect === 'sqlite' ? config.dataDir : undefined }, 'keyward listening');
  process.stdout.write(`\nKeyward is running at ${url}\n${needsSetup ? `First run: open ${url}/ to create your account (or POST ${url}/v1/setup).\n` : ''}API docs: ${url}/docs\n\n`);

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    deps.logger.info({ signal }, 'shutting down: draining requests');
    const force = setTimeout(() => process.exit(1), 15_000);
    force.unref();
    try {
      await app.close();
      await deps.close();
      process.exit(0);
    } catch (err) {
      deps.logger.error({ err }, 'shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  serve().catch((err: unknown) => {
    process.stderr.write(`keyward: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
