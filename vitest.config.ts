import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/setup/services.ts'],
    pool: 'forks',
    // Vitest's default is one worker per core less one: a single worker on a 2-core machine. Most
    // files wait on sockets, child processes and the database, so two run well side by side.
    maxWorkers: 2,
    // Files share one module graph per worker: importing the sources once, not once per file,
    // saves about 30 s of the suite. Each test builds its own app, store and clock.
    isolate: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
