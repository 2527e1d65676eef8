#!/usr/bin/env node
// The keyward command: serve, migrate, and master-key rotation.
import { Command } from 'commander';
import { loadConfig } from '../config.js';
import { createDeps } from '../deps.js';
import { migrate, openStore } from '../store/db.js';
import { reencryptAll } from '../lib/reencrypt.js';
import { serve } from '../main.js';

const program = new Command('keyward').description('Self-hosted API key management').showHelpAfterError();

program.command('serve').description('Run the server (console and API)').action(async () => {
  await serve();
});

program.command('migrate').description('Bring the store schema up to date, then exit').action(async () => {
  const config = loadConfig();
  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, sqliteSync: config.sqliteSync });
  const applied = await migrate(store.db);
  await store.close();
  process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'the store is up to date\n');
});

program.command('reencrypt')
  .description('Re-seal every secret under KEYWARD_MASTER_KEY (old key in KEYWARD_MASTER_KEY_PREVIOUS), then exit')
  .action(async () => {
    const deps = await createDeps(loadConfig());
    try {
      const { secrets, vault } = await reencryptAll(deps.store.db, deps.box);
      process.stdout.write(`re-sealed ${secrets} integration secret(s) and ${vault} vault value(s) under master key ${deps.box.currentId}\n`);
    } finally {
      await deps.close();
    }
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`keyward: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
