import { configDefaults, defineConfig } from 'vitest/config';

/**
 * `npm run test:quick` (KEYWARD_TEST_QUICK=1): the edit-test loop. SQLite only, in-process: no
 * chaos suite, nothing that starts the built server or a CLI as a child process (`*.process`), no
 * browser (`*.browser`) and no real gateway (`*.real`). `npm test` runs everything.
 */
export const QUICK_EXCLUDE = ['test/chaos/**', 'test/**/*.process.test.ts', 'test/**/*.browser.test.ts', 'test/**/*.real.test.ts'];
const quick = process.env.KEYWARD_TEST_QUICK === '1';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: quick ? [...configDefaults.exclude, ...QUICK_EXCLUDE] : configDefaults.exclude,
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
